// End-to-end suite: the built `functions` binary serving ../../examples, driven over HTTP and
// with the official `capnweb` client (npm capnweb@0.12.0) over /_rpc/<id>.
//
//   cargo build -p server --bin functions && node --test server.test.mjs
//
// FUNCTIONS_BIN overrides the binary (default ../../target/debug/functions); the server is
// started by lib/serve.mjs, as every suite here does.

globalThis.WebSocket ??= (await import("ws")).default;

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { newHttpBatchRpcSession, RpcTarget } from "capnweb";
import { EXAMPLES, rpcOn, startServer } from "./lib/serve.mjs";

const TOKEN = "server-test-token";
const opts = { timeout: 30_000 };

let server;
let base;
let wsBase;

before(async () => {
  server = await startServer({ args: ["--deploy", EXAMPLES], token: TOKEN });
  base = server.base;
  wsBase = server.wsBase;
});

after(async () => {
  await server?.stop();
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** A ws WebSocket that records every frame it sends and receives, in order. */
class RecordingWebSocket extends WebSocket {
  constructor(url) {
    super(url);
    this.frames = [];
    this.addEventListener("message", (event) => {
      this.frames.push({ dir: "in", data: String(event.data) });
    });
  }
  send(data, ...rest) {
    this.frames.push({ dir: "out", data: String(data) });
    return super.send(data, ...rest);
  }
}

/** A WebSocket capnweb session on /_rpc/<id>; closed when the test ends. */
async function openRpc(t, id) {
  const ws = new RecordingWebSocket(`${wsBase}/_rpc/${id}`);
  return { api: await rpcOn(t, ws), ws };
}

function admin(method, path, body, token = TOKEN) {
  return fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

function rpcHttp(id, method, args, path = "/") {
  return fetch(`${base}/${id}${path}`, {
    method: "POST",
    headers: { "x-rpc-method": method },
    body: JSON.stringify(args),
  });
}

function bundle(src, bindings = {}) {
  return { mainModule: "index.js", modules: { "index.js": src }, bindings };
}

// ---------------------------------------------------------------------------------------------
// The seed's scenarios over /_rpc/<id> with the official client

describe("seed scenarios over /_rpc", () => {
  test("scenario_1_rpc_target_in_dynamic_worker over websocket and http batch", opts, async (t) => {
    const { api } = await openRpc(t, "math");
    assert.equal(await api.add(2, 3), 5);
    assert.equal(await api.multiply(4, 5), 20);

    const realFetch = globalThis.fetch;
    let posts = 0;
    globalThis.fetch = (input, init) => {
      posts++;
      return realFetch(input, init);
    };
    try {
      const batch = newHttpBatchRpcSession(`${base}/_rpc/math`);
      const [sum, product] = await Promise.all([batch.add(2, 3), batch.multiply(4, 5)]);
      assert.deepStrictEqual([sum, product], [5, 20]);
    } finally {
      globalThis.fetch = realFetch;
    }
    assert.equal(posts, 1, "one HTTP batch round trip");
  });

  test("scenario_2_promise_pipelining is one flight", opts, async (t) => {
    const { api, ws } = await openRpc(t, "pipeline");
    const fetched = api.fetchData("user-123");
    const transformed = api.transform(fetched);
    const saved = await api.save(transformed);
    assert.equal(saved.saved, true);
    assert.equal(saved.data.id, "user-123");
    assert.equal(saved.data.transformed, true);
    assert.equal(typeof saved.data.value, "number");
    const frames = ws.frames.slice();
    const firstIn = frames.findIndex((f) => f.dir === "in");
    assert.ok(firstIn > 0, "frames went out before the first reply");
    const before = frames.slice(0, firstIn).map((f) => JSON.parse(f.data));
    assert.equal(before.filter((m) => m[0] === "push").length, 3, "all three calls before any reply");
    assert.equal(before.filter((m) => m[0] === "pull").length, 1, "the pull before any reply");
    const laterCalls = frames
      .slice(firstIn)
      .filter((f) => f.dir === "out")
      .map((f) => JSON.parse(f.data))
      .filter((m) => m[0] === "push" || m[0] === "pull");
    assert.equal(laterCalls.length, 0, "no call after a reply");
  });

  test("scenario_3_service_binding orchestrator reaches runtime", opts, async (t) => {
    const { api } = await openRpc(t, "orchestrator");
    assert.deepStrictEqual(await api.executeWithRuntime("fn-1", { a: 1 }), {
      functionId: "fn-1",
      payload: { a: 1 },
      executedBy: "runtime",
    });
  });

  test("scenario_4_returned_rpc_stub keeps session state", opts, async (t) => {
    const { api } = await openRpc(t, "sessions");
    const session = api.createSession("ann");
    assert.equal(await session.set("k", "v"), true);
    assert.equal(await session.get("k"), "v");
    assert.match(await session.getSessionId(), /^session-ann-\d+$/);
    const other = await api.createSession("bob");
    assert.equal(await other.get("k"), undefined, "sessions do not share state");
  });

  test("scenario_5_bidirectional_callbacks arrive in order", opts, async (t) => {
    const { api } = await openRpc(t, "callbacks");
    const log = [];
    class Progress extends RpcTarget {
      onProgress(percent, message) {
        log.push(["progress", percent, message]);
        return { acknowledged: true };
      }
      onComplete(result) {
        log.push(["complete", result.processed]);
        return { acknowledged: true };
      }
    }
    const result = await api.execute(new Progress(), { items: [1, 2, 3] });
    assert.deepStrictEqual(result.processed, { items: [1, 2, 3] });
    assert.equal(typeof result.timestamp, "number");
    assert.deepStrictEqual(log, [
      ["progress", 0, "Starting..."],
      ["progress", 50, "Halfway done..."],
      ["progress", 100, "Finishing..."],
      ["complete", { items: [1, 2, 3] }],
    ]);
  });

  test("scenario_6_error_propagation keeps code and details", opts, async (t) => {
    const { api } = await openRpc(t, "errors");
    await assert.rejects(async () => await api.willFail(), (e) => e instanceof Error && e.message === "Intentional failure");
    await assert.rejects(async () => await api.willThrowCustom(), (e) => {
      assert.equal(e.message, "Custom error");
      assert.equal(e.code, "CUSTOM_ERROR");
      assert.deepStrictEqual(e.details, { reason: "testing" });
      return true;
    });
  });

  for (const n of [100, 1000]) {
    test(`scenario_7_concurrent_requests ${n} calls at once`, opts, async (t) => {
      const { api } = await openRpc(t, "concurrent");
      const results = await Promise.all(Array.from({ length: n }, (_, i) => api.compute(i)));
      results.forEach((r, i) => assert.deepStrictEqual(r, { input: i, square: i * i }));
      assert.equal(await api.callCount(), n, "one target per session saw every call");
    });
  }

  test("the seed's FunctionTarget deployed as TypeScript counts invocations and errors", opts, async (t) => {
    const { api } = await openRpc(t, "target");
    assert.equal(await api.add(2, 3), 5);
    assert.equal(await api.multiply(4, 5), 20);
    await assert.rejects(async () => await api.divide(1, 0), (e) => e instanceof RangeError && e.message === "division by zero");
    assert.deepStrictEqual(await api.getMetrics(), { invocations: 3, errors: 1 });
  });

  test("scenario_8_wasm_rpc_target processes data in wasm", opts, async (t) => {
    const { api } = await openRpc(t, "wasm");
    const data = { id: "user-123", items: [1, 2, 3], delta: -40, nested: { n: 100 } };
    // `process` first: the target initializes the wasm on its first call, as the seed says.
    assert.deepStrictEqual(JSON.parse(await api.process(data)), {
      sum: 66,
      count: 5,
      bytes: JSON.stringify(data).length,
    });
    assert.deepStrictEqual(await api.initialize(), { initialized: true });
    // Large enough that the module grows its memory.
    const many = Array.from({ length: 40_000 }, (_, i) => i + 1);
    const big = JSON.parse(await api.process(many));
    assert.equal(big.sum, 800_020_000);
    assert.equal(big.count, 40_000);
    // An error thrown through the module's `__wbindgen_throw` import reaches this client.
    await assert.rejects(
      async () => await api.process([1.5]),
      (e) => e instanceof Error && e.message === "process_data: only integers are supported",
    );
    assert.equal(await api.process([2, "3", -1]), '{"sum":1,"count":2,"bytes":10}');
  });
});

// ---------------------------------------------------------------------------------------------
// HTTP surfaces

describe("http surfaces", () => {
  test("X-RPC-Method add on math answers {result: 5}", opts, async () => {
    const res = await rpcHttp("math", "add", [2, 3]);
    assert.equal(res.status, 200);
    assert.deepStrictEqual(await res.json(), { result: 5 });
  });

  test("X-RPC-Method on errors answers 500 with name, message and code", opts, async () => {
    const res = await rpcHttp("errors", "willThrowCustom", []);
    assert.equal(res.status, 500);
    const body = await res.json();
    assert.equal(body.error.name, "Error");
    assert.equal(body.error.message, "Custom error");
    assert.equal(body.error.code, "CUSTOM_ERROR");
    assert.deepStrictEqual(body.error.details, { reason: "testing" });
  });

  test("X-RPC-Method process on wasm answers from the wasm module", opts, async () => {
    const res = await rpcHttp("wasm", "process", [[1, 2, { n: 39 }]]);
    assert.equal(res.status, 200);
    assert.deepStrictEqual(await res.json(), { result: '{"sum":42,"count":3,"bytes":14}' });
  });

  test("fetch without X-RPC-Method reaches the fetch handler", opts, async () => {
    const res = await fetch(`${base}/math/anything`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "OK");
  });

  test("admin deploy, fetch URL rewriting, redeploy and delete", opts, async () => {
    const src = (tag) =>
      `export default { fetch(req) { const u = new URL(req.url); return Response.json({ tag: ${JSON.stringify(tag)}, path: u.pathname, search: u.search }); } };`;
    let res = await admin("PUT", "/_admin/functions/echo-url", bundle(src("v1")));
    assert.equal(res.status, 200);
    const v1 = (await res.json()).version;

    res = await fetch(`${base}/echo-url/users/42?q=1`);
    assert.deepStrictEqual(await res.json(), { tag: "v1", path: "/users/42", search: "?q=1" });

    res = await admin("PUT", "/_admin/functions/echo-url", bundle(src("v2")));
    assert.equal(res.status, 200);
    assert.equal((await res.json()).version, v1 + 1);
    res = await fetch(`${base}/echo-url/x`);
    assert.deepStrictEqual(await res.json(), { tag: "v2", path: "/x", search: "" });

    res = await admin("DELETE", "/_admin/functions/echo-url");
    assert.equal(res.status, 200);
    assert.deepStrictEqual(await res.json(), { id: "echo-url", deleted: true });
    res = await fetch(`${base}/echo-url/x`);
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });

  test("bad token is 401 and bad code is 400, with nothing changed", opts, async () => {
    const good = "export default { fetch() { return new Response('still here'); } };";
    let res = await admin("PUT", "/_admin/functions/guarded", bundle(good));
    assert.equal(res.status, 200);

    res = await admin("PUT", "/_admin/functions/guarded", bundle("export default {}"), "wrong-token");
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.name, "Unauthorized");
    res = await admin("DELETE", "/_admin/functions/guarded", undefined, "wrong-token");
    assert.equal(res.status, 401);
    await res.arrayBuffer();

    res = await admin("PUT", "/_admin/functions/guarded", bundle("export default { fetch( {"));
    assert.equal(res.status, 400);
    const err = (await res.json()).error;
    assert.equal(err.name, "BuildError", "a syntax error is refused by the build, before any isolate");
    assert.match(err.message, /index\.js:1:/);

    res = await admin("PUT", "/_admin/functions/never", bundle("import './missing.js'; export default {}"));
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /missing\.js/);

    res = await admin("PUT", "/_admin/functions/never", {
      mainModule: "index.js",
      modules: { "index.js": "import m from './m.wasm'; export default {}", "m.wasm": { wasm: "AGFzbQ==" } },
    });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /CompileError in module 'm\.wasm'/);

    res = await fetch(`${base}/guarded/`);
    assert.equal(await res.text(), "still here");
    res = await admin("GET", "/_admin/functions/guarded");
    assert.equal((await res.json()).live_version, 1, "no new version was stored");
    res = await fetch(`${base}/never/`);
    assert.equal(res.status, 404, "a refused first deploy creates nothing");
    await res.arrayBuffer();
  });

  test("/_health and /_metrics with per-function counters", opts, async () => {
    let res = await fetch(`${base}/_health`);
    assert.equal(res.status, 200);
    assert.deepStrictEqual(await res.json(), { status: "ok" });

    await (await rpcHttp("math", "add", [1, 1])).arrayBuffer();
    res = await fetch(`${base}/_metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const line = text
      .split("\n")
      .find(
        (l) =>
          l.startsWith("functions_invocations_total{") &&
          l.includes('function="math"') &&
          l.includes('method="add"'),
      );
    assert.ok(line, `a math/add counter in:\n${text}`);
    assert.ok(Number(line.split(" ").pop()) >= 1);
    assert.match(text, /functions_cold_starts_total\{[^}]*function="math"/);
  });
});

// ---------------------------------------------------------------------------------------------
// The seed's loader front end (examples/front)

describe("loader front end", () => {
  before(async () => {
    // A helper bound to the front end's FUNCTION_STORE namespace: stores its body under the path.
    const helper = `export default { async fetch(req, env) {
      const id = new URL(req.url).pathname.slice(1);
      await env.STORE.put(id, await req.text());
      return new Response("stored " + id);
    } };`;
    const res = await admin(
      "PUT",
      "/_admin/functions/store-code",
      bundle(helper, { STORE: { type: "kv", namespace: "function-store" } }),
    );
    assert.equal(res.status, 200);
  });

  async function storeCode(id, src) {
    const res = await fetch(`${base}/store-code/${id}`, { method: "POST", body: src });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), `stored ${id}`);
  }

  test("front loads math from KV: X-RPC-Method and plain fetch", opts, async () => {
    await storeCode("kv-math", readFileSync(join(EXAMPLES, "math/index.js"), "utf8"));
    let res = await rpcHttp("front", "add", [2, 3], "/kv-math");
    assert.equal(res.status, 200);
    assert.deepStrictEqual(await res.json(), { result: 5 });
    res = await rpcHttp("front", "multiply", [4, 5], "/kv-math");
    assert.deepStrictEqual(await res.json(), { result: 20 });
    res = await fetch(`${base}/front/kv-math`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "OK");
  });

  test("code loaded by front uses its RUNTIME, KV and R2 (R2 object text())", opts, async () => {
    const src = `import { RpcTarget } from 'cloudflare:workers';
      class Api extends RpcTarget {
        constructor(ctx, env) { super(); this.env = env; }
        async viaRuntime(x) { return (await this.env.RUNTIME.getRpcTarget().execute('f', x)).executedBy; }
      }
      export default {
        async fetch(request, env) {
          await env.KV.put('k', 'kv-value');
          await env.R2.put('o.txt', 'r2-value');
          const obj = await env.R2.get('o.txt');
          return Response.json({ kv: await env.KV.get('k'), r2: await obj.text(), size: obj.size, key: obj.key });
        },
        rpc: Api,
      };`;
    await storeCode("kv-bindings", src);
    let res = await fetch(`${base}/front/kv-bindings`);
    assert.equal(res.status, 200);
    assert.deepStrictEqual(await res.json(), { kv: "kv-value", r2: "r2-value", size: 8, key: "o.txt" });
    res = await rpcHttp("front", "viaRuntime", [1], "/kv-bindings");
    assert.deepStrictEqual(await res.json(), { result: "runtime" });
  });

  test("front answers 404 for an id with no code", opts, async () => {
    const res = await fetch(`${base}/front/no-such-code`);
    assert.equal(res.status, 404);
    assert.equal((await res.json()).error.name, "NotFound");
  });
});
