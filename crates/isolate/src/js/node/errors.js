// Node's error shapes, shared by the Node built-in modules (see node.rs): `code` as an own
// enumerable property and messages worded as Node 20 words them. Not importable by functions;
// the modules reach it as `host.require("errors")`.
(function (host) {
  "use strict";
  // Errors made here: util.inspect shows their code in the first line, as Node does.
  const coded = new WeakSet();
  function make(Base, code, message) {
    const e = new Base(message);
    Object.defineProperty(e, "code", { value: code, writable: true, enumerable: true, configurable: true });
    coded.add(e);
    return e;
  }
  const inspect = (v, opts) => host.require("util").inspect(v, opts);

  // What Node's messages say a value is ("type string ('x')", "an instance of Foo").
  function specificType(value) {
    if (value == null) return `${value}`;
    if (typeof value === "function" && value.name) return `function ${value.name}`;
    if (typeof value === "object") {
      const c = value.constructor;
      if (c && c.name) return `an instance of ${c.name}`;
      return inspect(value, { depth: -1 });
    }
    let shown = inspect(value, { colors: false });
    if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
    return `type ${typeof value} (${shown})`;
  }

  const TYPES = ["string", "function", "number", "object", "Function", "Object", "boolean", "bigint", "symbol"];
  const CLASS = /^([A-Z][a-z0-9]*)+$/;
  function joined(items, lead) {
    if (items.length > 2) return `${lead}${items.slice(0, -1).join(", ")}, or ${items[items.length - 1]}`;
    if (items.length === 2) return `${lead}${items[0]} or ${items[1]}`;
    return null;
  }
  function invalidArgType(name, expected, value) {
    const exp = Array.isArray(expected) ? expected : [expected];
    let msg = "The ";
    if (name.endsWith(" argument")) msg += `${name} `;
    else msg += `"${name}" ${name.includes(".") ? "property" : "argument"} `;
    msg += "must be ";
    const types = [], instances = [], other = [];
    for (const e of exp) {
      if (TYPES.includes(e)) types.push(e.toLowerCase());
      else if (CLASS.test(e)) instances.push(e);
      else other.push(e);
    }
    if (instances.length > 0) {
      const i = types.indexOf("object");
      if (i !== -1) { types.splice(i, 1); instances.push("Object"); }
    }
    if (types.length > 0) {
      msg += joined(types, "one of type ") ?? `of type ${types[0]}`;
      if (instances.length > 0 || other.length > 0) msg += " or ";
    }
    if (instances.length > 0) {
      if (instances.length > 2) msg += joined(instances, "an instance of ");
      else msg += `an instance of ${instances[0]}${instances.length === 2 ? ` or ${instances[1]}` : ""}`;
      if (other.length > 0) msg += " or ";
    }
    if (other.length > 0) {
      msg += joined(other, "one of ") ?? `${other[0].toLowerCase() !== other[0] ? "an " : ""}${other[0]}`;
    }
    msg += `. Received ${specificType(value)}`;
    return make(TypeError, "ERR_INVALID_ARG_TYPE", msg);
  }

  function addSeparators(s) {
    let out = "";
    let i = s.length;
    const start = s[0] === "-" ? 1 : 0;
    for (; i >= start + 4; i -= 3) out = `_${s.slice(i - 3, i)}${out}`;
    return `${s.slice(0, i)}${out}`;
  }
  function outOfRange(name, range, value) {
    let shown;
    if (Number.isInteger(value) && Math.abs(value) > 2 ** 32) shown = addSeparators(String(value));
    else if (typeof value === "bigint") {
      shown = String(value);
      if (value > 2n ** 32n || value < -(2n ** 32n)) shown = addSeparators(shown);
      shown += "n";
    } else shown = inspect(value);
    return make(RangeError, "ERR_OUT_OF_RANGE",
      `The value of "${name}" is out of range. It must be ${range}. Received ${shown}`);
  }
  function bufferOutOfBounds(name) {
    return make(RangeError, "ERR_BUFFER_OUT_OF_BOUNDS", name
      ? `"${name}" is outside of buffer bounds` : "Attempt to access memory outside buffer bounds");
  }
  function unknownEncoding(enc) {
    return make(TypeError, "ERR_UNKNOWN_ENCODING", `Unknown encoding: ${enc}`);
  }
  function invalidArgValue(name, value, reason = "is invalid") {
    let shown = inspect(value);
    if (shown.length > 128) shown = `${shown.slice(0, 128)}...`;
    return make(TypeError, "ERR_INVALID_ARG_VALUE",
      `The ${name.includes(".") ? "property" : "argument"} '${name}' ${reason}. Received ${shown}`);
  }

  function validateNumber(value, name, min, max) {
    if (typeof value !== "number") throw invalidArgType(name, "number", value);
    if ((min != null && value < min) || (max != null && value > max) ||
        ((min != null || max != null) && Number.isNaN(value))) {
      const range = `${min != null ? `>= ${min}` : ""}${min != null && max != null ? " && " : ""}` +
        `${max != null ? `<= ${max}` : ""}`;
      throw outOfRange(name, range, value);
    }
  }
  function validateInteger(value, name, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) {
    if (typeof value !== "number") throw invalidArgType(name, "number", value);
    if (!Number.isInteger(value)) throw outOfRange(name, "an integer", value);
    if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  }
  function validateFunction(value, name) {
    if (typeof value !== "function") throw invalidArgType(name, "Function", value);
  }
  function validateString(value, name) {
    if (typeof value !== "string") throw invalidArgType(name, "string", value);
  }
  function validateObject(value, name) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw invalidArgType(name, "Object", value);
    }
  }

  return {
    coded, make, specificType, invalidArgType, outOfRange, bufferOutOfBounds, unknownEncoding,
    invalidArgValue, validateNumber, validateInteger, validateFunction, validateString, validateObject,
  };
})
