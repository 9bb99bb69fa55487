// The JavaScript half of the capnweb bridge and of `cloudflare:workers`.
//
// Evaluated once per isolate, before any user code, as a function of `native` (the Rust host
// functions) and `web` (what web.js returned). It returns `helpers`, the functions the Rust bridge calls; nothing here is
// reachable from user code except the classes it puts on globalThis / `cloudflare:workers`.
(function (native, web) {
  "use strict";
  if (!Symbol.dispose) {
    Object.defineProperty(Symbol, "dispose", { value: Symbol("Symbol.dispose") });
  }
  const DISPOSE = Symbol.dispose;
  const HANDLE = Symbol("capnweb.handle");
  const BRAND = Symbol("capnweb.RpcTarget");
  const FORBIDDEN = new Set([
    "constructor", "__proto__", "__defineGetter__", "__defineSetter__", "__lookupGetter__",
    "__lookupSetter__", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
    "toLocaleString", "toString", "valueOf", "toJSON",
  ]);

  // Event handlers: delivered as events with the function's own env and ctx, never called as
  // RPC methods with a caller's arguments (as workerd draws it).
  const EVENT_HANDLERS = new Set([
    "fetch", "scheduled", "queue", "email", "tail", "trace", "alarm", "test",
    "webSocketMessage", "webSocketClose", "webSocketError", "authenticate",
  ]);
  // Entrypoint objects (the default export, or a WorkerEntrypoint instance) and the env and ctx
  // they were made with.
  const ENTRYPOINTS = new WeakMap();

  class RpcTarget {}
  Object.defineProperty(RpcTarget.prototype, BRAND, { value: true });

  class WorkerEntrypoint extends RpcTarget {
    constructor(ctx, env) {
      super();
      this.ctx = ctx;
      this.env = env;
    }
  }
  class DurableObject extends WorkerEntrypoint {}

  // A stub or promise from capnweb, seen from JavaScript: a Proxy around a function, so that
  // `stub.method(...)`, `stub.prop`, `await promise`, `promise.method(...)` all work and none
  // of them waits (calls and property reads are pipelined by the Rust side).
  function makeProxy(handle, path, isPromise) {
    const thenable = isPromise || path.length > 0;
    const proxy = new Proxy(() => {}, {
      get(_, prop) {
        if (prop === HANDLE) return [handle, path];
        if (typeof prop === "symbol") {
          if (prop === DISPOSE) {
            return () => { if (path.length === 0) native.dispose(handle); };
          }
          return undefined;
        }
        if (prop === "then" || prop === "catch" || prop === "finally") {
          if (!thenable) return undefined;
          const p = native.pull(handle, path);
          return p[prop].bind(p);
        }
        if (path.length === 0 && prop === "dup") {
          return () => makeProxy(native.dup(handle), [], isPromise);
        }
        if (FORBIDDEN.has(prop)) return undefined;
        return makeProxy(handle, path.concat([prop]), isPromise);
      },
      apply(_, _this, args) {
        return makeProxy(native.call(handle, path, args), [], true);
      },
      set() { return false; },
      has(_, prop) { return prop === HANDLE; },
      getPrototypeOf() { return thenable ? RpcPromise.prototype : RpcStub.prototype; },
    });
    return proxy;
  }

  function RpcStub(value) {
    if (!new.target) throw new TypeError("Class constructor RpcStub cannot be invoked without 'new'");
    return makeProxy(native.wrap(value), [], false);
  }
  class RpcPromise {
    constructor() { throw new TypeError("RpcPromise cannot be constructed directly"); }
  }

  // What RPC may reach on `obj`: for RpcTargets, prototype methods and getters only (never own
  // instance fields, never Object.prototype). An entrypoint has no event handlers among its
  // methods, and a plain-object entrypoint (`export default { fetch }`) has no methods at all.
  // Other plain objects (an `rpc` class that does not extend RpcTarget): own props.
  function lookup(obj, name) {
    if (typeof name !== "string" || FORBIDDEN.has(name)) return undefined;
    const entry = obj !== null && typeof obj === "object" && ENTRYPOINTS.has(obj);
    if (entry && (EVENT_HANDLERS.has(name) || obj[BRAND] !== true)) return undefined;
    if (obj !== null && (typeof obj === "object" || typeof obj === "function") && obj[BRAND] === true) {
      for (let p = Object.getPrototypeOf(obj); p && p !== Object.prototype && p !== RpcTarget.prototype;
           p = Object.getPrototypeOf(p)) {
        const d = Object.getOwnPropertyDescriptor(p, name);
        if (d) return d.get ? d.get.call(obj) : d.value;
      }
      return undefined;
    }
    if (obj !== null && typeof obj === "object" && Object.prototype.hasOwnProperty.call(obj, name)) {
      return obj[name];
    }
    return undefined;
  }

  // Settles call `id` with `r`: at once for a plain value (no async function, no microtask),
  // when it settles for a thenable (which is what `await r` would do, with one frame less).
  function settleWith(id, r) {
    let then;
    try {
      then = r !== null && (typeof r === "object" || typeof r === "function") ? r.then : undefined;
    } catch (e) {
      native.settle(id, false, e);
      return;
    }
    if (typeof then !== "function") {
      native.settle(id, true, r);
      return;
    }
    let settled = false;
    const ok = (v) => { if (!settled) { settled = true; native.settle(id, true, v); } };
    const fail = (e) => { if (!settled) { settled = true; native.settle(id, false, e); } };
    try {
      then.call(r, ok, fail);
    } catch (e) {
      fail(e);
    }
  }

  function dispatch(id, obj, method, args) {
    if (obj !== null && typeof obj === "object" && ENTRYPOINTS.has(obj) && EVENT_HANDLERS.has(method)) {
      if (method === "fetch") {
        httpEvent(id, obj, args);
      } else {
        native.settle(id, false, new TypeError(`'${method}' is ${method === "authenticate" ? "a hook" : "an event handler"}, not an RPC method.`));
      }
      return;
    }
    let r;
    try {
      if (method === "") {
        if (typeof obj !== "function") throw new TypeError("RPC target is not a function.");
        r = obj(...args);
      } else {
        const f = lookup(obj, method);
        if (typeof f !== "function") throw new TypeError(`'${method}' is not a function.`);
        r = f.apply(obj, args);
      }
    } catch (e) {
      native.settle(id, false, e);
      return;
    }
    settleWith(id, r);
  }

  function getProperty(id, obj, name) {
    let v;
    try {
      v = lookup(obj, name);
    } catch (e) {
      native.settle(id, false, e);
      return;
    }
    settleWith(id, v);
  }

  // Settles call `id` when a plain JS promise that was passed out settles.
  function track(id, p) {
    Promise.resolve(p).then((v) => native.settle(id, true, v), (e) => native.settle(id, false, e));
  }

  function disposeTarget(obj) {
    try {
      const f = obj !== null && obj !== undefined ? obj[DISPOSE] : undefined;
      if (typeof f === "function") f.call(obj);
    } catch (e) {
      console.error("[Symbol.dispose] threw:", e);
    }
  }

  // Keeps the running invocation going until `p` settles, for at most the waitUntil bound
  // after its answer (the host keeps count; see background.rs).
  function waitUntil(p) {
    const token = native.keepAlive();
    const done = () => { if (token !== undefined) native.letGo(token); };
    Promise.resolve(p).then(done, (e) => {
      console.error("waitUntil promise rejected:", e);
      done();
    });
  }

  function makeCtx() {
    return {
      waitUntil,
      passThroughOnException() {},
      props: {},
    };
  }

  // The ctx of one /_rpc session: `request` is the upgrade or batch request, read-only.
  function sessionCtx(request) {
    request.headers._freeze();
    const ctx = makeCtx();
    Object.defineProperty(ctx, "request", { value: request, enumerable: true });
    return ctx;
  }

  // `authenticate(request, env, ctx)` on the default export (an object, or a class's
  // prototype): the main capability for this caller, or a Response to send instead.
  async function authenticateHandler(id, ns, request, env, ctx) {
    try {
      const d = ns.default;
      let r;
      if (isClass(d)) {
        const inst = new d(ctx, env);
        ENTRYPOINTS.set(inst, { env, ctx });
        r = await inst.authenticate(request, env, ctx);
      } else {
        r = await d.authenticate(request, env, ctx);
      }
      const ok = r instanceof globalThis.Response || typeof r === "function" ||
        (r !== null && typeof r === "object" && (r[BRAND] === true || HANDLE in r));
      if (!ok) {
        throw new TypeError("authenticate() must return the caller's main capability (an RpcTarget, a function or a stub) or a Response");
      }
      native.settle(id, true, r);
    } catch (e) {
      native.settle(id, false, e);
    }
  }

  // `fetch(input, init?)` called on an entrypoint over RPC: an HTTP event. The request is built
  // as the global fetch() builds one (a caller's extra arguments are request init, never env);
  // the handler gets the function's own env and ctx.
  async function httpEvent(id, obj, args) {
    try {
      const { env, ctx } = ENTRYPOINTS.get(obj);
      const [input, init] = args;
      const request = input instanceof globalThis.Request && init === undefined
        ? input
        : new globalThis.Request(input, init);
      let r;
      if (obj[BRAND] === true) {
        if (typeof obj.fetch !== "function") throw new TypeError("the entrypoint has no fetch() handler");
        r = await obj.fetch(request);
      } else {
        const f = Object.prototype.hasOwnProperty.call(obj, "fetch") ? obj.fetch : undefined;
        if (typeof f !== "function") throw new TypeError("the default export has no fetch() handler");
        r = await f.call(obj, request, env, ctx);
      }
      if (!(r instanceof globalThis.Response)) {
        throw new TypeError("the fetch() handler did not return a Response");
      }
      native.settle(id, true, r);
    } catch (e) {
      native.settle(id, false, e);
    }
  }

  function isClass(v) {
    return typeof v === "function" && v.prototype !== undefined;
  }

  function entrypoint(ns, name, ctx, env) {
    const v = name === null || name === undefined ? ns.default : ns[name];
    if (v === undefined || v === null) {
      throw new TypeError(name ? `no entrypoint named '${name}' is exported` : "the main module has no default export");
    }
    const obj = isClass(v) ? new v(ctx, env) : v;
    if (obj !== null && typeof obj === "object") ENTRYPOINTS.set(obj, { env, ctx });
    return obj;
  }

  function rpcTarget(ns, ctx, env) {
    const d = ns.default;
    if (d && typeof d === "object" && isClass(d.rpc)) return new d.rpc(ctx, env);
    return entrypoint(ns, null, ctx, env);
  }

  // What the main module offers: [an `rpc` class on the default export, a fetch handler].
  function surface(ns) {
    const d = ns.default;
    let fetch = false;
    if (isClass(d)) fetch = typeof d.prototype.fetch === "function";
    else if (d !== null && typeof d === "object") fetch = typeof d.fetch === "function";
    let authenticate = false;
    if (isClass(d)) authenticate = typeof d.prototype.authenticate === "function";
    else if (d !== null && typeof d === "object") authenticate = typeof d.authenticate === "function";
    return [hasRpc(ns), fetch, authenticate];
  }

  function hasRpc(ns) {
    const d = ns.default;
    return !!(d && typeof d === "object" && isClass(d.rpc));
  }

  // Settles fetch invocation `id` with the handler's answer `r` (awaited if a promise).
  function answerFetch(id, r, allowSocket) {
    Promise.resolve(r).then((v) => {
      if (!(v instanceof globalThis.Response)) {
        native.settle(id, false, new TypeError("the fetch() handler did not return a Response"));
        return;
      }
      let out;
      try {
        out = web.fetchAnswer(id, v, allowSocket);
      } catch (e) {
        native.settle(id, false, e);
        return;
      }
      native.settle(id, true, out);
    }, (e) => native.settle(id, false, e));
  }

  async function fetchHandler(id, ns, request, env, ctx, allowSocket) {
    try {
      const d = ns.default;
      if (d === undefined || d === null) throw new TypeError("the main module has no default export");
      let r;
      if (isClass(d)) {
        const inst = new d(ctx, env);
        if (typeof inst.fetch !== "function") throw new TypeError("the default entrypoint has no fetch() handler");
        r = await inst.fetch(request);
      } else {
        if (typeof d.fetch !== "function") throw new TypeError("the default export has no fetch() handler");
        r = await d.fetch(request, env, ctx);
      }
      if (!(r instanceof globalThis.Response)) {
        throw new TypeError("the fetch() handler did not return a Response");
      }
      native.settle(id, true, web.fetchAnswer(id, r, allowSocket === true));
    } catch (e) {
      native.settle(id, false, e);
    }
  }

  function isPlain(v) {
    const p = Object.getPrototypeOf(v);
    return p === Object.prototype || p === null;
  }

  // Tells the Rust bridge what kind of object `v` is (arrays and primitives never get here).
  // Returns [tag, detail].
  function describe(v) {
    if (HANDLE in Object(v) && typeof v === "function") {
      const h = v[HANDLE];
      if (h) return [2, h];
    }
    if (typeof v === "function") return [3, null];
    if (v[BRAND] === true) return [4, null];
    if (v instanceof Error) {
      const props = {};
      for (const k of Object.keys(v)) {
        if (k !== "name" && k !== "message" && k !== "stack") props[k] = v[k];
      }
      if (v.cause !== undefined && !("cause" in props)) props.cause = v.cause;
      if (v instanceof AggregateError && !("errors" in props)) props.errors = v.errors;
      return [5, [String(v.name), String(v.message), v.stack === undefined ? null : String(v.stack), props]];
    }
    if (v instanceof Date) return [6, v.getTime()];
    if (v instanceof ArrayBuffer) return [7, ["ArrayBuffer", new Uint8Array(v)]];
    if (ArrayBuffer.isView(v)) {
      const kind = v.constructor.name;
      return [7, [kind, new Uint8Array(v.buffer, v.byteOffset, v.byteLength)]];
    }
    if (v instanceof Promise) return [8, null];
    const snap = web.snapshot(v);
    if (snap) return snap;
    return [isPlain(v) ? 0 : 1, null];
  }

  const ERRORS = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError };
  function mkError(name, message, stack, props) {
    const C = ERRORS[name] || Error;
    const e = C === AggregateError ? new AggregateError([], message) : new C(message);
    if (!(name in ERRORS)) Object.defineProperty(e, "name", { value: name, writable: true, configurable: true });
    if (stack !== null) Object.defineProperty(e, "stack", { value: stack, writable: true, configurable: true });
    for (const k of Object.keys(props)) e[k] = props[k];
    return e;
  }
  function mkBytes(kind, u8) {
    if (kind === "ArrayBuffer") return u8.buffer;
    const C = globalThis[kind];
    if (kind === "Uint8Array" || typeof C !== "function") return u8;
    if (kind === "DataView") return new DataView(u8.buffer);
    return new C(u8.buffer, 0, u8.byteLength / C.BYTES_PER_ELEMENT);
  }

  // ---- the built-in `capnweb` module, on the runtime's Rust capnweb core ----------------------
  const WS = globalThis.WebSocket;
  const WsDecoder = globalThis.TextDecoder;
  const rpcSockets = new Map();
  const NO_NETWORK = "fetch() is not allowed: this function has no network access (no globalOutbound binding was granted)";
  function notSupported(name) {
    return function () { throw new TypeError(`capnweb.${name}() is not supported inside a function`); };
  }
  function urlForm(name) {
    if (!web.hasOutbound()) throw new TypeError(NO_NETWORK);
    throw new TypeError(`capnweb.${name}() with a URL is not supported inside a function yet; pass a WebSocket, or call the service through a binding`);
  }
  // A capnweb session over `ws` (either end of a WebSocketPair, or one accepted from a peer).
  function socketSession(ws, localMain) {
    if (!(ws instanceof WS)) throw new TypeError("newWebSocketRpcSession() takes a WebSocket (or a URL)");
    const [id, remote] = native.rpcOverSocket(localMain === undefined ? null : localMain);
    rpcSockets.set(id, ws);
    const end = () => { if (rpcSockets.delete(id)) native.rpcEnd(id); };
    const decoder = new WsDecoder();
    ws.addEventListener("message", (e) => {
      native.rpcFeed(id, typeof e.data === "string" ? e.data : decoder.decode(e.data));
    });
    ws.addEventListener("close", end);
    ws.addEventListener("error", end);
    try { ws.accept(); } catch (e) { /* accepted already */ }
    return remote;
  }
  // A frame of session `id` (`text` null: close with `code` and `reason`).
  function capnwebOut(id, text, code, reason) {
    const ws = rpcSockets.get(id);
    if (!ws) return;
    try {
      if (text !== null) {
        ws.send(text);
      } else {
        rpcSockets.delete(id);
        native.rpcEnd(id);
        ws._closeRaw(code, reason);
      }
    } catch (e) {
      console.error("capnweb session could not send:", e);
    }
  }
  function newWebSocketRpcSession(wsOrUrl, localMain) {
    if (typeof wsOrUrl === "string" || wsOrUrl instanceof URL) return urlForm("newWebSocketRpcSession");
    return socketSession(wsOrUrl, localMain);
  }
  // One batch POSTed through the function's globalOutbound (on the Rust capnweb core).
  function newHttpBatchRpcSession(urlOrRequest) {
    if (!web.hasOutbound()) throw new TypeError(NO_NETWORK);
    const request = new globalThis.Request(urlOrRequest);
    const headers = [];
    for (const [k, v] of request.headers) headers.push([k, v]);
    const stub = native.rpcBatchClient(request.url, headers);
    if (stub === null) throw new TypeError(NO_NETWORK);
    return stub;
  }
  async function newHttpBatchRpcResponse(request, localMain) {
    if (request.method !== "POST") return new globalThis.Response("This endpoint only accepts POST requests.", { status: 405 });
    const body = await request.text();
    const answer = await native.rpcBatch(body, localMain);
    return new globalThis.Response(answer);
  }
  function newWorkersWebSocketRpcResponse(request, localMain) {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new globalThis.Response("This endpoint only accepts WebSocket requests.", { status: 400 });
    }
    const [client, server] = Object.values(new globalThis.WebSocketPair());
    server.accept();
    socketSession(server, localMain);
    return new globalThis.Response(null, { status: 101, webSocket: client });
  }
  async function newWorkersRpcResponse(request, localMain) {
    if (request.method === "POST") {
      const response = await newHttpBatchRpcResponse(request, localMain);
      response.headers.set("Access-Control-Allow-Origin", "*");
      return response;
    } else if (request.headers.get("Upgrade")?.toLowerCase() === "websocket") {
      return newWorkersWebSocketRpcResponse(request, localMain);
    }
    return new globalThis.Response("This endpoint only accepts POST or WebSocket requests.", { status: 400 });
  }
  class RpcSession {
    constructor() { throw new TypeError("capnweb.RpcSession is not supported inside a function: use newWebSocketRpcSession or newWorkersRpcResponse"); }
  }
  class WebSocketTransport {
    constructor() { throw new TypeError("capnweb.WebSocketTransport is not supported inside a function: use newWebSocketRpcSession"); }
  }
  const capnwebModule = {
    DEFAULT_LIMITS: Object.freeze({ maxBigIntDigits: 16384, maxDepth: 256, maxMessageSize: 32 * 1024 * 1024 }),
    DEFAULT_MAX_DEPTH: 256,
    RpcPromise, RpcSession, RpcStub, RpcTarget, WebSocketTransport,
    deserialize: notSupported("deserialize"),
    serialize: notSupported("serialize"),
    newHttpBatchRpcResponse, newHttpBatchRpcSession,
    newMessagePortRpcSession: notSupported("newMessagePortRpcSession"),
    newWebSocketRpcSession, newWorkersRpcResponse, newWorkersWebSocketRpcResponse,
    nodeHttpBatchRpcResponse: notSupported("nodeHttpBatchRpcResponse"),
  };
  Object.defineProperty(globalThis, "__capnweb", { value: capnwebModule });

  const builtin = { RpcTarget, RpcStub, RpcPromise, WorkerEntrypoint, DurableObject, waitUntil, env: {} };
  Object.defineProperty(globalThis, "__cloudflare_workers", { value: builtin });
  for (const [k, v] of [["RpcTarget", RpcTarget], ["RpcStub", RpcStub]]) {
    Object.defineProperty(globalThis, k, { value: v, writable: true, configurable: true });
  }

  return {
    makeProxy, dispatch, getProperty, track, disposeTarget, makeCtx, entrypoint, rpcTarget, surface, fetchHandler, answerFetch,
    sessionCtx, authenticateHandler, capnwebOut,
    describe, mkError, mkBytes, mkDate: (ms) => new Date(ms),
    setEnv(env) { builtin.env = env; },
  };
})
