// TypeScript and npm packages deployed straight from a directory, no bundler: the fixture
// ../npm-app (a Hono app in TypeScript, zod, the CommonJS-only `ms`, `nanoid` chosen by its
// `browser` export condition; `npm ci` installs them from the committed lockfile), and bad
// input that must fail the deploy naming the file and the specifier, with nothing deployed.
//
//   cargo build -p server --bin functions && (cd ../npm-app && npm ci) && node --test npm_app.test.mjs

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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

  test("only the package files reached from the function are in the bundle", opts, async () => {
    const got = await (await server.admin("GET", "/_admin/functions/npm-app")).json();
    const modules = Object.keys(got.bundle.modules);
    assert.ok(modules.includes("index.ts"));
    assert.ok(modules.includes("node_modules/nanoid/index.browser.js"));
    assert.ok(!modules.includes("node_modules/nanoid/index.js"), "the Node entry is not reached");
    assert.ok(!modules.some((m) => m.startsWith("node_modules/hono/dist/cjs/")), "hono's CommonJS build is not reached");
    assert.ok(!modules.some((m) => m.endsWith(".d.ts")));
    assert.ok(got.bundle.sources["index.ts"].ts.includes("enum Header"), "the sources are stored");
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
