// Who is calling `/_rpc/<id>` (issue 13): an `authenticate(request, env, ctx)` hook on the
// default export runs before any RPC is served; without one the RPC target's `ctx.request` is
// the session's request. Driven with the official capnweb client against a real server.
//
//   cargo build -p server --bin functions && node --test auth.test.mjs

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import WebSocket from "ws";
import { newHttpBatchRpcSession } from "capnweb";
import { bundle, openWs, startServer } from "./lib/serve.mjs";

const opts = { timeout: 60_000 };
const SECRET = "s3cr3t-token-value-4242";

let server;

before(async () => {
  server = await startServer({ captureLogs: true, env: { RUST_LOG: "info" } });
});

after(async () => {
  await server?.stop();
});

/** The HTTP status a WebSocket handshake to `url` was refused with. */
async function refusedWith(url, headers = {}) {
  const ws = new WebSocket(url, { headers });
  ws.on("error", () => {});
  const [, res] = await once(ws, "unexpected-response");
  const body = await new Promise((ok) => {
    let b = "";
    res.setEncoding("utf8");
    res.on("data", (c) => (b += c));
    res.on("end", () => ok(b));
  });
  ws.terminate();
  return { status: res.statusCode, headers: res.headers, body };
}

const AUTH_SRC = `
  import { RpcTarget } from "cloudflare:workers";
  class UserApi extends RpcTarget {
    constructor(user) { super(); this.user = user; }
    whoami() { return this.user; }
    adminOnly() { return "admin stuff"; }
  }
  class AliceApi extends RpcTarget {
    whoami() { return "alice"; }
  }
  export default {
    authenticate(request, env, ctx) {
      const auth = request.headers.get("authorization");
      if (auth === null) {
        return new Response("who are you?", { status: 401, headers: { "www-authenticate": 'Bearer realm="fns"' } });
      }
      if (auth === "Bearer alice") return new AliceApi();
      if (auth === "Bearer root") return new UserApi("root");
      if (auth === "Bearer old-token-1") { const e = new Error("token expired"); e.status = 401; throw e; }
      throw new Error("bad token: " + auth);
    },
    fetch() { return new Response("hi"); },
    rpc: UserApi,
  };
`;

describe("authenticate on /_rpc", () => {
  test("no token: the hook's 401 with WWW-Authenticate, over WebSocket and batch, before any RPC", opts, async () => {
    await server.deploy("auth", bundle(AUTH_SRC));
    const ws = await refusedWith(`${server.wsBase}/_rpc/auth`);
    assert.equal(ws.status, 401);
    assert.equal(ws.headers["www-authenticate"], 'Bearer realm="fns"');
    assert.equal(ws.body, "who are you?");
    const batch = await fetch(`${server.base}/_rpc/auth`, { method: "POST", body: '["push",["pipeline",0,["whoami"],[]]]' });
    assert.equal(batch.status, 401);
    assert.equal(batch.headers.get("www-authenticate"), 'Bearer realm="fns"');
  });

  test("the right token gets only that caller's capability, over WebSocket and batch", opts, async (t) => {
    await server.deploy("auth2", bundle(AUTH_SRC));
    const alice = await openWs(t, `${server.wsBase}/_rpc/auth2`, { authorization: "Bearer alice" });
    assert.equal(await alice.whoami(), "alice");
    await assert.rejects(async () => await alice.adminOnly(), /not a function|adminOnly/);
    const root = await openWs(t, `${server.wsBase}/_rpc/auth2`, { authorization: "Bearer root" });
    assert.equal(await root.whoami(), "root");
    assert.equal(await root.adminOnly(), "admin stuff");
    const batch = newHttpBatchRpcSession(new Request(`${server.base}/_rpc/auth2`, { headers: { authorization: "Bearer alice" } }));
    assert.equal(await batch.whoami(), "alice");
  });

  test("a throwing hook refuses with 403, or the error's status 401", opts, async () => {
    await server.deploy("auth3", bundle(AUTH_SRC));
    const bad = await refusedWith(`${server.wsBase}/_rpc/auth3`, { authorization: "Bearer nobody" });
    assert.equal(bad.status, 403);
    const expired = await fetch(`${server.base}/_rpc/auth3`, { method: "POST", headers: { authorization: "Bearer old-token-1" }, body: "" });
    assert.equal(expired.status, 401);
    assert.match(await expired.text(), /token expired/);
  });

  test("authenticate is never reachable over RPC", opts, async (t) => {
    const src = `
      import { WorkerEntrypoint } from "cloudflare:workers";
      export default class extends WorkerEntrypoint {
        authenticate(request) { return this; }
        hello() { return "hello"; }
      };
    `;
    await server.deploy("auth4", bundle(src));
    const api = await openWs(t, `${server.wsBase}/_rpc/auth4`);
    assert.equal(await api.hello(), "hello");
    await assert.rejects(async () => await api.authenticate(new Request("http://x/")), /TypeError|not an RPC method/);
    // Without the hook on the target, the default export's hook is not a method either.
    await server.deploy("auth5", bundle(AUTH_SRC));
    const root = await openWs(t, `${server.wsBase}/_rpc/auth5`, { authorization: "Bearer root" });
    await assert.rejects(async () => await root.authenticate(new Request("http://x/")), /not a function|authenticate/);
  });

  test("the values of Authorization and Cookie never appear in error bodies or server logs", opts, async () => {
    await server.deploy("auth6", bundle(AUTH_SRC));
    const res = await fetch(`${server.base}/_rpc/auth6`, {
      method: "POST",
      headers: { authorization: `Bearer ${SECRET}`, cookie: `session=${SECRET}-cookie` },
      body: "",
    });
    assert.equal(res.status, 403);
    const body = await res.text();
    assert.ok(!body.includes(SECRET), `the token leaked into the error body: ${body}`);
    assert.match(body, /\[redacted\]/);
    const ws = await refusedWith(`${server.wsBase}/_rpc/auth6`, { authorization: `Bearer ${SECRET}` });
    assert.equal(ws.status, 403);
    assert.ok(!ws.body.includes(SECRET));
    // The refusal is logged (info), redacted.
    const deadline = Date.now() + 5000;
    while (!server.logs().includes("rpc caller refused") && Date.now() < deadline) {
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.match(server.logs(), /rpc caller refused/);
    assert.ok(!server.logs().includes(SECRET), "the token leaked into the server's log");
  });
});

describe("redaction on a function's own URL", () => {
  test("a fetch that throws with the Authorization value: the server's log line is redacted", opts, async () => {
    const src = `export default { fetch(request) { throw new Error("rejected " + request.headers.get("authorization")); } };`;
    await server.deploy("leaky", bundle(src));
    const res = await fetch(`${server.base}/leaky/`, { headers: { authorization: `Bearer ${SECRET}-fetch` } });
    assert.equal(res.status, 500);
    await res.text();
    const deadline = Date.now() + 5000;
    while (!/fetch failed.*leaky|leaky.*fetch failed/.test(server.logs()) && Date.now() < deadline) {
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.match(server.logs(), /fetch failed/);
    assert.ok(!server.logs().includes(`${SECRET}-fetch`), "the token leaked into the server's log");
  });
});

describe("ctx.request on /_rpc without authenticate", () => {
  const SRC = `
    import { RpcTarget } from "cloudflare:workers";
    class Api extends RpcTarget {
      constructor(ctx, env) { super(); this.ctx = ctx; }
      seen() {
        const r = this.ctx.request;
        let mutated = "no";
        try { r.headers.set("x-evil", "1"); mutated = "yes"; } catch (e) { mutated = e.name; }
        return {
          method: r.method,
          url: r.url,
          auth: r.headers.get("authorization"),
          ip: r.headers.get("cf-connecting-ip"),
          upgrade: r.headers.get("upgrade"),
          body: r.body === null,
          mutated,
        };
      }
    }
    export default { rpc: Api };
  `;

  test("the session's request, read-only and bodyless, one per session; cf-connecting-ip cannot be forged", opts, async (t) => {
    await server.deploy("who", bundle(SRC));
    const a = await openWs(t, `${server.wsBase}/_rpc/who?room=1`, { authorization: "Bearer a", "cf-connecting-ip": "6.6.6.6" });
    const b = await openWs(t, `${server.wsBase}/_rpc/who`, { authorization: "Bearer b" });
    const seenA = await a.seen();
    assert.equal(seenA.method, "GET");
    assert.match(seenA.url, /\/_rpc\/who\?room=1$/);
    assert.equal(seenA.auth, "Bearer a");
    assert.equal(seenA.ip, "127.0.0.1");
    assert.equal(seenA.upgrade, "websocket");
    assert.equal(seenA.body, true);
    assert.equal(seenA.mutated, "TypeError");
    assert.equal((await b.seen()).auth, "Bearer b");
    const batch = newHttpBatchRpcSession(new Request(`${server.base}/_rpc/who`, { headers: { authorization: "Bearer c" } }));
    const seenC = await batch.seen();
    assert.equal(seenC.method, "POST");
    assert.equal(seenC.auth, "Bearer c");
  });
});
