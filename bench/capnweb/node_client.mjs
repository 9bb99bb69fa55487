// The same four measurements as crates/capnweb/examples/loadgen.rs, made with the official
// capnweb client (npm capnweb@0.12.0 from tests/interop/node_modules), printing the same JSON.
//
//   node bench/capnweb/node_client.mjs --url ws://127.0.0.1:PORT/ [--seq-calls 3000]
//     [--warmup 200] [--chain-reps 300] [--concurrent 1000] [--concurrent-reps 10]
//     [--inflight 64] [--duration 3] [--label TEXT]
//
// Every result is checked; wrong results and errors are counted. Exits 1 if anything failed.

const MODULES = new URL("../../tests/interop/node_modules/", import.meta.url);
globalThis.WebSocket ??= (await import(new URL("ws/wrapper.mjs", MODULES))).default;
const { newWebSocketRpcSession } = await import(new URL("capnweb/dist/index.js", MODULES));

function parseArgs(argv) {
  const opts = {
    url: "",
    "seq-calls": 3000,
    warmup: 200,
    "chain-reps": 300,
    concurrent: 1000,
    "concurrent-reps": 10,
    inflight: 64,
    duration: 3,
    label: "",
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in opts) || i + 1 >= argv.length) {
      console.error(`node_client: unknown or incomplete option ${argv[i]}`);
      process.exit(2);
    }
    const raw = argv[++i];
    opts[key] = typeof opts[key] === "number" ? Number(raw) : raw;
  }
  if (!opts.url) {
    console.error("node_client: --url ws://HOST:PORT/ is required");
    process.exit(2);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

let errors = 0;
let wrong = 0;
const samples = [];
function note(msg) {
  if (samples.length < 5) samples.push(msg);
}
// Awaits `promise`: { v } or { e }.
async function settle(promise) {
  try {
    return { v: await promise };
  } catch (e) {
    return { e };
  }
}
// Checks a settled call against `expected`; true if it was right.
function verify(what, r, expected) {
  if ("e" in r) {
    errors++;
    note(`${what}: ${r.e?.name ?? "Error"}: ${r.e?.message ?? r.e}`);
    return false;
  }
  if (r.v === expected) return true;
  wrong++;
  note(`${what}: expected ${expected}, got ${JSON.stringify(r.v)}`);
  return false;
}

// The q-quantile (nearest rank), as loadgen.rs computes it.
function quantile(values, q) {
  if (values.length === 0) return NaN;
  const v = [...values].sort((a, b) => a - b);
  const rank = Math.min(Math.max(Math.ceil(q * v.length), 1), v.length);
  return v[rank - 1];
}
const round = (x, digits) => Math.round(x * 10 ** digits) / 10 ** digits;
const operand = (i) => i % 1000;
const now = () => performance.now(); // ms, sub-microsecond resolution

const api = newWebSocketRpcSession(opts.url);

async function pipelinedChain() {
  const sum = api.add(1, 2);
  const sq = api.square(sum);
  try {
    return await api.square(sq);
  } finally {
    // The intermediate results are never awaited: release them, as dropping them does in Rust.
    sum[Symbol.dispose]();
    sq[Symbol.dispose]();
  }
}

async function awaitedChain() {
  const sum = await api.add(1, 2);
  const sq = await api.square(sum);
  return await api.square(sq);
}

// (a) Sequential latency.
for (let i = 0; i < opts.warmup; i++) {
  verify("warm-up square", await settle(api.square(operand(i))), operand(i) ** 2);
}
const seq = [];
for (let i = 0; i < opts["seq-calls"]; i++) {
  const t = now();
  const r = await settle(api.square(operand(i)));
  seq.push((now() - t) * 1e3);
  verify("sequential square", r, operand(i) ** 2);
}
const seqMean = seq.reduce((a, b) => a + b, 0) / Math.max(seq.length, 1);

// (b) The 3-call chain: square(square(add(1, 2))) = 81. A few unmeasured reps first.
for (let i = 0; i < 20; i++) {
  verify("chain warm-up", await settle(pipelinedChain()), 81);
  verify("chain warm-up", await settle(awaitedChain()), 81);
}
const piped = [];
for (let i = 0; i < opts["chain-reps"]; i++) {
  const t = now();
  const r = await settle(pipelinedChain());
  piped.push((now() - t) * 1e3);
  verify("pipelined chain", r, 81);
}
const awaited = [];
for (let i = 0; i < opts["chain-reps"]; i++) {
  const t = now();
  const r = await settle(awaitedChain());
  awaited.push((now() - t) * 1e3);
  verify("awaited chain", r, 81);
}

// (c) N concurrent calls, all issued before any is awaited. One unmeasured rep first.
const burst = [];
for (let rep = 0; rep <= opts["concurrent-reps"]; rep++) {
  const t = now();
  const promises = [];
  for (let i = 0; i < opts.concurrent; i++) promises.push(settle(api.square(operand(i))));
  const results = await Promise.all(promises);
  const elapsed = now() - t;
  results.forEach((r, i) => verify("concurrent square", r, operand(i) ** 2));
  if (rep > 0) burst.push(elapsed);
}

// (d) Throughput: `inflight` workers, each looping call -> await, for `duration` seconds.
let completed = 0;
const t0 = now();
const deadline = t0 + opts.duration * 1e3;
async function worker(w) {
  for (let i = w; now() < deadline; i += opts.inflight) {
    const x = operand(i);
    if (verify("throughput square", await settle(api.square(x)), x * x)) completed++;
  }
}
await Promise.all(Array.from({ length: opts.inflight }, (_, w) => worker(w)));
const elapsedS = (now() - t0) / 1e3;

api[Symbol.dispose]();

console.log(
  JSON.stringify({
    client: "node",
    label: opts.label,
    url: opts.url,
    nodelay: true,
    seq_calls: opts["seq-calls"],
    seq_p50_us: round(quantile(seq, 0.5), 1),
    seq_p99_us: round(quantile(seq, 0.99), 1),
    seq_mean_us: round(seqMean, 1),
    chain_reps: opts["chain-reps"],
    chain3_pipelined_us: round(quantile(piped, 0.5), 1),
    chain3_awaited_us: round(quantile(awaited, 0.5), 1),
    concurrent: opts.concurrent,
    concurrent_ms: round(quantile(burst, 0.5), 2),
    inflight: opts.inflight,
    throughput_cps: round(completed / elapsedS, 0),
    throughput_calls: completed,
    errors,
    wrong,
    error_samples: samples,
  }),
);
if (errors + wrong > 0) {
  console.error(`node_client: ${errors + wrong} calls failed or returned wrong results`);
  process.exitCode = 1;
}
// The socket may linger briefly after dispose; don't wait for it.
process.exit(process.exitCode ?? 0);
