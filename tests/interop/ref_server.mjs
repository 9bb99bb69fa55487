// Reference implementation of the capnweb "interop server" contract, written with the
// official `capnweb` npm package. The Rust implementation (crates/capnweb) must behave the
// same way on the wire; client.test.mjs checks any server against this contract.
//
// Usage: node ref_server.mjs --port PORT      (PORT 0 picks a free port)
//
//   ws://127.0.0.1:PORT/              capnweb over WebSocket (one session per socket)
//   POST http://127.0.0.1:PORT/batch  capnweb HTTP batch (one session per request)
//
// Prints exactly `listening on PORT` on stdout when ready. Exits on SIGTERM/SIGINT.
// Everything else (errors, diagnostics) goes to stderr only.

globalThis.WebSocket ??= (await import("ws")).default;

import http from "node:http";
import { WebSocketServer } from "ws";
import { RpcSession, RpcTarget, WebSocketTransport } from "capnweb";

function log(...args) {
  console.error("[ref_server]", ...args);
}

// A peer can make the library reject or throw in places nobody awaits (a client that vanishes
// mid-call, garbage on the wire). Such failures belong to one session; never let them take the
// process down.
process.on("unhandledRejection", (err) => log("unhandled rejection:", err));
process.on("uncaughtException", (err) => log("uncaught exception:", err));

const ERROR_CONSTRUCTORS = {
  Error,
  TypeError,
  RangeError,
  EvalError,
  ReferenceError,
  SyntaxError,
  URIError,
};

class Counter extends RpcTarget {
  #value;
  constructor(initial) {
    super();
    this.#value = initial;
  }
  increment(by = 1) {
    this.#value += by;
    return this.#value;
  }
  get value() {
    return this.#value;
  }
}

class Api extends RpcTarget {
  // Private, so it is not reachable over RPC (capnweb refuses instance properties anyway).
  #stats;
  constructor(stats) {
    super();
    this.#stats = stats;
  }

  square(i) {
    return i * i;
  }

  add(a, b) {
    return a + b;
  }

  echo(v) {
    return v;
  }

  getUser(id) {
    return { id, name: "user" + id, profile: { bio: "bio of " + id } };
  }

  makeCounter(initial) {
    return new Counter(initial);
  }

  async callSquare(stub, i) {
    return { result: await stub.square(i) };
  }

  async callFunction(fn, i) {
    return { result: await fn(i) };
  }

  throwError(name, message, props) {
    const Ctor = Object.hasOwn(ERROR_CONSTRUCTORS, name) ? ERROR_CONSTRUCTORS[name] : undefined;
    let err;
    if (Ctor) {
      err = new Ctor(message);
    } else {
      err = new Error(message);
      err.name = name;
    }
    Object.assign(err, props);
    throw err;
  }

  async delay(ms, v) {
    if (typeof ms !== "number" || !(ms >= 0)) throw new TypeError("delay: ms must be a non-negative number");
    if (ms > 10000) throw new RangeError("delay: ms must be at most 10000");
    await new Promise((resolve) => setTimeout(resolve, ms));
    return v;
  }

  generateFibonacci(n) {
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
      throw new TypeError("generateFibonacci: n must be a non-negative integer");
    }
    if (n > 1000) throw new RangeError("generateFibonacci: n must be at most 1000");
    const out = [];
    let a = 0;
    let b = 1;
    for (let k = 0; k < n; k++) {
      out.push(a);
      [a, b] = [b, a + b];
    }
    return out;
  }

  sessionStats() {
    const stats = this.#stats();
    return { imports: stats.imports, exports: stats.exports };
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP batch. This mirrors capnweb's nodeHttpBatchRpcResponse() line for line (see
// dist/index.js, BatchServerTransport / nodeHttpBatchRpcResponse); it is re-spelled here only so
// that the per-request RpcSession is reachable for sessionStats(). Wire behaviour is identical:
// the request body is newline-separated messages, the response body is newline-separated
// messages, 405 for anything but POST.

class BatchServerTransport {
  #batchToSend = [];
  #batchToReceive;
  #allReceived = Promise.withResolvers();
  constructor(batch) {
    this.#batchToReceive = batch;
  }
  send(message) {
    this.#batchToSend.push(message);
  }
  async receive() {
    const msg = this.#batchToReceive.shift();
    if (msg !== undefined) return msg;
    this.#allReceived.resolve();
    return new Promise(() => {});
  }
  abort(reason) {
    this.#allReceived.reject(reason);
  }
  whenAllReceived() {
    return this.#allReceived.promise;
  }
  getResponseBody() {
    return this.#batchToSend.join("\n");
  }
}

async function handleBatch(req, res) {
  if (req.method !== "POST") {
    res.writeHead(405, "This endpoint only accepts POST requests.");
    res.end();
    return;
  }
  const body = await new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString()));
    req.on("error", reject);
  });
  const transport = new BatchServerTransport(body === "" ? [] : body.split("\n"));
  let session;
  const api = new Api(() => session.getStats());
  session = new RpcSession(transport, api);
  await transport.whenAllReceived();
  await session.drain();
  res.writeHead(200);
  res.end(transport.getResponseBody());
}

// ---------------------------------------------------------------------------------------------

function parsePort(argv) {
  const i = argv.indexOf("--port");
  if (i < 0) return 0;
  const port = Number(argv[i + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    log(`bad --port value: ${argv[i + 1]}`);
    process.exit(2);
  }
  return port;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname !== "/batch") {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found: use ws://HOST:PORT/ or POST /batch\n");
    return;
  }
  handleBatch(req, res).catch((err) => {
    log("batch request failed:", err);
    try {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(err?.message ?? err));
    } catch (err2) {
      log("could not send 500:", err2);
    }
  });
});
server.on("clientError", (err, socket) => {
  log("http client error:", err.message);
  socket.destroy();
});

const wss = new WebSocketServer({ server });
wss.on("error", (err) => log("websocket server error:", err));
wss.on("connection", (ws) => {
  ws.on("error", (err) => log("websocket error:", err.message));
  try {
    let session;
    const api = new Api(() => session.getStats());
    session = new RpcSession(new WebSocketTransport(ws), api);
  } catch (err) {
    log("could not start session:", err);
    ws.terminate();
  }
});

function shutdown(signal) {
  log(`${signal}: shutting down`);
  for (const client of wss.clients) client.terminate();
  wss.close();
  server.close();
  process.exit(0);
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));

server.listen(parsePort(process.argv.slice(2)), "127.0.0.1", () => {
  process.stdout.write(`listening on ${server.address().port}\n`);
});
