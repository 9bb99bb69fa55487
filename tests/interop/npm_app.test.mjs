// TypeScript and npm packages deployed straight from a directory, no bundler: the fixture
// ../npm-app (a Hono app in TypeScript, zod, the CommonJS-only `ms`, `nanoid` chosen by its
// `browser` export condition, `string_decoder` which requires Node's `buffer` through
// safe-buffer; `npm ci` installs them from the committed lockfile), export conditions given
// with `--conditions`, and bad input that must fail the deploy naming the file and the
// specifier, with nothing deployed.
//
//   cargo build -p server --bin functions && (cd ../npm-app && npm ci) && node --test npm_app.test.mjs

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cli, startServer } from "./lib/serve.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const APP = resolve(HERE, "../npm-app");
const opts = { timeout: 60_000 };

describe("a function in TypeScript with npm packages", () => {
  let server;
  let base;
  before(async () => {
    server = await startServer();
    base = `${server.base}/npm-app`;
    const started = performance.now();
    const r = await cli(server, ["deploy", APP]);
    const ms = performance.now() - started;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployed npm-app version 1/);
    console.log(`# deploy of tests/npm-app (CLI collect + server build + check): ${ms.toFixed(0)} ms`);
  });
  after(() => server?.stop());

  test("hono routing, middleware and a var binding", opts, async () => {
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-served-by"), "hono");
    assert.equal(await res.text(), "hello from hono");
    const user = await fetch(`${base}/users/42?q=x`);
    assert.deepEqual(await user.json(), { id: "42", q: "x" });
    assert.equal((await fetch(`${base}/nowhere`)).status, 404);
  });

  test("zod validates JSON bodies", opts, async () => {
    const good = await fetch(`${base}/users`, { method: "POST", body: JSON.stringify({ name: "ada", age: 36 }) });
    assert.equal(good.status, 201);
    assert.deepEqual(await good.json(), { created: "ada", age: 36 });
    const bad = await fetch(`${base}/users`, { method: "POST", body: JSON.stringify({ name: "", age: -1 }) });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { error: ["name", "age"] });
  });

  test("a CommonJS-only package works through require", opts, async () => {
    assert.deepEqual(await (await fetch(`${base}/ms/2h`)).json(), { ms: 7_200_000 });
  });

  test("a package is resolved with its browser export condition", opts, async () => {
    // nanoid's default (Node) entry imports node:crypto; the browser one uses Web Crypto.
    assert.deepEqual(await (await fetch(`${base}/id`)).json(), { length: 21 });
  });

  test("a CommonJS package that requires Node's buffer answers as under Node", opts, async () => {
    // The same code under Node, with the same package.
    const { StringDecoder } = createRequire(join(APP, "package.json"))("string_decoder/");
    const { decodeSample } = await import(join(APP, "src/decode.js"));
    const node = decodeSample(StringDecoder, Buffer);
    assert.deepEqual(node.pieces.join(""), "€ and 😀 and é");
    const res = await fetch(`${base}/decode`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), node);
  });

  test("only the package files reached from the function are in the bundle", opts, async () => {
    const got = await (await server.admin("GET", "/_admin/functions/npm-app")).json();
    const modules = Object.keys(got.bundle.modules);
    assert.ok(modules.includes("index.ts"));
    assert.ok(modules.includes("node_modules/nanoid/index.browser.js"));
    assert.ok(!modules.includes("node_modules/nanoid/index.js"), "the Node entry is not reached");
    assert.ok(!modules.some((m) => m.startsWith("node_modules/hono/dist/cjs/")), "hono's CommonJS build is not reached");
    assert.ok(!modules.some((m) => m.endsWith(".d.ts")));
    assert.ok(modules.includes("node_modules/safe-buffer/index.js"), "safe-buffer is reached through string_decoder");
    assert.ok(!modules.some((m) => m.startsWith("node_modules/buffer/")), "`buffer` is the built-in");
    assert.ok(got.bundle.sources["index.ts"].ts.includes("enum Header"), "the sources are stored");
  });
});

describe("export conditions from the CLI", () => {
  let server;
  let root;
  let files;
  before(async () => {
    server = await startServer();
    root = mkdtempSync(join(tmpdir(), "functions-conditions-"));
    files = {
      "index.ts": "import { answer, Base } from 'picky';\n" +
        "export class Api extends Base {\n  own(): string { return answer; }\n}\n" +
        "export default { rpc: Api, fetch: () => new Response(answer) };\n",
      "node_modules/picky/package.json": JSON.stringify({
        name: "picky",
        exports: { ".": { custom: "./custom.js", default: "./default.js" } },
      }),
      "node_modules/picky/custom.js": "export const answer = 'from custom.js';\nexport class Base { fromCustom(a) { return a; } }\n",
      "node_modules/picky/default.js": "export const answer = 'from default.js';\nexport class Base { fromDefault(a) { return a; } }\n",
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
  });
  after(async () => {
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test("--conditions custom picks the custom export, and without it the default", opts, async () => {
    let r = await cli(server, ["deploy", root, "--id", "picky-custom", "--conditions", "custom"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await (await fetch(`${server.base}/picky-custom/`)).text(), "from custom.js");
    const got = await (await server.admin("GET", "/_admin/functions/picky-custom")).json();
    assert.deepEqual(got.bundle.conditions, ["custom"], "the conditions are stored with the version");
    assert.ok(Object.keys(got.bundle.modules).includes("node_modules/picky/custom.js"));
    assert.ok(!Object.keys(got.bundle.modules).includes("node_modules/picky/default.js"));

    r = await cli(server, ["deploy", root, "--id", "picky-default"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await (await fetch(`${server.base}/picky-default/`)).text(), "from default.js");
  });

  test("functions types resolves a package's base class with the conditions", opts, async () => {
    // Deployed with --conditions custom: its own conditions by default.
    const stored = await cli(server, ["types", "picky-custom"]);
    assert.equal(stored.code, 0, stored.stderr);
    assert.match(stored.stdout, /fromCustom\(a: any\): Promise<any>;/);
    // Deployed through the API with both files of the package: --conditions picks one.
    const modules = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, k.endsWith(".json") ? { json: JSON.parse(v) } : v]));
    assert.equal((await server.admin("PUT", "/_admin/functions/picky-api", { mainModule: "index.ts", modules })).status, 200);
    const plain = await cli(server, ["types", "picky-api"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /fromDefault\(a: any\): Promise<any>;/);
    const given = await cli(server, ["types", "picky-api", "--conditions", "custom"]);
    assert.equal(given.code, 0, given.stderr);
    assert.match(given.stdout, /fromCustom\(a: any\): Promise<any>;/);
    assert.doesNotMatch(given.stdout, /fromDefault/);
  });

  test("bad conditions are refused by the CLI and with a 400 by the server", opts, async () => {
    for (const bad of ["has space", "a/b", "x".repeat(65), Array.from({ length: 17 }, (_, i) => `c${i}`).join(",")]) {
      const r = await cli(server, ["deploy", root, "--id", "picky-bad", "--conditions", bad]);
      assert.notEqual(r.code, 0, `--conditions ${bad} should be refused`);
      assert.match(r.stderr, /conditions/);
    }
    const res = await server.admin("PUT", "/_admin/functions/picky-bad", {
      mainModule: "index.js", modules: { "index.js": "export default {}" }, conditions: ["ok", "not ok"],
    });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error.name, "ManifestError");
    assert.match(body.error.message, /conditions\[1\]/);
    assert.equal((await server.admin("GET", "/_admin/functions/picky-bad")).status, 404);
  });
});

describe("bad input fails the deploy naming the file and the specifier", () => {
  let server;
  let root;
  before(async () => {
    server = await startServer();
    root = mkdtempSync(join(tmpdir(), "functions-bad-"));
  });
  after(async () => {
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** A function directory `name` with `files`; returns its path. */
  function fnDir(name, files) {
    const dir = join(root, name);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  }

  async function refused(dir, id, needles) {
    const r = await cli(server, ["deploy", dir, "--id", id]);
    assert.notEqual(r.code, 0, `deploy of ${id} should fail:\n${r.stdout}`);
    for (const n of needles) assert.ok(r.stderr.includes(n), `${id}: ${JSON.stringify(r.stderr)} should mention ${n}`);
    const res = await server.admin("GET", `/_admin/functions/${id}`);
    assert.equal(res.status, 404, `nothing of ${id} is deployed`);
  }

  test("a TypeScript syntax error names file:line:col and the line", opts, async () => {
    const dir = fnDir("syntax", { "index.ts": "import { f } from './lib';\nexport default { fetch: f };\n", "lib.ts": "export function f(): Response {\n  const x: = 1;\n}\n" });
    await refused(dir, "syntax", ["lib.ts:2:", "const x: = 1;"]);
  });

  test("an unresolvable relative import", opts, async () => {
    const dir = fnDir("unresolved", { "index.ts": "import { a } from './missing';\nexport default { a };\n" });
    await refused(dir, "unresolved", ["index.ts", '"./missing"']);
  });

  test("a package that is not installed", opts, async () => {
    const dir = fnDir("missing-pkg", {
      "index.ts": "import left from 'left-pad';\nexport default { left };\n",
      "node_modules/.keep": "",
    });
    await refused(dir, "missing-pkg", ["index.ts", '"left-pad"', "not in node_modules"]);
  });

  test("an unsupported node: module", opts, async () => {
    const dir = fnDir("node-mod", { "index.ts": "import { readFileSync } from 'node:fs';\nexport default { readFileSync };\n" });
    await refused(dir, "node-mod", ["index.ts", '"node:fs"', "Node built-in"]);
  });

  test("a symlink out of the directory is refused", opts, async () => {
    const dir = fnDir("symlink", {
      "index.js": "import secret from 'evil';\nexport default { fetch: () => new Response(secret) };\n",
      "node_modules/.keep": "",
    });
    symlinkSync("/etc", join(dir, "node_modules/evil"));
    await refused(dir, "symlink", ["outside the function's directory"]);
    const file = fnDir("symlink-file", {
      "index.js": "import p from './passwd.json';\nexport default { p };\n",
      "node_modules/.keep": "",
    });
    symlinkSync("/etc/passwd", join(file, "passwd.json"));
    await refused(file, "symlink-file", ["passwd.json", "outside the function's directory"]);
  });
});
