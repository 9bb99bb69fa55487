// `functions dev DIR` end to end: it deploys DIR, prints the function's console lines,
// redeploys on a change (the test waits for the `redeployed` line, then the next request sees
// the change), keeps the last good version serving when a change does not build (and prints
// why), and stops cleanly on Ctrl-C (SIGINT); with `--conditions`, packages resolve with them.
//
//   cargo build -p server --bin functions && node --test dev.test.mjs

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN } from "./lib/serve.mjs";

const opts = { timeout: 60_000 };

function source(version) {
  return `interface Reply { version: string }
export default {
  fetch(): Response {
    const reply: Reply = { version: "${version}" };
    console.log("served " + reply.version);
    return Response.json(reply);
  },
};
`;
}

/** Collects a child's stdout lines; `waitFor(re)` resolves to the first line matching `re`. */
function lines(child) {
  const seen = [];
  const waiters = [];
  let buf = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      seen.push(line);
      for (const w of waiters.slice()) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.ok(line);
        }
      }
    }
  });
  return {
    seen,
    /** The first line from index `from` on that matches `re`. */
    waitFor(re, from = 0) {
      const found = seen.slice(from).find((l) => re.test(l));
      if (found) return Promise.resolve(found);
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no line matching ${re}; saw:\n${seen.join("\n")}`)), 30_000);
        waiters.push({ re, ok: (l) => (clearTimeout(timer), ok(l)) });
      });
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), "functions-dev-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("functions dev deploys, redeploys on change, keeps the last good version, stops on Ctrl-C", opts, async () => {
  writeFileSync(join(dir, "function.json"), JSON.stringify({ id: "devfn" }));
  writeFileSync(join(dir, "index.ts"), source("one"));
  const child = spawn(BIN, ["dev", dir, "--listen", "127.0.0.1:0"], {
    env: { ...process.env, RUST_LOG: "error" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = once(child, "exit");
  try {
    const out = lines(child);
    const base = (await out.waitFor(/^listening on /)).slice("listening on ".length);
    await out.waitFor(/^deployed devfn version 1 at /);
    await out.waitFor(/^watching /);

    assert.deepEqual(await (await fetch(`${base}/devfn/`)).json(), { version: "one" });
    await out.waitFor(/^\[devfn\] \w+: served one/);

    let mark = out.seen.length;
    writeFileSync(join(dir, "index.ts"), source("two"));
    await out.waitFor(/^redeployed devfn version 2$/, mark);
    assert.deepEqual(await (await fetch(`${base}/devfn/`)).json(), { version: "two" });
    await out.waitFor(/^\[devfn\] \w+: served two/, mark);

    mark = out.seen.length;
    writeFileSync(join(dir, "index.ts"), "export default { fetch(: Response {} };\n");
    const failed = await out.waitFor(/^redeploy failed/, mark);
    assert.match(failed, /devfn version 2 keeps serving/);
    assert.match(failed, /index\.ts:1:/);
    assert.deepEqual(await (await fetch(`${base}/devfn/`)).json(), { version: "two" }, "the last good version serves");

    child.kill("SIGINT");
    const [code] = await exited;
    assert.equal(code, 0);
    await out.waitFor(/^stopped$/);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

test("functions dev --conditions resolves packages with the conditions given", opts, async () => {
  const pdir = mkdtempSync(join(tmpdir(), "functions-dev-conditions-"));
  after(() => rmSync(pdir, { recursive: true, force: true }));
  mkdirSync(join(pdir, "node_modules/picky"), { recursive: true });
  writeFileSync(join(pdir, "node_modules/picky/package.json"),
    JSON.stringify({ name: "picky", exports: { custom: "./custom.js", default: "./default.js" } }));
  writeFileSync(join(pdir, "node_modules/picky/custom.js"), "export default 'custom';\n");
  writeFileSync(join(pdir, "node_modules/picky/default.js"), "export default 'default';\n");
  writeFileSync(join(pdir, "index.js"), "import which from 'picky';\nexport default { fetch: () => new Response(which) };\n");
  const child = spawn(BIN, ["dev", pdir, "--id", "picky", "--listen", "127.0.0.1:0", "--conditions", "custom"], {
    env: { ...process.env, RUST_LOG: "error" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = once(child, "exit");
  try {
    const out = lines(child);
    const base = (await out.waitFor(/^listening on /)).slice("listening on ".length);
    await out.waitFor(/^deployed picky version 1 at /);
    assert.equal(await (await fetch(`${base}/picky/`)).text(), "custom");
    child.kill("SIGINT");
    const [code] = await exited;
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});
