// WebSockets in functions (issue 13): `new WebSocketPair()` in a function's fetch, answered with
// `new Response(null, { status: 101, webSocket: client })` and bridged by the server to the
// real upgraded connection. Driven with Node `ws` clients against a real `functions serve`.
//
//   cargo build -p server --bin functions && node --test websocket.test.mjs

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import WebSocket from "ws";
import { bundle, startServer } from "./lib/serve.mjs";

const opts = { timeout: 60_000 };

/** Opens a WebSocket to `url`; resolves once open, with a queue of received messages. */
async function connect(t, url, protocols, options) {
  const ws = new WebSocket(url, protocols, options);
  const inbox = [];
  const waiters = [];
  ws.on("message", (data, isBinary) => {
    const m = isBinary ? Buffer.from(data) : data.toString("utf8");
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  const closed = new Promise((ok) => ws.on("close", (code, reason) => ok({ code, reason: reason.toString("utf8") })));
  ws.on("error", () => {});
  t?.after(() => ws.terminate());
  await once(ws, "open");
  return {
    ws,
    closed,
    /** The next message (string for text, Buffer for binary). */
    next(ms = 10_000) {
      if (inbox.length) return Promise.resolve(inbox.shift());
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error("no message in time")), ms);
        waiters.push((m) => {
          clearTimeout(timer);
          ok(m);
        });
      });
    },
  };
}

const ECHO_SRC = `
  export default {
    fetch(request) {
      if (request.headers.get("upgrade") !== "websocket") {
        return new Response("upgrade=" + request.headers.get("upgrade") + " connection=" + request.headers.get("connection"));
      }
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.addEventListener("message", (event) => {
        if (event.data === "close-me") { server.close(4001, "asked to close"); return; }
        if (event.data === "headers") {
          server.send("upgrade=" + request.headers.get("upgrade") + " connection=" + request.headers.get("connection"));
          return;
        }
        if (typeof event.data === "string") server.send("echo:" + event.data);
        else server.send(new Uint8Array(event.data).reverse());
      });
      server.addEventListener("close", (event) => {
        globalThis.lastClose = event.code + " " + event.reason;
      });
      const headers = {};
      const offered = request.headers.get("sec-websocket-protocol");
      if (offered) headers["sec-websocket-protocol"] = offered.split(",")[1].trim();
      return new Response(null, { status: 101, webSocket: client, headers });
    },
  };
`;

let server;

before(async () => {
  server = await startServer({
    args: ["--ws-max-message-bytes", "65536", "--ws-max-outbound-mb", "1"],
  });
});

after(async () => {
  await server?.stop();
});

describe("websockets in functions", () => {
  test("echo: three clients, text and binary, close codes and reasons both ways", opts, async (t) => {
    await server.deploy("ws-echo", bundle(ECHO_SRC));
    const url = `${server.wsBase}/ws-echo/socket`;
    const clients = await Promise.all([connect(t, url), connect(t, url), connect(t, url)]);
    for (const [i, c] of clients.entries()) c.ws.send(`hello ${i}`);
    for (const [i, c] of clients.entries()) assert.equal(await c.next(), `echo:hello ${i}`);
    clients[1].ws.send(Buffer.from([1, 2, 3, 4]));
    const bin = await clients[1].next();
    assert.ok(Buffer.isBuffer(bin), "binary comes back binary");
    assert.deepEqual([...bin], [4, 3, 2, 1]);
    // The client closes with a code and reason: the function's close event sees them.
    clients[0].ws.close(4000, "client bye");
    assert.equal((await clients[0].closed).code, 4000);
    // The function closes with a code and reason: the client sees them.
    clients[2].ws.send("close-me");
    assert.deepEqual(await clients[2].closed, { code: 4001, reason: "asked to close" });
    // The socket still open keeps working.
    clients[1].ws.send("still here");
    assert.equal(await clients[1].next(), "echo:still here");
  });

  test("Upgrade and Connection reach fetch; the function's subprotocol choice is echoed in the 101", opts, async (t) => {
    await server.deploy("ws-proto", bundle(ECHO_SRC));
    const plain = await fetch(`${server.base}/ws-proto/`);
    assert.equal(await plain.text(), "upgrade=null connection=null");
    const c = await connect(t, `${server.wsBase}/ws-proto/`, ["first", "second"]);
    assert.equal(c.ws.protocol, "second", "the function chose the second protocol");
    c.ws.send("headers");
    const seen = await c.next();
    assert.match(seen, /^upgrade=websocket connection=.*upgrade/i);
  });

  test("a chat function broadcasts across connections (module state is shared)", opts, async (t) => {
    const src = `
      const room = new Set();
      export default {
        fetch() {
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          room.add(server);
          server.addEventListener("message", (e) => {
            for (const peer of room) if (peer !== server) peer.send(e.data);
          });
          server.addEventListener("close", () => room.delete(server));
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    `;
    await server.deploy("ws-chat", bundle(src));
    const url = `${server.wsBase}/ws-chat/`;
    const [a, b, c] = await Promise.all([connect(t, url), connect(t, url), connect(t, url)]);
    a.ws.send("from a");
    assert.equal(await b.next(), "from a");
    assert.equal(await c.next(), "from a");
    c.ws.send("from c");
    assert.equal(await a.next(), "from c");
    assert.equal(await b.next(), "from c");
  });

  test("timers set from a socket's events live while it is open", opts, async (t) => {
    const src = `
      export default {
        fetch() {
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          server.addEventListener("message", () => {
            let n = 0;
            const timer = setInterval(() => { server.send("tick " + ++n); if (n === 3) clearInterval(timer); }, 20);
          });
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    `;
    await server.deploy("ws-timer", bundle(src));
    const c = await connect(t, `${server.wsBase}/ws-timer/`);
    c.ws.send("go");
    assert.equal(await c.next(), "tick 1");
    assert.equal(await c.next(), "tick 2");
    assert.equal(await c.next(), "tick 3");
  });

  test("a spinning message handler gets its socket closed with 1011 while other functions keep answering", opts, async (t) => {
    const src = `
      export default {
        fetch() {
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          server.addEventListener("message", () => { for (;;) {} });
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    `;
    await server.deploy("ws-spin", bundle(src, { limits: { cpuMs: 100 } }));
    await server.deploy("ws-neighbour", bundle(`export default { fetch() { return new Response("ok"); } };`));
    const c = await connect(t, `${server.wsBase}/ws-spin/`);
    c.ws.send("spin");
    const neighbour = await fetch(`${server.base}/ws-neighbour/`);
    assert.equal(await neighbour.text(), "ok");
    const { code, reason } = await c.closed;
    assert.equal(code, 1011);
    assert.match(reason, /CPU time limit/);
    const again = await fetch(`${server.base}/ws-neighbour/`);
    assert.equal(await again.text(), "ok");
  });

  test("an oversized message gets 1009 and only that socket closes", opts, async (t) => {
    await server.deploy("ws-big", bundle(ECHO_SRC));
    const url = `${server.wsBase}/ws-big/`;
    const [big, small] = await Promise.all([connect(t, url), connect(t, url)]);
    big.ws.send("x".repeat(65537));
    assert.equal((await big.closed).code, 1009);
    small.ws.send("fine");
    assert.equal(await small.next(), "echo:fine");
  });

  test("a function that queues more than the outbound limit gets its socket closed with 1008", opts, async (t) => {
    // The client stops reading first, so the queue must grow past the limit (a reading client
    // can drain 64 KiB sends as fast as they are made: the test timed out once in CI). The
    // function sends until send() refuses, and says so on /wait (module state is shared by
    // the isolate's requests); then the client reads again and finds the close.
    const src = `
      let overflowed;
      const done = new Promise((ok) => { overflowed = ok; });
      export default {
        fetch(request) {
          if (new URL(request.url).pathname === "/wait") {
            return done.then((n) => new Response("refused after " + n + " sends"));
          }
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          server.addEventListener("message", () => {
            const chunk = "y".repeat(64 * 1024);
            let i = 0;
            try { for (; i < 4096; i++) server.send(chunk); } catch { overflowed(i); }
          });
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    `;
    await server.deploy("ws-flood", bundle(src));
    const c = await connect(t, `${server.wsBase}/ws-flood/`);
    c.ws.pause();
    c.ws.send("flood");
    const waited = await fetch(`${server.base}/ws-flood/wait`);
    assert.match(await waited.text(), /^refused after \d+ sends$/);
    c.ws.resume();
    assert.equal((await c.closed).code, 1008);
  });

  test("redeploy keeps open sockets on the old version", opts, async (t) => {
    const v = (n) => `
      export default {
        fetch() {
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          server.addEventListener("message", () => server.send("v${n}"));
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    `;
    await server.deploy("ws-redeploy", bundle(v(1)));
    const old = await connect(t, `${server.wsBase}/ws-redeploy/`);
    await server.deploy("ws-redeploy", bundle(v(2)));
    old.ws.send("?");
    assert.equal(await old.next(), "v1");
    const fresh = await connect(t, `${server.wsBase}/ws-redeploy/`);
    fresh.ws.send("?");
    assert.equal(await fresh.next(), "v2");
    old.ws.send("?");
    assert.equal(await old.next(), "v1");
  });

  test("a WebSocket cannot pass through a service binding's fetch: a clear TypeError", opts, async () => {
    const target = `
      export default {
        fetch() {
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    `;
    await server.deploy("ws-target", bundle(target));
    const caller = `
      export default {
        async fetch(request, env) {
          try {
            const r = await env.TARGET.fetch("http://x/", { headers: { upgrade: "websocket" } });
            return new Response("passed: " + r.status);
          } catch (e) {
            return new Response(e.name + ": " + e.message);
          }
        },
      };
    `;
    await server.deploy("ws-caller", bundle(caller, { bindings: { TARGET: { type: "service", service: "ws-target" } } }));
    const text = await (await fetch(`${server.base}/ws-caller/`)).text();
    assert.match(text, /^TypeError: .*WebSocket/);
  });

  test("a WebSocket cannot pass through a loader stub's fetch: a clear TypeError", opts, async () => {
    const parent = `
      const CHILD = "export default { fetch() { const [c, s] = Object.values(new WebSocketPair()); s.accept(); return new Response(null, { status: 101, webSocket: c }); } };";
      export default {
        async fetch(request, env) {
          const child = env.LOADER.get("ws-child", () => ({ mainModule: "child.js", modules: { "child.js": CHILD } }));
          try {
            const r = await child.fetch(request);
            return new Response("passed: " + r.status);
          } catch (e) {
            return new Response(e.name + ": " + e.message);
          }
        },
      };
    `;
    await server.deploy("ws-loader", bundle(parent, { bindings: { LOADER: { type: "loader" } } }));
    const text = await (await fetch(`${server.base}/ws-loader/`)).text();
    assert.match(text, /^TypeError: .*WebSocket/);
  });

  test("sockets count against the per-function session cap (1013)", opts, async (t) => {
    const capped = await startServer({ args: ["--rpc-max-sessions-per-function", "2"] });
    t.after(() => capped.stop());
    await capped.deploy("ws-cap", bundle(ECHO_SRC));
    const url = `${capped.wsBase}/ws-cap/`;
    await connect(t, url);
    await connect(t, url);
    const third = new WebSocket(url);
    third.on("error", () => {});
    t.after(() => third.terminate());
    const [code] = await once(third, "close");
    assert.equal(code, 1013);
  });

  test("the per-address cap counts X-Forwarded-For only from a trusted proxy (1013)", opts, async (t) => {
    const refused = async (url, xff) => {
      const ws = new WebSocket(url, { headers: { "x-forwarded-for": xff } });
      ws.on("error", () => {});
      t.after(() => ws.terminate());
      const [code] = await once(ws, "close");
      return code;
    };
    const as = (xff) => ({ headers: { "x-forwarded-for": xff } });
    // Behind a trusted proxy (loopback here) each forwarded client has its own count.
    const proxied = await startServer({
      args: ["--rpc-max-sessions-per-address", "1", "--trusted-proxy", "127.0.0.1"],
    });
    t.after(() => proxied.stop());
    await proxied.deploy("ws-addr", bundle(ECHO_SRC));
    const url = `${proxied.wsBase}/ws-addr/`;
    await connect(t, url, undefined, as("10.0.0.1"));
    const other = await connect(t, url, undefined, as("10.0.0.2"));
    other.ws.send("hi");
    assert.equal(await other.next(), "echo:hi");
    assert.equal(await refused(url, "10.0.0.1"), 1013);
    // Without one, the header is the client's own claim: every connection is 127.0.0.1.
    const direct = await startServer({ args: ["--rpc-max-sessions-per-address", "1"] });
    t.after(() => direct.stop());
    await direct.deploy("ws-addr", bundle(ECHO_SRC));
    const durl = `${direct.wsBase}/ws-addr/`;
    await connect(t, durl, undefined, as("10.0.0.1"));
    assert.equal(await refused(durl, "10.0.0.2"), 1013);
  });

  test("an idle socket is closed with 1001; pings count as activity", opts, async (t) => {
    const idle = await startServer({ args: ["--rpc-idle-timeout", "1"] });
    t.after(() => idle.stop());
    await idle.deploy("ws-idle", bundle(ECHO_SRC));
    const url = `${idle.wsBase}/ws-idle/`;
    const quiet = await connect(t, url);
    const pinging = await connect(t, url);
    const pinger = setInterval(() => pinging.ws.ping(), 300);
    t.after(() => clearInterval(pinger));
    assert.equal((await quiet.closed).code, 1001);
    pinging.ws.send("alive?");
    assert.equal(await pinging.next(), "echo:alive?");
  });

  test("server shutdown closes open sockets with 1001", opts, async (t) => {
    const doomed = await startServer();
    await doomed.deploy("ws-down", bundle(ECHO_SRC));
    const c = await connect(t, `${doomed.wsBase}/ws-down/`);
    c.ws.send("up?");
    assert.equal(await c.next(), "echo:up?");
    const stopped = doomed.stop();
    assert.equal((await c.closed).code, 1001);
    await stopped;
  });
});
