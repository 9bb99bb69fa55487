// Web platform basics for an isolate: console, timers, encoding, base64, URL, Headers, Request,
// Response, crypto, performance, structuredClone, a capability-checked fetch, and the
// WebAssembly global (built on first use).
//
// Evaluated once per isolate as a function of `native` (the Rust host functions); returns the
// hooks the capnweb bridge needs to carry Request/Response/Headers/URL by value.
(function (native) {
  "use strict";
  const G = globalThis;
  const define = (name, value) =>
    Object.defineProperty(G, name, { value, writable: true, configurable: true, enumerable: false });

  // ---- console -------------------------------------------------------------------------
  function inspect(v, depth) {
    if (typeof v === "string") return depth === 0 ? v : JSON.stringify(v);
    if (typeof v === "function") return `[Function ${v.name || "anonymous"}]`;
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "symbol") return v.toString();
    if (v === null || typeof v !== "object") return String(v);
    if (v instanceof Error) return v.stack ? `${v.name}: ${v.message}\n${v.stack}` : `${v.name}: ${v.message}`;
    if (depth > 2) return Array.isArray(v) ? "[Array]" : "[Object]";
    try {
      if (Array.isArray(v)) return `[ ${v.map((x) => inspect(x, depth + 1)).join(", ")} ]`;
      const parts = Object.keys(v).map((k) => `${k}: ${inspect(v[k], depth + 1)}`);
      return `{ ${parts.join(", ")} }`;
    } catch (e) {
      return "[object]";
    }
  }
  const log = (level) => (...args) => native.log(level, args.map((a) => inspect(a, 0)).join(" "));
  define("console", {
    debug: log(0), trace: log(0), log: log(1), info: log(1), warn: log(2), error: log(3),
  });

  // ---- timers --------------------------------------------------------------------------
  const timers = new Map();
  let nextTimer = 1;
  // The host owns each pending timer (a task charged to the invocation that armed it, see
  // background.rs): it refuses timers in global scope or past the isolate's limit, and
  // cancels them when their invocation ends (calling dropTimers).
  function addTimer(fn, ms, args, repeat) {
    if (typeof fn !== "function") throw new TypeError("timer callback must be a function");
    const id = nextTimer++;
    const delay = Math.max(0, Number(ms) || 0);
    native.setTimer(id, delay);
    timers.set(id, { fn, args, repeat, delay });
    return id;
  }
  function fireTimer(id) {
    const t = timers.get(id);
    if (!t) return;
    timers.delete(id);
    if (t.repeat) {
      native.setTimer(id, t.delay);
      timers.set(id, t);
    }
    try { t.fn(...t.args); } catch (e) { console.error("Uncaught exception in timer:", e); }
  }
  function clearTimer(id) {
    if (timers.delete(id)) native.clearTimer(id);
  }
  function dropTimers(ids) {
    for (const id of ids) timers.delete(id);
  }
  define("setTimeout", (fn, ms, ...args) => addTimer(fn, ms, args, false));
  define("setInterval", (fn, ms, ...args) => addTimer(fn, ms, args, true));
  define("clearTimeout", clearTimer);
  define("clearInterval", clearTimer);
  if (typeof G.queueMicrotask !== "function") {
    define("queueMicrotask", (fn) => {
      if (typeof fn !== "function") throw new TypeError("queueMicrotask callback must be a function");
      Promise.resolve().then(fn).catch((e) => console.error("Uncaught exception in microtask:", e));
    });
  }

  // ---- encoding ------------------------------------------------------------------------
  function toU8(data) {
    if (data instanceof Uint8Array) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    throw new TypeError("expected an ArrayBuffer or ArrayBufferView");
  }
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(s = "") { return native.utf8Encode(String(s)); }
  }
  class TextDecoder {
    constructor(label = "utf-8", options = {}) {
      const l = String(label).toLowerCase();
      if (l !== "utf-8" && l !== "utf8") throw new RangeError(`The encoding '${label}' is not supported`);
      this.fatal = !!options.fatal;
      this.ignoreBOM = !!options.ignoreBOM;
    }
    get encoding() { return "utf-8"; }
    decode(data) {
      if (data === undefined) return "";
      return native.utf8Decode(toU8(data), this.fatal, this.ignoreBOM);
    }
  }
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);
  function latin1Bytes(s) {
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 255) {
        const e = new Error("Invalid character"); e.name = "InvalidCharacterError"; throw e;
      }
      out[i] = c;
    }
    return out;
  }
  const btoa = (s) => native.b64encode(latin1Bytes(String(s)));
  const atob = (s) => {
    const b = native.b64decode(String(s).replace(/[\t\n\f\r ]/g, ""));
    let out = "";
    for (let i = 0; i < b.length; i++) out += String.fromCharCode(b[i]);
    return out;
  };
  define("btoa", btoa);
  define("atob", atob);

  // ---- URL -----------------------------------------------------------------------------
  const URL_PARTS = ["href", "protocol", "username", "password", "host", "hostname", "port",
    "pathname", "search", "hash", "origin"];
  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = "") {
      if (typeof init === "object" && init !== null) {
        const it = init instanceof URLSearchParams ? init.entries()
          : typeof init[Symbol.iterator] === "function" ? init : Object.entries(init);
        for (const pair of it) this.#list.push([String(pair[0]), String(pair[1])]);
      } else {
        this.#parse(String(init));
      }
    }
    #parse(s) {
      this.#list = [];
      if (s.startsWith("?")) s = s.slice(1);
      for (const part of s.split("&")) {
        if (part === "") continue;
        const i = part.indexOf("=");
        const dec = (x) => { try { return decodeURIComponent(x.replace(/\+/g, " ")); } catch { return x; } };
        this.#list.push(i < 0 ? [dec(part), ""] : [dec(part.slice(0, i)), dec(part.slice(i + 1))]);
      }
    }
    static _link(params, url) { params.#url = url; }
    static _reparse(params, s) { params.#parse(s); }
    #update() { if (this.#url) this.#url._setSearch(this.toString()); }
    append(k, v) { this.#list.push([String(k), String(v)]); this.#update(); }
    delete(k) { this.#list = this.#list.filter(([n]) => n !== String(k)); this.#update(); }
    get(k) { const e = this.#list.find(([n]) => n === String(k)); return e ? e[1] : null; }
    getAll(k) { return this.#list.filter(([n]) => n === String(k)).map(([, v]) => v); }
    has(k) { return this.#list.some(([n]) => n === String(k)); }
    set(k, v) {
      k = String(k); v = String(v);
      const i = this.#list.findIndex(([n]) => n === k);
      if (i < 0) this.#list.push([k, v]);
      else { this.#list[i][1] = v; this.#list = this.#list.filter(([n], j) => n !== k || j === i); }
      this.#update();
    }
    sort() { this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this.#update(); }
    get size() { return this.#list.length; }
    forEach(cb, thisArg) { for (const [k, v] of this.#list) cb.call(thisArg, v, k, this); }
    *entries() { for (const e of this.#list) yield [e[0], e[1]]; }
    *keys() { for (const e of this.#list) yield e[0]; }
    *values() { for (const e of this.#list) yield e[1]; }
    [Symbol.iterator]() { return this.entries(); }
    toString() {
      const enc = (x) => encodeURIComponent(x).replace(/%20/g, "+");
      return this.#list.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&");
    }
  }
  class URL {
    #p;
    #params = null;
    constructor(input, base) {
      this.#p = base === undefined ? native.parseUrl(String(input)) : native.parseUrl(String(input), String(base));
    }
    static canParse(input, base) { try { new URL(input, base); return true; } catch { return false; } }
    static parse(input, base) { try { return new URL(input, base); } catch { return null; } }
    #set(part, value) {
      this.#p = native.setUrl(this.#p[0], part, String(value));
      if (this.#params && part !== "hash") URLSearchParams._reparse(this.#params, this.#p[8]);
    }
    _setSearch(s) { this.#p = native.setUrl(this.#p[0], "search", s); }
    get searchParams() {
      if (!this.#params) {
        this.#params = new URLSearchParams(this.#p[8]);
        URLSearchParams._link(this.#params, this);
      }
      return this.#params;
    }
    get href() { return this.#p[0]; } set href(v) { this.#set("href", v); }
    get protocol() { return this.#p[1]; } set protocol(v) { this.#set("protocol", v); }
    get username() { return this.#p[2]; } set username(v) { this.#set("username", v); }
    get password() { return this.#p[3]; } set password(v) { this.#set("password", v); }
    get host() { return this.#p[4]; } set host(v) { this.#set("host", v); }
    get hostname() { return this.#p[5]; } set hostname(v) { this.#set("hostname", v); }
    get port() { return this.#p[6]; } set port(v) { this.#set("port", v); }
    get pathname() { return this.#p[7]; } set pathname(v) { this.#set("pathname", v); }
    get search() { return this.#p[8]; } set search(v) { this.#set("search", v); }
    get hash() { return this.#p[9]; } set hash(v) { this.#set("hash", v); }
    get origin() { return this.#p[10]; }
    toString() { return this.#p[0]; }
    toJSON() { return this.#p[0]; }
  }
  define("URL", URL);
  define("URLSearchParams", URLSearchParams);

  // ---- Headers -------------------------------------------------------------------------
  const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  // Header names already validated, with their lowercase form: most requests and responses
  // use the same few names, so the regex and toLowerCase run once per name (bounded).
  const HEADER_NAMES = new Map();
  function headerName(k) {
    if (typeof k === "string") {
      const known = HEADER_NAMES.get(k);
      if (known !== undefined) return known;
    }
    k = String(k);
    if (!HEADER_NAME.test(k)) throw new TypeError(`Invalid header name: '${k}'`);
    const lower = k.toLowerCase();
    if (HEADER_NAMES.size < 256) HEADER_NAMES.set(k, lower);
    return lower;
  }
  // Checks header pairs as `new Headers(pairs)` would, without building the Headers.
  function checkPairs(pairs) {
    for (const pair of pairs) {
      if (pair.length !== 2) throw new TypeError("Headers init pairs must have two elements");
      headerName(pair[0]);
    }
  }
  class Headers {
    #map = new Map();
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) { for (const [k, v] of init) this.append(k, v); return; }
      if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          if (pair.length !== 2) throw new TypeError("Headers init pairs must have two elements");
          this.append(pair[0], pair[1]);
        }
        return;
      }
      for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    #name(k) { return headerName(k); }
    // `set(k, v)` unless `k` is there; `k` is a lowercase name known to be valid.
    _setDefault(k, v) { if (!this.#map.has(k)) this.#map.set(k, v); }
    // What `[...this.entries()]` gives, built without generators.
    _pairs() {
      const m = this.#map;
      if (m.size === 0) return [];
      const keys = [...m.keys()];
      if (keys.length > 1) keys.sort();
      const out = [];
      for (const k of keys) {
        if (k === "set-cookie") for (const c of m.get(k).split("\n")) out.push([k, c]);
        else out.push([k, m.get(k)]);
      }
      return out;
    }
    append(k, v) {
      this.#mutable();
      k = this.#name(k); v = String(v).trim();
      const old = this.#map.get(k);
      this.#map.set(k, old === undefined ? v : (k === "set-cookie" ? `${old}\n${v}` : `${old}, ${v}`));
    }
    set(k, v) { this.#mutable(); this.#map.set(this.#name(k), String(v).trim()); }
    #frozen = false;
    #mutable() { if (this.#frozen) throw new TypeError("Can't modify immutable headers."); }
    _freeze() { this.#frozen = true; }
    get(k) { const v = this.#map.get(this.#name(k)); return v === undefined ? null : v.replace(/\n/g, ", "); }
    getSetCookie() { const v = this.#map.get("set-cookie"); return v === undefined ? [] : v.split("\n"); }
    has(k) { return this.#map.has(this.#name(k)); }
    delete(k) { this.#mutable(); this.#map.delete(this.#name(k)); }
    forEach(cb, thisArg) { for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this); }
    *entries() {
      for (const k of [...this.#map.keys()].sort()) {
        if (k === "set-cookie") for (const c of this.getSetCookie()) yield [k, c];
        else yield [k, this.#map.get(k)];
      }
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
  }
  define("Headers", Headers);

  // ---- streams -------------------------------------------------------------------------
  // A minimal WHATWG ReadableStream: an underlying source with start/pull/cancel, a queue held
  // to `highWaterMark` chunks (default 1), default readers and async iteration.
  class ReadableStream {
    #queue = []; #waiters = []; #state = "readable"; #error; #source; #hwm;
    #started = false; #pulling = false; #again = false; #reader = null; #disturbed = false;
    #controller;
    constructor(source = {}, strategy = {}) {
      if (source === null || typeof source !== "object") source = {};
      this.#source = source;
      const hwm = Number(strategy.highWaterMark ?? 1);
      this.#hwm = Number.isFinite(hwm) && hwm >= 0 ? hwm : 1;
      const self = this;
      this.#controller = {
        enqueue(chunk) { self.#enqueue(chunk); },
        close() { self.#close(); },
        error(e) { self.#fail(e); },
        get desiredSize() { return self.#state === "readable" ? self.#hwm - self.#queue.length : 0; },
      };
      let r;
      try { r = typeof source.start === "function" ? source.start(this.#controller) : undefined; }
      catch (e) { this.#fail(e); return; }
      Promise.resolve(r).then(() => { this.#started = true; this.#pull(); }, (e) => this.#fail(e));
    }
    #enqueue(chunk) {
      if (this.#state !== "readable") throw new TypeError("the stream is closed");
      const w = this.#waiters.shift();
      if (w) w.resolve({ value: chunk, done: false }); else this.#queue.push(chunk);
    }
    #close() {
      if (this.#state !== "readable") return;
      this.#state = "closed";
      if (this.#queue.length === 0) this.#flush();
    }
    #flush() {
      for (const w of this.#waiters.splice(0)) {
        if (this.#state === "errored") w.reject(this.#error); else w.resolve({ value: undefined, done: true });
      }
    }
    #fail(e) {
      if (this.#state !== "readable") return;
      this.#state = "errored"; this.#error = e; this.#queue = [];
      this.#flush();
    }
    #pull() {
      if (!this.#started || this.#state !== "readable") return;
      if (this.#queue.length >= this.#hwm && this.#waiters.length === 0) return;
      if (this.#pulling) { this.#again = true; return; }
      if (typeof this.#source.pull !== "function") return;
      this.#pulling = true;
      let r;
      try { r = this.#source.pull(this.#controller); } catch (e) { this.#fail(e); return; }
      Promise.resolve(r).then(() => {
        this.#pulling = false;
        if (this.#again || this.#queue.length < this.#hwm) { this.#again = false; this.#pull(); }
      }, (e) => this.#fail(e));
    }
    _read() {
      this.#disturbed = true;
      if (this.#queue.length > 0) {
        const value = this.#queue.shift();
        if (this.#state === "closed" && this.#queue.length === 0) this.#flush();
        else this.#pull();
        return Promise.resolve({ value, done: false });
      }
      if (this.#state === "closed") return Promise.resolve({ value: undefined, done: true });
      if (this.#state === "errored") return Promise.reject(this.#error);
      return new Promise((resolve, reject) => { this.#waiters.push({ resolve, reject }); this.#pull(); });
    }
    _cancel(reason) {
      this.#disturbed = true;
      if (this.#state === "errored") return Promise.reject(this.#error);
      if (this.#state === "closed" && this.#queue.length === 0) return Promise.resolve();
      this.#queue = []; this.#state = "closed"; this.#flush();
      try {
        const f = this.#source.cancel;
        return Promise.resolve(typeof f === "function" ? f.call(this.#source, reason) : undefined).then(() => {});
      } catch (e) { return Promise.reject(e); }
    }
    _lock(reader) {
      if (this.#reader) throw new TypeError("ReadableStream is locked to a reader");
      this.#reader = reader;
    }
    _unlock() { this.#reader = null; }
    get _disturbed() { return this.#disturbed; }
    get locked() { return this.#reader !== null; }
    getReader(options) {
      if (options && options.mode !== undefined) throw new RangeError("only default readers are supported");
      return new ReadableStreamDefaultReader(this);
    }
    cancel(reason) {
      if (this.locked) return Promise.reject(new TypeError("cannot cancel a locked stream"));
      return this._cancel(reason);
    }
    values(options = {}) {
      const reader = this.getReader();
      const keep = !!options.preventCancel;
      return {
        next: () => reader.read().then((r) => { if (r.done) reader.releaseLock(); return r; }),
        return: async (value) => {
          if (!keep) await reader.cancel(value); reader.releaseLock(); return { value, done: true };
        },
        [Symbol.asyncIterator]() { return this; },
      };
    }
    [Symbol.asyncIterator](options) { return this.values(options); }
    static from(iterable) {
      const it = (iterable[Symbol.asyncIterator] || iterable[Symbol.iterator]).call(iterable);
      return new ReadableStream({
        async pull(c) { const r = await it.next(); if (r.done) c.close(); else c.enqueue(r.value); },
        async cancel(reason) { if (typeof it.return === "function") await it.return(reason); },
      });
    }
  }
  class ReadableStreamDefaultReader {
    #stream;
    constructor(stream) {
      if (!(stream instanceof ReadableStream)) throw new TypeError("not a ReadableStream");
      stream._lock(this);
      this.#stream = stream;
    }
    read() {
      if (!this.#stream) return Promise.reject(new TypeError("the reader was released"));
      return this.#stream._read();
    }
    cancel(reason) {
      if (!this.#stream) return Promise.reject(new TypeError("the reader was released"));
      return this.#stream._cancel(reason);
    }
    releaseLock() { if (this.#stream) { this.#stream._unlock(); this.#stream = null; } }
    get closed() { return Promise.resolve(); }
  }
  define("ReadableStream", ReadableStream);
  define("ReadableStreamDefaultReader", ReadableStreamDefaultReader);

  // A stream of chunks that arrive from Rust (a capnweb ReadableStream).
  function mkReadable(handle) {
    return new ReadableStream({
      async pull(c) {
        const [done, value] = await native.streamNext(handle);
        if (done) c.close(); else c.enqueue(value);
      },
      cancel() { native.streamCancel(handle); },
    });
  }
  // Feeds a JavaScript stream into Rust sender `sid`, one chunk at a time: each write waits
  // while the Rust reader is behind, so an endless stream stays bounded ahead of its reader.
  async function pumpStream(sid, stream) {
    let reader;
    try {
      reader = stream.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) { native.streamClose(sid); return; }
        await native.streamWrite(sid, value);
      }
    } catch (e) {
      native.streamAbort(sid, e);
      if (reader) reader.cancel(e).catch(() => {});
    }
  }
  async function readAll(stream) {
    const reader = stream.getReader();
    const parts = [];
    let len = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const u8 = typeof value === "string" ? native.utf8Encode(value) : toU8(value);
      parts.push(u8); len += u8.byteLength;
    }
    const out = new Uint8Array(len);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.byteLength; }
    return out;
  }

  // ---- Body, Request, Response -----------------------------------------------------------
  // A body is a string, a Uint8Array, a ReadableStream or null.
  function bodyOf(init, headers) {
    if (init === undefined || init === null) return null;
    if (init instanceof ReadableStream) return init;
    if (typeof init === "string") {
      headers._setDefault("content-type", "text/plain;charset=UTF-8");
      return init;
    }
    if (init instanceof URLSearchParams) {
      if (!headers.has("content-type")) headers.set("content-type", "application/x-www-form-urlencoded;charset=UTF-8");
      return init.toString();
    }
    if (init instanceof ArrayBuffer || ArrayBuffer.isView(init)) return toU8(init).slice();
    return String(init);
  }
  class Body {
    #body;
    #used = false;
    _initBody(body) { this.#body = body; }
    _rawBody() { return this.#body; }
    get bodyUsed() {
      return this.#used || (this.#body instanceof ReadableStream && this.#body._disturbed);
    }
    get body() {
      const b = this.#body;
      if (b === null || b instanceof ReadableStream) return b;
      const bytes = typeof b === "string" ? native.utf8Encode(b) : b;
      this.#body = new ReadableStream({ start(c) { c.enqueue(bytes); c.close(); } });
      return this.#body;
    }
    #take() {
      if (this.bodyUsed) throw new TypeError("Body has already been used");
      if (this.#body instanceof ReadableStream && this.#body.locked) throw new TypeError("Body is locked to a reader");
      this.#used = true;
      return this.#body;
    }
    async text() {
      let b = this.#take();
      if (b === null) return "";
      if (b instanceof ReadableStream) b = await readAll(b);
      return typeof b === "string" ? b : native.utf8Decode(b, false, false);
    }
    async json() { return JSON.parse(await this.text()); }
    async bytes() {
      const b = this.#take();
      if (b === null) return new Uint8Array(0);
      if (b instanceof ReadableStream) return await readAll(b);
      return typeof b === "string" ? native.utf8Encode(b) : b.slice();
    }
    async arrayBuffer() { return (await this.bytes()).buffer; }
  }
  const MAKE = Symbol("internal");
  const FOLLOW = Object.freeze({ redirect: "follow" });
  class Request extends Body {
    #url; #method; #headers; #rawHeaders; #init;
    constructor(input, init = {}) {
      super();
      if (input === MAKE) return;
      let body = null;
      if (input instanceof Request) {
        this.#url = input.url; this.#method = input.method;
        this.#headers = new Headers(input.headers); body = input._rawBody();
      } else {
        this.#url = new URL(String(input)).href; this.#method = "GET"; this.#headers = new Headers();
      }
      if (init.method !== undefined) this.#method = String(init.method).toUpperCase();
      if (init.headers !== undefined) this.#headers = new Headers(init.headers);
      if (init.body !== undefined) body = bodyOf(init.body, this.#headers);
      if (body !== null && (this.#method === "GET" || this.#method === "HEAD")) {
        throw new TypeError("Request with GET/HEAD method cannot have body.");
      }
      this._initBody(body);
      this.#init = { redirect: init.redirect ?? "follow" };
    }
    // A request from the bridge: what `new Request(url, { method, headers })` then
    // `_initBody(body)` gives, with the Headers built only when `headers` is first read.
    static _make(url, method, pairs, body) {
      const r = new Request(MAKE);
      r.#url = native.hrefOf(String(url));
      r.#method = String(method).toUpperCase();
      checkPairs(pairs);
      r.#rawHeaders = pairs;
      r.#init = FOLLOW;
      r._initBody(body);
      return r;
    }
    get url() { return this.#url; }
    get method() { return this.#method; }
    get headers() {
      if (this.#headers === undefined) {
        this.#headers = new Headers(this.#rawHeaders);
        this.#rawHeaders = undefined;
      }
      return this.#headers;
    }
    get redirect() { return this.#init.redirect; }
    get signal() { return undefined; }
    clone() {
      if (this._rawBody() instanceof ReadableStream) throw new TypeError("a Request with a streamed body cannot be cloned");
      return new Request(this);
    }
  }
  class Response extends Body {
    #status; #statusText; #headers; #webSocket = null;
    constructor(body = null, init = {}) {
      super();
      const status = init.status === undefined ? 200 : Number(init.status);
      const ws = init.webSocket === undefined ? null : init.webSocket;
      if (ws !== null && !(ws instanceof WebSocket)) throw new TypeError("Response webSocket must be a WebSocket");
      if (ws !== null && status !== 101) throw new RangeError("a Response with a webSocket must have status 101");
      if (ws === null && (!Number.isInteger(status) || status < 200 || status > 599)) {
        throw new RangeError(`Invalid response status code ${init.status}`);
      }
      if (ws !== null && body !== null) throw new TypeError("a 101 Response cannot have a body");
      this.#status = status;
      this.#statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.#headers = new Headers(init.headers);
      this.#webSocket = ws;
      this._initBody(bodyOf(body, this.#headers));
    }
    get webSocket() { return this.#webSocket; }
    // The same response without its socket (the socket went to the runtime).
    _withoutSocket() {
      const r = new Response(null, { status: 200, statusText: this.#statusText, headers: this.#headers });
      r.#status = this.#status;
      return r;
    }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSON.stringify(data), { ...init, headers });
    }
    static redirect(url, status = 302) {
      return new Response(null, { status, headers: { location: new URL(String(url)).href } });
    }
    static error() { const r = new Response(null, { status: 200 }); r._type = "error"; return r; }
    get status() { return this.#status; }
    get statusText() { return this.#statusText; }
    get ok() { return this.#status >= 200 && this.#status < 300; }
    get headers() { return this.#headers; }
    get redirected() { return false; }
    get type() { return "default"; }
    get url() { return ""; }
    clone() {
      if (this._rawBody() instanceof ReadableStream) throw new TypeError("a Response with a streamed body cannot be cloned");
      return new Response(this._rawBody(), { status: this.#status, statusText: this.#statusText, headers: this.#headers });
    }
  }
  define("Request", Request);
  define("Response", Response);

  // ---- WebSocket, WebSocketPair -------------------------------------------------------------
  // A pair's two ends talk to each other inside the isolate; the client end returned in a 101
  // Response from the function's own fetch is bridged by the runtime to the real connection,
  // and the server end then sends to and hears from the peer (see socket.rs). Each event from
  // the peer is its own invocation.
  const SOCKET_THROUGH_FETCH = "a Response carrying a WebSocket can only be returned from the function's own fetch handler: it cannot pass through RPC, a service binding's fetch() or a loader stub's fetch()";
  let pairing = false;
  const bridgedSockets = new Map();
  class WsEvent {
    constructor(type, init = {}) {
      this.type = type;
      for (const k of Object.keys(init)) this[k] = init[k];
    }
  }
  function closeCodeOk(code) {
    return code === 1000 || (code >= 3000 && code <= 4999);
  }
  class WebSocket {
    #peer = null; #sid = null; #accepted = false; #handedOut = false; #pending = [];
    #listeners = new Map(); #state = 1;
    constructor() {
      if (!pairing) {
        throw new TypeError("new WebSocket(url) is not supported: a function has no outbound network; use new WebSocketPair() to accept a WebSocket in fetch");
      }
      this.onmessage = null; this.onclose = null; this.onerror = null; this.onopen = null;
    }
    static _pair() {
      pairing = true;
      let a, b;
      try { a = new WebSocket(); b = new WebSocket(); } finally { pairing = false; }
      a.#peer = b; b.#peer = a;
      return [a, b];
    }
    // Hands `client` to the runtime: its peer (the server end) is bridged to the connection
    // of fetch invocation `invocation`.
    static _bridge(invocation, client) {
      if (client.#handedOut || client.#accepted || client.#sid !== null || client.#peer === null) {
        throw new TypeError("a Response's webSocket must be an end of a WebSocketPair that was not accepted or returned before");
      }
      const server = client.#peer;
      client.#handedOut = true;
      client.#state = 3;
      const sid = native.wsAttach(invocation, server);
      server.#sid = sid;
      bridgedSockets.set(sid, server);
    }
    static _event(sid, type, data, code, reason) {
      const ws = bridgedSockets.get(sid);
      if (!ws) return;
      if (type === "close") {
        bridgedSockets.delete(sid);
        // A connection that broke without a close frame is an error first, as in browsers.
        if (code === 1006) ws.#receive(new WsEvent("error", { message: "the WebSocket connection broke" }));
        ws.#receive(new WsEvent("close", { code, reason, wasClean: code !== 1006 }));
      } else {
        ws.#receive(new WsEvent("message", { data }));
      }
    }
    get readyState() { return this.#state; }
    get url() { return null; }
    get protocol() { return null; }
    get extensions() { return null; }
    accept() {
      if (this.#handedOut) throw new TypeError("this end of the WebSocketPair was returned in a Response; accept the other end");
      if (this.#accepted) throw new TypeError("accept() was already called on this WebSocket");
      this.#accepted = true;
      const queued = this.#pending;
      this.#pending = [];
      if (queued.length) queueMicrotask(() => { for (const ev of queued) this.#dispatch(ev); });
    }
    addEventListener(type, fn) {
      if (typeof fn !== "function" && !(fn && typeof fn.handleEvent === "function")) return;
      let set = this.#listeners.get(type);
      if (!set) { set = new Set(); this.#listeners.set(type, set); }
      set.add(fn);
    }
    removeEventListener(type, fn) {
      const set = this.#listeners.get(type);
      if (set) set.delete(fn);
    }
    send(data) {
      if (!this.#accepted) throw new TypeError("You must call accept() on this WebSocket before sending messages.");
      if (this.#state !== 1) throw new TypeError("Can't call WebSocket send() after close().");
      let payload;
      if (typeof data === "string") payload = data;
      else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) payload = toU8(data).slice();
      else payload = String(data);
      if (this.#sid !== null) {
        if (native.wsSend(this.#sid, payload) === 2) this.#state = 2;
        return;
      }
      const peer = this.#peer;
      if (peer === null || peer.#handedOut) return;
      const out = typeof payload === "string" ? payload : payload.buffer;
      queueMicrotask(() => peer.#receive(new WsEvent("message", { data: out })));
    }
    close(code, reason) {
      if (code !== undefined) {
        code = Number(code);
        if (!closeCodeOk(code)) throw new TypeError(`Invalid WebSocket close code ${code}: use 1000 or 3000-4999`);
      }
      reason = reason === undefined ? "" : String(reason);
      if (utf8Length(reason) > 123) throw new TypeError("a WebSocket close reason may be at most 123 bytes of UTF-8");
      if (this.#state >= 2) return;
      this.#state = 2;
      if (this.#sid !== null) {
        native.wsClose(this.#sid, code === undefined ? 1000 : code, reason);
        return;
      }
      const peer = this.#peer;
      const ev = { code: code === undefined ? 1005 : code, reason, wasClean: true };
      queueMicrotask(() => {
        if (peer !== null && !peer.#handedOut) peer.#receive(new WsEvent("close", ev));
        this.#state = 3;
      });
    }
    // Closes with any code (a capnweb session's 1009, 1013…), for the runtime's own use.
    _closeRaw(code, reason) {
      if (this.#state >= 2) return;
      this.#state = 2;
      if (this.#sid !== null) { native.wsClose(this.#sid, code, String(reason)); return; }
      const peer = this.#peer;
      queueMicrotask(() => {
        if (peer !== null && !peer.#handedOut) peer.#receive(new WsEvent("close", { code, reason: String(reason), wasClean: true }));
        this.#state = 3;
      });
    }
    #receive(ev) {
      if (ev.type === "close") this.#state = 3;
      if (!this.#accepted) { this.#pending.push(ev); return; }
      this.#dispatch(ev);
    }
    #dispatch(ev) {
      const targets = [];
      const own = this["on" + ev.type];
      if (typeof own === "function") targets.push(own);
      const set = this.#listeners.get(ev.type);
      if (set) targets.push(...set);
      for (const fn of targets) {
        try {
          const r = typeof fn === "function" ? fn.call(this, ev) : fn.handleEvent(ev);
          if (r && typeof r.then === "function") {
            r.then(undefined, (e) => console.error(`Uncaught exception in WebSocket ${ev.type} listener:`, e));
          }
        } catch (e) {
          console.error(`Uncaught exception in WebSocket ${ev.type} listener:`, e);
        }
      }
    }
  }
  for (const [k, v] of [["CONNECTING", 0], ["OPEN", 1], ["CLOSING", 2], ["CLOSED", 3]]) {
    Object.defineProperty(WebSocket, k, { value: v });
    Object.defineProperty(WebSocket.prototype, k, { value: v });
  }
  // Bytes of `s` in UTF-8 (a lone surrogate counts as U+FFFD, three bytes, as it is encoded).
  function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length &&
               (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
      else n += 3;
    }
    return n;
  }
  class WebSocketPair {
    constructor() {
      const [client, server] = WebSocket._pair();
      this[0] = client;
      this[1] = server;
    }
  }
  define("WebSocket", WebSocket);
  define("WebSocketPair", WebSocketPair);

  // ---- crypto, performance, structuredClone ----------------------------------------------
  const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
    Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
  define("crypto", {
    getRandomValues(ta) {
      if (!INTEGER_ARRAYS.some((C) => ta instanceof C)) {
        const e = new TypeError("getRandomValues requires an integer typed array"); e.name = "TypeMismatchError"; throw e;
      }
      if (ta.byteLength > 65536) {
        const e = new Error("getRandomValues: at most 65536 bytes"); e.name = "QuotaExceededError"; throw e;
      }
      new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength).set(native.randomBytes(ta.byteLength));
      return ta;
    },
    randomUUID() {
      const b = native.randomBytes(16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  });
  let timeOrigin = Date.now();
  define("performance", { now: () => native.now(), get timeOrigin() { return timeOrigin; } });

  function dataCloneError(what) {
    const e = new Error(`${what} could not be cloned.`); e.name = "DataCloneError"; return e;
  }
  function clone(v, seen) {
    if (typeof v === "function" || typeof v === "symbol") throw dataCloneError(String(v));
    if (v === null || typeof v !== "object") return v;
    if (seen.has(v)) return seen.get(v);
    let out;
    if (Array.isArray(v)) {
      out = []; seen.set(v, out);
      for (let i = 0; i < v.length; i++) out[i] = clone(v[i], seen);
      return out;
    }
    if (v instanceof Date) return new Date(v.getTime());
    if (v instanceof RegExp) return new RegExp(v.source, v.flags);
    if (v instanceof ArrayBuffer) return v.slice(0);
    if (ArrayBuffer.isView(v)) {
      const C = v.constructor;
      return new C(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    }
    if (v instanceof Map) {
      out = new Map(); seen.set(v, out);
      for (const [k, x] of v) out.set(clone(k, seen), clone(x, seen));
      return out;
    }
    if (v instanceof Set) {
      out = new Set(); seen.set(v, out);
      for (const x of v) out.add(clone(x, seen));
      return out;
    }
    if (v instanceof Error) {
      const e = new (G[v.name] || Error)(v.message);
      seen.set(v, e);
      if (v.stack !== undefined) e.stack = v.stack;
      return e;
    }
    out = {}; seen.set(v, out);
    for (const k of Object.keys(v)) out[k] = clone(v[k], seen);
    return out;
  }
  define("structuredClone", (v) => clone(v, new Map()));

  // ---- fetch ---------------------------------------------------------------------------
  let outbound = null;
  define("fetch", async (input, init) => {
    const request = new Request(input, init);
    if (outbound === null) {
      throw new TypeError(
        "fetch() is not allowed: this function has no network access (no globalOutbound binding was granted)");
    }
    return await outbound.fetch(request);
  });

  // ---- WebAssembly ---------------------------------------------------------------------
  // Built on first use: an accessor that replaces itself with the namespace object (or with
  // whatever user code assigns).
  Object.defineProperty(G, "WebAssembly", {
    configurable: true,
    enumerable: false,
    get() {
      const W = native.webAssembly();
      define("WebAssembly", W);
      return W;
    },
    set(v) {
      define("WebAssembly", v);
    },
  });
  // The module map's `.wasm` modules: the loader calls this with (name, bytes) when it loads
  // one (compile errors surface there), and the module's source exports `(name)`'s result.
  const wasmModules = new Map();
  Object.defineProperty(G, "__functions_wasm_module", {
    value(name, bytes) {
      if (bytes === undefined) return wasmModules.get(name);
      const m = native.newWasmModule(bytes);
      wasmModules.set(name, m);
      return m;
    },
  });

  // ---- Node built-in modules (node.rs) ----------------------------------------------------
  // `node:buffer`, `node:events`, `node:util`: each evaluated on its first import or require,
  // from bytecode, with the natives it needs; the module loader takes their exports from here.
  const nodeModules = new Map();
  let nodeHost = null;
  function nodeModule(name) {
    name = String(name);
    let m = nodeModules.get(name);
    if (m === undefined) {
      nodeHost ??= Object.freeze({
        utf8Encode: native.utf8Encode, utf8Decode: native.utf8Decode, utf8Length,
        b64encode: native.b64encode, b64decode: native.b64decode, atob, btoa, TextEncoder, TextDecoder,
        isPromise: native.isPromise, isNativeError: native.isNativeError, isProxy: native.isProxy,
        promiseState: native.promiseState, require: nodeModule,
      });
      m = native.nodeModule(name)(nodeHost);
      nodeModules.set(name, m);
    }
    return m;
  }
  Object.defineProperty(G, "__functions_node", { value: nodeModule });

  // ---- hooks for the capnweb bridge ------------------------------------------------------
  function headerPairs(h) { return h._pairs(); }
  return {
    fireTimer,
    dropTimers,
    resetClock() { timeOrigin = Date.now(); },
    setOutbound(stub) { outbound = stub; },
    hasOutbound: () => outbound !== null,
    socketEvent: (sid, type, data, code, reason) => WebSocket._event(sid, type, data, code, reason),
    // What the fetch handler's answer `r` is sent as: a Response with a WebSocket attaches the
    // socket (when the caller can take one) and goes without it.
    fetchAnswer(invocation, r, allowSocket) {
      if (!(r instanceof Response) || r.webSocket === null) return r;
      if (!allowSocket) throw new TypeError(SOCKET_THROUGH_FETCH);
      WebSocket._bridge(invocation, r.webSocket);
      return r._withoutSocket();
    },
    snapshot(v) {
      if (v instanceof Request) return [9, [v.url, v.method, headerPairs(v.headers), v._rawBody()]];
      if (v instanceof Response && v.webSocket !== null) throw new TypeError(SOCKET_THROUGH_FETCH);
      if (v instanceof Response) return [10, [v.status, v.statusText, headerPairs(v.headers), v._rawBody()]];
      if (v instanceof Headers) return [11, headerPairs(v)];
      if (v instanceof URL) return [12, v.href];
      if (v instanceof ReadableStream) return [13, null];
      return null;
    },
    mkRequest: (url, method, headers, body) => Request._make(url, method, headers, body),
    mkResponse(status, statusText, headers, body) {
      const r = new Response(null, { status: status < 200 || status > 599 ? 200 : status, statusText, headers });
      r._initBody(body);
      return r;
    },
    mkHeaders: (pairs) => new Headers(pairs),
    mkReadable,
    pumpStream,
    mkUrl: (href) => new URL(href),
  };
})
