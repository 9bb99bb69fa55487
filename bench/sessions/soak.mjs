// Soak: one million calls over one WebSocket capnweb session against a function deployed on a
// real `functions serve`, with the server's RSS and the session's table sizes sampled every
// 10 s. Passes when RSS at the end is at most 1.05 x RSS at 10 % of the run and the tables are
// back to their size before the run.
//
//   node bench/sessions/soak.mjs [--calls N] [--in-flight N] [--sample-ms MS]
//
// FUNCTIONS_BIN picks the server binary (default target/release/functions, built by run.sh).
// Prints a Markdown table of the samples and a verdict; exits 1 on failure.

import { once } from "node:events";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL(".", import.meta.url));
process.env.FUNCTIONS_BIN ??= resolve(HERE, "../../target/release/functions");
const { bundle, startServer } = await import("../../tests/interop/lib/serve.mjs");
const { RpcSession, WebSocketTransport } = await import("../../tests/interop/node_modules/capnweb/dist/index.js");

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}
const CALLS = arg("calls", 1_000_000);
const IN_FLIGHT = arg("in-flight", 64);
const SAMPLE_MS = arg("sample-ms", 10_000);

const SRC = `
  import { RpcTarget } from "cloudflare:workers";
  class Api extends RpcTarget {
    square(i) { return i * i; }
    echo(v) { return v; }
  }
  export default { fetch() { return new Response("soak"); }, rpc: Api };
`;

function rssOf(pid) {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(text)[1]) * 1024;
}

const server = await startServer({ args: [] });
let failed = false;
try {
  await server.deploy("soak", bundle(SRC));
  const ws = new WebSocket(`${server.wsBase}/_rpc/soak`);
  await once(ws, "open");
  const session = new RpcSession(new WebSocketTransport(ws));
  const api = session.getRemoteMain();
  assert(await api.square(3) === 9, "warm-up call");
  const baseline = session.getStats();
  const started = Date.now();
  const samples = [];
  let done = 0;
  let errors = 0;
  const sample = () =>
    samples.push({ s: (Date.now() - started) / 1000, calls: done, rss: rssOf(server.pid), ...session.getStats() });
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  // IN_FLIGHT workers, each making calls one after another; with a payload so data moves too.
  const payload = { text: "x".repeat(200), list: [1, 2, 3] };
  let next = 0;
  async function worker() {
    while (next < CALLS) {
      const i = next++;
      try {
        if (i % 2 === 0) {
          const r = await api.square(i % 1000);
          if (r !== (i % 1000) ** 2) errors++;
        } else {
          const r = await api.echo(payload);
          if (r.text.length !== 200) errors++;
        }
      } catch {
        errors++;
      }
      done++;
      if (done === Math.floor(CALLS / 10)) sample(); // the reference point, exactly at 10 %
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  clearInterval(timer);
  // Let the releases of the last calls arrive, then the final sample.
  await new Promise((r) => setTimeout(r, 500));
  sample();
  const secs = (Date.now() - started) / 1000;
  const end = samples[samples.length - 1];
  const tenth = samples.reduce((best, s) => (Math.abs(s.calls - CALLS / 10) < Math.abs(best.calls - CALLS / 10) ? s : best));
  const mib = (b) => (b / 2 ** 20).toFixed(1);
  console.log(`| t (s) | calls | server RSS (MiB) | client imports | client exports |`);
  console.log(`|---:|---:|---:|---:|---:|`);
  for (const s of samples) console.log(`| ${s.s.toFixed(0)} | ${s.calls} | ${mib(s.rss)} | ${s.imports} | ${s.exports} |`);
  console.log();
  console.log(`${done} calls in ${secs.toFixed(1)} s (${Math.round(done / secs)} calls/s, ${IN_FLIGHT} in flight), ${errors} errors`);
  const ratio = end.rss / tenth.rss;
  console.log(`RSS at 10 % (${tenth.calls} calls): ${mib(tenth.rss)} MiB; at the end: ${mib(end.rss)} MiB; ratio ${ratio.toFixed(3)} (limit 1.05)`);
  console.log(`tables before: ${JSON.stringify(baseline)}; after: ${JSON.stringify({ imports: end.imports, exports: end.exports })}`);
  if (errors > 0) failed = true;
  if (ratio > 1.05) failed = true;
  if (end.imports !== baseline.imports || end.exports !== baseline.exports) failed = true;
  console.log(failed ? "FAIL" : "PASS");
  session[Symbol.dispose]?.();
  ws.close();
} finally {
  await server.stop();
}
process.exit(failed ? 1 : 0);

function assert(ok, what) {
  if (!ok) throw new Error(`soak: ${what} failed`);
}
