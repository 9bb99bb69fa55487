// The interop contract served through a function's own URL (issue 13): client.test.mjs, the
// official capnweb client's suite, against fn_interop_server.mjs (a function serving the
// contract with the built-in capnweb module's newWorkersRpcResponse). Skips, with reasons:
// fn_interop_server.mjs's SKIPS.
//
//   cargo build -p server --bin functions && node --test fn_interop.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { SKIPS } from "./fn_interop_server.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));

test("the interop suite passes against a function serving the contract from its own URL", { timeout: 600_000 }, () => {
  // A child of a test runner would report to it instead of printing TAP: not this one.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync(process.execPath, ["--test", "--test-reporter=tap", "client.test.mjs"], {
    cwd: HERE,
    env: {
      ...env,
      INTEROP_SERVER: `"${process.execPath}" fn_interop_server.mjs`,
      INTEROP_PATH_PREFIX: "/interop",
      INTEROP_SKIP: Object.keys(SKIPS).join("|"),
      INTEROP_SKIP_REASON: "see fn_interop_server.mjs SKIPS",
    },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const summary = (run.stdout.match(/^# (tests|pass|fail|skipped) \d+$/gm) ?? []).join(", ");
  const failed = (run.stdout.match(/^\s*not ok .*$/gm) ?? []).join("\n");
  assert.equal(run.status, 0, `client.test.mjs failed through a function (${summary}):\n${failed}\n${run.stderr.slice(-2000)}`);
  assert.match(run.stdout, /^# fail 0$/m);
});
