// `functions types`: declarations of a deployed function's RPC surface and Env, checked by
// the TypeScript compiler (typescript pinned in package-lock.json) on a client that uses
// them with the official capnweb client: types/client.ts.
//
//   cargo build -p server --bin functions && node --test types.test.mjs

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cli, startServer } from "./lib/serve.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const GENERATED = join(HERE, "types/generated");
const opts = { timeout: 120_000 };

let server;
before(async () => {
  server = await startServer();
  for (const dir of ["../../examples/target", "../npm-app"]) {
    const r = await cli(server, ["deploy", resolve(HERE, dir)]);
    assert.equal(r.code, 0, r.stderr);
  }
  rmSync(GENERATED, { recursive: true, force: true });
  mkdirSync(GENERATED, { recursive: true });
});
after(() => server?.stop());

test("functions types writes the RPC surface and Env, and a client type-checks", opts, async () => {
  for (const id of ["target", "npm-app"]) {
    const r = await cli(server, ["types", id, "--out", join(GENERATED, `${id}.d.ts`)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const target = readFileSync(join(GENERATED, "target.d.ts"), "utf8");
  assert.match(target, /add\(a: number, b: number\): Promise<Awaited<Promise<number>>>;/);
  assert.match(target, /export interface MathTarget extends FunctionTarget/);
  assert.match(target, /getMetrics\(\): Promise<Awaited<FunctionMetrics>>;/);
  assert.doesNotMatch(target, /invoke|logMetrics/, "protected and private methods are not RPC surface");
  const app = readFileSync(join(GENERATED, "npm-app.d.ts"), "utf8");
  assert.match(app, /export interface Env \{\n  GREETING: string;\n\}/);

  const tsc = resolve(HERE, "node_modules/typescript/bin/tsc");
  const out = await new Promise((ok) =>
    execFile(process.execPath, [tsc, "-p", join(HERE, "types/tsconfig.json")], (err, stdout, stderr) =>
      ok({ code: err ? err.code ?? 1 : 0, text: stdout + stderr }),
    ),
  );
  assert.equal(out.code, 0, `tsc --noEmit failed:\n${out.text}`);
});
