// The attack suite: a real `functions serve`, driven the way a hostile caller or a hostile
// function would, with the official `capnweb` client. Each section is one family of attacks
// from the containment issues; every case asserts the attack is refused or contained, and that
// a neighbour keeps answering.
//
//   cargo build -p server --bin functions && node --test adversarial.test.mjs

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bundle, startServer } from "./lib/serve.mjs";

const opts = { timeout: 60_000 };

let server;

before(async () => {
  server = await startServer({ args: [] });
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

// ---------------------------------------------------------------------------------------------
// capnweb sessions: budgets, caps and how a session says no.
