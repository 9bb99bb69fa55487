// `node:buffer` (also `buffer`): Node's `Buffer`, a subclass of Uint8Array, with Node 20's
// encodings, reads and writes, and errors (`code` ERR_OUT_OF_RANGE & co.).
//
// Evaluated on the first import in an isolate (see node.rs) as a function of `host`: the
// isolate's UTF-8 and base64 natives (the ones TextEncoder/TextDecoder and atob/btoa use) and
// `require` for the other built-ins. A Buffer's memory is an ordinary ArrayBuffer, so the
// isolate's memory limit counts it like any other allocation.
(function (host) {
  "use strict";
  const errors = host.require("errors");
  const { invalidArgType, outOfRange, bufferOutOfBounds, unknownEncoding, invalidArgValue } = errors;

  // QuickJS's largest ArrayBuffer and string.
  const kMaxLength = 2 ** 31 - 1;
  const kStringMaxLength = 2 ** 30 - 1;
  const INSPECT_MAX_BYTES = 50;
  const customInspect = Symbol.for("nodejs.util.inspect.custom");

  class FastBuffer extends Uint8Array {
    // Node's constructor: (size) or (arrayBuffer, byteOffset, length) or (arrayLike).
    constructor(a, b, c) { super(a, b, c); }
  }

  // `Buffer(x)` and `new Buffer(x)`: deprecated in Node, still what old packages call.
  function Buffer(arg, encodingOrOffset, length) {
    if (typeof arg === "number") {
      if (typeof encodingOrOffset === "string") throw invalidArgType("string", "string", arg);
      return Buffer.alloc(arg);
    }
    return Buffer.from(arg, encodingOrOffset, length);
  }
  Object.defineProperty(Buffer, "prototype", { value: FastBuffer.prototype, writable: false });
  Object.defineProperty(FastBuffer.prototype, "constructor", {
    value: Buffer, writable: true, configurable: true, enumerable: false,
  });
  Object.setPrototypeOf(Buffer, Uint8Array);
  // Uint8Array methods that make a new array (subarray, map, filter, ...) make a Buffer.
  Object.defineProperty(Buffer, Symbol.species, { get() { return FastBuffer; }, configurable: true });
  Buffer.poolSize = 8 * 1024;

  // ---- encodings ----------------------------------------------------------------------
  function normalizeEncoding(enc) {
    if (enc == null || enc === "utf8" || enc === "utf-8") return "utf8";
    switch (String(enc).toLowerCase()) {
      case "utf8": case "utf-8": case "": return "utf8";
      case "ucs2": case "ucs-2": case "utf16le": case "utf-16le": return "utf16le";
      case "latin1": case "binary": return "latin1";
      case "base64": return "base64";
      case "base64url": return "base64url";
      case "hex": return "hex";
      case "ascii": return "ascii";
      default: return undefined;
    }
  }
  function encodingOf(enc) {
    const e = normalizeEncoding(enc);
    if (e === undefined) throw unknownEncoding(enc);
    return e;
  }

  const wrap = (u8) => new FastBuffer(u8.buffer, u8.byteOffset, u8.byteLength);

  function nibble(c) {
    if (c >= 48 && c <= 57) return c - 48;
    if (c >= 65 && c <= 70) return c - 55;
    if (c >= 97 && c <= 102) return c - 87;
    return -1;
  }
  function hexBytes(s) {
    const n = s.length >>> 1;
    const out = new FastBuffer(n);
    let i = 0;
    for (; i < n; i++) {
      // Node reads each UTF-16 code unit's low byte.
      const hi = nibble(s.charCodeAt(i * 2) & 0xff);
      const lo = nibble(s.charCodeAt(i * 2 + 1) & 0xff);
      // Node stops at the first pair that is not hex.
      if (hi < 0 || lo < 0) break;
      out[i] = hi * 16 + lo;
    }
    return i === n ? out : new FastBuffer(out.buffer, 0, i);
  }
  const STRICT_B64 = /^[A-Za-z0-9+/]*={0,2}$/;
  const B64_CHARS = new Uint8Array(256);
  for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") B64_CHARS[c.charCodeAt(0)] = 1;
  // Node's decoder: both alphabets, each UTF-16 code unit's low byte, anything else skipped,
  // stops at the first `=`; the native decoder gets the canonical form.
  function base64Bytes(s) {
    let clean = s;
    if (!(STRICT_B64.test(s) && s.length % 4 === 0)) {
      const kept = [];
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i) & 0xff;
        if (c === 0x3d) break;
        if (c === 0x2d) c = 0x2b;
        else if (c === 0x5f) c = 0x2f;
        if (B64_CHARS[c]) kept.push(c);
      }
      if (kept.length % 4 === 1) kept.pop();
      clean = "";
      for (let i = 0; i < kept.length; i += 4096) clean += String.fromCharCode.apply(null, kept.slice(i, i + 4096));
    }
    if (clean.length === 0) return new FastBuffer(0);
    return wrap(host.b64decode(clean));
  }
  function latin1Bytes(s) {
    const out = new FastBuffer(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function utf16Bytes(s) {
    const out = new FastBuffer(s.length * 2);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      out[i * 2] = c & 0xff;
      out[i * 2 + 1] = c >>> 8;
    }
    return out;
  }
  // A string's bytes in encoding `enc` (normalized).
  function stringBytes(s, enc) {
    switch (enc) {
      case "utf8": return wrap(host.utf8Encode(s));
      case "hex": return hexBytes(s);
      case "base64": case "base64url": return base64Bytes(s);
      case "latin1": case "ascii": return latin1Bytes(s);
      case "utf16le": return utf16Bytes(s);
    }
    throw unknownEncoding(enc);
  }

  const HEX = [];
  for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, "0"));
  function charCodes(u8, mask) {
    let out = "";
    const CHUNK = 4096;
    for (let i = 0; i < u8.length; i += CHUNK) {
      let part = u8.subarray(i, Math.min(i + CHUNK, u8.length));
      if (mask !== 0xff) part = Uint8Array.from(part, (b) => b & mask);
      out += String.fromCharCode.apply(null, part);
    }
    return out;
  }
  // The bytes `u8` decoded as `enc` (normalized).
  function bytesString(u8, enc) {
    switch (enc) {
      case "utf8": return host.utf8Decode(u8, false, true);
      case "hex": {
        let out = "";
        for (let i = 0; i < u8.length; i++) out += HEX[u8[i]];
        return out;
      }
      case "base64": return host.b64encode(u8);
      case "base64url": return host.b64encode(u8).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      case "latin1": return charCodes(u8, 0xff);
      case "ascii": return charCodes(u8, 0x7f);
      case "utf16le": {
        let out = "";
        const n = u8.length >>> 1;
        const CHUNK = 4096;
        for (let i = 0; i < n; i += CHUNK) {
          const codes = [];
          for (let j = i; j < Math.min(i + CHUNK, n); j++) codes.push(u8[j * 2] | (u8[j * 2 + 1] << 8));
          out += String.fromCharCode.apply(null, codes);
        }
        return out;
      }
    }
    throw unknownEncoding(enc);
  }

  const utf8Length = host.utf8Length;
  function base64Length(s) {
    let bytes = s.length;
    if (s.charCodeAt(bytes - 1) === 0x3d) bytes--;
    if (bytes > 1 && s.charCodeAt(bytes - 1) === 0x3d) bytes--;
    return (bytes * 3) >>> 2;
  }

  // ---- brand checks -------------------------------------------------------------------
  const typedArrayTag = Object.getOwnPropertyDescriptor(
    Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag).get;
  const isUint8Array = (v) => typedArrayTag.call(v) === "Uint8Array";
  const abByteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get;
  const sabByteLength = typeof SharedArrayBuffer === "function"
    ? Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, "byteLength").get : null;
  function isAnyArrayBuffer(v) {
    if (v === null || typeof v !== "object") return false;
    try { abByteLength.call(v); return true; } catch {}
    if (sabByteLength) { try { sabByteLength.call(v); return true; } catch {} }
    return false;
  }

  // ---- constructors -------------------------------------------------------------------
  function fromArrayBuffer(obj, byteOffset, length) {
    if (byteOffset === undefined) byteOffset = 0;
    else {
      byteOffset = +byteOffset;
      if (Number.isNaN(byteOffset)) byteOffset = 0;
    }
    const maxLength = obj.byteLength - byteOffset;
    if (maxLength < 0) throw bufferOutOfBounds("offset");
    if (length === undefined) length = maxLength;
    else {
      length = +length;
      if (length > 0) {
        if (length > maxLength) throw bufferOutOfBounds("length");
      } else length = 0;
    }
    return new FastBuffer(obj, byteOffset, length);
  }
  function fromArrayLike(obj) {
    if (obj.length <= 0) return new FastBuffer();
    return new FastBuffer(obj);
  }
  function fromObject(obj) {
    if (obj.length !== undefined || isAnyArrayBuffer(obj.buffer)) {
      if (typeof obj.length !== "number") return new FastBuffer();
      return fromArrayLike(obj);
    }
    if (obj.type === "Buffer" && Array.isArray(obj.data)) return fromArrayLike(obj.data);
    return undefined;
  }
  function fromString(s, encoding) {
    return stringBytes(s, typeof encoding === "string" ? encodingOf(encoding) : "utf8");
  }

  Buffer.from = function from(value, encodingOrOffset, length) {
    if (typeof value === "string") return fromString(value, encodingOrOffset);
    if (typeof value === "object" && value !== null) {
      if (isAnyArrayBuffer(value)) return fromArrayBuffer(value, encodingOrOffset, length);
      const valueOf = value.valueOf && value.valueOf();
      if (valueOf != null && valueOf !== value && (typeof valueOf === "string" || typeof valueOf === "object")) {
        return from(valueOf, encodingOrOffset, length);
      }
      const b = fromObject(value);
      if (b) return b;
      if (typeof value[Symbol.toPrimitive] === "function") {
        const primitive = value[Symbol.toPrimitive]("string");
        if (typeof primitive === "string") return fromString(primitive, encodingOrOffset);
      }
    }
    throw invalidArgType("first argument",
      ["string", "Buffer", "ArrayBuffer", "Array", "Array-like Object"], value);
  };
  Buffer.copyBytesFrom = function copyBytesFrom(view, offset, length) {
    if (!ArrayBuffer.isView(view) || view instanceof DataView) {
      throw invalidArgType("view", ["TypedArray"], view);
    }
    const size = view.BYTES_PER_ELEMENT;
    offset = offset === undefined ? 0 : offset;
    const end = length === undefined ? view.length : Math.min(view.length, offset + length);
    if (offset >= view.length || end <= offset) return new FastBuffer();
    const bytes = new Uint8Array(view.buffer, view.byteOffset + offset * size, (end - offset) * size);
    return new FastBuffer(bytes);
  };

  function validateSize(size) {
    errors.validateNumber(size, "size", 0, kMaxLength);
  }
  Buffer.alloc = function alloc(size, fill, encoding) {
    validateSize(size);
    if (fill !== undefined && fill !== 0 && size > 0) {
      return fill_(new FastBuffer(size), fill, 0, size, encoding);
    }
    return new FastBuffer(size);
  };
  // An ArrayBuffer is always zeroed: "unsafe" is only a name here.
  Buffer.allocUnsafe = function allocUnsafe(size) { validateSize(size); return new FastBuffer(size); };
  Buffer.allocUnsafeSlow = function allocUnsafeSlow(size) { validateSize(size); return new FastBuffer(size); };
  function SlowBuffer(size) { validateSize(size); return new FastBuffer(size); }
  Object.setPrototypeOf(SlowBuffer.prototype, Uint8Array.prototype);
  Object.setPrototypeOf(SlowBuffer, Uint8Array);

  Buffer.isBuffer = function isBuffer(b) { return b instanceof Buffer; };
  Buffer.isEncoding = function isEncoding(enc) {
    return typeof enc === "string" && enc.length !== 0 && normalizeEncoding(enc) !== undefined;
  };
  Buffer.byteLength = function byteLength(string, encoding) {
    if (typeof string !== "string") {
      if (ArrayBuffer.isView(string) || isAnyArrayBuffer(string)) return string.byteLength;
      throw invalidArgType("string", ["string", "Buffer", "ArrayBuffer"], string);
    }
    const len = string.length;
    if (len === 0) return 0;
    switch (normalizeEncoding(encoding) ?? "utf8") {
      case "utf8": return utf8Length(string);
      case "utf16le": return len * 2;
      case "latin1": case "ascii": return len;
      case "hex": return len >>> 1;
      case "base64": case "base64url": return base64Length(string);
    }
    return utf8Length(string);
  };
  function compareBytes(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
  }
  Buffer.compare = function compare(buf1, buf2) {
    if (!isUint8Array(buf1)) throw invalidArgType("buf1", ["Buffer", "Uint8Array"], buf1);
    if (!isUint8Array(buf2)) throw invalidArgType("buf2", ["Buffer", "Uint8Array"], buf2);
    if (buf1 === buf2) return 0;
    return compareBytes(buf1, buf2);
  };
  Buffer.concat = function concat(list, length) {
    if (!Array.isArray(list)) throw invalidArgType("list", "Array", list);
    if (list.length === 0) return new FastBuffer();
    if (length === undefined) {
      length = 0;
      for (let i = 0; i < list.length; i++) {
        if (list[i].length) length += list[i].length;
      }
    } else validateOffset(length, "length");
    const buffer = Buffer.allocUnsafe(length);
    let pos = 0;
    for (let i = 0; i < list.length; i++) {
      const buf = list[i];
      if (!isUint8Array(buf)) throw invalidArgType(`list[${i}]`, ["Buffer", "Uint8Array"], list[i]);
      pos += copyActual(buf, buffer, pos, 0, buf.length);
    }
    if (pos < length) buffer.fill(0, pos, length);
    return buffer;
  };

  // ---- validation helpers -------------------------------------------------------------
  function validateOffset(value, name, min = 0, max = kMaxLength) {
    if (typeof value !== "number") throw invalidArgType(name, "number", value);
    if (!Number.isInteger(value)) throw outOfRange(name, "an integer", value);
    if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  }
  function boundsError(value, length, type) {
    if (Math.floor(value) !== value) {
      errors.validateNumber(value, type || "offset");
      throw outOfRange(type || "offset", "an integer", value);
    }
    if (length < 0) throw bufferOutOfBounds();
    throw outOfRange(type || "offset", `>= ${type ? 1 : 0} and <= ${length}`, value);
  }
  function checkBounds(buf, offset, byteLength) {
    errors.validateNumber(offset, "offset");
    if (buf[offset] === undefined || buf[offset + byteLength] === undefined) {
      boundsError(offset, buf.length - (byteLength + 1));
    }
  }
  function checkInt(value, min, max, buf, offset, byteLength) {
    if (value > max || value < min) {
      const n = typeof min === "bigint" ? "n" : "";
      let range;
      if (byteLength > 3) {
        if (min === 0 || min === 0n) range = `>= 0${n} and < 2${n} ** ${(byteLength + 1) * 8}${n}`;
        else {
          range = `>= -(2${n} ** ${(byteLength + 1) * 8 - 1}${n}) and < 2${n} ** ` +
            `${(byteLength + 1) * 8 - 1}${n}`;
        }
      } else range = `>= ${min}${n} and <= ${max}${n}`;
      throw outOfRange("value", range, value);
    }
    checkBounds(buf, offset, byteLength);
  }

  // ---- the prototype ------------------------------------------------------------------
  const proto = Buffer.prototype;
  const define = (name, fn) => Object.defineProperty(proto, name, {
    value: fn, writable: true, configurable: true, enumerable: false,
  });

  define("toString", function toString(encoding, start, end) {
    if (arguments.length === 0) return host.utf8Decode(this, false, true);
    const len = this.length;
    if (start <= 0) start = 0;
    else if (start >= len) return "";
    else start = Math.trunc(start) || 0;
    if (end === undefined || end > len) end = len;
    else end = Math.trunc(end) || 0;
    if (end <= start) return "";
    const enc = encoding === undefined ? "utf8" : normalizeEncoding(encoding);
    if (enc === undefined) throw unknownEncoding(encoding);
    return bytesString(this.subarray(start, end), enc);
  });
  define("toLocaleString", proto.toString);
  define("equals", function equals(other) {
    if (!isUint8Array(other)) throw invalidArgType("otherBuffer", ["Buffer", "Uint8Array"], other);
    if (this === other) return true;
    if (this.byteLength !== other.byteLength) return false;
    return compareBytes(this, other) === 0;
  });
  define("compare", function compare(target, targetStart, targetEnd, sourceStart, sourceEnd) {
    if (!isUint8Array(target)) throw invalidArgType("target", ["Buffer", "Uint8Array"], target);
    if (targetStart === undefined) targetStart = 0;
    else validateOffset(targetStart, "targetStart");
    if (targetEnd === undefined) targetEnd = target.length;
    else validateOffset(targetEnd, "targetEnd", 0, target.length);
    if (sourceStart === undefined) sourceStart = 0;
    else validateOffset(sourceStart, "sourceStart");
    if (sourceEnd === undefined) sourceEnd = this.length;
    else validateOffset(sourceEnd, "sourceEnd", 0, this.length);
    if (sourceStart >= sourceEnd) return targetStart >= targetEnd ? 0 : -1;
    if (targetStart >= targetEnd) return 1;
    return compareBytes(this.subarray(sourceStart, sourceEnd), target.subarray(targetStart, targetEnd));
  });

  // Node's starting point of an indexOf/lastIndexOf search (src/node_buffer.cc IndexOfOffset).
  function searchOffset(length, offset, needleLength, forward) {
    if (offset < 0) {
      if (offset + length >= 0) return length + offset;
      if (forward || needleLength === 0) return 0;
      return -1;
    }
    if (offset + needleLength <= length) return offset;
    if (needleLength === 0) return length;
    if (forward) return -1;
    return length - 1;
  }
  function indexOfBytes(hay, needle, byteOffset, forward) {
    const at = searchOffset(hay.length, byteOffset, needle.length, forward);
    if (needle.length === 0) return at;
    if (hay.length === 0 || at <= -1) return -1;
    if ((forward && needle.length + at > hay.length) || needle.length > hay.length) return -1;
    const first = needle[0];
    const matches = (p) => {
      for (let j = 1; j < needle.length; j++) if (hay[p + j] !== needle[j]) return false;
      return true;
    };
    if (forward) {
      for (let p = hay.indexOf(first, at); p !== -1 && p + needle.length <= hay.length; p = hay.indexOf(first, p + 1)) {
        if (matches(p)) return p;
      }
      return -1;
    }
    for (let p = Math.min(at, hay.length - needle.length); p >= 0; p--) {
      if (hay[p] === first && matches(p)) return p;
    }
    return -1;
  }
  function indexOf(buffer, val, byteOffset, encoding, forward) {
    if (typeof byteOffset === "string") {
      encoding = byteOffset;
      byteOffset = undefined;
    } else if (byteOffset > 0x7fffffff) byteOffset = 0x7fffffff;
    else if (byteOffset < -0x80000000) byteOffset = -0x80000000;
    byteOffset = +byteOffset;
    if (Number.isNaN(byteOffset)) byteOffset = forward ? 0 : buffer.length;
    byteOffset = Math.trunc(byteOffset);
    if (typeof val === "number") {
      const at = searchOffset(buffer.length, byteOffset, 1, forward);
      if (at <= -1 || buffer.length === 0) return -1;
      const byte = (val >>> 0) & 0xff;
      return forward ? Uint8Array.prototype.indexOf.call(buffer, byte, at)
        : Uint8Array.prototype.lastIndexOf.call(buffer, byte, at);
    }
    const enc = encoding === undefined ? "utf8" : normalizeEncoding(encoding);
    if (typeof val === "string") {
      if (enc === undefined) throw unknownEncoding(encoding);
      return indexOfBytes(buffer, stringBytes(val, enc), byteOffset, forward);
    }
    if (isUint8Array(val)) return indexOfBytes(buffer, val, byteOffset, forward);
    throw invalidArgType("value", ["number", "string", "Buffer", "Uint8Array"], val);
  }
  define("indexOf", function (val, byteOffset, encoding) { return indexOf(this, val, byteOffset, encoding, true); });
  define("lastIndexOf", function (val, byteOffset, encoding) { return indexOf(this, val, byteOffset, encoding, false); });
  define("includes", function includes(val, byteOffset, encoding) { return this.indexOf(val, byteOffset, encoding) !== -1; });

  function fill_(buf, value, offset, end, encoding) {
    let enc;
    if (typeof value === "string") {
      if (offset === undefined || typeof offset === "string") {
        encoding = offset;
        offset = 0;
        end = buf.length;
      } else if (typeof end === "string") {
        encoding = end;
        end = buf.length;
      }
      enc = normalizeEncoding(encoding);
      if (enc === undefined) {
        errors.validateString(encoding, "encoding");
        throw unknownEncoding(encoding);
      }
      if (value.length === 0) value = 0;
      else if (value.length === 1) {
        if (enc === "utf8") {
          const code = value.charCodeAt(0);
          if (code < 128) value = code;
        } else if (enc === "latin1") value = value.charCodeAt(0);
      }
    }
    if (offset === undefined) {
      offset = 0;
      end = buf.length;
    } else {
      validateOffset(offset, "offset");
      if (end === undefined) end = buf.length;
      else validateOffset(end, "end", 0, buf.length);
      if (offset >= end) return buf;
    }
    if (typeof value === "number") {
      if (offset > end || end - offset + offset > buf.byteLength) throw bufferOutOfBounds();
      Uint8Array.prototype.fill.call(buf, value, offset, end);
      return buf;
    }
    let bytes;
    if (typeof value === "string") bytes = stringBytes(value, enc);
    else if (isUint8Array(value)) bytes = value;
    else if (ArrayBuffer.isView(value)) bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    else {
      Uint8Array.prototype.fill.call(buf, (Number(value) >>> 0) & 255, offset, end);
      return buf;
    }
    if (bytes.length === 0) throw invalidArgValue("value", value);
    if (offset > buf.length || end > buf.length) throw bufferOutOfBounds();
    for (let i = offset, j = 0; i < end; i++, j = (j + 1) % bytes.length) buf[i] = bytes[j];
    return buf;
  }
  define("fill", function fill(value, offset, end, encoding) { return fill_(this, value, offset, end, encoding); });

  function toInteger(n, defaultVal) {
    n = +n;
    if (!Number.isNaN(n) && n >= Number.MIN_SAFE_INTEGER && n <= Number.MAX_SAFE_INTEGER) {
      return n % 1 === 0 ? n : Math.floor(n);
    }
    return defaultVal;
  }
  function copyActual(source, target, targetStart, sourceStart, sourceEnd) {
    if (sourceEnd - sourceStart > target.length - targetStart) sourceEnd = sourceStart + target.length - targetStart;
    let nb = sourceEnd - sourceStart;
    const sourceLen = source.length - sourceStart;
    if (nb > sourceLen) nb = sourceLen;
    if (nb <= 0) return 0;
    if (sourceStart !== 0 || sourceEnd < source.length) {
      source = new Uint8Array(source.buffer, source.byteOffset + sourceStart, nb);
    }
    Uint8Array.prototype.set.call(target, source, targetStart);
    return nb;
  }
  define("copy", function copy(target, targetStart, sourceStart, sourceEnd) {
    if (!isUint8Array(this)) throw invalidArgType("source", ["Buffer", "Uint8Array"], this);
    if (!isUint8Array(target)) throw invalidArgType("target", ["Buffer", "Uint8Array"], target);
    if (targetStart === undefined) targetStart = 0;
    else {
      targetStart = toInteger(targetStart, 0);
      if (targetStart < 0) throw outOfRange("targetStart", ">= 0", targetStart);
    }
    if (sourceStart === undefined) sourceStart = 0;
    else {
      sourceStart = toInteger(sourceStart, 0);
      if (sourceStart < 0 || sourceStart > this.length) {
        throw outOfRange("sourceStart", `>= 0 && <= ${this.length}`, sourceStart);
      }
    }
    if (sourceEnd === undefined) sourceEnd = this.length;
    else {
      sourceEnd = toInteger(sourceEnd, 0);
      if (sourceEnd < 0) throw outOfRange("sourceEnd", ">= 0", sourceEnd);
    }
    if (targetStart >= target.length || sourceStart >= sourceEnd) return 0;
    return copyActual(this, target, targetStart, sourceStart, sourceEnd);
  });

  // How many of `bytes` (the encoding of a string in `enc`) fit in `room` without splitting
  // a character (UTF-8) or a code unit (UTF-16).
  function fitting(bytes, enc, room) {
    if (bytes.length <= room) return bytes.length;
    if (enc === "utf8") {
      let n = room;
      while (n > 0 && (bytes[n] & 0xc0) === 0x80) n--;
      return n;
    }
    if (enc === "utf16le") return room - (room % 2);
    return room;
  }
  define("write", function write(string, offset, length, encoding) {
    if (typeof string !== "string") throw errors.make(TypeError, "ERR_INVALID_ARG_TYPE", "argument must be a string");
    if (offset === undefined) {
      offset = 0;
      length = this.length;
    } else if (length === undefined && typeof offset === "string") {
      encoding = offset;
      length = this.length;
      offset = 0;
    } else {
      validateOffset(offset, "offset", 0, this.length);
      const remaining = this.length - offset;
      if (length === undefined) length = remaining;
      else if (typeof length === "string") {
        encoding = length;
        length = remaining;
      } else {
        validateOffset(length, "length", 0, this.length);
        if (length > remaining) length = remaining;
      }
    }
    const enc = !encoding ? "utf8" : normalizeEncoding(encoding);
    if (enc === undefined) throw unknownEncoding(encoding);
    const bytes = stringBytes(string, enc);
    const n = fitting(bytes, enc, length);
    Uint8Array.prototype.set.call(this, bytes.subarray(0, n), offset);
    return n;
  });
  define("toJSON", function toJSON() {
    if (this.length > 0) return { type: "Buffer", data: Array.from(this) };
    return { type: "Buffer", data: [] };
  });

  function adjustOffset(offset, length) {
    offset = Math.trunc(offset);
    if (offset === 0) return 0;
    if (offset < 0) {
      offset += length;
      return offset > 0 ? offset : 0;
    }
    if (offset < length) return offset;
    return Number.isNaN(offset) ? 0 : length;
  }
  define("slice", function slice(start, end) {
    const srcLength = this.length;
    start = adjustOffset(start, srcLength);
    end = end !== undefined ? adjustOffset(end, srcLength) : srcLength;
    const newLength = end > start ? end - start : 0;
    return new FastBuffer(this.buffer, this.byteOffset + start, newLength);
  });

  function swap(b, n, m) { const i = b[n]; b[n] = b[m]; b[m] = i; }
  define("swap16", function swap16() {
    if (this.length % 2 !== 0) throw errors.make(RangeError, "ERR_INVALID_BUFFER_SIZE", "Buffer size must be a multiple of 16-bits");
    for (let i = 0; i < this.length; i += 2) swap(this, i, i + 1);
    return this;
  });
  define("swap32", function swap32() {
    if (this.length % 4 !== 0) throw errors.make(RangeError, "ERR_INVALID_BUFFER_SIZE", "Buffer size must be a multiple of 32-bits");
    for (let i = 0; i < this.length; i += 4) { swap(this, i, i + 3); swap(this, i + 1, i + 2); }
    return this;
  });
  define("swap64", function swap64() {
    if (this.length % 8 !== 0) throw errors.make(RangeError, "ERR_INVALID_BUFFER_SIZE", "Buffer size must be a multiple of 64-bits");
    for (let i = 0; i < this.length; i += 8) {
      swap(this, i, i + 7); swap(this, i + 1, i + 6); swap(this, i + 2, i + 5); swap(this, i + 3, i + 4);
    }
    return this;
  });

  define(customInspect, function inspect(recurseTimes, ctx) {
    const max = INSPECT_MAX_BYTES;
    const actualMax = Math.min(max, this.length);
    const remaining = this.length - max;
    let str = "";
    for (let i = 0; i < actualMax; i++) str += (i ? " " : "") + HEX[this[i]];
    if (remaining > 0) str += ` ... ${remaining} more byte${remaining > 1 ? "s" : ""}`;
    const name = this.constructor === Buffer || this.constructor === undefined ? "Buffer" : this.constructor.name;
    const extras = [];
    if (ctx) {
      const util = host.require("util");
      for (const key of Object.keys(this)) {
        if (/^\d+$/.test(key)) continue;
        extras.push(`${key}: ${util.inspect(this[key], { ...ctx, breakLength: Infinity, compact: true })}`);
      }
    }
    if (extras.length) str += `${str ? ", " : ""}${extras.join(", ")}`;
    return `<${name} ${str}>`;
  });

  // ---- numbers ------------------------------------------------------------------------
  const f32 = new Float32Array(1);
  const f32u8 = new Uint8Array(f32.buffer);
  const f64 = new Float64Array(1);
  const f64u8 = new Uint8Array(f64.buffer);
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  function readUIntLE(buf, offset, byteLength) {
    checkBounds(buf, offset, byteLength - 1);
    let v = 0;
    for (let i = byteLength - 1; i >= 0; i--) v = v * 256 + buf[offset + i];
    return v;
  }
  function readUIntBE(buf, offset, byteLength) {
    checkBounds(buf, offset, byteLength - 1);
    let v = 0;
    for (let i = 0; i < byteLength; i++) v = v * 256 + buf[offset + i];
    return v;
  }
  const signed = (v, bits) => (v >= 2 ** (bits - 1) ? v - 2 ** bits : v);
  function validateByteLength(byteLength) {
    if (!(byteLength >= 1 && byteLength <= 6 && Number.isInteger(byteLength))) boundsError(byteLength, 6, "byteLength");
  }
  function validateReadOffset(offset) {
    if (offset === undefined) throw invalidArgType("offset", "number", offset);
  }
  function readFloat(buf, offset, size, le) {
    checkBounds(buf, offset, size - 1);
    const u8 = size === 4 ? f32u8 : f64u8;
    for (let i = 0; i < size; i++) u8[le === littleEndian ? i : size - 1 - i] = buf[offset + i];
    return size === 4 ? f32[0] : f64[0];
  }
  function writeFloat(buf, value, offset, size, le) {
    value = +value;
    checkBounds(buf, offset, size - 1);
    if (size === 4) f32[0] = value; else f64[0] = value;
    const u8 = size === 4 ? f32u8 : f64u8;
    for (let i = 0; i < size; i++) buf[offset + i] = u8[le === littleEndian ? i : size - 1 - i];
    return offset + size;
  }
  function writeUInt(buf, value, offset, byteLength, le, min, max) {
    checkInt(value, min, max, buf, offset, byteLength - 1);
    let v = Math.trunc(Number(value));
    if (v < 0) v += 2 ** (byteLength * 8);
    for (let i = 0; i < byteLength; i++) {
      buf[offset + (le ? i : byteLength - 1 - i)] = v % 256;
      v = Math.floor(v / 256);
    }
    return offset + byteLength;
  }
  function writeU8(buf, value, offset, min, max) {
    value = +value;
    errors.validateNumber(offset, "offset");
    if (value > max || value < min) throw outOfRange("value", `>= ${min} and <= ${max}`, value);
    if (buf[offset] === undefined) boundsError(offset, buf.length - 1);
    buf[offset] = value;
    return offset + 1;
  }
  const INT = (bytes) => [-(2 ** (bytes * 8 - 1)), 2 ** (bytes * 8 - 1) - 1];
  const UINT = (bytes) => [0, 2 ** (bytes * 8) - 1];

  const numbers = {
    readUInt8(offset = 0) {
      errors.validateNumber(offset, "offset");
      const val = this[offset];
      if (val === undefined) boundsError(offset, this.length - 1);
      return val;
    },
    readInt8(offset = 0) { return signed(numbers.readUInt8.call(this, offset), 8); },
    readUInt16LE(offset = 0) { return readUIntLE(this, offset, 2); },
    readUInt16BE(offset = 0) { return readUIntBE(this, offset, 2); },
    readUInt32LE(offset = 0) { return readUIntLE(this, offset, 4); },
    readUInt32BE(offset = 0) { return readUIntBE(this, offset, 4); },
    readInt16LE(offset = 0) { return signed(readUIntLE(this, offset, 2), 16); },
    readInt16BE(offset = 0) { return signed(readUIntBE(this, offset, 2), 16); },
    readInt32LE(offset = 0) { return signed(readUIntLE(this, offset, 4), 32); },
    readInt32BE(offset = 0) { return signed(readUIntBE(this, offset, 4), 32); },
    readUIntLE(offset, byteLength) { validateReadOffset(offset); validateByteLength(byteLength); return readUIntLE(this, offset, byteLength); },
    readUIntBE(offset, byteLength) { validateReadOffset(offset); validateByteLength(byteLength); return readUIntBE(this, offset, byteLength); },
    readIntLE(offset, byteLength) {
      validateReadOffset(offset);
      validateByteLength(byteLength);
      return signed(readUIntLE(this, offset, byteLength), byteLength * 8);
    },
    readIntBE(offset, byteLength) {
      validateReadOffset(offset);
      validateByteLength(byteLength);
      return signed(readUIntBE(this, offset, byteLength), byteLength * 8);
    },
    readBigUInt64LE(offset = 0) {
      checkBounds(this, offset, 7);
      const lo = readUIntLE(this, offset, 4);
      const hi = readUIntLE(this, offset + 4, 4);
      return BigInt(lo) + (BigInt(hi) << 32n);
    },
    readBigUInt64BE(offset = 0) {
      checkBounds(this, offset, 7);
      const hi = readUIntBE(this, offset, 4);
      const lo = readUIntBE(this, offset + 4, 4);
      return (BigInt(hi) << 32n) + BigInt(lo);
    },
    readBigInt64LE(offset = 0) { return BigInt.asIntN(64, numbers.readBigUInt64LE.call(this, offset)); },
    readBigInt64BE(offset = 0) { return BigInt.asIntN(64, numbers.readBigUInt64BE.call(this, offset)); },
    readFloatLE(offset = 0) { return readFloat(this, offset, 4, true); },
    readFloatBE(offset = 0) { return readFloat(this, offset, 4, false); },
    readDoubleLE(offset = 0) { return readFloat(this, offset, 8, true); },
    readDoubleBE(offset = 0) { return readFloat(this, offset, 8, false); },

    writeUInt8(value, offset = 0) { return writeU8(this, value, offset, 0, 0xff); },
    writeInt8(value, offset = 0) { return writeU8(this, value, offset, -0x80, 0x7f); },
    writeUInt16LE(value, offset = 0) { return writeUInt(this, value, offset, 2, true, ...UINT(2)); },
    writeUInt16BE(value, offset = 0) { return writeUInt(this, value, offset, 2, false, ...UINT(2)); },
    writeUInt32LE(value, offset = 0) { return writeUInt(this, value, offset, 4, true, ...UINT(4)); },
    writeUInt32BE(value, offset = 0) { return writeUInt(this, value, offset, 4, false, ...UINT(4)); },
    writeInt16LE(value, offset = 0) { return writeUInt(this, value, offset, 2, true, ...INT(2)); },
    writeInt16BE(value, offset = 0) { return writeUInt(this, value, offset, 2, false, ...INT(2)); },
    writeInt32LE(value, offset = 0) { return writeUInt(this, value, offset, 4, true, ...INT(4)); },
    writeInt32BE(value, offset = 0) { return writeUInt(this, value, offset, 4, false, ...INT(4)); },
    writeUIntLE(value, offset, byteLength) {
      validateByteLength(byteLength);
      return writeUInt(this, value, offset, byteLength, true, ...UINT(byteLength));
    },
    writeUIntBE(value, offset, byteLength) {
      validateByteLength(byteLength);
      return writeUInt(this, value, offset, byteLength, false, ...UINT(byteLength));
    },
    writeIntLE(value, offset, byteLength) {
      validateByteLength(byteLength);
      return writeUInt(this, value, offset, byteLength, true, ...INT(byteLength));
    },
    writeIntBE(value, offset, byteLength) {
      validateByteLength(byteLength);
      return writeUInt(this, value, offset, byteLength, false, ...INT(byteLength));
    },
    writeBigUInt64LE(value, offset = 0) { return writeBig(this, value, offset, true, 0n, 0xffffffffffffffffn); },
    writeBigUInt64BE(value, offset = 0) { return writeBig(this, value, offset, false, 0n, 0xffffffffffffffffn); },
    writeBigInt64LE(value, offset = 0) { return writeBig(this, value, offset, true, -(2n ** 63n), 2n ** 63n - 1n); },
    writeBigInt64BE(value, offset = 0) { return writeBig(this, value, offset, false, -(2n ** 63n), 2n ** 63n - 1n); },
    writeFloatLE(value, offset = 0) { return writeFloat(this, value, offset, 4, true); },
    writeFloatBE(value, offset = 0) { return writeFloat(this, value, offset, 4, false); },
    writeDoubleLE(value, offset = 0) { return writeFloat(this, value, offset, 8, true); },
    writeDoubleBE(value, offset = 0) { return writeFloat(this, value, offset, 8, false); },
  };
  function writeBig(buf, value, offset, le, min, max) {
    checkInt(value, min, max, buf, offset, 7);
    let v = BigInt.asUintN(64, value);
    for (let i = 0; i < 8; i++) {
      buf[offset + (le ? i : 7 - i)] = Number(v & 0xffn);
      v >>= 8n;
    }
    return offset + 8;
  }
  for (const [name, fn] of Object.entries(numbers)) {
    define(name, fn);
    // Node's lower-case aliases: readUint8, writeBigUint64LE, ...
    if (name.includes("UInt") || name.includes("BigUInt")) define(name.replace("UInt", "Uint"), fn);
  }

  // ---- the module ---------------------------------------------------------------------
  function isUtf8(input) {
    const u8 = isAnyArrayBuffer(input) ? new Uint8Array(input) : ArrayBuffer.isView(input)
      ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : null;
    if (u8 === null) throw invalidArgType("input", ["ArrayBuffer", "Buffer", "TypedArray"], input);
    try { host.utf8Decode(u8, true, true); return true; } catch { return false; }
  }
  function isAscii(input) {
    const u8 = isAnyArrayBuffer(input) ? new Uint8Array(input) : ArrayBuffer.isView(input)
      ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : null;
    if (u8 === null) throw invalidArgType("input", ["ArrayBuffer", "Buffer", "TypedArray"], input);
    for (let i = 0; i < u8.length; i++) if (u8[i] > 0x7f) return false;
    return true;
  }
  const constants = Object.freeze({ MAX_LENGTH: kMaxLength, MAX_STRING_LENGTH: kStringMaxLength });
  const exports = {
    Buffer,
    SlowBuffer,
    isUtf8,
    isAscii,
    kMaxLength,
    kStringMaxLength,
    btoa: host.btoa,
    atob: host.atob,
    constants,
    INSPECT_MAX_BYTES,
  };
  return exports;
})
