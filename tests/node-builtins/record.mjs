// Runs cases.mjs under Node (20, the version the answers are compared with) and writes its
// answers to expected.json, which crates/isolate/tests/node_builtins.rs compares with a
// function's. Run after changing cases.mjs: `node record.mjs` (needs no packages).
import { writeFileSync } from "node:fs";
import { answers } from "./cases.mjs";

const major = Number(process.versions.node.split(".")[0]);
if (major !== 20) throw new Error(`record with Node 20 (this is ${process.versions.node})`);
process.removeAllListeners("warning"); // util.deprecate's case warns; the answer is what counts
const out = await answers();
writeFileSync(new URL("expected.json", import.meta.url), `${JSON.stringify(out, null, 1)}\n`);
console.log(`wrote expected.json: ${Object.keys(out).length} cases (Node ${process.versions.node})`);
