// The attack suite: a real `functions serve`, driven the way a hostile caller or a hostile
// function would, with the official `capnweb` client. Each section is one family of attacks
// from the containment issues; every case asserts the attack is refused or contained, and that
// a neighbour keeps answering.
//
//   cargo build -p server --bin functions && node --test adversarial.test.mjs

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { newHttpBatchRpcSession } from "capnweb";
import { bundle, startServer } from "./lib/serve.mjs";

const opts = { timeout: 60_000 };

let server;

before(async () => {
  // The big-message fixtures need more than the default maxima (an operator may raise them).
  server = await startServer({ args: ["--max-cpu-ms", "60000", "--max-memory-mb", "1024"] });
});

after(async () => {
  await server?.stop();
});

// ---------------------------------------------------------------------------------------------
// What RPC reaches: event handlers are events with the function's real env, never methods
// called with a caller's arguments; a plain-object default export has no RPC methods; a service
// binding reaches only the entrypoint it declares.

describe("what RPC reaches", () => {
  const ROLE_SRC = `
    export default {
      fetch(req, env) { return new Response("role=" + env.ROLE); },
      secret() { return "leaked"; },
      scheduled() { return "ran"; },
    };
  `;

  test("a forged env over /_rpc never reaches the fetch handler", opts, async (t) => {
    await server.deploy("role", bundle(ROLE_SRC, { env: { ROLE: "user" } }));
    const { api } = await server.openRpc(t, "role");
    let text;
    try {
      const res = await api.fetch("http://x/", { ROLE: "admin" });
      text = await res.text();
    } catch (e) {
      text = `refused: ${e.name}: ${e.message}`;
    }
    assert.ok(!text.includes("admin"), `the caller's env reached the handler: ${text}`);
    if (!text.startsWith("refused")) assert.equal(text, "role=user", "the function's real env");
  });

  test("a fetch over /_rpc with a Request is an HTTP event with the real env", opts, async (t) => {
    await server.deploy("role2", bundle(ROLE_SRC, { env: { ROLE: "user" } }));
    const { api } = await server.openRpc(t, "role2");
    const res = await api.fetch(new Request("http://x/path"));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "role=user");
  });

  test("own properties of a plain default export are not RPC methods", opts, async (t) => {
    await server.deploy("role3", bundle(ROLE_SRC, { env: { ROLE: "user" } }));
    const { api } = await server.openRpc(t, "role3");
    await assert.rejects(async () => await api.secret(), (e) => e.name === "TypeError");
    await assert.rejects(async () => await api.scheduled(), (e) => e.name === "TypeError");
  });

  test("event handlers of a WorkerEntrypoint are not RPC methods", opts, async (t) => {
    const src = `
      import { WorkerEntrypoint } from "cloudflare:workers";
      export default class extends WorkerEntrypoint {
        hello(name) { return "hello " + name; }
        scheduled() { return "ran"; }
        queue() { return "ran"; }
        alarm() { return "ran"; }
        webSocketMessage() { return "ran"; }
        fetch() { return new Response("env=" + this.env.ROLE); }
      }
    `;
    await server.deploy("entry", bundle(src, { env: { ROLE: "user" } }));
    const { api } = await server.openRpc(t, "entry");
    assert.equal(await api.hello("ann"), "hello ann");
    for (const m of ["scheduled", "queue", "alarm", "webSocketMessage"]) {
      await assert.rejects(async () => await api[m](), (e) => e.name === "TypeError", m);
    }
    const res = await api.fetch("http://x/", { ROLE: "admin" });
    assert.equal(await res.text(), "env=user");
  });

  test("getEntrypoint with a name the binding does not declare throws TypeError", opts, async (t) => {
    const target = `
      import { WorkerEntrypoint } from "cloudflare:workers";
      export class Other extends WorkerEntrypoint { secret() { return "other-secret"; } }
      export class Admin extends WorkerEntrypoint { who() { return "admin"; } }
      export default class extends WorkerEntrypoint { who() { return "default"; } }
    `;
    const caller = `
      import { RpcTarget } from "cloudflare:workers";
      async function attempt(f) {
        try { return "reached " + (await f()); } catch (e) { return e.name + ": " + e.message; }
      }
      class Api extends RpcTarget {
        constructor(ctx, env) { super(); this.env = env; }
        plainOther() { return attempt(() => this.env.PLAIN.getEntrypoint("Other").secret()); }
        plainDefault() { return attempt(() => this.env.PLAIN.getEntrypoint().who()); }
        adminOther() { return attempt(() => this.env.ADMIN.getEntrypoint("Other").secret()); }
        adminAdmin() { return attempt(() => this.env.ADMIN.getEntrypoint("Admin").who()); }
        adminDirect() { return attempt(() => this.env.ADMIN.who()); }
      }
      export default { fetch() { return new Response("caller"); }, rpc: Api };
    `;
    await server.deploy("ep-target", bundle(target));
    await server.deploy(
      "ep-caller",
      bundle(caller, {
        bindings: {
          PLAIN: { type: "service", service: "ep-target" },
          ADMIN: { type: "service", service: "ep-target", entrypoint: "Admin" },
        },
      }),
    );
    const { api } = await server.openRpc(t, "ep-caller");
    assert.match(await api.plainOther(), /^TypeError/);
    assert.equal(await api.plainDefault(), "reached default");
    assert.match(await api.adminOther(), /^TypeError/);
    assert.equal(await api.adminAdmin(), "reached admin");
    assert.equal(await api.adminDirect(), "reached admin");
  });
});

// ---------------------------------------------------------------------------------------------
// Inherited limits: children loaded through env.LOADER never exceed their parent.
//
// A child (code a function loads with env.LOADER.get or .load) runs with at most its parent's
// CPU and memory limits (asking for more is silently clamped), a deploy cannot declare limits
// above `serve --max-cpu-ms` / `--max-memory-mb` (400), and a parent's children stop with it:
// a redeploy, rollback or delete evicts them, and calls through old stubs fail with an
// "isolate evicted" error (IsolateEvictedError).

describe("inherited limits", () => {
  let srv; // this section's own server: a child that spins for good must not take the others'.

  before(async () => {
    srv = await startServer({ args: [] });
  });

  after(async () => {
    await srv?.stop();
  });

  // Each request loads its own child (`spin-<n>`) that declares cpuMs 1e9 and spins in fetch.
  const SPIN_PARENT = `
    const CHILD = "export default { fetch() { for (;;) {} } };";
    export default {
      async fetch(req, env) {
        const n = new URL(req.url).searchParams.get("n");
        const child = env.LOADER.get("spin-" + n, () => ({
          mainModule: "child.js",
          modules: { "child.js": CHILD },
          limits: { cpuMs: 1e9, memoryMb: 4096 },
        }));
        return await child.fetch(req);
      },
    };
  `;

  const NEIGHBOUR = `export default { fetch() { return new Response("neighbour ok"); } };`;

  async function askNeighbour(name) {
    const res = await fetch(`${srv.base}/limits-neighbour/`, { signal: AbortSignal.timeout(30_000) });
    assert.equal(res.status, 200, `${name}: neighbour status`);
    assert.equal(await res.text(), "neighbour ok", `${name}: neighbour body`);
  }

  /** Resolves once the server has used `ms` more CPU than `from` (the spinning has begun). */
  async function cpuRisesBy(from, ms, deadlineMs = 20_000) {
    const end = Date.now() + deadlineMs;
    while (srv.cpuMs() - from < ms) {
      if (Date.now() > end) throw new Error(`server CPU did not rise by ${ms} ms`);
      await new Promise((r) => setImmediate(r));
    }
  }

  test(
    "four children declaring cpuMs 1e9 end within the parent's limit while a neighbour answers",
    { timeout: 120_000 },
    async () => {
      await srv.deploy("limits-neighbour", bundle(NEIGHBOUR));
      await askNeighbour("warm-up");
      await srv.deploy(
        "spin-parent",
        bundle(SPIN_PARENT, { bindings: { LOADER: { type: "loader" } }, limits: { cpuMs: 1500 } }),
      );
      const cpu0 = srv.cpuMs();
      const started = Date.now();
      const settled = [false, false, false, false];
      const calls = settled.map((_, n) =>
        fetch(`${srv.base}/spin-parent/?n=${n}`, { signal: AbortSignal.timeout(30_000) })
          .then(
            async (res) => ({ status: res.status, body: await res.text() }),
            (e) => ({ status: 0, body: `no answer: ${e}` }),
          )
          .finally(() => {
            settled[n] = true;
          }),
      );
      // Wait until the children are spinning, then ask the neighbour while they are.
      await cpuRisesBy(cpu0, 300);
      assert.ok(settled.some((s) => !s), "the children were still running when the neighbour was asked");
      await askNeighbour("during");
      const results = await Promise.all(calls);
      for (const [n, r] of results.entries()) {
        assert.ok(r.status >= 500 && r.status < 600, `child ${n}: ${r.status} ${r.body}`);
        // The child ran under its parent's 1500 ms, not the 1e9 ms it asked for.
        assert.match(r.body, /CPU time limit of 1500 ms/, `child ${n}: ${r.body}`);
      }
      await askNeighbour("after");
    },
  );

  const KEEPER = `
    import { RpcTarget } from "cloudflare:workers";
    let count = 0;
    class Keeper extends RpcTarget {
      constructor(ctx, env) { super(); this.env = env; }
      version() { return this.env.VERSION; }
      bump() { return ++count; }
    }
    export default { rpc: Keeper };
  `;
  const KEEPER_PARENT = `
    import { RpcTarget } from "cloudflare:workers";
    const code = (env) => ({
      mainModule: "keeper.js",
      modules: { "keeper.js": ${JSON.stringify(KEEPER)} },
      env: { VERSION: env.VERSION },
    });
    class Api extends RpcTarget {
      constructor(ctx, env) { super(); this.env = env; }
      keeper() { return this.env.LOADER.get("keeper", () => code(this.env)).getRpcTarget(); }
      oneShot() { return this.env.LOADER.load(code(this.env)).getRpcTarget(); }
    }
    export default { fetch() { return new Response("parent"); }, rpc: Api };
  `;
  const keeperBundle = (version) =>
    bundle(KEEPER_PARENT, { env: { VERSION: version }, bindings: { LOADER: { type: "loader" } } });
  const evicted = (e) => /evicted/i.test(String(e?.message));
  // An RpcPromise is callable, which assert.rejects would take for a function to call.
  const settle = (rpcPromise) => (async () => await rpcPromise)();

  test("a redeployed parent's old children stop; new calls through old stubs are refused", opts, async (t) => {
    await srv.deploy("keeper-parent", keeperBundle("1"));
    const { api } = await srv.openRpc(t, "keeper-parent");
    const keeper = api.keeper();
    const once = api.oneShot();
    assert.equal(await keeper.version(), "1");
    assert.equal(await keeper.bump(), 1);
    assert.equal(await once.version(), "1");

    await srv.deploy("keeper-parent", keeperBundle("2"));

    // The version-1 children, with their version-1 env and state, are gone.
    await assert.rejects(settle(keeper.version()), evicted, "get() child of version 1");
    await assert.rejects(settle(once.version()), evicted, "load() child of version 1");
    // The version-1 parent (still held by this session) cannot load children any more.
    await assert.rejects(settle(api.keeper().version()), evicted, "a new get() from version 1");
    // Version 2 gets a fresh child with its own env and state.
    const { api: api2 } = await srv.openRpc(t, "keeper-parent");
    const keeper2 = api2.keeper();
    assert.equal(await keeper2.version(), "2");
    assert.equal(await keeper2.bump(), 1);
  });

  test("a deleted parent's children stop", opts, async (t) => {
    await srv.deploy("keeper-deleted", keeperBundle("1"));
    const { api } = await srv.openRpc(t, "keeper-deleted");
    const keeper = api.keeper();
    assert.equal(await keeper.version(), "1");
    const res = await srv.admin("DELETE", "/_admin/functions/keeper-deleted");
    assert.equal(res.status, 200);
    await assert.rejects(settle(keeper.version()), evicted);
    await assert.rejects(settle(api.oneShot().version()), evicted);
  });

  test("a rolled-back parent's children stop", opts, async (t) => {
    await srv.deploy("keeper-rollback", keeperBundle("1"));
    await srv.deploy("keeper-rollback", keeperBundle("2"));
    const { api } = await srv.openRpc(t, "keeper-rollback");
    const keeper = api.keeper();
    assert.equal(await keeper.version(), "2");
    const res = await srv.admin("POST", "/_admin/functions/keeper-rollback/rollback");
    assert.equal(res.status, 200);
    await assert.rejects(settle(keeper.version()), evicted);
    const { api: api1 } = await srv.openRpc(t, "keeper-rollback");
    assert.equal(await api1.keeper().version(), "1");
  });

  async function deployStatus(server, id, limits) {
    const res = await server.admin("PUT", `/_admin/functions/${id}`, bundle(NEIGHBOUR, { limits }));
    return { status: res.status, body: await res.json() };
  }

  test("deploy-time limits above the server's maximum are refused with 400", opts, async () => {
    let r = await deployStatus(srv, "too-much-cpu", { cpuMs: 30_001 });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.name, "ManifestError");
    assert.match(r.body.error.message, /limits\.cpuMs/);
    assert.match(r.body.error.message, /30000/);
    r = await deployStatus(srv, "too-much-memory", { memoryMb: 513 });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, /limits\.memoryMb/);
    assert.match(r.body.error.message, /512/);
    r = await deployStatus(srv, "at-the-max", { cpuMs: 30_000, memoryMb: 512 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });

  test("serve --max-cpu-ms and --max-memory-mb set the maximum and cap the defaults", opts, async () => {
    const small = await startServer({ args: ["--max-cpu-ms", "250", "--max-memory-mb", "32"] });
    try {
      let r = await deployStatus(small, "over", { cpuMs: 251 });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error.message, /limits\.cpuMs.*250/);
      r = await deployStatus(small, "over-mem", { memoryMb: 33 });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      // No limits declared: the default (1 s) is capped to the maximum.
      await small.deploy("spin", bundle(`export default { fetch() { for (;;) {} } };`));
      const res = await fetch(`${small.base}/spin/`, { signal: AbortSignal.timeout(30_000) });
      assert.ok(res.status >= 500, `${res.status}`);
      assert.match(await res.text(), /CPU time limit of 250 ms/);
    } finally {
      await small.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Bounded background work: timers and waitUntil end with the invocation.

describe("bounded background work", () => {
  // waitUntil work may run this long after the response (the default is 30 s).
  const WAIT_UNTIL_MS = 2000;
  let bg;

  before(async () => {
    bg = await startServer({ args: ["--wait-until-ms", String(WAIT_UNTIL_MS)] });
    await bg.deploy("bg-neighbour", bundle(`export default { fetch() { return new Response("ok"); } };`));
  });

  after(async () => {
    await bg?.stop();
  });

  // 20 intervals of 900 ms busy work each: before the fix every run got a fresh 1 s of CPU
  // and a core stayed at 100 % for as long as the server ran.
  const ARM = `
    function busy(ms) { const t = Date.now(); while (Date.now() - t < ms) {} }
    let runs = 0;
    export function arm() {
      for (let i = 0; i < 20; i++) setInterval(() => { runs++; busy(900); }, 1);
    }
    export function runsSoFar() { return runs; }
  `;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** Waits until a one-second window shows the server idle (under 150 ms of CPU), at most `withinMs`. */
  async function untilIdle(withinMs) {
    const end = Date.now() + withinMs;
    let used;
    do {
      const before = bg.cpuMs();
      await sleep(1000);
      used = bg.cpuMs() - before;
      if (used < 150) return used;
    } while (Date.now() < end);
    assert.fail(`the server is still busy: ${used} ms of CPU in the last second`);
  }

  async function neighbourAnswers() {
    const res = await fetch(`${bg.base}/bg-neighbour/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ok");
  }

  test("timers a fetch armed stop when it answers", opts, async () => {
    const src = `${ARM}
      export default { fetch() { arm(); return new Response("armed"); } };`;
    await bg.deploy("bg-timers", bundle(src, { limits: { cpuMs: 30000 } }));
    const res = await fetch(`${bg.base}/bg-timers/`);
    assert.equal(await res.text(), "armed");
    await neighbourAnswers();
    await untilIdle(WAIT_UNTIL_MS + 10_000);
    await neighbourAnswers();
  });

  test("ctx.waitUntil keeps background work alive only until the bound", opts, async () => {
    const src = `${ARM}
      export default {
        fetch(req, env, ctx) {
          if (new URL(req.url).pathname === "/runs") return new Response(String(runsSoFar()));
          arm();
          ctx.waitUntil(new Promise(() => {}));
          return new Response("armed");
        },
      };`;
    await bg.deploy("bg-wait", bundle(src, { limits: { cpuMs: 30000 } }));
    const res = await fetch(`${bg.base}/bg-wait/`);
    assert.equal(await res.text(), "armed");
    await neighbourAnswers();
    await untilIdle(WAIT_UNTIL_MS + 10_000);
    // The intervals did run after the response, while waitUntil kept them.
    const runs = Number(await (await fetch(`${bg.base}/bg-wait/runs`)).text());
    assert.ok(runs > 0, `the intervals never ran: ${runs}`);
    await neighbourAnswers();
  });

  test("timers a /_rpc call armed stop when the session ends", opts, async (t) => {
    const src = `${ARM}
      import { RpcTarget } from "cloudflare:workers";
      class Api extends RpcTarget { arm() { arm(); return "armed"; } runs() { return runsSoFar(); } }
      export default { fetch() { return new Response("rpc only"); }, rpc: Api };`;
    await bg.deploy("bg-session", bundle(src, { limits: { cpuMs: 30000 } }));
    const { api, ws } = await bg.openRpc(t, "bg-session");
    assert.equal(await api.arm(), "armed");
    // While the session lives, so does the work its call started.
    const end = Date.now() + 10_000;
    while ((await api.runs()) < 1) {
      assert.ok(Date.now() < end, "the intervals never ran while the session was open");
      await sleep(50);
    }
    api[Symbol.dispose]();
    ws.close();
    await untilIdle(10_000);
    await neighbourAnswers();
  });
});

// ---------------------------------------------------------------------------------------------
// Fair threads: a spinning tenant does not hold up its neighbours.

describe("fair threads", () => {
  // Each spinner notes in KV that it started, then spins until its CPU limit ends it. The
  // neighbour answers with how many have started, so every one of its answers is also the
  // event the test waits for.
  const SPINNER = `
    export default {
      async fetch(req, env) {
        await env.KV.put("started-" + new URL(req.url).pathname.slice(1), "1");
        for (;;) {}
      },
    };
  `;
  const NEIGHBOUR = `
    export default {
      async fetch(req, env) {
        const { keys } = await env.KV.list({ prefix: "started-" });
        return new Response(String(keys.length));
      },
    };
  `;
  const KV = { KV: { type: "kv", namespace: "fair-threads" } };

  test("four tenants spinning at cpuMs=1000: a neighbour keeps answering, every spinner gets a 5xx", opts, async () => {
    await server.deploy("fair-neighbour", bundle(NEIGHBOUR, { bindings: KV }));
    for (let i = 0; i < 4; i++) {
      await server.deploy(`fair-spin-${i}`, bundle(SPINNER, { bindings: KV, limits: { cpuMs: 1000 } }));
    }
    const neighbour = async () => {
      const res = await fetch(`${server.base}/fair-neighbour/`);
      assert.equal(res.status, 200);
      return Number(await res.text());
    };
    assert.equal(await neighbour(), 0);

    const spinners = [0, 1, 2, 3].map((i) => {
      const s = { done: false };
      s.status = fetch(`${server.base}/fair-spin-${i}/${i}`).then(async (res) => {
        await res.arrayBuffer();
        s.done = true;
        return res.status;
      });
      return s;
    });
    // Wait (through the neighbour) until all four spin at once.
    const deadline = Date.now() + 30_000;
    let started = 0;
    while (started < 4) {
      assert.ok(Date.now() < deadline, `only ${started} spinners started`);
      started = await neighbour();
    }
    // While all four spin, the neighbour keeps answering: none of them has ended yet.
    for (let i = 0; i < 5; i++) {
      assert.equal(await neighbour(), 4);
      assert.deepEqual(
        spinners.map((s) => s.done),
        [false, false, false, false],
        "the neighbour answered only after a spinner had ended",
      );
    }
    for (const s of spinners) {
      const status = await s.status;
      assert.ok(status >= 500 && status < 600, `a spinner got ${status}`);
    }
    assert.equal(await neighbour(), 4);
  });
});

// ---------------------------------------------------------------------------------------------
// capnweb sessions: budgets, caps and how a session says no.
//
// Thresholds come from the documented defaults of the session limits table (README "Limits and
// their defaults"): 32 Mi UTF-16 code units per message, 64 MiB buffered per session, 256
// sessions per client address.

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; resolves to the last value. */
async function poll(fn, { timeoutMs = 10_000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

describe("capnweb sessions", () => {
  const MiB = 2 ** 20;
  const MAX_MESSAGE_UNITS = 32 * MiB;
  const SESSION_BUFFER_BYTES = 64 * MiB;
  const SESSIONS_PER_ADDRESS = 256;
  const slow = { timeout: 300_000 };

  const ECHO_SRC = `
    import { RpcTarget } from "cloudflare:workers";
    class Api extends RpcTarget {
      echo(v) { return v; }
      square(i) { return i * i; }
      codeUnits(s) { return Array.from({ length: s.length }, (_, i) => s.charCodeAt(i)); }
      truncated() { return "caf\\u00e9 \\ud83d"; }
      concat(a, b) { return a + b; }
    }
    export default { fetch() { return new Response("echo"); }, rpc: Api };
  `;

  before(async () => {
    await server.deploy("big-echo", bundle(ECHO_SRC, { limits: { memoryMb: 1024, cpuMs: 60_000 } }));
    await server.deploy("neighbour", bundle(ECHO_SRC));
  });

  /** kB fields of /proc/PID/status, as bytes. */
  function procStatus(pid) {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)[1]) * 1024;
    return { rss: field("VmRSS"), hwm: field("VmHWM") };
  }

  /** A raw WebSocket on /_rpc/<id> (from `localAddress` if given) that records what it gets. */
  async function rawRpc(id, { localAddress } = {}) {
    const ws = new WebSocket(`${server.wsBase}/_rpc/${id}`, { localAddress, maxPayload: 256 * MiB });
    const got = { msgs: [], closed: null };
    ws.on("message", (data) => got.msgs.push(JSON.parse(String(data))));
    const closed = new Promise((resolve) =>
      ws.on("close", (code, reason) => {
        got.closed = { code, reason: String(reason) };
        resolve(got.closed);
      }),
    );
    ws.on("error", () => {});
    await Promise.race([once(ws, "open"), closed]);
    return { ws, got, closed };
  }

  function sendAndWait(ws, text) {
    return new Promise((resolve) => ws.send(text, () => resolve()));
  }

  /** Calls square on `api` in a loop until `stop()`; resolves to the number of calls, all checked. */
  async function keepCalling(api, stop) {
    let n = 0;
    while (!stop()) {
      const i = n % 100;
      assert.equal(await api.square(i), i * i, "the neighbour must keep answering");
      n++;
    }
    return n;
  }

  test("strings with lone surrogates cross /_rpc into QuickJS and back unchanged, and the session lives", slow, async (t) => {
    const { api } = await server.openRpc(t, "neighbour");
    for (const s of ["a\ud800b", "\udc00", "\udbff\ud800", "😀\ud83d"]) {
      assert.ok((await api.echo(s)) === s, `echo of ${JSON.stringify(s)}`);
      const units = Array.from({ length: s.length }, (_, i) => s.charCodeAt(i));
      assert.deepStrictEqual(await api.codeUnits(s), units, "the function sees every code unit");
    }
    assert.equal(await api.truncated(), "caf\u00e9 \ud83d", "a JS string the function made");
    assert.equal(await api.concat("\ud83d", "\ude00"), "😀", "halves join into a pair in JS");
    assert.deepStrictEqual(await api.echo({ k: ["\udfff"] }), { k: ["\udfff"] });
    assert.equal(await api.square(4), 16);
    const batch = newHttpBatchRpcSession(`${server.base}/_rpc/neighbour`);
    assert.equal(await batch.echo("x\ud800"), "x\ud800");
  });

  test("echo of 20 MiB and 31 MiB strings round-trips through /_rpc over websocket", slow, async (t) => {
    const { api } = await server.openRpc(t, "big-echo");
    for (const units of [20 * MiB, 31 * MiB]) {
      const s = "x".repeat(units);
      const got = await api.echo(s);
      assert.ok(got === s, `the ${units / MiB} MiB echo differs`);
    }
    assert.equal(await api.square(5), 25);
  });

  test("a 40 MiB message through /_rpc rejects the call with the size error; other sessions keep working", slow, async (t) => {
    const { api: other } = await server.openRpc(t, "neighbour");
    assert.equal(await other.square(3), 9);
    const { api } = await server.openRpc(t, "big-echo");
    await assert.rejects(Promise.resolve(api.echo("x".repeat(40 * MiB))), (e) => {
      assert.equal(e.name, "TypeError", `${e.name}: ${e.message}`);
      assert.match(e.message, new RegExp(`exceeds maximum size of ${MAX_MESSAGE_UNITS} UTF-16 code units`));
      return true;
    });
    assert.equal(await other.square(4), 16);
  });

  test("over /_rpc http batch a 20 MiB echo round-trips and a 40 MiB message rejects with the size error", slow, async () => {
    const s = "b".repeat(20 * MiB);
    const ok = newHttpBatchRpcSession(`${server.base}/_rpc/big-echo`);
    const [echoed, sq] = await Promise.all([ok.echo(s), ok.square(7)]);
    assert.ok(echoed === s, "the 20 MiB echo differs");
    assert.equal(sq, 49);
    const bad = newHttpBatchRpcSession(`${server.base}/_rpc/big-echo`);
    await assert.rejects(Promise.resolve(bad.echo("c".repeat(40 * MiB))), (e) => {
      assert.match(e.message, new RegExp(`exceeds maximum size of ${MAX_MESSAGE_UNITS} UTF-16 code units`));
      return true;
    });
  });

  for (const [name, wrap] of [
    ["an unread pipe", false],
    ["a pipe wrapped in a blob", true],
  ]) {
    test(`800 MiB fed into ${name} aborts that session within the budget; a neighbour keeps answering`, slow, async (t) => {
      const { api: neighbour } = await server.openRpc(t, "neighbour");
      assert.equal(await neighbour.square(2), 4);
      const chunk = JSON.stringify(["stream", ["pipeline", 1, ["write"], [["bytes", Buffer.alloc(8 * MiB, 7).toString("base64").replace(/=+$/, "")]]]]);
      // Warm up first: one session takes the same frames (32 MiB, under its budget) and goes
      // away, so the buffers a first 10 MB frame needs exist before RSS is measured. Measured
      // from a cold server (or one that has just given memory back), those first-use buffers
      // alone are 100-150 MiB of growth and would hide what the budget holds.
      {
        const warm = await rawRpc("neighbour");
        await sendAndWait(warm.ws, '["pipe"]');
        if (wrap) await sendAndWait(warm.ws, '["push",["blob","application/octet-stream",["readable",1]]]');
        for (let i = 0; i < 4; i++) await sendAndWait(warm.ws, chunk);
        assert.equal(await neighbour.square(3), 9);
        warm.ws.close();
        await warm.closed;
      }
      const { ws, got, closed } = await rawRpc("neighbour");
      t.after(() => ws.terminate());
      const before = procStatus(server.pid);
      try {
        writeFileSync(`/proc/${server.pid}/clear_refs`, "5"); // reset VmHWM to the current RSS
      } catch {}
      let stop = false;
      const calling = keepCalling(neighbour, () => stop);
      await sendAndWait(ws, '["pipe"]');
      if (wrap) await sendAndWait(ws, '["push",["blob","application/octet-stream",["readable",1]]]');
      let sent = 0;
      while (sent < 800 * MiB && got.closed === null) {
        await sendAndWait(ws, chunk);
        sent += 8 * MiB;
      }
      const close = await Promise.race([closed, new Promise((r) => setTimeout(() => r(null), 30_000))]);
      stop = true;
      const calls = await calling;
      const peak = procStatus(server.pid).hwm;
      const growth = peak - before.rss;
      t.diagnostic(`sent ${sent / MiB} MiB; RSS before ${(before.rss / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB; neighbour calls ${calls}`);
      assert.ok(close !== null, `the session was never closed (${sent / MiB} MiB sent)`);
      assert.equal(close.code, 3000, `close ${JSON.stringify(close)}`);
      const abort = got.msgs.find((m) => m[0] === "abort");
      assert.ok(abort, `no abort message: ${JSON.stringify(got.msgs).slice(0, 300)}`);
      assert.match(abort[1][2], /buffer/i, `the abort names the limit: ${abort[1][2]}`);
      assert.ok(
        growth <= SESSION_BUFFER_BYTES + 64 * MiB,
        `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB (budget ${SESSION_BUFFER_BYTES / MiB} MiB + 64 MiB)`,
      );
      assert.ok(calls > 0, "the neighbour made calls during the attack");
      assert.equal(await neighbour.square(9), 81);
    });
  }

  test("sessions from one address past the per-address cap are closed with 1013; another address still connects", slow, async (t) => {
    const open = [];
    t.after(() => open.forEach((s) => s.ws.terminate()));
    for (let i = 0; i < SESSIONS_PER_ADDRESS; i++) {
      const s = await rawRpc("neighbour");
      assert.equal(s.got.closed, null, `session ${i + 1} of ${SESSIONS_PER_ADDRESS} was refused: ${JSON.stringify(s.got.closed)}`);
      open.push(s);
    }
    const over = await rawRpc("neighbour");
    open.push(over);
    const close = await Promise.race([over.closed, new Promise((r) => setTimeout(() => r(null), 10_000))]);
    assert.equal(close?.code, 1013, `the session past the cap: ${JSON.stringify(close)}`);
    assert.match(close.reason, /address/i);
    // Another client address (all of 127.0.0.0/8 is loopback) is not affected.
    const other = await rawRpc("neighbour", { localAddress: "127.0.0.2" });
    open.push(other);
    const reply = once(other.ws, "message");
    other.ws.send('["push",["pipeline",0,["square"],[12]]]');
    other.ws.send('["pull",1]');
    const [data] = await reply;
    assert.deepStrictEqual(JSON.parse(String(data)), ["resolve", 1, 144]);
    // Closing one session from the capped address makes room again.
    open[0].ws.close();
    await open[0].closed;
    const again = await poll(async () => {
      const s = await rawRpc("neighbour");
      open.push(s);
      const c = await Promise.race([s.closed, new Promise((r) => setTimeout(() => r(null), 300))]);
      return c === null;
    });
    assert.ok(again, "a slot freed by a closed session is usable again");
  });

  describe("with small caps", () => {
    // A second server whose caps are small enough to reach quickly; thresholds come from these.
    const SESSIONS_PER_FUNCTION = 3;
    const IDLE_SECS = 1;
    const BUDGET_MB = 8;
    let small;

    before(async () => {
      small = await startServer({
        args: [
          "--rpc-max-sessions-per-function", String(SESSIONS_PER_FUNCTION),
          "--rpc-idle-timeout", String(IDLE_SECS),
          "--rpc-buffer-budget-mb", String(BUDGET_MB),
        ],
      });
      await small.deploy("capped", bundle(ECHO_SRC));
      await small.deploy("other", bundle(ECHO_SRC));
    });

    after(async () => {
      await small?.stop();
    });

    async function rawOn(srv, id) {
      const ws = new WebSocket(`${srv.wsBase}/_rpc/${id}`);
      const got = { msgs: [], closed: null };
      ws.on("message", (data) => got.msgs.push(JSON.parse(String(data))));
      const closed = new Promise((resolve) =>
        ws.on("close", (code, reason) => resolve((got.closed = { code, reason: String(reason) }))),
      );
      ws.on("error", () => {});
      await Promise.race([once(ws, "open"), closed]);
      return { ws, got, closed };
    }

    test("sessions past the per-function cap get 1013 over websocket and 503 with Retry-After over batch; other functions are unaffected", slow, async (t) => {
      const open = [];
      t.after(() => open.forEach((s) => s.ws.terminate()));
      for (let i = 0; i < SESSIONS_PER_FUNCTION; i++) open.push(await rawOn(small, "capped"));
      // Keep them from going idle while the test runs.
      const keepAlive = setInterval(() => open.forEach((s) => s.ws.readyState === 1 && s.ws.send('["pull",0]')), 300);
      t.after(() => clearInterval(keepAlive));
      const over = await rawOn(small, "capped");
      open.push(over);
      const close = await Promise.race([over.closed, new Promise((r) => setTimeout(() => r(null), 10_000))]);
      assert.equal(close?.code, 1013, JSON.stringify(close));
      assert.match(close.reason, /function capped/);
      const res = await fetch(`${small.base}/_rpc/capped`, { method: "POST", body: '["push",["pipeline",0,["square"],[3]]]\n["pull",1]' });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get("retry-after"), "1");
      const ok = await fetch(`${small.base}/_rpc/other`, { method: "POST", body: '["push",["pipeline",0,["square"],[3]]]\n["pull",1]' });
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), '["resolve",1,9]');
    });

    test("an idle websocket session is closed with 1001 and a reason", slow, async () => {
      const s = await rawOn(small, "other");
      const started = Date.now();
      const close = await Promise.race([s.closed, new Promise((r) => setTimeout(() => r(null), 30_000))]);
      assert.equal(close?.code, 1001, JSON.stringify(close));
      assert.match(close.reason, /idle/);
      assert.ok(Date.now() - started >= IDLE_SECS * 1000 - 100, "not before the idle timeout");
    });

    test("a session that would take the server past its shared budget is closed with 1013; others keep working", slow, async (t) => {
      const neighbour = await rawOn(small, "other");
      t.after(() => neighbour.ws.terminate());
      const s = await rawOn(small, "other");
      t.after(() => s.ws.terminate());
      const chunk = JSON.stringify(["stream", ["pipeline", 1, ["write"], [["bytes", Buffer.alloc(MiB, 1).toString("base64")]]]]);
      s.ws.send('["pipe"]');
      for (let i = 0; i < 4 * BUDGET_MB && s.got.closed === null; i++) await new Promise((r) => s.ws.send(chunk, r));
      const close = await Promise.race([s.closed, new Promise((r) => setTimeout(() => r(null), 10_000))]);
      assert.equal(close?.code, 1013, JSON.stringify(close));
      assert.match(close.reason, /budget/);
      const reply = once(neighbour.ws, "message");
      neighbour.ws.send('["push",["pipeline",0,["square"],[5]]]');
      neighbour.ws.send('["pull",1]');
      assert.deepStrictEqual(JSON.parse(String((await reply)[0])), ["resolve", 1, 25]);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Published wasm-bindgen packages (issue 12): their output uses externref (an exported
// `__wbindgen_externrefs` table JavaScript fills and wasm grows, externref parameters and
// results). Deployed as a new user would (the package's files as modules, the `.wasm` imported
// as a `WebAssembly.Module`), they run unmodified and answer as Node does
// (../wasm-packages/expected.json, recorded there by `node record.mjs`).
describe("published wasm-bindgen packages", () => {
  const fixture = new URL("../wasm-packages/", import.meta.url);
  const read = (p) => readFileSync(new URL(p, fixture), "utf8");
  const wasm = (p) => ({ wasm: readFileSync(new URL(p, fixture)).toString("base64") });
  const expected = JSON.parse(read("expected.json"));
  const limits = { cpuMs: 30_000 };

  test("@cf-wasm/photon's workerd entry deploys and answers as under Node", opts, async (t) => {
    const p = "node_modules/@cf-wasm/photon/dist";
    await server.deploy("photon", {
      mainModule: "index.js",
      modules: {
        "index.js": `
          import * as photon from "./${p}/workerd.js";
          import { calls } from "./photon.mjs";
          export default { rpc: class extends RpcTarget {
            async run() { return calls(photon, await photon.initPhoton.promise); }
          } };`,
        "photon.mjs": read("photon.mjs"),
        [`${p}/workerd.js`]: read(`${p}/workerd.js`),
        [`${p}/photon.js`]: read(`${p}/photon.js`),
        [`${p}/lib/photon_rs.js`]: read(`${p}/lib/photon_rs.js`),
        [`${p}/lib/photon_rs_bg.wasm`]: wasm(`${p}/lib/photon_rs_bg.wasm`),
        // What a bundler resolves photon.js's bare import to (no extension: typed explicitly).
        "@cf-wasm/internals/polyfills/image-data": { js: read("node_modules/@cf-wasm/internals/dist/polyfills/image-data.js") },
      },
      limits,
    });
    const { api } = await server.openRpc(t, "photon");
    assert.deepStrictEqual(await api.run(), expected.photon);
  });

  test("@jsquash/resize's magic-kernel codec deploys and answers as under Node", opts, async (t) => {
    const p = "node_modules/@jsquash/resize";
    const modules = {
      "index.js": `
        import * as resize from "./${p}/index.js";
        import RESIZE_WASM from "./${p}/lib/resize/pkg/squoosh_resize_bg.wasm";
        import KERNEL_WASM from "./${p}/lib/magic-kernel/pkg/jsquash_magic_kernel_bg.wasm";
        import { calls } from "./resize.mjs";
        export default { rpc: class extends RpcTarget {
          async run() {
            await resize.initResize(RESIZE_WASM);
            return calls(resize, await resize.initMagicKernel(KERNEL_WASM));
          }
        } };`,
      "resize.mjs": read("resize.mjs"),
      "photon.mjs": read("photon.mjs"),
    };
    for (const js of ["index.js", "util.js", "meta.js", "lib/resize/pkg/squoosh_resize.js", "lib/hqx/pkg/squooshhqx.js", "lib/magic-kernel/pkg/jsquash_magic_kernel.js"]) {
      modules[`${p}/${js}`] = read(`${p}/${js}`);
    }
    for (const w of ["lib/resize/pkg/squoosh_resize_bg.wasm", "lib/magic-kernel/pkg/jsquash_magic_kernel_bg.wasm"]) {
      modules[`${p}/${w}`] = wasm(`${p}/${w}`);
    }
    await server.deploy("jsquash-resize", { mainModule: "index.js", modules, limits });
    const { api } = await server.openRpc(t, "jsquash-resize");
    assert.deepStrictEqual(await api.run(), expected.resize);
  });
});
