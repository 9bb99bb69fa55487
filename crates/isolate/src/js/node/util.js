// `node:util` (also `util`): Node 20's `inspect` (its layout: depth, line breaking at
// `breakLength`, grouped arrays, `[Circular *1]`, Map/Set/typed arrays/errors/classes),
// `format`, `promisify`/`callbackify`, `inherits`, `deprecate`, `isDeepStrictEqual`, `types`,
// `TextEncoder`/`TextDecoder` and the legacy `is*` checks.
//
// Evaluated on the first import in an isolate (see node.rs) as a function of `host`: the
// brand checks only the engine can make (`isPromise`, `isNativeError`, `isProxy`,
// `promiseState`), the isolate's TextEncoder/TextDecoder, and `require`.
(function (host) {
  "use strict";
  const errors = host.require("errors");
  const { invalidArgType, validateFunction } = errors;

  // ---- brand checks (util.types) ------------------------------------------------------
  const TypedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = Object.getOwnPropertyDescriptor(TypedArrayProto, Symbol.toStringTag).get;
  const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).get;
  const branded = (fn) => (v) => {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) return false;
    try { fn(v); return true; } catch { return false; }
  };
  const mapSize = getter(Map.prototype, "size");
  const setSize = getter(Set.prototype, "size");
  const abLength = getter(ArrayBuffer.prototype, "byteLength");
  const sabLength = typeof SharedArrayBuffer === "function" ? getter(SharedArrayBuffer.prototype, "byteLength") : null;
  const dvLength = getter(DataView.prototype, "byteLength");
  const regexpSource = getter(RegExp.prototype, "source");
  const tagOf = (v) => Object.prototype.toString.call(v).slice(8, -1);
  const AsyncFunction = Object.getPrototypeOf(async function () {});
  const GeneratorFunction = Object.getPrototypeOf(function* () {});
  const AsyncGeneratorFunction = Object.getPrototypeOf(async function* () {});
  const Generator = GeneratorFunction.prototype;
  const AsyncGenerator = AsyncGeneratorFunction.prototype;
  const protoChainHas = (v, p) => {
    for (let o = v; o !== null && o !== undefined; o = Object.getPrototypeOf(o)) if (o === p) return true;
    return false;
  };
  const isTA = (name) => (v) => typedArrayTag.call(v) === name;

  const types = {
    isExternal: () => false,
    isDate: branded((v) => Date.prototype.getTime.call(v)),
    isArgumentsObject: (v) => v !== null && typeof v === "object" && tagOf(v) === "Arguments",
    isBigIntObject: branded((v) => { if (typeof v !== "object") throw 0; BigInt.prototype.valueOf.call(v); }),
    isBooleanObject: branded((v) => { if (typeof v !== "object") throw 0; Boolean.prototype.valueOf.call(v); }),
    isNumberObject: branded((v) => { if (typeof v !== "object") throw 0; Number.prototype.valueOf.call(v); }),
    isStringObject: branded((v) => { if (typeof v !== "object") throw 0; String.prototype.valueOf.call(v); }),
    isSymbolObject: branded((v) => { if (typeof v !== "object") throw 0; Symbol.prototype.valueOf.call(v); }),
    isNativeError: (v) => host.isNativeError(v),
    isRegExp: branded((v) => { if (v !== RegExp.prototype) regexpSource.call(v); else throw 0; }),
    isAsyncFunction: (v) => typeof v === "function" &&
      (protoChainHas(v, AsyncFunction) || protoChainHas(v, AsyncGeneratorFunction)),
    isGeneratorFunction: (v) => typeof v === "function" &&
      (protoChainHas(v, GeneratorFunction) || protoChainHas(v, AsyncGeneratorFunction)),
    isGeneratorObject: (v) => v !== null && typeof v === "object" &&
      (protoChainHas(v, Generator) || protoChainHas(v, AsyncGenerator)) &&
      (tagOf(v) === "Generator" || tagOf(v) === "AsyncGenerator"),
    isPromise: (v) => host.isPromise(v),
    isMap: branded((v) => mapSize.call(v)),
    isSet: branded((v) => setSize.call(v)),
    isMapIterator: (v) => v !== null && typeof v === "object" && tagOf(v) === "Map Iterator",
    isSetIterator: (v) => v !== null && typeof v === "object" && tagOf(v) === "Set Iterator",
    isWeakMap: branded((v) => WeakMap.prototype.has.call(v, {})),
    isWeakSet: branded((v) => WeakSet.prototype.has.call(v, {})),
    isArrayBuffer: branded((v) => abLength.call(v)),
    isDataView: branded((v) => dvLength.call(v)),
    isSharedArrayBuffer: sabLength ? branded((v) => sabLength.call(v)) : () => false,
    isProxy: (v) => host.isProxy(v),
    isModuleNamespaceObject: (v) => v !== null && typeof v === "object" &&
      Object.getPrototypeOf(v) === null && Object.getOwnPropertyDescriptor(v, Symbol.toStringTag)?.value === "Module",
    isAnyArrayBuffer: (v) => types.isArrayBuffer(v) || types.isSharedArrayBuffer(v),
    isBoxedPrimitive: (v) => types.isNumberObject(v) || types.isStringObject(v) || types.isBooleanObject(v) ||
      types.isBigIntObject(v) || types.isSymbolObject(v),
    isArrayBufferView: (v) => ArrayBuffer.isView(v),
    isTypedArray: (v) => typedArrayTag.call(v) !== undefined,
    isUint8Array: isTA("Uint8Array"),
    isUint8ClampedArray: isTA("Uint8ClampedArray"),
    isUint16Array: isTA("Uint16Array"),
    isUint32Array: isTA("Uint32Array"),
    isInt8Array: isTA("Int8Array"),
    isInt16Array: isTA("Int16Array"),
    isInt32Array: isTA("Int32Array"),
    isFloat32Array: isTA("Float32Array"),
    isFloat64Array: isTA("Float64Array"),
    isBigInt64Array: isTA("BigInt64Array"),
    isBigUint64Array: isTA("BigUint64Array"),
    isKeyObject: () => false,
    isCryptoKey: () => false,
  };

  // ---- inspect ------------------------------------------------------------------------
  const customInspect = Symbol.for("nodejs.util.inspect.custom");
  const defaultOptions = {
    showHidden: false,
    depth: 2,
    colors: false,
    customInspect: true,
    showProxy: false,
    maxArrayLength: 100,
    maxStringLength: 10000,
    breakLength: 80,
    compact: 3,
    sorted: false,
    getters: false,
    numericSeparator: false,
  };
  const kObjectType = 0;
  const kArrayType = 1;
  const kArrayExtrasType = 2;
  const kMinLineWidth = 16;
  const keyStrRegExp = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
  const numberRegExp = /^(0|[1-9][0-9]*)$/;
  // Constructors whose `toString` is the engine's (format's %s prints those objects inspected).
  const builtInObjects = new Set(["Object", "Function", "Array", "Number", "Boolean", "String",
    "Symbol", "Date", "Promise", "RegExp", "Error", "AggregateError", "EvalError", "RangeError",
    "ReferenceError", "SyntaxError", "TypeError", "URIError", "ArrayBuffer", "SharedArrayBuffer",
    "DataView", "Map", "Set", "WeakMap", "WeakSet", "WeakRef", "FinalizationRegistry", "Proxy",
    "Reflect", "BigInt", "JSON", "Math", "Intl", "Atomics", "Uint8Array", "Uint8ClampedArray",
    "Uint16Array", "Uint32Array", "Int8Array", "Int16Array", "Int32Array", "Float32Array",
    "Float64Array", "BigInt64Array", "BigUint64Array", "WebAssembly"]);

  const colors = {
    __proto__: null,
    reset: [0, 0], bold: [1, 22], dim: [2, 22], italic: [3, 23], underline: [4, 24], blink: [5, 25],
    inverse: [7, 27], hidden: [8, 28], strikethrough: [9, 29], doubleunderline: [21, 24],
    black: [30, 39], red: [31, 39], green: [32, 39], yellow: [33, 39], blue: [34, 39],
    magenta: [35, 39], cyan: [36, 39], white: [37, 39], bgBlack: [40, 49], bgRed: [41, 49],
    bgGreen: [42, 49], bgYellow: [43, 49], bgBlue: [44, 49], bgMagenta: [45, 49], bgCyan: [46, 49],
    bgWhite: [47, 49], framed: [51, 54], overlined: [53, 55], gray: [90, 39], redBright: [91, 39],
    greenBright: [92, 39], yellowBright: [93, 39], blueBright: [94, 39], magentaBright: [95, 39],
    cyanBright: [96, 39], whiteBright: [97, 39],
  };
  const styles = Object.assign(Object.create(null), {
    special: "cyan", number: "yellow", bigint: "yellow", boolean: "yellow", undefined: "grey",
    null: "bold", string: "green", symbol: "green", date: "magenta", regexp: "red", module: "underline",
  });
  colors.grey = colors.gray;
  function stylizeWithColor(str, styleType) {
    const style = styles[styleType];
    if (style !== undefined) {
      const color = colors[style];
      if (color !== undefined) return `\u001b[${color[0]}m${str}\u001b[${color[1]}m`;
    }
    return str;
  }
  function stylizeNoColor(str) { return str; }

  const meta = [
    "\\x00", "\\x01", "\\x02", "\\x03", "\\x04", "\\x05", "\\x06", "\\x07",
    "\\b", "\\t", "\\n", "\\x0B", "\\f", "\\r", "\\x0E", "\\x0F",
    "\\x10", "\\x11", "\\x12", "\\x13", "\\x14", "\\x15", "\\x16", "\\x17",
    "\\x18", "\\x19", "\\x1A", "\\x1B", "\\x1C", "\\x1D", "\\x1E", "\\x1F",
  ];
  for (let i = 32; i < 160; i++) meta.push("");
  meta[39] = "\\'";
  meta[92] = "\\\\";
  for (let i = 127; i < 160; i++) meta[i] = `\\x${i.toString(16).toUpperCase()}`;

  function strEscape(str) {
    let singleQuote = 39;
    if (str.includes("'")) {
      if (!str.includes('"')) singleQuote = -2;
      else if (!str.includes("`") && !str.includes("${")) singleQuote = -1;
    }
    let result = "";
    let last = 0;
    for (let i = 0; i < str.length; i++) {
      const point = str.charCodeAt(i);
      if (point === singleQuote || point === 92 || point < 32 || (point > 126 && point < 160)) {
        result += `${str.slice(last, i)}${meta[point]}`;
        last = i + 1;
      } else if (point >= 0xd800 && point <= 0xdfff) {
        if (point <= 0xdbff && i + 1 < str.length) {
          const next = str.charCodeAt(i + 1);
          if (next >= 0xdc00 && next <= 0xdfff) {
            i++;
            continue;
          }
        }
        result += `${str.slice(last, i)}\\u${point.toString(16)}`;
        last = i + 1;
      }
    }
    if (last !== str.length) result += str.slice(last);
    if (singleQuote === -2) return `"${result}"`;
    if (singleQuote === -1) return `\`${result}\``;
    return `'${result}'`;
  }

  function formatNumber(fn, number) {
    if (Object.is(number, -0)) return fn("-0", "number");
    return fn(`${number}`, "number");
  }
  function formatBigInt(fn, bigint) { return fn(`${bigint}n`, "bigint"); }

  function formatPrimitive(fn, value, ctx) {
    if (typeof value === "string") {
      let trailer = "";
      if (value.length > ctx.maxStringLength) {
        const remaining = value.length - ctx.maxStringLength;
        value = value.slice(0, ctx.maxStringLength);
        trailer = `... ${remaining} more character${remaining > 1 ? "s" : ""}`;
      }
      if (ctx.compact !== true && value.length > kMinLineWidth &&
          value.length > ctx.breakLength - ctx.indentationLvl - 4) {
        return value.split(/(?<=\n)/).map((line) => fn(strEscape(line), "string"))
          .join(` +\n${" ".repeat(ctx.indentationLvl + 2)}`) + trailer;
      }
      return fn(strEscape(value), "string") + trailer;
    }
    if (typeof value === "number") return formatNumber(fn, value);
    if (typeof value === "bigint") return formatBigInt(fn, value);
    if (typeof value === "boolean") return fn(`${value}`, "boolean");
    if (typeof value === "undefined") return fn("undefined", "undefined");
    return fn(Symbol.prototype.toString.call(value), "symbol");
  }

  function getPrefix(constructor, tag, fallback, size = "") {
    if (constructor === null) {
      if (tag !== "" && fallback !== tag) return `[${fallback}${size}: null prototype] [${tag}] `;
      return `[${fallback}${size}: null prototype] `;
    }
    if (tag !== "" && constructor !== tag) return `${constructor}${size} [${tag}] `;
    return `${constructor}${size} `;
  }

  function getConstructorName(obj, ctx, recurseTimes) {
    let firstProto;
    const tmp = obj;
    while (obj) {
      const descriptor = Object.getOwnPropertyDescriptor(obj, "constructor");
      if (descriptor !== undefined && typeof descriptor.value === "function" &&
          descriptor.value.name !== "" && isInstanceof(tmp, descriptor.value)) {
        return String(descriptor.value.name);
      }
      obj = Object.getPrototypeOf(obj);
      if (firstProto === undefined) firstProto = obj;
    }
    if (firstProto === null) return null;
    const res = tagOf(tmp);
    if (recurseTimes > ctx.depth && ctx.depth !== null) return `${res} <Complex prototype>`;
    const protoConstr = getConstructorName(firstProto, ctx, recurseTimes + 1);
    if (protoConstr === null) {
      return `${res} <${inspect(firstProto, { ...ctx, customInspect: false, depth: -1 })}>`;
    }
    return `${res} <${protoConstr}>`;
  }
  function isInstanceof(object, proto) {
    try { return object instanceof proto; } catch { return false; }
  }

  function getKeys(value, showHidden) {
    let keys;
    const symbols = Object.getOwnPropertySymbols(value);
    if (showHidden) {
      keys = Object.getOwnPropertyNames(value);
      if (symbols.length !== 0) keys.push(...symbols);
    } else {
      try { keys = Object.keys(value); } catch { keys = Object.getOwnPropertyNames(value); }
      if (symbols.length !== 0) {
        keys.push(...symbols.filter((k) => Object.prototype.propertyIsEnumerable.call(value, k)));
      }
    }
    return keys;
  }
  function getOwnNonIndexProperties(value, showHidden) {
    const out = [];
    for (const key of Reflect.ownKeys(value)) {
      if (typeof key === "string" && numberRegExp.test(key) && +key < 2 ** 32 - 1) continue;
      if (!showHidden && !Object.prototype.propertyIsEnumerable.call(value, key)) continue;
      out.push(key);
    }
    return out;
  }

  function getFunctionBase(value, constructor, tag) {
    let stringified = "";
    try { stringified = Function.prototype.toString.call(value); } catch {}
    if (stringified.startsWith("class") && stringified.endsWith("}")) {
      const slice = stringified.slice(5, -1);
      const bracketIndex = slice.indexOf("{");
      if (bracketIndex !== -1 && (!slice.slice(0, bracketIndex).includes("(") ||
          /^\s*(?:[a-zA-Z_$][\w$]*\s*)?(?:extends\s+[^{]+\s*)?\{/.test(slice.replace(/\/\/.*?\n|\/\*(.|\n)*?\*\//g, "")))) {
        return getClassBase(value, constructor, tag);
      }
    }
    let type = "Function";
    if (types.isGeneratorFunction(value)) type = `Generator${type}`;
    if (types.isAsyncFunction(value)) type = `Async${type}`;
    let base = `[${type}`;
    if (constructor === null) base += " (null prototype)";
    if (value.name === "") base += " (anonymous)";
    else base += `: ${value.name}`;
    base += "]";
    if (constructor !== type && constructor !== null) base += ` ${constructor}`;
    if (tag !== "" && constructor !== tag) base += ` [${tag}]`;
    return base;
  }
  function getClassBase(value, constructor, tag) {
    const hasName = Object.prototype.hasOwnProperty.call(value, "name");
    const name = (hasName && value.name) || "(anonymous)";
    let base = `class ${name}`;
    if (constructor !== "Function" && constructor !== null) base += ` [${constructor}]`;
    if (tag !== "" && constructor !== tag) base += ` [${tag}]`;
    if (constructor !== null) {
      const superName = Object.getPrototypeOf(value).name;
      if (superName) base += ` extends ${superName}`;
    } else {
      base += " extends [null prototype]";
    }
    return `[${base}]`;
  }

  // An error's stack as V8 writes it: the header line, then the frames.
  function getStackString(err, name) {
    const message = err.message;
    let header;
    try { header = errors.coded.has(err) ? `${name} [${err.code}]: ${message}` : Error.prototype.toString.call(err); }
    catch { header = name; }
    let stack;
    try { stack = err.stack; } catch {}
    if (typeof stack !== "string" || stack === "") return header;
    const firstLine = stack.split("\n", 1)[0];
    if (/^\s+at /.test(firstLine)) return `${header}\n${stack.replace(/\n$/, "")}`;
    return stack.replace(/\n$/, "");
  }
  function improveStack(stack, constructor, name, tag) {
    let len = name.length;
    if (constructor === null || (name.endsWith("Error") && stack.startsWith(name) &&
        (stack.length === len || stack[len] === ":" || stack[len] === "\n" || stack[len] === " "))) {
      let fallback = "Error";
      if (constructor === null) {
        const start = /^([A-Z][a-z_ A-Z0-9[\]()-]+)(?::|\n\s+at)/.exec(stack) || /^([a-z_A-Z0-9-]*Error)$/.exec(stack);
        fallback = (start && start[1]) || "";
        len = fallback.length;
        fallback = fallback || "Error";
      }
      const prefix = getPrefix(constructor, tag, fallback).slice(0, -1);
      if (name !== prefix) {
        if (prefix.includes(name)) {
          if (len === 0) stack = `${prefix}: ${stack}`;
          else stack = `${prefix}${stack.slice(len)}`;
        } else {
          stack = `${prefix} [${name}]${stack.slice(len)}`;
        }
      }
    }
    return stack;
  }
  function formatError(err, constructor, tag, ctx, keys) {
    const name = err.name != null ? String(err.name) : "Error";
    let stack = getStackString(err, name);
    if (!ctx.showHidden && keys.length !== 0) {
      for (const key of ["name", "message", "stack"]) {
        const index = keys.indexOf(key);
        if (index !== -1 && stack.includes(err[key])) keys.splice(index, 1);
      }
    }
    if ("cause" in err && (keys.length === 0 || !keys.includes("cause"))) keys.push("cause");
    if (Array.isArray(err.errors) && (keys.length === 0 || !keys.includes("errors"))) keys.push("errors");
    stack = improveStack(stack, constructor, name, tag);
    let pos = (err.message && stack.indexOf(err.message)) || -1;
    if (pos !== -1) pos += err.message.length;
    const stackStart = stack.indexOf("\n    at", pos);
    if (stackStart === -1) stack = `[${stack}]`;
    if (ctx.indentationLvl !== 0) stack = stack.replace(/\n/g, `\n${" ".repeat(ctx.indentationLvl)}`);
    return stack;
  }

  function getBoxedBase(value, ctx, keys, constructor, tag) {
    let fn, type;
    if (types.isNumberObject(value)) { fn = Number.prototype.valueOf; type = "Number"; }
    else if (types.isStringObject(value)) {
      fn = String.prototype.valueOf; type = "String";
      keys.splice(0, value.length);
    } else if (types.isBooleanObject(value)) { fn = Boolean.prototype.valueOf; type = "Boolean"; }
    else if (types.isBigIntObject(value)) { fn = BigInt.prototype.valueOf; type = "BigInt"; }
    else { fn = Symbol.prototype.valueOf; type = "Symbol"; }
    let base = `[${type}`;
    if (type !== constructor) base += constructor === null ? " (null prototype)" : ` (${constructor})`;
    base += `: ${formatPrimitive(stylizeNoColor, fn.call(value), ctx)}]`;
    if (tag !== "" && tag !== constructor) base += ` [${tag}]`;
    if (keys.length !== 0 || ctx.stylize === stylizeNoColor) return base;
    return ctx.stylize(base, type.toLowerCase());
  }

  function formatValue(ctx, value, recurseTimes, typedArray) {
    if (typeof value !== "object" && typeof value !== "function") {
      return formatPrimitive(ctx.stylize, value, ctx);
    }
    if (value === null) return ctx.stylize("null", "null");
    if (ctx.customInspect) {
      let maybeCustom;
      try { maybeCustom = value[customInspect]; } catch {}
      if (typeof maybeCustom === "function" && maybeCustom !== inspect &&
          !(value.constructor && value.constructor.prototype === value)) {
        const depth = ctx.depth === null ? null : ctx.depth - recurseTimes;
        const ret = maybeCustom.call(value, depth, getUserOptions(ctx), inspect);
        if (ret !== value) {
          if (typeof ret !== "string") return formatValue(ctx, ret, recurseTimes);
          return ret.replaceAll("\n", `\n${" ".repeat(ctx.indentationLvl)}`);
        }
      }
    }
    if (ctx.seen.includes(value)) {
      let index = 1;
      if (ctx.circular === undefined) {
        ctx.circular = new Map();
        ctx.circular.set(value, index);
      } else {
        index = ctx.circular.get(value);
        if (index === undefined) {
          index = ctx.circular.size + 1;
          ctx.circular.set(value, index);
        }
      }
      return ctx.stylize(`[Circular *${index}]`, "special");
    }
    return formatRaw(ctx, value, recurseTimes, typedArray);
  }

  function getUserOptions(ctx) {
    const ret = { stylize: ctx.stylize };
    for (const key of Object.keys(defaultOptions)) ret[key] = ctx[key];
    if (ctx.userOptions) Object.assign(ret, ctx.userOptions);
    return ret;
  }

  function formatRaw(ctx, value, recurseTimes, typedArray) {
    let keys;
    const constructor = getConstructorName(value, ctx, recurseTimes);
    let tag = value[Symbol.toStringTag];
    if (typeof tag !== "string" || (tag !== "" && (ctx.showHidden
      ? Object.prototype.hasOwnProperty : Object.prototype.propertyIsEnumerable).call(value, Symbol.toStringTag))) {
      tag = "";
    }
    let base = "";
    let formatter = () => [];
    let braces;
    let noIterator = true;
    let extrasType = kObjectType;

    if (Symbol.iterator in value || constructor === null) {
      noIterator = false;
      if (Array.isArray(value)) {
        const prefix = (constructor !== "Array" || tag !== "")
          ? getPrefix(constructor, tag, "Array", `(${value.length})`) : "";
        keys = getOwnNonIndexProperties(value, ctx.showHidden);
        braces = [`${prefix}[`, "]"];
        if (value.length === 0 && keys.length === 0) return `${braces[0]}]`;
        extrasType = kArrayExtrasType;
        formatter = formatArray;
      } else if (types.isSet(value)) {
        const size = setSize.call(value);
        const prefix = getPrefix(constructor, tag, "Set", `(${size})`);
        keys = getKeys(value, ctx.showHidden);
        formatter = (c, v, r) => formatSet(value, c, r);
        if (size === 0 && keys.length === 0) return `${prefix}{}`;
        braces = [`${prefix}{`, "}"];
      } else if (types.isMap(value)) {
        const size = mapSize.call(value);
        const prefix = getPrefix(constructor, tag, "Map", `(${size})`);
        keys = getKeys(value, ctx.showHidden);
        formatter = (c, v, r) => formatMap(value, c, r);
        if (size === 0 && keys.length === 0) return `${prefix}{}`;
        braces = [`${prefix}{`, "}"];
      } else if (types.isTypedArray(value)) {
        keys = getOwnNonIndexProperties(value, ctx.showHidden);
        const fallback = constructor === null ? typedArrayTag.call(value) : "";
        const size = value.length;
        const prefix = getPrefix(constructor, tag, fallback, `(${size})`);
        braces = [`${prefix}[`, "]"];
        if (value.length === 0 && keys.length === 0 && !ctx.showHidden) return `${braces[0]}]`;
        formatter = (c, v, r) => formatTypedArray(value, size, c, r);
        extrasType = kArrayExtrasType;
      } else if (types.isMapIterator(value) || types.isSetIterator(value)) {
        keys = getKeys(value, ctx.showHidden);
        const kind = types.isMapIterator(value) ? "Map" : "Set";
        braces = [`[${tag}] {`, "}"];
        if (tag !== `${kind} Iterator`) braces[0] = `[${kind} Iterator] {`;
        formatter = () => [ctx.stylize("<items unknown>", "special")];
      } else {
        noIterator = true;
      }
    }
    if (noIterator) {
      keys = getKeys(value, ctx.showHidden);
      braces = ["{", "}"];
      if (constructor === "Object") {
        if (types.isArgumentsObject(value)) braces[0] = "[Arguments] [";
        else if (tag !== "") braces[0] = `${getPrefix(constructor, tag, "Object")}{`;
        if (keys.length === 0) return `${braces[0]}}`;
        if (types.isArgumentsObject(value)) {
          braces[1] = "]";
          extrasType = kArrayExtrasType;
          const n = value.length;
          keys = keys.filter((k) => !(numberRegExp.test(k) && +k < n));
          formatter = (c, v, r) => { const out = []; for (let i = 0; i < n; i++) out.push(formatValue(c, v[i], r)); return out; };
        }
      } else if (typeof value === "function") {
        base = getFunctionBase(value, constructor, tag);
        if (keys.length === 0) return ctx.stylize(base, "special");
      } else if (types.isRegExp(value)) {
        base = RegExp.prototype.toString.call(constructor !== null ? value : new RegExp(value));
        const prefix = getPrefix(constructor, tag, "RegExp");
        if (prefix !== "RegExp ") base = `${prefix}${base}`;
        if (keys.length === 0 || (recurseTimes > ctx.depth && ctx.depth !== null)) return ctx.stylize(base, "regexp");
      } else if (types.isDate(value)) {
        const t = Date.prototype.getTime.call(value);
        const text = Number.isNaN(t) ? Date.prototype.toString.call(value) : Date.prototype.toISOString.call(value);
        if (keys.length === 0) return ctx.stylize(text, "date");
        base = text;
        const prefix = getPrefix(constructor, tag, "Date");
        if (prefix !== "Date ") base = `${prefix}${base}`;
      } else if (types.isNativeError(value) || value instanceof Error) {
        base = formatError(value, constructor, tag, ctx, keys);
        if (keys.length === 0) return base;
      } else if (types.isAnyArrayBuffer(value)) {
        const arrayType = types.isArrayBuffer(value) ? "ArrayBuffer" : "SharedArrayBuffer";
        const prefix = getPrefix(constructor, tag, arrayType);
        if (typedArray === undefined) formatter = formatArrayBuffer;
        else if (keys.length === 0) return `${prefix}{ byteLength: ${formatNumber(ctx.stylize, value.byteLength)} }`;
        braces[0] = `${prefix}{`;
        keys.unshift("byteLength");
      } else if (types.isDataView(value)) {
        braces[0] = `${getPrefix(constructor, tag, "DataView")}{`;
        keys.unshift("byteLength", "byteOffset", "buffer");
      } else if (types.isPromise(value)) {
        braces[0] = `${getPrefix(constructor, tag, "Promise")}{`;
        formatter = formatPromise;
      } else if (types.isWeakSet(value)) {
        braces[0] = `${getPrefix(constructor, tag, "WeakSet")}{`;
        formatter = () => [ctx.stylize("<items unknown>", "special")];
      } else if (types.isWeakMap(value)) {
        braces[0] = `${getPrefix(constructor, tag, "WeakMap")}{`;
        formatter = () => [ctx.stylize("<items unknown>", "special")];
      } else if (types.isModuleNamespaceObject(value)) {
        braces[0] = `${getPrefix(constructor, tag, "Module")}{`;
      } else if (types.isBoxedPrimitive(value)) {
        base = getBoxedBase(value, ctx, keys, constructor, tag);
        if (keys.length === 0) return base;
      } else {
        if (keys.length === 0) return `${getPrefix(constructor, tag, "Object")}{}`;
        braces[0] = `${getPrefix(constructor, tag, "Object")}{`;
      }
    }

    if (recurseTimes > ctx.depth && ctx.depth !== null) {
      let constructorName = getPrefix(constructor, tag, "Object").slice(0, -1);
      if (constructor !== null) constructorName = `[${constructorName}]`;
      return ctx.stylize(constructorName, "special");
    }
    recurseTimes += 1;
    ctx.seen.push(value);
    ctx.currentDepth = recurseTimes;
    let output;
    try {
      output = formatter(ctx, value, recurseTimes);
      for (let i = 0; i < keys.length; i++) {
        output.push(formatProperty(ctx, value, recurseTimes, keys[i], extrasType));
      }
    } catch (err) {
      ctx.seen.pop();
      if (err instanceof RangeError || (err && err.name === "InternalError")) {
        const name = getPrefix(constructor, tag, "Object").slice(0, -1);
        return ctx.stylize(`[${name}: Inspection interrupted prematurely. Maximum call stack size exceeded.]`, "special");
      }
      throw err;
    }
    if (ctx.circular !== undefined) {
      const index = ctx.circular.get(value);
      if (index !== undefined) {
        const reference = ctx.stylize(`<ref *${index}>`, "special");
        if (ctx.compact !== true) base = base === "" ? reference : `${reference} ${base}`;
        else braces[0] = `${reference} ${braces[0]}`;
      }
    }
    ctx.seen.pop();
    if (ctx.sorted) {
      const comparator = ctx.sorted === true ? undefined : ctx.sorted;
      if (extrasType === kObjectType) output.sort(comparator);
      else if (keys.length > 1) {
        const sorted = output.slice(output.length - keys.length).sort(comparator);
        output.splice(output.length - keys.length, keys.length, ...sorted);
      }
    }
    const res = reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value);
    const budget = ctx.budget[ctx.indentationLvl] || 0;
    const newLength = budget + res.length;
    ctx.budget[ctx.indentationLvl] = newLength;
    if (newLength > 2 ** 27) ctx.depth = -1;
    return res;
  }

  function remainingText(remaining) { return `... ${remaining} more item${remaining > 1 ? "s" : ""}`; }

  function formatArray(ctx, value, recurseTimes) {
    const valLen = value.length;
    const len = Math.min(Math.max(0, ctx.maxArrayLength), valLen);
    const remaining = valLen - len;
    const output = [];
    for (let i = 0; i < len; i++) {
      if (!Object.prototype.hasOwnProperty.call(value, i)) {
        return formatSpecialArray(ctx, value, recurseTimes, len, output, i);
      }
      output.push(formatProperty(ctx, value, recurseTimes, i, kArrayType));
    }
    if (remaining > 0) output.push(remainingText(remaining));
    return output;
  }
  function formatSpecialArray(ctx, value, recurseTimes, maxLength, output, i) {
    const keys = Object.keys(value);
    let index = i;
    for (; i < keys.length && output.length < maxLength; i++) {
      const key = keys[i];
      const tmp = +key;
      if (tmp > 2 ** 32 - 2) break;
      if (`${index}` !== key) {
        if (!numberRegExp.test(key)) break;
        const emptyItems = tmp - index;
        output.push(ctx.stylize(`<${emptyItems} empty item${emptyItems > 1 ? "s" : ""}>`, "undefined"));
        index = tmp;
        if (output.length === maxLength) break;
      }
      output.push(formatProperty(ctx, value, recurseTimes, key, kArrayType));
      index++;
    }
    const remaining = value.length - index;
    if (output.length !== maxLength) {
      if (remaining > 0) {
        output.push(ctx.stylize(`<${remaining} empty item${remaining > 1 ? "s" : ""}>`, "undefined"));
      }
    } else if (remaining > 0) {
      output.push(remainingText(remaining));
    }
    return output;
  }
  function formatTypedArray(value, length, ctx, recurseTimes) {
    const maxLength = Math.min(Math.max(0, ctx.maxArrayLength), length);
    const remaining = value.length - maxLength;
    const output = new Array(maxLength);
    const elementFormatter = value.length > 0 && typeof value[0] === "number" ? formatNumber : formatBigInt;
    for (let i = 0; i < maxLength; ++i) output[i] = elementFormatter(ctx.stylize, value[i]);
    if (remaining > 0) output[maxLength] = remainingText(remaining);
    if (ctx.showHidden) {
      ctx.indentationLvl += 2;
      for (const key of ["BYTES_PER_ELEMENT", "length", "byteLength", "byteOffset", "buffer"]) {
        output.push(`[${key}]: ${formatValue(ctx, value[key], recurseTimes, true)}`);
      }
      ctx.indentationLvl -= 2;
    }
    return output;
  }
  function formatSet(value, ctx, recurseTimes) {
    const length = setSize.call(value);
    const maxLength = Math.min(Math.max(0, ctx.maxArrayLength), length);
    const remaining = length - maxLength;
    const output = [];
    ctx.indentationLvl += 2;
    let i = 0;
    for (const v of Set.prototype.values.call(value)) {
      if (i >= maxLength) break;
      output.push(formatValue(ctx, v, recurseTimes));
      i++;
    }
    if (remaining > 0) output.push(remainingText(remaining));
    ctx.indentationLvl -= 2;
    return output;
  }
  function formatMap(value, ctx, recurseTimes) {
    const length = mapSize.call(value);
    const maxLength = Math.min(Math.max(0, ctx.maxArrayLength), length);
    const remaining = length - maxLength;
    const output = [];
    ctx.indentationLvl += 2;
    let i = 0;
    for (const [k, v] of Map.prototype.entries.call(value)) {
      if (i >= maxLength) break;
      output.push(`${formatValue(ctx, k, recurseTimes)} => ${formatValue(ctx, v, recurseTimes)}`);
      i++;
    }
    if (remaining > 0) output.push(remainingText(remaining));
    ctx.indentationLvl -= 2;
    return output;
  }
  const HEX = [];
  for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, "0"));
  function formatArrayBuffer(ctx, value) {
    let buffer;
    try { buffer = new Uint8Array(value); } catch { return [ctx.stylize("(detached)", "special")]; }
    const n = Math.min(ctx.maxArrayLength, buffer.length);
    let str = "";
    for (let i = 0; i < n; i++) str += (i ? " " : "") + HEX[buffer[i]];
    const remaining = buffer.length - ctx.maxArrayLength;
    if (remaining > 0) str += ` ... ${remaining} more byte${remaining > 1 ? "s" : ""}`;
    return [`${ctx.stylize("[Uint8Contents]", "special")}: <${str}>`];
  }
  function formatPromise(ctx, value, recurseTimes) {
    const [state, result] = host.promiseState(value);
    if (state === 0) return [ctx.stylize("<pending>", "special")];
    ctx.indentationLvl += 2;
    const str = formatValue(ctx, result, recurseTimes);
    ctx.indentationLvl -= 2;
    return [state === 2 ? `${ctx.stylize("<rejected>", "special")} ${str}` : str];
  }

  function formatProperty(ctx, value, recurseTimes, key, type, desc) {
    let name, str;
    const extra = " ";
    desc = desc || Object.getOwnPropertyDescriptor(value, key) || { value: value[key], enumerable: true };
    if (desc.value !== undefined) {
      ctx.indentationLvl += 2;
      str = formatValue(ctx, desc.value, recurseTimes);
      ctx.indentationLvl -= 2;
    } else if (desc.get !== undefined) {
      const label = desc.set !== undefined ? "Getter/Setter" : "Getter";
      const s = ctx.stylize;
      const sp = "special";
      if (ctx.getters && (ctx.getters === true || (ctx.getters === "get" && desc.set === undefined) ||
          (ctx.getters === "set" && desc.set !== undefined))) {
        try {
          const tmp = desc.get.call(value);
          ctx.indentationLvl += 2;
          if (tmp === null) str = `${s(`[${label}:`, sp)} ${s("null", "null")}${s("]", sp)}`;
          else if (typeof tmp === "object") str = `${s(`[${label}]`, sp)} ${formatValue(ctx, tmp, recurseTimes)}`;
          else str = `${s(`[${label}:`, sp)} ${formatPrimitive(s, tmp, ctx)}${s("]", sp)}`;
          ctx.indentationLvl -= 2;
        } catch (err) {
          str = `${s(`[${label}:`, sp)} <Inspection threw (${err.message})>${s("]", sp)}`;
        }
      } else {
        str = ctx.stylize(`[${label}]`, sp);
      }
    } else if (desc.set !== undefined) {
      str = ctx.stylize("[Setter]", "special");
    } else {
      str = ctx.stylize("undefined", "undefined");
    }
    if (type === kArrayType) return str;
    if (typeof key === "symbol") {
      name = `[${ctx.stylize(Symbol.prototype.toString.call(key), "symbol")}]`;
    } else if (key === "__proto__") {
      name = "['__proto__']";
    } else if (desc.enumerable === false) {
      name = `[${key.replace(/[\x00-\x1f\x27\x5c\x7f-\x9f]/g, (c) => meta[c.charCodeAt(0)])}]`;
    } else if (keyStrRegExp.test(key)) {
      name = ctx.stylize(key, "name");
    } else {
      name = ctx.stylize(strEscape(key), "string");
    }
    return `${name}:${extra}${str}`;
  }

  function groupArrayElements(ctx, output, value) {
    let totalLength = 0;
    let maxLength = 0;
    let i = 0;
    let outputLength = output.length;
    if (ctx.maxArrayLength < output.length) outputLength--;
    const separatorSpace = 2;
    const dataLen = new Array(outputLength);
    for (; i < outputLength; i++) {
      const len = ctx.colors ? removeColors(output[i]).length : output[i].length;
      dataLen[i] = len;
      totalLength += len + separatorSpace;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + separatorSpace;
    if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength &&
        (totalLength / actualMax > 5 || maxLength <= 6)) {
      const approxCharHeights = 2.5;
      const averageBias = Math.sqrt(actualMax - totalLength / output.length);
      const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
      const columns = Math.min(
        Math.round(Math.sqrt(approxCharHeights * biasedMax * outputLength) / biasedMax),
        Math.floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
        ctx.compact * 4,
        15,
      );
      if (columns <= 1) return output;
      const tmp = [];
      const maxLineLength = [];
      for (let i = 0; i < columns; i++) {
        let lineLength = 0;
        for (let j = i; j < output.length; j += columns) {
          if (dataLen[j] > lineLength) lineLength = dataLen[j];
        }
        maxLineLength.push(lineLength + separatorSpace);
      }
      let order = String.prototype.padStart;
      if (value !== undefined) {
        for (let i = 0; i < output.length; i++) {
          if (typeof value[i] !== "number" && typeof value[i] !== "bigint") {
            order = String.prototype.padEnd;
            break;
          }
        }
      }
      for (let i = 0; i < outputLength; i += columns) {
        const max = Math.min(i + columns, outputLength);
        let str = "";
        let j = i;
        for (; j < max - 1; j++) {
          const padding = maxLineLength[j - i] + output[j].length - dataLen[j];
          str += order.call(`${output[j]}, `, padding, " ");
        }
        if (order === String.prototype.padStart) {
          const padding = maxLineLength[j - i] + output[j].length - dataLen[j] - separatorSpace;
          str += output[j].padStart(padding, " ");
        } else {
          str += output[j];
        }
        tmp.push(str);
      }
      if (ctx.maxArrayLength < output.length) tmp.push(output[outputLength]);
      output = tmp;
    }
    return output;
  }
  function removeColors(str) { return String(str).replace(/\u001b\[\d\d?m/g, ""); }

  function isBelowBreakLength(ctx, output, start, base) {
    let totalLength = output.length + start;
    if (totalLength + output.length > ctx.breakLength) return false;
    for (let i = 0; i < output.length; i++) {
      totalLength += ctx.colors ? removeColors(output[i]).length : output[i].length;
      if (totalLength > ctx.breakLength) return false;
    }
    return base === "" || !base.includes("\n");
  }
  function reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value) {
    if (ctx.compact !== true) {
      if (typeof ctx.compact === "number" && ctx.compact >= 1) {
        const entries = output.length;
        if (extrasType === kArrayExtrasType && entries > 6) output = groupArrayElements(ctx, output, value);
        if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
          const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
          if (isBelowBreakLength(ctx, output, start, base)) {
            const joined = output.join(", ");
            if (!joined.includes("\n")) {
              return `${base ? `${base} ` : ""}${braces[0]} ${joined}` + ` ${braces[1]}`;
            }
          }
        }
      }
      const indentation = `\n${" ".repeat(ctx.indentationLvl)}`;
      return `${base ? `${base} ` : ""}${braces[0]}${indentation}  ${output.join(`,${indentation}  `)}${indentation}${braces[1]}`;
    }
    if (isBelowBreakLength(ctx, output, 0, base)) {
      return `${braces[0]}${base ? ` ${base}` : ""} ${output.join(", ")} ` + braces[1];
    }
    const indentation = `\n${" ".repeat(ctx.indentationLvl)}`;
    const ln = base === "" && braces[0].length === 1 ? " " : `${base ? ` ${base}` : ""}\n${indentation}  `;
    return `${braces[0]}${ln}${output.join(`,\n${indentation}  `)} ${braces[1]}`;
  }

  function inspect(value, opts) {
    const ctx = {
      budget: {},
      indentationLvl: 0,
      seen: [],
      currentDepth: 0,
      stylize: stylizeNoColor,
      ...defaultOptions,
    };
    if (arguments.length > 1) {
      if (arguments.length > 2) {
        if (arguments[2] !== undefined) ctx.depth = arguments[2];
        if (arguments.length > 3 && arguments[3] !== undefined) ctx.colors = arguments[3];
      }
      if (typeof opts === "boolean") ctx.showHidden = opts;
      else if (opts) {
        for (const key of Object.keys(opts)) {
          if (Object.prototype.hasOwnProperty.call(defaultOptions, key) || key === "stylize") ctx[key] = opts[key];
          else if (ctx.userOptions === undefined) ctx.userOptions = opts;
        }
      }
    }
    if (ctx.colors) ctx.stylize = stylizeWithColor;
    if (ctx.maxArrayLength === null) ctx.maxArrayLength = Infinity;
    if (ctx.maxStringLength === null) ctx.maxStringLength = Infinity;
    return formatValue(ctx, value, 0);
  }
  inspect.custom = customInspect;
  Object.defineProperty(inspect, "defaultOptions", {
    get() { return defaultOptions; },
    set(options) {
      errors.validateObject(options, "options");
      Object.assign(defaultOptions, options);
    },
  });
  inspect.colors = colors;
  inspect.styles = styles;

  // ---- format -------------------------------------------------------------------------
  function hasBuiltInToString(value) {
    if (host.isProxy(value)) return true;
    if (typeof value.toString !== "function") return true;
    if (Object.prototype.hasOwnProperty.call(value, "toString")) return false;
    let pointer = value;
    do {
      pointer = Object.getPrototypeOf(pointer);
    } while (!Object.prototype.hasOwnProperty.call(pointer, "toString"));
    const descriptor = Object.getOwnPropertyDescriptor(pointer, "constructor");
    return descriptor !== undefined && typeof descriptor.value === "function" &&
      builtInObjects.has(descriptor.value.name);
  }
  function tryStringify(arg) {
    try {
      return JSON.stringify(arg);
    } catch (err) {
      if (err instanceof TypeError && /circular/i.test(String(err.message))) return "[Circular]";
      throw err;
    }
  }
  function formatWithOptionsInternal(inspectOptions, args) {
    const first = args[0];
    let a = 0;
    let str = "";
    let join = "";
    if (typeof first === "string") {
      if (args.length === 1) return first;
      let tempStr;
      let lastPos = 0;
      for (let i = 0; i < first.length - 1; i++) {
        if (first.charCodeAt(i) === 37) {
          const nextChar = first.charCodeAt(++i);
          if (a + 1 !== args.length) {
            switch (nextChar) {
              case 115: {
                const tempArg = args[++a];
                if (typeof tempArg === "number") tempStr = formatNumber(stylizeNoColor, tempArg);
                else if (typeof tempArg === "bigint") tempStr = formatBigInt(stylizeNoColor, tempArg);
                else if (typeof tempArg !== "object" || tempArg === null || !hasBuiltInToString(tempArg)) {
                  tempStr = String(tempArg);
                } else {
                  tempStr = inspect(tempArg, { ...inspectOptions, depth: 0, colors: false, compact: 3 });
                }
                break;
              }
              case 106: tempStr = tryStringify(args[++a]); break;
              case 100: {
                const tempNum = args[++a];
                if (typeof tempNum === "bigint") tempStr = formatBigInt(stylizeNoColor, tempNum);
                else if (typeof tempNum === "symbol") tempStr = "NaN";
                else tempStr = formatNumber(stylizeNoColor, Number(tempNum));
                break;
              }
              case 79: tempStr = inspect(args[++a], inspectOptions); break;
              case 111:
                tempStr = inspect(args[++a], { ...inspectOptions, showHidden: true, showProxy: true, depth: 4 });
                break;
              case 105: {
                const tempInteger = args[++a];
                if (typeof tempInteger === "bigint") tempStr = formatBigInt(stylizeNoColor, tempInteger);
                else if (typeof tempInteger === "symbol") tempStr = "NaN";
                else tempStr = formatNumber(stylizeNoColor, Number.parseInt(tempInteger));
                break;
              }
              case 102: {
                const tempFloat = args[++a];
                if (typeof tempFloat === "symbol") tempStr = "NaN";
                else tempStr = formatNumber(stylizeNoColor, Number.parseFloat(tempFloat));
                break;
              }
              case 99: a += 1; tempStr = ""; break;
              case 37:
                str += first.slice(lastPos, i);
                lastPos = i + 1;
                continue;
              default:
                continue;
            }
            if (lastPos !== i - 1) str += first.slice(lastPos, i - 1);
            str += tempStr;
            lastPos = i + 1;
          } else if (nextChar === 37) {
            str += first.slice(lastPos, i);
            lastPos = i + 1;
          }
        }
      }
      if (lastPos !== 0) {
        a++;
        join = " ";
        if (lastPos < first.length) str += first.slice(lastPos);
      }
    }
    while (a < args.length) {
      const value = args[a];
      str += join;
      str += typeof value !== "string" ? inspect(value, inspectOptions) : value;
      join = " ";
      a++;
    }
    return str;
  }
  function format(...args) { return formatWithOptionsInternal(undefined, args); }
  function formatWithOptions(inspectOptions, ...args) {
    errors.validateObject(inspectOptions, "inspectOptions");
    return formatWithOptionsInternal(inspectOptions, args);
  }

  // ---- promisify, callbackify ---------------------------------------------------------
  const kCustomPromisified = Symbol.for("nodejs.util.promisify.custom");
  const kCustomPromisifyArgs = Symbol("customPromisifyArgs");
  function promisify(original) {
    validateFunction(original, "original");
    if (original[kCustomPromisified]) {
      const fn = original[kCustomPromisified];
      validateFunction(fn, "util.promisify.custom");
      return Object.defineProperty(fn, kCustomPromisified, {
        value: fn, enumerable: false, writable: false, configurable: true,
      });
    }
    const argumentNames = original[kCustomPromisifyArgs];
    function fn(...args) {
      return new Promise((resolve, reject) => {
        args.push((err, ...values) => {
          if (err) return reject(err);
          if (argumentNames !== undefined && values.length > 1) {
            const obj = {};
            for (let i = 0; i < argumentNames.length; i++) obj[argumentNames[i]] = values[i];
            resolve(obj);
          } else {
            resolve(values[0]);
          }
        });
        Reflect.apply(original, this, args);
      });
    }
    Object.setPrototypeOf(fn, Object.getPrototypeOf(original));
    Object.defineProperty(fn, kCustomPromisified, {
      value: fn, enumerable: false, writable: false, configurable: true,
    });
    const descriptors = Object.getOwnPropertyDescriptors(original);
    for (const key of Reflect.ownKeys(descriptors)) {
      try { Object.defineProperty(fn, key, descriptors[key]); } catch {}
    }
    return fn;
  }
  promisify.custom = kCustomPromisified;

  function callbackify(original) {
    validateFunction(original, "original");
    function callbackified(...args) {
      const maybeCb = args.pop();
      validateFunction(maybeCb, "last argument");
      const cb = maybeCb.bind(this);
      Reflect.apply(original, this, args).then(
        (ret) => queueMicrotask(() => cb(null, ret)),
        (rej) => queueMicrotask(() => {
          if (!rej) {
            const err = errors.make(Error, "ERR_FALSY_VALUE_REJECTION", "Promise was rejected with falsy value");
            err.reason = rej;
            rej = err;
          }
          cb(rej);
        }),
      );
    }
    const descriptors = Object.getOwnPropertyDescriptors(original);
    if (typeof descriptors.length.value === "number") descriptors.length.value++;
    if (typeof descriptors.name.value === "string") descriptors.name.value += "Callbackified";
    const propertiesValues = Object.values(descriptors);
    for (let i = 0; i < propertiesValues.length; i++) Object.setPrototypeOf(propertiesValues[i], null);
    Object.defineProperties(callbackified, descriptors);
    return callbackified;
  }

  // ---- inherits, deprecate, debuglog --------------------------------------------------
  function inherits(ctor, superCtor) {
    if (ctor === undefined || ctor === null) throw invalidArgType("ctor", "Function", ctor);
    if (superCtor === undefined || superCtor === null) throw invalidArgType("superCtor", "Function", superCtor);
    if (superCtor.prototype === undefined) {
      throw invalidArgType("superCtor.prototype", "Object", superCtor.prototype);
    }
    Object.defineProperty(ctor, "super_", { value: superCtor, writable: true, configurable: true });
    Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
  }

  const warnedCodes = new Set();
  function deprecate(fn, msg, code) {
    validateFunction(fn, "fn");
    if (code !== undefined) errors.validateString(code, "code");
    let warned = false;
    function deprecated(...args) {
      if (!warned) {
        warned = true;
        if (code === undefined || !warnedCodes.has(code)) {
          if (code !== undefined) warnedCodes.add(code);
          console.warn(`${code ? `[${code}] ` : ""}DeprecationWarning: ${msg}`);
        }
      }
      if (new.target) return Reflect.construct(fn, args, new.target);
      return Reflect.apply(fn, this, args);
    }
    Object.setPrototypeOf(deprecated, fn);
    if (fn.prototype) deprecated.prototype = fn.prototype;
    return deprecated;
  }

  // No NODE_DEBUG in a function: every debuglog is off.
  function debuglog(set, cb) {
    const logger = () => {};
    Object.defineProperty(logger, "enabled", { get: () => false, configurable: true, enumerable: true });
    return logger;
  }

  // ---- isDeepStrictEqual ----------------------------------------------------------------
  function isDeepStrictEqual(a, b) { return deepEqual(a, b, new Map()); }
  function ownEnumerableKeys(v) {
    return Object.keys(v).concat(Object.getOwnPropertySymbols(v)
      .filter((s) => Object.prototype.propertyIsEnumerable.call(v, s)));
  }
  function bytesOf(v) { return new Uint8Array(v.buffer, v.byteOffset, v.byteLength); }
  function deepEqual(a, b, memo) {
    if (a === b) return a !== 0 || Object.is(a, b);
    if (typeof a !== "object") return typeof a === "number" && Number.isNaN(a) && Number.isNaN(b);
    if (typeof b !== "object" || a === null || b === null) return false;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    if (tagOf(a) !== tagOf(b)) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    if (Array.isArray(a) && a.length !== b.length) return false;
    if (types.isDate(a)) {
      if (!types.isDate(b) || Date.prototype.getTime.call(a) !== Date.prototype.getTime.call(b)) return false;
    } else if (types.isRegExp(a)) {
      if (!types.isRegExp(b) || a.source !== b.source || a.flags !== b.flags || a.lastIndex !== b.lastIndex) return false;
    } else if (types.isNativeError(a) || a instanceof Error) {
      if (a.message !== b.message || a.name !== b.name) return false;
    } else if (ArrayBuffer.isView(a)) {
      if (!ArrayBuffer.isView(b) || a.byteLength !== b.byteLength) return false;
      const x = bytesOf(a), y = bytesOf(b);
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    } else if (types.isAnyArrayBuffer(a)) {
      if (a.byteLength !== b.byteLength) return false;
      const x = new Uint8Array(a), y = new Uint8Array(b);
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    } else if (types.isBoxedPrimitive(a)) {
      if (!types.isBoxedPrimitive(b) || !Object.is(a.valueOf(), b.valueOf())) return false;
    }
    const seen = memo.get(a);
    if (seen !== undefined) {
      if (seen.has(b)) return true;
    } else memo.set(a, new Set());
    memo.get(a).add(b);
    const keysA = ArrayBuffer.isView(a) ? ownEnumerableKeys(a).filter((k) => typeof k !== "string" || !numberRegExp.test(k))
      : ownEnumerableKeys(a);
    const keysB = ArrayBuffer.isView(b) ? ownEnumerableKeys(b).filter((k) => typeof k !== "string" || !numberRegExp.test(k))
      : ownEnumerableKeys(b);
    if (keysA.length !== keysB.length) return false;
    for (const k of keysA) {
      if (!Object.prototype.propertyIsEnumerable.call(b, k)) return false;
      if (!deepEqual(a[k], b[k], memo)) return false;
    }
    if (types.isSet(a)) {
      if (!types.isSet(b) || a.size !== b.size) return false;
      const rest = [];
      for (const v of a) {
        if (typeof v === "object" && v !== null) rest.push(v);
        else if (!b.has(v)) return false;
      }
      const candidates = [...b].filter((v) => typeof v === "object" && v !== null);
      for (const v of rest) {
        const i = candidates.findIndex((c) => deepEqual(v, c, memo));
        if (i === -1) return false;
        candidates.splice(i, 1);
      }
    } else if (types.isMap(a)) {
      if (!types.isMap(b) || a.size !== b.size) return false;
      const rest = [];
      for (const [k, v] of a) {
        if (typeof k === "object" && k !== null) rest.push([k, v]);
        else if (!b.has(k) || !deepEqual(v, b.get(k), memo)) return false;
      }
      const candidates = [...b].filter(([k]) => typeof k === "object" && k !== null);
      for (const [k, v] of rest) {
        const i = candidates.findIndex(([ck, cv]) => deepEqual(k, ck, memo) && deepEqual(v, cv, memo));
        if (i === -1) return false;
        candidates.splice(i, 1);
      }
    }
    return true;
  }

  // ---- the rest -----------------------------------------------------------------------
  function toUSVString(input) { return String(input).toWellFormed ? String(input).toWellFormed()
    : String(input).replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd"); }
  const ansi = /[\u001B\u009B][[\]()#;?]*(?:(?:(?:(?:;[-a-zA-Z\d/#&.:=?%@~_]+)*|[a-zA-Z\d]+(?:;[-a-zA-Z\d/#&.:=?%@~_]*)*)?\u0007)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PR-TZcf-ntqry=><~]))/g;
  function stripVTControlCharacters(str) {
    errors.validateString(str, "str");
    return str.replace(ansi, "");
  }
  function isError(e) { return types.isNativeError(e) || e instanceof Error; }

  return {
    format,
    formatWithOptions,
    inspect,
    isDeepStrictEqual,
    promisify,
    callbackify,
    inherits,
    deprecate,
    debuglog,
    debug: debuglog,
    types,
    toUSVString,
    stripVTControlCharacters,
    TextEncoder: host.TextEncoder,
    TextDecoder: host.TextDecoder,
    isArray: Array.isArray,
    isBoolean: (v) => typeof v === "boolean",
    isBuffer: (v) => host.require("buffer").Buffer.isBuffer(v),
    isDate: types.isDate,
    isError,
    isFunction: (v) => typeof v === "function",
    isNull: (v) => v === null,
    isNullOrUndefined: (v) => v === undefined || v === null,
    isNumber: (v) => typeof v === "number",
    isObject: (v) => v !== null && typeof v === "object",
    isPrimitive: (v) => v === null || (typeof v !== "object" && typeof v !== "function"),
    isRegExp: types.isRegExp,
    isString: (v) => typeof v === "string",
    isSymbol: (v) => typeof v === "symbol",
    isUndefined: (v) => v === undefined,
  };
})
