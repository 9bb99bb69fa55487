// The README's "A function in TypeScript with npm packages" commands, run as written against a
// real server (its address put in place of 127.0.0.1:8787); each `# → text` is the output
// expected. `functions dev` keeps running, so it is left to dev.test.mjs.
//
//   cargo build -p server --bin functions && node --test readme.test.mjs

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BIN, startServer } from "./lib/serve.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../..");
const opts = { timeout: 120_000 };

function section() {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("## A function in TypeScript with npm packages");
  assert.ok(start >= 0, "the README has the section");
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start));
  assert.ok(block, "the section has a sh block");
  return block[1].split("\n").filter((l) => l.trim());
}

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
  rmSync(join(ROOT, "npm-app.d.ts"), { force: true });
});

test("the README's TypeScript and npm commands work as written", opts, async () => {
  const lines = section();
  assert.ok(lines.some((l) => l.startsWith("functions dev ")), "the dev loop is shown");
  const addr = server.base.replace("http://", "");
  for (const line of lines) {
    if (line.startsWith("functions dev ")) continue;
    const [command, expected] = line.split(/\s+# → /);
    const script = `functions() { "${BIN}" "$@"; }\n${command.replaceAll("127.0.0.1:8787", addr)}`;
    const out = await new Promise((ok) =>
      execFile("bash", ["-c", script], {
        cwd: ROOT,
        env: { ...process.env, FUNCTIONS_URL: server.base, FUNCTIONS_ADMIN_TOKEN: server.token },
      }, (err, stdout, stderr) => ok({ code: err ? err.code ?? 1 : 0, text: stdout + stderr })),
    );
    assert.equal(out.code, 0, `${command}\n${out.text}`);
    if (expected) {
      assert.ok(out.text.includes(expected.replaceAll("127.0.0.1:8787", addr)), `${command}\nprinted ${out.text}\nexpected ${expected}`);
    }
  }
  assert.match(readFileSync(join(ROOT, "npm-app.d.ts"), "utf8"), /export interface Env/);
});
