// Snippets of `node:buffer`, `node:events` and `node:util`, each answered as JSON. Node 20 runs
// them (record.mjs writes its answers to expected.json) and so does a function
// (crates/isolate/tests/node_builtins.rs), and the answers must be the same.
//
// Each case gets the modules as imported here; a case that throws is answered with the
// error's name, code and message (see `answer`).
import bufferDefault, * as buffer from "node:buffer";
import EventEmitter, * as events from "node:events";
import util, * as utilNs from "node:util";
import { Buffer as BareBuffer } from "buffer";
import BareEvents from "events";
import bareUtil from "util";
import required from "./require_cases.cjs";

const { Buffer } = buffer;
const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
/** What `fn` throws: name, code, message (or "no error"). */
function caught(fn) {
  try {
    fn();
    return "no error";
  } catch (e) {
    return { name: e?.name, code: e?.code, message: e?.message };
  }
}
async function rejected(p) {
  try {
    await p;
    return "no error";
  } catch (e) {
    return { name: e?.name, code: e?.code, message: e?.message };
  }
}

const STRINGS = ["", "hello", "héllo wörld", "日本語", "emoji 😀 ok", "\u0000\u007f\u0080\u00ff", "a\nb\tc", "\ud800 lone", "x".repeat(100)];
const ENCODINGS = ["utf8", "utf-8", "hex", "base64", "base64url", "latin1", "binary", "ascii", "utf16le", "ucs2", "UTF8", "Hex"];

export const cases = {
  // ---- modules and names --------------------------------------------------------------
  "modules: named and default exports"() {
    return {
      bufferDefaultIsModule: bufferDefault.Buffer === Buffer,
      bareBufferIsSame: BareBuffer === Buffer,
      eventsDefaultIsEmitter: EventEmitter === events.EventEmitter && BareEvents === EventEmitter,
      eventsOnce: typeof events.once,
      utilDefault: util.inspect === utilNs.inspect && bareUtil === util,
      utilNames: ["format", "inspect", "promisify", "callbackify", "inherits", "deprecate", "isDeepStrictEqual",
        "types", "TextEncoder", "TextDecoder"].map((n) => [n, typeof utilNs[n]]),
      bufferNames: ["Buffer", "kMaxLength", "constants", "INSPECT_MAX_BYTES", "atob", "btoa", "isUtf8", "isAscii"]
        .map((n) => [n, typeof buffer[n]]),
      textCodec: new utilNs.TextDecoder().decode(new utilNs.TextEncoder().encode("añb")),
    };
  },
  "modules: require() from CommonJS"() {
    return required;
  },

  // ---- Buffer: encodings --------------------------------------------------------------
  "buffer: from(string, enc) for every encoding"() {
    const out = {};
    for (const s of STRINGS) {
      for (const enc of ENCODINGS) out[`${enc}:${JSON.stringify(s).slice(0, 20)}`] = hex(Buffer.from(s, enc));
    }
    return out;
  },
  "buffer: toString(enc) round trips"() {
    const bytes = Buffer.from([0, 1, 0x7f, 0x80, 0xc3, 0xa9, 0xe6, 0x97, 0xa5, 0xff, 0xfe, 0x41, 0xf0, 0x9f, 0x98]);
    const out = {};
    for (const enc of ENCODINGS) {
      out[enc] = bytes.toString(enc);
      out[`${enc} back`] = hex(Buffer.from(bytes.toString(enc), enc));
    }
    for (const s of STRINGS) out[`utf8 ${JSON.stringify(s).slice(0, 16)}`] = Buffer.from(s).toString();
    return out;
  },
  "buffer: lenient decoding like Node"() {
    return [
      ["abz", "hex"], ["zz11", "hex"], ["a", "hex"], ["0A0b0C", "hex"],
      ["QR", "base64"], ["Q R=x", "base64"], ["a-_b", "base64"], ["YQ", "base64url"], ["Y", "base64"],
      ["YW=Jj", "base64"], ["Y*W", "base64"], ["aGVsbG8gd29ybGQ=", "base64"], ["aGVsbG8gd29ybGQ", "base64url"],
      ["  aGVs\nbG8=  ", "base64"], ["////", "base64"], ["____", "base64url"], ["++--", "base64"],
    ].map(([s, enc]) => [s, enc, hex(Buffer.from(s, enc))]);
  },
  "buffer: toString(enc, start, end)"() {
    const b = Buffer.from("hello world");
    return [b.toString("utf8", 0, 5), b.toString("utf8", 6), b.toString(undefined, 3, 8), b.toString("hex", 1, 3),
      b.toString("utf8", -5, 100), b.toString("utf8", 8, 2), b.toString("base64", 2), b.toString("latin1", 1.7, 4.2),
      caught(() => b.toString("nope"))];
  },
  "buffer: byteLength"() {
    return [
      ...STRINGS.map((s) => Buffer.byteLength(s)),
      Buffer.byteLength("aGVsbG8=", "base64"), Buffer.byteLength("abcd", "hex"), Buffer.byteLength("abc", "utf16le"),
      Buffer.byteLength("abc", "latin1"), Buffer.byteLength(new Uint16Array(3)), Buffer.byteLength(new ArrayBuffer(7)),
      caught(() => Buffer.byteLength(5)),
    ];
  },
  "buffer: isEncoding"() {
    return ["utf8", "UTF-8", "hex", "base64", "base64url", "latin1", "binary", "ascii", "ucs2", "ucs-2", "utf16le",
      "utf-16le", "utf16", "nope", "", null, undefined, 1].map((e) => Buffer.isEncoding(e));
  },
  "buffer: a lone surrogate encodes as U+FFFD"() {
    return [hex(Buffer.from("\ud83d")), hex(Buffer.from("a\udc00b")), Buffer.from([0xed, 0xa0, 0x80]).toString()];
  },

  // ---- Buffer: construction -----------------------------------------------------------
  "buffer: from(array, arrayBuffer, view, buffer)"() {
    const ab = new ArrayBuffer(8);
    const shared = Buffer.from(ab, 2, 4);
    new Uint8Array(ab)[3] = 9;
    const src = Buffer.from([1, 2, 3]);
    const copy = Buffer.from(src);
    src[0] = 99;
    return {
      array: hex(Buffer.from([1, 255, 256, -1, 1.9, "7", "x"])),
      arrayBufferShares: [shared.length, shared[1], shared.byteOffset],
      arrayBufferDefault: Buffer.from(ab).length,
      arrayBufferOffsetOnly: Buffer.from(ab, 6).length,
      bufferCopies: copy[0],
      uint16: hex(Buffer.from(new Uint16Array([1, 256, 0xffff]))),
      arrayLike: hex(Buffer.from({ length: 3, 0: 5, 1: 6, 2: 7 })),
      json: hex(Buffer.from({ type: "Buffer", data: [1, 2, 3] })),
      stringObject: hex(Buffer.from(new String("hi"))),
      offsetOut: caught(() => Buffer.from(ab, 9)),
      lengthOut: caught(() => Buffer.from(ab, 2, 7)),
      number: caught(() => Buffer.from(5)),
      nullArg: caught(() => Buffer.from(null)),
      isBuffer: [Buffer.isBuffer(copy), Buffer.isBuffer(new Uint8Array(2)), Buffer.isBuffer("x")],
      instance: [copy instanceof Uint8Array, copy instanceof Buffer, copy.constructor === Buffer],
    };
  },
  "buffer: alloc, allocUnsafe, fill"() {
    return {
      zero: hex(Buffer.alloc(4)),
      fillNumber: hex(Buffer.alloc(4, 7)),
      fillString: hex(Buffer.alloc(7, "abc")),
      fillHex: hex(Buffer.alloc(5, "ab01", "hex")),
      fillBuffer: hex(Buffer.alloc(5, Buffer.from([1, 2]))),
      fillMultibyte: hex(Buffer.alloc(5, "é")),
      unsafe: Buffer.allocUnsafe(10).length,
      unsafeSlow: Buffer.allocUnsafeSlow(3).length,
      // The message names kMaxLength, which is QuickJS's largest ArrayBuffer, not V8's.
      negative: caught(() => Buffer.alloc(-1)).code,
      notNumber: caught(() => Buffer.alloc("5")),
      tooBig: caught(() => Buffer.alloc(buffer.kMaxLength + 1)).code,
      fillMethod: hex(Buffer.alloc(6).fill("xy", 1, 5)),
      fillOffsetEnc: hex(Buffer.alloc(4).fill("ff", 2, "hex")),
      fillBad: caught(() => Buffer.alloc(4).fill("zz", "hex")),
      fillRange: caught(() => Buffer.alloc(4).fill(1, 0, 5)),
      fillEmpty: hex(Buffer.alloc(3, 1).fill("")),
      fillBool: hex(Buffer.alloc(2).fill(true)),
      fill257: hex(Buffer.alloc(2).fill(257)),
    };
  },
  "buffer: concat"() {
    const a = Buffer.from("ab"), b = Buffer.from("cde");
    return [
      Buffer.concat([a, b]).toString(), Buffer.concat([a, b], 3).toString(), hex(Buffer.concat([a, b], 7)),
      Buffer.concat([]).length, Buffer.concat([a, new Uint8Array([0x66])]).toString(),
      caught(() => Buffer.concat([a, "x"])), caught(() => Buffer.concat("x")), caught(() => Buffer.concat([a], -1)).code,
    ];
  },
  "buffer: compare and equals"() {
    const a = Buffer.from("abc"), b = Buffer.from("abd"), c = Buffer.from("ab");
    return [
      Buffer.compare(a, b), Buffer.compare(b, a), Buffer.compare(a, a), Buffer.compare(c, a),
      a.compare(b), a.compare(Buffer.from("xbcx"), 1, 3), a.compare(b, 0, 2, 0, 2), a.compare(c, 0, 2, 2, 3),
      a.equals(Buffer.from("abc")), a.equals(b), a.equals(new Uint8Array([97, 98, 99])),
      [a, b, c].sort(Buffer.compare).map(String),
      caught(() => a.equals("abc")), caught(() => Buffer.compare(a, "x")), caught(() => a.compare(b, 0, 9)),
    ];
  },
  "buffer: indexOf, lastIndexOf, includes"() {
    const b = Buffer.from("this is a buffer, a buffer");
    return [
      b.indexOf("is"), b.indexOf("is", 3), b.indexOf("buffer", -8), b.indexOf(Buffer.from("a b")), b.indexOf(98),
      b.indexOf(98 + 256), b.indexOf("zz"), b.indexOf(""), b.indexOf("", 100), b.indexOf("a", 100), b.indexOf("t", -100),
      b.lastIndexOf("buffer"), b.lastIndexOf("buffer", 15), b.lastIndexOf("a", -8), b.lastIndexOf(97), b.lastIndexOf("t", -100),
      b.lastIndexOf("r", 100), b.includes("a buf"), b.includes("nope"), b.includes(116), b.indexOf("6275", "hex"),
      b.indexOf("is", "latin1"), b.indexOf("is", null), b.indexOf("is", {}), b.lastIndexOf("is", undefined),
      Buffer.from("aXbXc", "utf16le").indexOf("X", 0, "utf16le"),
      caught(() => b.indexOf({})), caught(() => b.indexOf("x", 0, "nope")),
    ];
  },
  "buffer: slice and subarray share memory and are Buffers"() {
    const b = Buffer.from("abcdef");
    const s = b.slice(1, 4);
    const u = b.subarray(2);
    s[0] = 0x42;
    u[u.length - 1] = 0x46;
    return [
      b.toString(), s.toString(), u.toString(), Buffer.isBuffer(s), Buffer.isBuffer(u), s instanceof Buffer,
      b.slice(-2).toString(), b.slice(4, 2).length, b.slice(1.5, 3.9).toString(), b.subarray(-3, -1).toString(),
      b.slice(NaN, 2).toString(), b.slice("1", "3").toString(), Buffer.isBuffer(b.map((x) => x)),
      hex(b.reverse()), b.toString(),
    ];
  },
  "buffer: copy"() {
    const src = Buffer.from("abcdef");
    const out = [];
    for (const args of [[], [2], [0, 2], [0, 2, 4], [4, 0, 6], [10], [0, 6]]) {
      const t = Buffer.alloc(5, "-");
      out.push([args, src.copy(t, ...args), t.toString()]);
    }
    out.push(caught(() => src.copy(Buffer.alloc(2), -1)));
    out.push(caught(() => src.copy(Buffer.alloc(2), 0, 7)));
    out.push(caught(() => src.copy("x")));
    const overlap = Buffer.from("abcdef");
    overlap.copy(overlap, 2, 0, 4);
    out.push(overlap.toString());
    return out;
  },
  "buffer: write"() {
    const out = [];
    const b = Buffer.alloc(8);
    out.push(b.write("hi"), hex(b));
    out.push(b.write("abcd", 6), hex(b));
    out.push(b.write("ffee", 1, "hex"), hex(b));
    out.push(b.write("zzzz", 2, 2), hex(b));
    out.push(b.write("日本", 5), hex(b));
    out.push(b.write("aé", 6, 2), hex(b));
    out.push(b.write("xyz", "latin1"), hex(b));
    out.push(b.write("AB", 0, "utf16le"), hex(b));
    out.push(b.write("AB", 7, "utf16le"), hex(b));
    out.push(caught(() => b.write("x", 9)), caught(() => b.write("x", -1)), caught(() => b.write(5)),
      caught(() => b.write("x", 0, 1, "nope")));
    return out;
  },
  "buffer: toJSON and JSON.stringify"() {
    return [JSON.stringify(Buffer.from("hi")), Buffer.alloc(0).toJSON(), JSON.stringify({ b: Buffer.from([1, 2]) })];
  },
  "buffer: swap16/32/64"() {
    const b = Buffer.from("0102030405060708", "hex");
    return [hex(Buffer.from(b).swap16()), hex(Buffer.from(b).swap32()), hex(Buffer.from(b).swap64()),
      caught(() => Buffer.alloc(3).swap16())];
  },
  "buffer: kMaxLength and constants are consistent"() {
    return [typeof buffer.kMaxLength, buffer.constants.MAX_LENGTH === buffer.kMaxLength,
      buffer.INSPECT_MAX_BYTES, buffer.isUtf8(Buffer.from("é")), buffer.isUtf8(Buffer.from([0xff])),
      buffer.isAscii(Buffer.from("abc")), buffer.isAscii(Buffer.from("é")), buffer.atob("aGk="), buffer.btoa("hi")];
  },

  // ---- Buffer: numbers ----------------------------------------------------------------
  "buffer: read and write ints at their boundaries"() {
    const out = {};
    const sizes = { UInt8: 1, Int8: 1, UInt16LE: 2, UInt16BE: 2, Int16LE: 2, Int16BE: 2, UInt32LE: 4, UInt32BE: 4, Int32LE: 4, Int32BE: 4 };
    for (const [name, size] of Object.entries(sizes)) {
      const signed = !name.startsWith("U");
      const bits = size * 8;
      const min = signed ? -(2 ** (bits - 1)) : 0;
      const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
      for (const v of [min, max, 0, 1, -1, min - 1, max + 1, 1.5, -1.5, NaN, "7"]) {
        const b = Buffer.alloc(size + 1);
        let w;
        try {
          w = b[`write${name}`](v, 1);
        } catch (e) {
          w = { code: e.code, message: e.message };
        }
        out[`${name} ${String(v)}`] = [w, hex(b), b[`read${name}`](1)];
      }
      const b = Buffer.alloc(size);
      out[`${name} read past end`] = caught(() => b[`read${name}`](1));
      out[`${name} read negative`] = caught(() => b[`read${name}`](-1));
      out[`${name} read fraction`] = caught(() => b[`read${name}`](0.5));
      out[`${name} read string offset`] = caught(() => b[`read${name}`]("0"));
      out[`${name} write past end`] = caught(() => b[`write${name}`](0, size));
      out[`${name} on empty`] = caught(() => Buffer.alloc(0)[`read${name}`](0));
    }
    return out;
  },
  "buffer: lower-case aliases"() {
    const b = Buffer.alloc(8);
    b.writeUint32BE(0xdeadbeef);
    b.writeBigUint64LE(5n);
    return [b.readUint8(0), b.readUint16LE(0), b.readUint32LE(0), b.readBigUint64LE(0).toString()];
  },
  "buffer: variable-width ints"() {
    const out = [];
    for (const n of [1, 2, 3, 4, 5, 6]) {
      const b = Buffer.alloc(n);
      out.push([n, b.writeUIntLE(2 ** (n * 8) - 2, 0, n), hex(b), b.readUIntLE(0, n), b.readUIntBE(0, n),
        b.readIntLE(0, n), b.readIntBE(0, n)]);
      out.push(b.writeIntBE(-(2 ** (n * 8 - 1)), 0, n), hex(b), b.readIntBE(0, n));
      out.push(caught(() => b.writeUIntLE(2 ** (n * 8), 0, n)));
      out.push(caught(() => b.writeIntLE(2 ** (n * 8 - 1), 0, n)));
    }
    out.push(caught(() => Buffer.alloc(8).readUIntLE(0, 7)), caught(() => Buffer.alloc(8).readUIntLE(0)),
      caught(() => Buffer.alloc(2).readUIntBE(0, 3)));
    return out;
  },
  "buffer: bigints"() {
    const b = Buffer.alloc(9);
    const out = [];
    for (const v of [0n, 1n, 2n ** 64n - 1n, 2n ** 63n, 0x0102030405060708n]) {
      out.push(b.writeBigUInt64LE(v, 1), hex(b), String(b.readBigUInt64LE(1)), String(b.readBigInt64LE(1)));
      out.push(b.writeBigUInt64BE(v, 1), hex(b), String(b.readBigUInt64BE(1)), String(b.readBigInt64BE(1)));
    }
    for (const v of [-(2n ** 63n), -1n, 2n ** 63n - 1n]) {
      out.push(b.writeBigInt64LE(v), hex(b), String(b.readBigInt64LE()));
      out.push(b.writeBigInt64BE(v), hex(b), String(b.readBigInt64BE()));
    }
    out.push(caught(() => b.writeBigUInt64LE(-1n)), caught(() => b.writeBigUInt64LE(2n ** 64n)),
      caught(() => b.writeBigInt64LE(2n ** 63n)), caught(() => b.readBigUInt64LE(2)), caught(() => b.writeBigInt64BE(0n, 5)));
    return out;
  },
  "buffer: floats and doubles"() {
    const out = [];
    for (const v of [0, -0, 1.5, -2.25, 3.4e38, 1e-45, Infinity, -Infinity, NaN, Math.PI, 1 / 3, 2 ** 53 + 2]) {
      const f = Buffer.alloc(4), d = Buffer.alloc(8);
      out.push([String(v), f.writeFloatLE(v), hex(f), String(f.readFloatLE()), f.writeFloatBE(v), hex(f), String(f.readFloatBE()),
        d.writeDoubleLE(v), hex(d), String(d.readDoubleLE()), d.writeDoubleBE(v), hex(d), String(d.readDoubleBE())]);
    }
    out.push(caught(() => Buffer.alloc(4).readDoubleLE(0)), caught(() => Buffer.alloc(4).writeFloatLE(1, 1)),
      caught(() => Buffer.alloc(8).readDoubleBE(1)));
    return out;
  },

  // ---- events -------------------------------------------------------------------------
  "events: order, return values and this"() {
    const e = new EventEmitter();
    const log = [];
    e.on("x", function (a, b) { log.push(["first", a, b, this === e]); });
    e.on("x", (a) => log.push(["second", a]));
    e.prependListener("x", () => log.push(["prepended"]));
    const had = e.emit("x", 1, 2);
    const none = e.emit("y");
    return { log, had, none, count: e.listenerCount("x"), names: e.eventNames() };
  },
  "events: once semantics"() {
    const e = new EventEmitter();
    const log = [];
    const f = (v) => log.push(["once", v]);
    e.once("x", f);
    e.prependOnceListener("x", (v) => log.push(["prependOnce", v]));
    const raw = e.rawListeners("x");
    const before = { listeners: e.listeners("x").map((l) => l === f), raw: raw.map((l) => l.listener === f), rawIsWrapper: raw[1] !== f };
    e.emit("x", 1);
    e.emit("x", 2);
    e.once("y", f);
    e.off("y", f);
    e.emit("y", 3);
    // A wrapper from rawListeners called by hand fires once and removes itself.
    e.once("z", f);
    const w = e.rawListeners("z")[0];
    w(4);
    w(5);
    return { log, before, after: e.listenerCount("x"), z: e.listenerCount("z") };
  },
  "events: removing during emit does not change that emit"() {
    const e = new EventEmitter();
    const log = [];
    const b = () => log.push("b");
    e.on("x", () => { log.push("a"); e.off("x", b); e.on("x", () => log.push("late")); });
    e.on("x", b);
    e.emit("x");
    e.emit("x");
    return log;
  },
  "events: removeListener removes the most recent match"() {
    const e = new EventEmitter();
    const log = [];
    const f = () => log.push("f");
    const g = () => log.push("g");
    e.on("x", f); e.on("x", g); e.on("x", f);
    e.removeListener("x", f);
    e.emit("x");
    return [log, e.listeners("x").map((l) => (l === f ? "f" : "g"))];
  },
  "events: newListener and removeListener events"() {
    const e = new EventEmitter();
    const log = [];
    e.on("newListener", (name, l) => log.push(["new", String(name), typeof l, e.listenerCount(name)]));
    e.on("removeListener", (name, l) => log.push(["removed", String(name), l.name]));
    function one() {}
    function two() {}
    e.on("x", one);
    e.once("x", two);
    e.on(Symbol.for("s"), one);
    e.off("x", two);
    e.removeAllListeners("x");
    e.on("y", one);
    e.removeAllListeners();
    return { log, names: e.eventNames().map(String) };
  },
  "events: error with no listener throws"() {
    const e = new EventEmitter();
    const err = new Error("boom");
    let thrown;
    try { e.emit("error", err); } catch (x) { thrown = x === err; }
    const monitored = [];
    e.on(events.errorMonitor, (x) => monitored.push(x.message));
    try { e.emit("error", err); } catch {}
    e.on("error", (x) => monitored.push(`handled ${x.message}`));
    const handled = e.emit("error", err);
    return {
      thrown, monitored, handled,
      string: caught(() => new EventEmitter().emit("error", "boom")),
      none: caught(() => new EventEmitter().emit("error")),
      object: caught(() => new EventEmitter().emit("error", { a: 1 })),
    };
  },
  "events: max listeners"() {
    const e = new EventEmitter();
    const d = EventEmitter.defaultMaxListeners;
    e.setMaxListeners(2);
    return [d, e.getMaxListeners(), events.defaultMaxListeners, caught(() => e.setMaxListeners(-1)),
      caught(() => e.setMaxListeners("3")), e.setMaxListeners(0) === e, e.getMaxListeners(),
      events.getMaxListeners(e), caught(() => { EventEmitter.defaultMaxListeners = -1; })];
  },
  "events: listener checks and counts"() {
    const e = new EventEmitter();
    const f = () => {};
    e.on("x", f); e.on("x", f); e.once("x", f);
    return [e.listenerCount("x"), e.listenerCount("x", f), e.listenerCount("nope"), EventEmitter.listenerCount(e, "x"),
      caught(() => e.on("x", "nope")), caught(() => e.once("x")), e.off("nope", f) === e,
      events.getEventListeners(e, "x").length, e.removeAllListeners("x") === e, e.listenerCount("x")];
  },
  "events: subclassing, EventEmitter.call and inherits"() {
    class Mine extends EventEmitter {}
    function Old() { EventEmitter.call(this); }
    util.inherits(Old, EventEmitter);
    const m = new Mine(), o = new Old();
    const got = [];
    m.on("a", (v) => got.push(`mine ${v}`));
    o.on("a", (v) => got.push(`old ${v}`));
    m.emit("a", 1); o.emit("a", 2);
    return [got, o instanceof EventEmitter, Old.super_ === EventEmitter, Object.keys(o), Object.keys(m), typeof EventEmitter.init];
  },
  async "events: once() as a promise"() {
    const e = new EventEmitter();
    const p = events.once(e, "ready");
    queueMicrotask(() => e.emit("ready", 1, "two"));
    const args = await p;
    const q = EventEmitter.once(e, "never");
    queueMicrotask(() => e.emit("error", new Error("failed first")));
    const err = await rejected(q);
    const e2 = new EventEmitter();
    const r = events.once(e2, "error");
    queueMicrotask(() => e2.emit("error", new Error("as value")));
    const [asValue] = await r;
    return { args, err, asValue: asValue.message, left: [e.listenerCount("never"), e.listenerCount("error")] };
  },
  async "events: on() async iterator"() {
    const e = new EventEmitter();
    const it = events.on(e, "tick");
    queueMicrotask(() => { e.emit("tick", 1); e.emit("tick", 2); });
    const got = [];
    for await (const [v] of it) {
      got.push(v);
      if (got.length === 2) break;
    }
    return [got, e.listenerCount("tick"), e.listenerCount("error")];
  },
  "events: inspect of an emitter"() {
    const e = new EventEmitter();
    e.on("x", () => {});
    e.on("x", function named() {});
    return util.inspect(e);
  },

  // ---- util.format --------------------------------------------------------------------
  "util: format placeholders"() {
    const f = util.format;
    class WithToString { toString() { return "custom!"; } }
    return [
      f("%s %s", "a", "b"), f("%s", 42), f("%s", -0), f("%s", 10n), f("%s", null), f("%s", undefined), f("%s", Symbol("s")),
      f("%s", { a: 1 }), f("%s", [1, [2, [3]]]), f("%s", new WithToString()), f("%s", new Date(0)),
      f("%d", "42"), f("%d", 1.5), f("%d", -0), f("%d", "x"), f("%d", 5n), f("%d", {}),
      f("%i", "42.9"), f("%i", -1.9), f("%i", 7n), f("%f", "1.25x"), f("%f", "x"),
      f("%j", { a: [1, "x"] }), f("%j", "s"), (() => { const o = {}; o.o = o; return f("%j", o); })(),
      f("%o", { a: 1 }), f("%o", [1, 2]), f("%O", { a: { b: { c: { d: 1 } } } }),
      f("100%% sure"), f("%% %s", "x"), f("%c styled", "color: red"), f("%x %s", "a"), f("%s"), f("%s %s", "only"),
      f("a", "b", 3, { c: 1 }), f(1, 2), f({ a: 1 }, "x"), f("%s:%s", "a"), f("trailing %"), f("%s", "a", "extra", 4),
    ];
  },

  // ---- util.inspect -------------------------------------------------------------------
  "util: inspect of primitives and strings"() {
    const i = util.inspect;
    return [i("plain"), i("it's"), i('say "hi"'), i(`both ' and "`), i("all ' \" `"), i("a\nb\tc\\d\u0001\u007f"),
      i(1), i(-0), i(1n), i(true), i(null), i(undefined), i(Symbol("desc")), i(Symbol()), i(NaN), i(1e21),
      i("x".repeat(20) + "\n" + "y".repeat(120)), i(["x".repeat(130)])];
  },
  "util: inspect of objects and arrays"() {
    const i = util.inspect;
    return [
      i({}), i([]), i({ a: 1, b: "two", c: [3], d: { e: null } }), i({ "key-with-dash": 1, valid_id: 2, 3: "n" }),
      i([1, 2, 3]), i([1, 2, 3, 4, 5, 6, 7]), i(Array.from({ length: 30 }, (_, k) => k * 37)),
      i(Array.from({ length: 120 }, (_, k) => k)), i(["a", "bb", "ccc", "dddd", "eeeee", "ffffff", "ggggggg"]),
      i([1, , 3]), i(new Array(5)), i([undefined, null]), i(Object.assign([1, 2], { extra: true })),
      i({ a: { b: { c: { d: { e: 1 } } } } }), i({ a: { b: { c: {} } } }), i({ a: [[[[1]]]] }),
      i({ a: { b: { c: { d: 1 } } } }, { depth: 0 }), i({ a: { b: { c: { d: 1 } } } }, { depth: null }),
      i({ a: 1, b: 2 }, { compact: false }), i({ [Symbol("s")]: 1, normal: 2 }),
      i(Object.create(null)), i(Object.assign(Object.create(null), { x: 1 })),
      i({ get g() { return 1; }, set s(v) {}, get gs() { return 1; }, set gs(v) {} }),
      i({ long: "x".repeat(60), other: "y".repeat(60) }), i({ a: 1 }, { breakLength: 3 }),
      i({ list: Array.from({ length: 10 }, (_, k) => ({ id: k })) }), i([[1, 2], [3, 4]]),
      i({ __proto__: { inherited: 1 }, own: 2 }), i(Object.defineProperty({}, "hidden", { value: 1, enumerable: false })),
      i(Object.defineProperty({}, "hidden", { value: 1, enumerable: false }), { showHidden: true }),
    ];
  },
  "util: inspect of classes, functions and instances"() {
    const i = util.inspect;
    class Foo { constructor() { this.x = 1; } }
    class Bar extends Foo {}
    class Empty {}
    function named() {}
    const fnWithProps = Object.assign(function withProps() {}, { a: 1 });
    return [i(new Foo()), i(new Bar()), i(new Empty()), i(Foo), i(Bar), i(class {}), i(named), i(() => {}),
      i(async function af() {}), i(function* gen() {}), i(async function* ag() {}), i(fnWithProps),
      i({ method() {}, arrow: () => {} }), i(Math.max), i({ [Symbol.toStringTag]: "Tagged" }),
      i(new (class Tagged { get [Symbol.toStringTag]() { return "T"; } })())];
  },
  "util: inspect of Map, Set, dates, regexps, boxed, typed arrays"() {
    const i = util.inspect;
    return [
      i(new Map([["a", 1], [{ k: 1 }, [2]]])), i(new Set([1, "two", { three: 3 }])), i(new Map()), i(new Set()),
      i(new Map([[1, new Map([[2, new Map([[3, new Map([[4, 5]])]])]])]])),
      i(new Date(0)), i(new Date(NaN)), i(/a+b/gi), i(new Number(3)), i(new String("abc")), i(new Boolean(false)),
      i(Object(1n)), i(Object(Symbol("s"))), i(new Uint8Array([1, 2, 3])), i(new Float64Array([0.5, -0])),
      i(new BigInt64Array([1n, -1n])), i(new Uint8Array(0)), i(new Uint16Array(10).fill(300)),
      i(new ArrayBuffer(3)), i(new DataView(new ArrayBuffer(2))), i(new WeakMap()), i(new WeakSet()),
      i([new Map([["k", "v"]])]),
      i(Buffer.from("hello")), i(Buffer.alloc(60)), i({ buf: Buffer.from([1, 2]) }),
    ];
  },
  "util: inspect of circular structures"() {
    const i = util.inspect;
    const a = { name: "a" };
    a.self = a;
    const b = { name: "b", list: [] };
    b.list.push(b, { parent: b });
    const c = { x: {} };
    c.x.y = c.x;
    c.x.back = c;
    const m = new Map();
    m.set("m", m);
    const arr = [1];
    arr.push(arr);
    return [i(a), i(b), i(c), i(m), i(arr)];
  },
  "util: inspect of errors (first line)"() {
    const i = (v) => util.inspect(v).split("\n")[0];
    class MyError extends Error {}
    class NamedError extends Error { constructor(m) { super(m); this.name = "NamedError"; } }
    const withCode = Object.assign(new Error("coded"), { code: "E_X" });
    const noStack = new Error("no stack");
    Object.defineProperty(noStack, "stack", { value: undefined }); // (QuickJS's stack setter takes only strings)
    const r = new RangeError("range");
    return [i(new Error("plain")), i(new TypeError("bad type")), i(new MyError("mine")), i(new NamedError("named")),
      i(withCode), util.inspect(noStack), util.inspect(withCode).split("\n").slice(-2), i(r),
      caught(() => Buffer.alloc(1).readUInt8(5)).code, i({ err: new Error("nested") }),
      util.inspect(new Error("with cause", { cause: "why" })).split("\n").slice(-2)];
  },
  "util: inspect options and custom inspect"() {
    const i = util.inspect;
    const custom = { [util.inspect.custom](depth, opts, insp) { return `custom(${depth}, ${typeof opts.stylize}, ${insp === util.inspect})`; } };
    const returnsObject = { [Symbol.for("nodejs.util.inspect.custom")]() { return { replaced: true }; } };
    return [
      i(custom), i({ nested: custom }), i(returnsObject), i({ deep: { a: 1 } }, { depth: 0 }),
      i(Array.from({ length: 5 }, (_, k) => k), { maxArrayLength: 2 }), i("x".repeat(20), { maxStringLength: 5 }),
      i({ b: 1, a: 2 }, { sorted: true }), i({ a: [1, 2] }, false, 0), i({ a: 1 }, { compact: true }),
      i({ g: 1, get x() { return 5; } }, { getters: true }), i({ a: 1 }, { colors: true }),
      typeof util.inspect.defaultOptions, util.inspect.custom === Symbol.for("nodejs.util.inspect.custom"),
      i([1, 2, 3], { showHidden: true }),
    ];
  },
  async "util: inspect of promises"() {
    const p = Promise.resolve({ v: 1 });
    const r = Promise.reject(new Error("x"));
    r.catch(() => {});
    await null;
    return [util.inspect(p), util.inspect(new Promise(() => {})), util.inspect(r).split("\n")[0]];
  },

  // ---- util: the rest -----------------------------------------------------------------
  async "util: promisify"() {
    const cb = (a, b, done) => done(null, a + b);
    const fails = (done) => done(new Error("nope"));
    const multi = (done) => done(null, 1, 2);
    function withThis(done) { done(null, this.v); }
    function custom() {}
    custom[util.promisify.custom] = () => Promise.resolve("custom");
    const obj = { v: 7, m: util.promisify(withThis) };
    return {
      sum: await util.promisify(cb)(2, 3),
      err: await rejected(util.promisify(fails)()),
      multi: await util.promisify(multi)(),
      thisKept: await obj.m(),
      custom: await util.promisify(custom)(),
      sameCustom: util.promisify(custom) === custom[util.promisify.custom],
      idempotent: util.promisify(util.promisify(cb)) === util.promisify(util.promisify(cb)) ? "same" : "different",
      symbol: util.promisify.custom === Symbol.for("nodejs.util.promisify.custom"),
      notFn: caught(() => util.promisify(5)),
      length: util.promisify(cb).length,
      name: util.promisify(cb).name,
    };
  },
  async "util: callbackify"() {
    const ok = util.callbackify(async (x) => x * 2);
    const bad = util.callbackify(async () => { throw new Error("bad"); });
    const falsy = util.callbackify(() => Promise.reject(null));
    const call = (f, ...args) => new Promise((resolve) => f(...args, (err, v) => resolve([err ? { message: err.message, code: err.code, reason: err.reason } : null, v])));
    return [await call(ok, 21), await call(bad), await call(falsy), ok.name, ok.length,
      caught(() => util.callbackify("x")), caught(() => ok(1))];
  },
  "util: inherits and deprecate"() {
    function Base() {}
    Base.prototype.hello = function () { return "hello"; };
    function Child() { Base.call(this); }
    util.inherits(Child, Base);
    const dep = util.deprecate((a) => a + 1, "use something else", "DEP_TEST");
    return [new Child().hello(), Child.super_ === Base, Object.getPrototypeOf(Child.prototype) === Base.prototype,
      dep(1), dep(2), caught(() => util.inherits(Child, null)), caught(() => util.inherits(Child, {})),
      caught(() => util.deprecate("x")).name];
  },
  "util: isDeepStrictEqual"() {
    const eq = util.isDeepStrictEqual;
    const cyc1 = { a: 1 }; cyc1.self = cyc1;
    const cyc2 = { a: 1 }; cyc2.self = cyc2;
    return [
      eq({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), eq({ a: 1 }, { a: "1" }), eq([1, 2], [1, 2, 3]), eq(NaN, NaN),
      eq(0, -0), eq(new Date(1), new Date(1)), eq(new Date(1), new Date(2)), eq(/a/g, /a/g), eq(/a/g, /a/i),
      eq(new Map([[1, { x: 1 }]]), new Map([[1, { x: 1 }]])), eq(new Set([{ a: 1 }, 2]), new Set([2, { a: 1 }])),
      eq(new Set([1]), new Set([2])), eq(Buffer.from("ab"), Buffer.from("ab")), eq(new Uint8Array([1]), new Uint16Array([1])),
      eq({ a: undefined }, {}), eq([1, , 3], [1, undefined, 3]), eq(cyc1, cyc2), eq(new Error("x"), new Error("x")),
      eq(new Error("x"), new TypeError("x")), eq(Object.create(null), {}), eq(new Number(1), new Number(1)),
      eq({ [Symbol.for("s")]: 1 }, { [Symbol.for("s")]: 1 }), eq({ [Symbol.for("s")]: 1 }, {}), eq([], {}),
    ];
  },
  async "util: types"() {
    const t = util.types;
    const checks = {
      isPromise: [Promise.resolve(), { then() {} }],
      isDate: [new Date(), { __proto__: Date.prototype }],
      isRegExp: [/x/, { __proto__: RegExp.prototype }],
      isMap: [new Map(), new WeakMap()],
      isSet: [new Set(), new WeakSet()],
      isWeakMap: [new WeakMap(), new Map()],
      isWeakSet: [new WeakSet(), new Set()],
      isUint8Array: [new Uint8Array(1), Buffer.alloc(1), new Int8Array(1)],
      isTypedArray: [new Float32Array(1), new DataView(new ArrayBuffer(1)), []],
      isArrayBuffer: [new ArrayBuffer(1), new Uint8Array(1)],
      isAnyArrayBuffer: [new ArrayBuffer(1)],
      isArrayBufferView: [new DataView(new ArrayBuffer(1)), Buffer.alloc(1), new ArrayBuffer(1)],
      isDataView: [new DataView(new ArrayBuffer(1))],
      isNativeError: [new Error(), new TypeError(), { name: "Error", message: "" }],
      isAsyncFunction: [async () => {}, () => {}, async function* () {}],
      isGeneratorFunction: [function* () {}, () => {}],
      isGeneratorObject: [(function* () {})(), {}],
      isBoxedPrimitive: [new Number(1), 1, Object(Symbol())],
      isNumberObject: [new Number(1), 1],
      isStringObject: [new String("x"), "x"],
      isBooleanObject: [new Boolean(true), true],
      isBigIntObject: [Object(1n), 1n],
      isSymbolObject: [Object(Symbol()), Symbol()],
      isMapIterator: [new Map().keys(), new Set().keys()],
      isSetIterator: [new Set().values(), new Map().values()],
      isArgumentsObject: [(function () { return arguments; })(), []],
      isBigInt64Array: [new BigInt64Array(1), new BigUint64Array(1)],
      isFloat64Array: [new Float64Array(1)],
      isProxy: [new Proxy({}, {}), {}],
    };
    const out = {};
    for (const [name, values] of Object.entries(checks)) out[name] = values.map((v) => t[name](v));
    return out;
  },
  "util: legacy is* and helpers"() {
    return [util.isArray([]), util.isArray({}), util.isDeepStrictEqual(1, 1), util.toUSVString("a\ud800b"),
      util.stripVTControlCharacters("\u001b[31mred\u001b[39m"), util.isError(new Error()), util.isError({}),
      typeof util.debuglog("x"), util.debuglog("x").enabled];
  },
};

/** Every case's answer, by name: `{ value }` or `{ throws: { name, code, message } }`. */
export async function answers() {
  const out = {};
  for (const [name, fn] of Object.entries(cases)) {
    try {
      out[name] = { value: JSON.parse(JSON.stringify(await fn(), (k, v) => (typeof v === "bigint" ? `${v}n` : v === undefined ? "<undefined>" : v))) };
    } catch (e) {
      out[name] = { throws: { name: e?.name, code: e?.code, message: e?.message } };
    }
  }
  return out;
}
