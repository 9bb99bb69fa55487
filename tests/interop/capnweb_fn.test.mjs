// capnweb from inside a function (issue 13): the built-in `capnweb` module, on the runtime's
// Rust capnweb core, serving `newWorkersRpcResponse(request, target)` from the function's own
// fetch, checked with the official capnweb client.
//
//   cargo build -p server --bin functions && node --test capnweb_fn.test.mjs

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import WebSocket from "ws";
import { newHttpBatchRpcSession, newWebSocketRpcSession, RpcTarget } from "capnweb";
import { bundle, openWs, startServer } from "./lib/serve.mjs";

const opts = { timeout: 60_000 };

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

async function refusedWith(url, headers = {}) {
  const ws = new WebSocket(url, { headers });
  ws.on("error", () => {});
  const [, res] = await once(ws, "unexpected-response");
  ws.terminate();
  return res.statusCode;
}

const BEARER_SRC = `
  import { RpcTarget, newWorkersRpcResponse } from "capnweb";
  class Counter extends RpcTarget {
    constructor() { super(); this.n = 0; }
    increment(by = 1) { this.n += by; return this.n; }
  }
  class UserApi extends RpcTarget {
    constructor(user) { super(); this.user = user; }
    whoami() { return this.user; }
    counter() { return new Counter(); }
    async notify(callback) { return await callback("hello " + this.user); }
  }
  class AdminApi extends UserApi {
    dropEverything() { return "dropped"; }
  }
  const USERS = { "token-alice": "alice", "token-bob": "bob" };
  export default {
    async fetch(request) {
      const auth = request.headers.get("authorization") ?? "";
      const token = auth.startsWith("Bearer ") ? auth.slice(7) : null;
      if (token === "token-root") return newWorkersRpcResponse(request, new AdminApi("root"));
      const user = token === null ? undefined : USERS[token];
      if (user === undefined) return new Response("unauthorized", { status: 401, headers: { "www-authenticate": "Bearer" } });
      return newWorkersRpcResponse(request, new UserApi(user));
    },
  };
`;

describe("capnweb served from a function's own fetch", () => {
  test("no token: 401 over WebSocket and batch", opts, async () => {
    await server.deploy("bearer", bundle(BEARER_SRC));
    assert.equal(await refusedWith(`${server.wsBase}/bearer/rpc`), 401);
    const res = await fetch(`${server.base}/bearer/rpc`, { method: "POST", body: "" });
    assert.equal(res.status, 401);
  });

  test("the right token gets only that user's methods, over WebSocket and batch", opts, async (t) => {
    await server.deploy("bearer2", bundle(BEARER_SRC));
    const alice = await openWs(t, `${server.wsBase}/bearer2/rpc`, { authorization: "Bearer token-alice" });
    assert.equal(await alice.whoami(), "alice");
    await assert.rejects(async () => await alice.dropEverything(), /dropEverything|not a function/);
    const root = await openWs(t, `${server.wsBase}/bearer2/rpc`, { authorization: "Bearer token-root" });
    assert.equal(await root.dropEverything(), "dropped");
    const bob = newHttpBatchRpcSession(new Request(`${server.base}/bearer2/rpc`, { headers: { authorization: "Bearer token-bob" } }));
    assert.equal(await bob.whoami(), "bob");
  });

  test("pipelining and callbacks work through it", opts, async (t) => {
    await server.deploy("bearer3", bundle(BEARER_SRC));
    const api = await openWs(t, `${server.wsBase}/bearer3/rpc`, { authorization: "Bearer token-alice" });
    // A chain on a capability that has not arrived yet, in one flight.
    const counter = api.counter();
    const first = counter.increment(2);
    const second = counter.increment(3);
    assert.deepEqual(await Promise.all([first, second]), [2, 5]);
    // A callback the server calls back.
    const got = await api.notify((msg) => `client saw: ${msg}`);
    assert.equal(got, "client saw: hello alice");
    // Pipelining over batch: one POST.
    const batch = newHttpBatchRpcSession(new Request(`${server.base}/bearer3/rpc`, { headers: { authorization: "Bearer token-bob" } }));
    const c = batch.counter();
    assert.deepEqual(await Promise.all([c.increment(1), c.increment(1), batch.whoami()]), [1, 2, "bob"]);
  });

  test("the seed's FunctionTarget patterns through the function's own URL", opts, async (t) => {
    const src = `
      import { RpcTarget, newWorkersRpcResponse } from "capnweb";
      class FunctionTarget extends RpcTarget {
        add(a, b) { return a + b; }
        echo(v) { return v; }
        async twice(f, x) { return await f(await f(x)); }
        fail() { throw new RangeError("no such thing"); }
        makeCounter() { let n = 0; return new (class extends RpcTarget { next() { return ++n; } })(); }
      }
      export default { fetch(request) { return newWorkersRpcResponse(request, new FunctionTarget()); } };
    `;
    await server.deploy("seedfn", bundle(src));
    const api = await openWs(t, `${server.wsBase}/seedfn/`);
    assert.equal(await api.add(2, 3), 5);
    const echoed = await api.echo({ a: [1, "x", null], b: new Uint8Array([1, 2]) });
    assert.deepEqual(echoed.a, [1, "x", null]);
    assert.deepEqual([...echoed.b], [1, 2]);
    assert.equal(await api.twice((x) => x * 3, 2), 18);
    await assert.rejects(async () => await api.fail(), (e) => e instanceof RangeError && /no such thing/.test(e.message));
    const counter = api.makeCounter();
    assert.equal(await counter.next(), 1);
    assert.equal(await counter.next(), 2);
    const batch = newHttpBatchRpcSession(`${server.base}/seedfn/`);
    assert.equal(await batch.add(40, 2), 42);
  });

  test("the capnweb module exports every name capnweb 0.12 does; unsupported ones throw when called", opts, async () => {
    const names = [
      "DEFAULT_LIMITS", "DEFAULT_MAX_DEPTH", "RpcPromise", "RpcSession", "RpcStub", "RpcTarget", "WebSocketTransport",
      "deserialize", "newHttpBatchRpcResponse", "newHttpBatchRpcSession", "newMessagePortRpcSession",
      "newWebSocketRpcSession", "newWorkersRpcResponse", "newWorkersWebSocketRpcResponse", "nodeHttpBatchRpcResponse",
      "serialize",
    ];
    const src = `
      import * as capnweb from "capnweb";
      export default {
        async fetch() {
          const missing = ${JSON.stringify(names)}.filter((n) => !(n in capnweb));
          let url, port;
          try { capnweb.newHttpBatchRpcSession("https://example.com/"); url = "no error"; } catch (e) { url = e.name + ": " + e.message; }
          try { capnweb.newMessagePortRpcSession({}); port = "no error"; } catch (e) { port = e.message; }
          return Response.json({ missing, url, port, depth: capnweb.DEFAULT_MAX_DEPTH });
        },
      };
    `;
    await server.deploy("cwnames", bundle(src));
    const out = await (await fetch(`${server.base}/cwnames/`)).json();
    assert.deepEqual(out.missing, []);
    assert.match(out.url, /^TypeError: fetch\(\) is not allowed/);
    assert.match(out.port, /not supported/);
    assert.equal(out.depth, 256);
  });

  test("newHttpBatchRpcSession(url) goes through globalOutbound (a loaded child's)", opts, async () => {
    const src = `
      import { RpcTarget, newHttpBatchRpcResponse, newHttpBatchRpcSession } from "capnweb";
      class Api extends RpcTarget {
        hello(name) { return "hello " + name; }
        counter() { let n = 0; return new (class extends RpcTarget { next() { return ++n; } })(); }
      }
      // What the child's fetch() reaches: this function's own capnweb batch endpoint.
      class Outbound extends RpcTarget {
        fetch(request) { return newHttpBatchRpcResponse(request, new Api()); }
      }
      const CHILD = \`
        import { newHttpBatchRpcSession } from "capnweb";
        export default {
          async fetch() {
            const api = newHttpBatchRpcSession("http://parent.example/rpc");
            const c = api.counter();
            const [h, a, b] = await Promise.all([api.hello("child"), c.next(), c.next()]);
            return new Response(h + " " + a + " " + b);
          },
        };
      \`;
      export default {
        async fetch(request, env) {
          const child = env.LOADER.load({ mainModule: "child.js", modules: { "child.js": CHILD }, globalOutbound: new Outbound() });
          return child.fetch(request);
        },
      };
    `;
    await server.deploy("cwoutbound", bundle(src, { bindings: { LOADER: { type: "loader" } } }));
    const res = await fetch(`${server.base}/cwoutbound/`);
    assert.equal(await res.text(), "hello child 1 2");
  });

  test("newWebSocketRpcSession on either end of a pair inside a function", opts, async () => {
    const src = `
      import { RpcTarget, newWebSocketRpcSession } from "capnweb";
      class Api extends RpcTarget { hi(name) { return "hi " + name; } }
      export default {
        async fetch() {
          const [a, b] = Object.values(new WebSocketPair());
          newWebSocketRpcSession(b, new Api());
          const stub = newWebSocketRpcSession(a);
          return new Response(await stub.hi("pair"));
        },
      };
    `;
    await server.deploy("cwpair", bundle(src));
    assert.equal(await (await fetch(`${server.base}/cwpair/`)).text(), "hi pair");
  });
});
