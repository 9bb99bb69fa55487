// The fairness bench's client: deploys a neighbour and N spinning tenants on a running
// `functions serve`, keeps every spinner busy (one request in flight each, sent again as soon as
// the last one ended), and measures the neighbour's latency with one request at a time.
// Prints one JSON line: the neighbour's percentiles without spinners and with them, and what
// the spinners got back. Only Node built-ins (Node ≥ 20).
//
//   node bench/fairness/client.mjs --url http://127.0.0.1:8787 --token TOKEN \
//     [--spinners 4] [--cpu-ms 1000] [--duration 20] [--idle-duration 3]

import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
  options: {
    url: { type: "string" },
    token: { type: "string" },
    spinners: { type: "string", default: "4" },
    "cpu-ms": { type: "string", default: "1000" },
    duration: { type: "string", default: "20" },
    "idle-duration": { type: "string", default: "3" },
  },
});
if (!opt.url || !opt.token) {
  console.error("usage: client.mjs --url URL --token TOKEN [--spinners N] [--cpu-ms MS] [--duration S]");
  process.exit(2);
}
const SPINNERS = Number(opt.spinners);
const CPU_MS = Number(opt["cpu-ms"]);
const DURATION_MS = Number(opt.duration) * 1000;
const IDLE_MS = Number(opt["idle-duration"]) * 1000;

const NEIGHBOUR = `export default { fetch() { return new Response("ok"); } };`;
const SPINNER = `export default { fetch() { for (;;) {} } };`;

async function deploy(id, src, limits) {
  const bundle = { mainModule: "index.js", modules: { "index.js": src } };
  if (limits) bundle.limits = limits;
  const res = await fetch(`${opt.url}/_admin/functions/${id}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${opt.token}`, "content-type": "application/json" },
    body: JSON.stringify(bundle),
  });
  if (!res.ok) throw new Error(`deploy ${id}: ${res.status} ${await res.text()}`);
}

/** One neighbour request; its latency in ms. */
async function neighbourOnce() {
  const t0 = performance.now();
  const res = await fetch(`${opt.url}/neighbour/`);
  const body = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200 || body !== "ok") throw new Error(`neighbour answered ${res.status} ${body}`);
  return ms;
}

/** Neighbour requests one after the other for `ms`: their latencies, and the failures. */
async function measure(ms) {
  const out = [];
  const errors = {};
  const end = performance.now() + ms;
  while (performance.now() < end) {
    try {
      out.push(await neighbourOnce());
    } catch (e) {
      const key = `${e.message}${e.cause ? ` (${e.cause.code ?? e.cause.message})` : ""}`;
      errors[key] = (errors[key] ?? 0) + 1;
    }
  }
  return { ...summary(out), errors };
}

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)] * 100) / 100;
}

function summary(lat) {
  const s = [...lat].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: pct(s, 100) };
}

await deploy("neighbour", NEIGHBOUR);
for (let i = 0; i < SPINNERS; i++) await deploy(`spinner-${i}`, SPINNER, { cpuMs: CPU_MS });
for (let i = 0; i < 20; i++) await neighbourOnce(); // warm: the isolate is loaded

const idle = await measure(IDLE_MS);

let stop = false;
const statuses = {};
const spinnerMs = [];
async function spin(i) {
  while (!stop) {
    const t0 = performance.now();
    let status;
    try {
      const res = await fetch(`${opt.url}/spinner-${i}/`);
      await res.arrayBuffer();
      status = res.status;
    } catch (e) {
      status = `error: ${e.message}`;
    }
    spinnerMs.push(performance.now() - t0);
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
}
const loops = Array.from({ length: SPINNERS }, (_, i) => spin(i));
// Let every spinner get going before measuring.
await new Promise((ok) => setTimeout(ok, Math.min(2000, CPU_MS)));
const busy = await measure(DURATION_MS);
stop = true;
await Promise.all(loops);

console.log(
  JSON.stringify({
    spinners: SPINNERS,
    cpu_ms: CPU_MS,
    neighbour_idle_ms: idle,
    neighbour_with_spinners_ms: busy,
    spinner_statuses: statuses,
    spinner_request_ms: summary(spinnerMs),
  }),
);
