// The WebAssembly JavaScript API (https://webassembly.github.io/spec/js-api/): Module, Instance,
// Memory, Table, Global, the three error classes, and compile / validate / instantiate.
//
// Evaluated as a function of `native` (the Rust functions in natives.rs); returns
// `{ WebAssembly, newModule }`: the namespace object, and the Module constructor as a function. Wasm objects live in Rust: each wrapper here keeps a handle to
// one in a private field, so user code can neither forge nor unwrap one. Exported functions are
// Rust callables already.
(function (native) {
  "use strict";
  // Passed to a constructor to wrap an existing handle; user code cannot get hold of it.
  const WRAP = Symbol("WebAssembly internal");

  function errorClass(name) {
    const C = {
      [name]: class extends Error {
        constructor(message, options) {
          super(message, options);
        }
      },
    }[name];
    Object.defineProperty(C.prototype, "name", { value: name, writable: true, configurable: true });
    return C;
  }
  const CompileError = errorClass("CompileError");
  const LinkError = errorClass("LinkError");
  const RuntimeError = errorClass("RuntimeError");
  native.setErrors(CompileError, LinkError, RuntimeError);

  // A BufferSource as a Uint8Array over the same bytes.
  function bytesOf(source, where) {
    if (source instanceof ArrayBuffer) return new Uint8Array(source);
    if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    throw new TypeError(`${where}: argument must be a BufferSource (an ArrayBuffer or a typed array)`);
  }

  // WebIDL [EnforceRange] unsigned long.
  function u32(v, what) {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new TypeError(`${what} must be a finite number`);
    const t = Math.trunc(n);
    if (t < 0 || t > 0xffffffff) throw new TypeError(`${what} must be in the unsigned long range`);
    return t;
  }

  function descriptorOf(d, where) {
    if (d === null || typeof d !== "object") throw new TypeError(`${where}: the descriptor must be an object`);
    return d;
  }

  // Reads `initial` (or its alias `minimum`) and `maximum` from a Memory or Table descriptor.
  function limitsOf(d, where, most) {
    const init = d.initial !== undefined ? d.initial : d.minimum;
    if (init === undefined) throw new TypeError(`${where}: the descriptor needs 'initial'`);
    const initial = u32(init, `${where}: 'initial'`);
    const maximum = d.maximum === undefined ? undefined : u32(d.maximum, `${where}: 'maximum'`);
    if (initial > most) throw new RangeError(`${where}: 'initial' is larger than ${most}`);
    if (maximum !== undefined && maximum < initial) {
      throw new RangeError(`${where}: 'maximum' must not be less than 'initial'`);
    }
    return [initial, maximum];
  }

  const isObject = (v) => v !== null && (typeof v === "object" || typeof v === "function");

  let moduleHandle, memoryHandle, tableHandle, globalHandle;
  let isMemory, isTable, isGlobal;

  class Module {
    #h;
    constructor(bytes, handle) {
      this.#h = bytes === WRAP ? handle : native.compile(bytesOf(bytes, "WebAssembly.Module()"));
    }
    static exports(module) {
      return native.moduleExports(moduleHandle(module)).map(([name, kind]) => ({ name, kind }));
    }
    static imports(module) {
      return native.moduleImports(moduleHandle(module)).map(([m, name, kind]) => ({ module: m, name, kind }));
    }
    static {
      moduleHandle = (m) => {
        if (!isObject(m) || !(#h in m)) throw new TypeError("argument must be a WebAssembly.Module");
        return m.#h;
      };
    }
  }

  // The spec's "read the imports": one value per import of the module, in order.
  function readImports(h, importObject) {
    const imports = native.moduleImports(h);
    if (importObject !== undefined && !isObject(importObject)) {
      throw new TypeError("WebAssembly.Instance(): the imports argument must be an object");
    }
    if (imports.length > 0 && importObject === undefined) {
      throw new TypeError("WebAssembly.Instance(): the module has imports, but no imports argument was given");
    }
    return imports.map(([mod, name, kind]) => {
      const o = importObject[mod];
      if (!isObject(o)) throw new TypeError(`WebAssembly.Instance(): import module '${mod}' must be an object`);
      const v = o[name];
      const where = `WebAssembly.Instance(): import '${mod}'.'${name}'`;
      switch (kind) {
        case "function":
          if (typeof v !== "function") throw new LinkError(`${where} must be a function`);
          return v;
        case "memory":
          if (!isMemory(v)) throw new LinkError(`${where} must be a WebAssembly.Memory`);
          return memoryHandle(v);
        case "table":
          if (!isTable(v)) throw new LinkError(`${where} must be a WebAssembly.Table`);
          return tableHandle(v);
        case "global":
          // A Number, a BigInt or (for an externref global) any value: checked against the
          // global's type in Rust.
          return isGlobal(v) ? globalHandle(v) : v;
        default:
          throw new LinkError(`${where}: ${kind} imports are not supported`);
      }
    });
  }

  function exportsObject(list) {
    const out = Object.create(null);
    for (const [name, kind, value] of list) {
      out[name] =
        kind === "memory" ? new Memory(WRAP, value)
        : kind === "table" ? new Table(WRAP, value)
        : kind === "global" ? new Global(WRAP, value)
        : value;
    }
    return Object.freeze(out);
  }

  class Instance {
    #exports;
    constructor(module, importObject) {
      const h = moduleHandle(module);
      this.#exports = exportsObject(native.instantiate(h, readImports(h, importObject)));
    }
    get exports() {
      return this.#exports;
    }
  }

  class Memory {
    #h;
    constructor(descriptor, handle) {
      if (descriptor === WRAP) {
        this.#h = handle;
        return;
      }
      const d = descriptorOf(descriptor, "WebAssembly.Memory()");
      if (d.shared) throw new TypeError("WebAssembly.Memory(): shared memories are not supported");
      const [initial, maximum] = limitsOf(d, "WebAssembly.Memory()", 65536);
      this.#h = native.memoryNew(initial, maximum);
    }
    grow(delta) {
      return native.memoryGrow(this.#h, u32(delta, "WebAssembly.Memory.grow(): delta"));
    }
    get buffer() {
      return native.memoryBuffer(this.#h);
    }
    static {
      isMemory = (m) => isObject(m) && #h in m;
      memoryHandle = (m) => m.#h;
    }
  }

  const ELEMENTS = ["anyfunc", "funcref", "externref"];

  class Table {
    #h;
    constructor(descriptor, value) {
      if (descriptor === WRAP) {
        this.#h = value;
        return;
      }
      const d = descriptorOf(descriptor, "WebAssembly.Table()");
      const element = String(d.element);
      if (!ELEMENTS.includes(element)) {
        throw new TypeError(`WebAssembly.Table(): element type '${element}' is not supported (use 'anyfunc' or 'externref')`);
      }
      const [initial, maximum] = limitsOf(d, "WebAssembly.Table()", 10000000);
      // A missing value is the element type's default: null, or undefined in an externref table.
      this.#h = native.tableNew(element, initial, maximum, value);
    }
    get length() {
      return native.tableSize(this.#h);
    }
    get(index) {
      return native.tableGet(this.#h, u32(index, "WebAssembly.Table.get(): index"));
    }
    set(index, value) {
      native.tableSet(this.#h, u32(index, "WebAssembly.Table.set(): index"), value);
    }
    grow(delta, value) {
      return native.tableGrow(this.#h, u32(delta, "WebAssembly.Table.grow(): delta"), value);
    }
    static {
      isTable = (t) => isObject(t) && #h in t;
      tableHandle = (t) => t.#h;
    }
  }

  const VALUE_TYPES = ["i32", "i64", "f32", "f64", "anyfunc", "funcref", "externref"];

  class Global {
    #h;
    constructor(descriptor, value) {
      if (descriptor === WRAP) {
        this.#h = value;
        return;
      }
      const d = descriptorOf(descriptor, "WebAssembly.Global()");
      const type = String(d.value);
      if (!VALUE_TYPES.includes(type)) {
        throw new TypeError(`WebAssembly.Global(): value type '${type}' is not supported`);
      }
      this.#h = native.globalNew(type, !!d.mutable, value);
    }
    get value() {
      return native.globalGet(this.#h);
    }
    set value(v) {
      native.globalSet(this.#h, v);
    }
    valueOf() {
      return native.globalGet(this.#h);
    }
    static {
      isGlobal = (g) => isObject(g) && #h in g;
      globalHandle = (g) => g.#h;
    }
  }

  for (const C of [Module, Instance, Memory, Table, Global]) {
    Object.defineProperty(C.prototype, Symbol.toStringTag, { value: `WebAssembly.${C.name}`, configurable: true });
  }

  const isModule = (m) => {
    try {
      moduleHandle(m);
      return true;
    } catch {
      return false;
    }
  };

  // Compiling off the JavaScript thread when the embedder offers it (`native.compileAsync`:
  // a promise of a module handle), else synchronously.
  async function compileFrom(bytes, where) {
    const b = bytesOf(bytes, where);
    const later = typeof native.compileAsync === "function" ? native.compileAsync(b) : undefined;
    if (later !== undefined) return new Module(WRAP, await later);
    return new Module(b);
  }

  function compile(bytes) {
    return compileFrom(bytes, "WebAssembly.compile()");
  }

  function validate(bytes) {
    return native.validate(bytesOf(bytes, "WebAssembly.validate()"));
  }

  async function instantiate(source, importObject) {
    if (isModule(source)) return new Instance(source, importObject);
    const module = await compileFrom(source, "WebAssembly.instantiate()");
    return { module, instance: new Instance(module, importObject) };
  }

  async function bytesOfResponse(source, where) {
    const response = await source;
    if (response === null || typeof response !== "object" || typeof response.arrayBuffer !== "function") {
      throw new TypeError(`${where}: argument must be a Response or a promise of one`);
    }
    return await response.arrayBuffer();
  }

  async function compileStreaming(source) {
    return compileFrom(await bytesOfResponse(source, "WebAssembly.compileStreaming()"), "WebAssembly.compileStreaming()");
  }

  async function instantiateStreaming(source, importObject) {
    return instantiate(await bytesOfResponse(source, "WebAssembly.instantiateStreaming()"), importObject);
  }

  const WebAssembly = {};
  const members = {
    Module, Instance, Memory, Table, Global, CompileError, LinkError, RuntimeError,
    compile, validate, instantiate, compileStreaming, instantiateStreaming,
  };
  for (const [k, v] of Object.entries(members)) {
    Object.defineProperty(WebAssembly, k, { value: v, writable: true, configurable: true });
  }
  Object.defineProperty(WebAssembly, Symbol.toStringTag, { value: "WebAssembly", configurable: true });
  // `newModule` is for the module map (a `.wasm` module's default export is a WebAssembly.Module
  // made from its bytes); it stays the original even if user code replaces WebAssembly.Module.
  return { WebAssembly, newModule: (bytes) => new Module(bytes) };
})
