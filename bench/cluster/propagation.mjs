// Deploy-to-every-node time: deploys a new version of one function through the first node
// ROUNDS times and polls every node (each every 2 ms) until all of them serve it, timed from
// the deploy's answer (the version is committed) to the last node serving it. Prints one
// JSON line: {samples_ms: [...], p50_ms, p99_ms, max_ms}.
//
//   node propagation.mjs TOKEN NODE_URL...
const [token, ...nodes] = process.argv.slice(2);
const rounds = Number(process.env.ROUNDS ?? 30);
const code = (label) => ({
  mainModule: "index.js",
  modules: {
    "index.js": `export default { fetch() { return new Response(${JSON.stringify(label)}) } }`,
  },
});

async function deploy(label) {
  const r = await fetch(`${nodes[0]}/_admin/functions/prop`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(code(label)),
  });
  if (r.status !== 200) throw new Error(`deploy ${label}: ${r.status} ${await r.text()}`);
}

async function serves(node, label) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await fetch(`${node}/prop/`).catch(() => null);
    if (r && r.status === 200 && (await r.text()) === label) return;
    if (Date.now() > deadline) throw new Error(`${node} never served ${label}`);
    await new Promise((res) => setTimeout(res, 2));
  }
}

await deploy("warm-up");
await Promise.all(nodes.map((n) => serves(n, "warm-up")));
const samples = [];
for (let i = 0; i < rounds; i++) {
  const label = `v${i}-${Math.random()}`;
  await deploy(label);
  const t0 = performance.now();
  await Promise.all(nodes.map((n) => serves(n, label)));
  samples.push(performance.now() - t0);
}
samples.sort((a, b) => a - b);
const q = (p) => samples[Math.min(samples.length - 1, Math.ceil(p * samples.length) - 1)];
const r = (x) => Math.round(x * 10) / 10;
console.log(JSON.stringify({
  samples_ms: samples.map(r),
  p50_ms: r(q(0.5)),
  p99_ms: r(q(0.99)),
  max_ms: r(samples[samples.length - 1]),
}));
