// JavaScript bindings for processor.wasm, in the shape wasm-bindgen generates for
// `#[wasm_bindgen] pub fn process_data(input: &str) -> String` (written by hand: the module is
// hand-written WAT, see processor.wat). Strings cross through linear memory with TextEncoder
// and TextDecoder over `memory.buffer`; the cached view is made again whenever a growing
// memory has detached the old buffer.

let wasm;

const cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });
const cachedTextEncoder = new TextEncoder();

let cachedUint8ArrayMemory0 = null;

function getUint8ArrayMemory0() {
  if (cachedUint8ArrayMemory0 === null || cachedUint8ArrayMemory0.byteLength === 0) {
    cachedUint8ArrayMemory0 = new Uint8Array(wasm.memory.buffer);
  }
  return cachedUint8ArrayMemory0;
}

function getStringFromWasm0(ptr, len) {
  ptr = ptr >>> 0;
  return cachedTextDecoder.decode(getUint8ArrayMemory0().subarray(ptr, ptr + len));
}

let WASM_VECTOR_LEN = 0;

function passStringToWasm0(arg, malloc) {
  const buf = cachedTextEncoder.encode(arg);
  const ptr = malloc(buf.length, 1) >>> 0;
  getUint8ArrayMemory0().subarray(ptr, ptr + buf.length).set(buf);
  WASM_VECTOR_LEN = buf.length;
  return ptr;
}

/**
 * Sums the integers of a JSON text (digits inside strings do not count).
 * @param {string} input
 * @returns {string} `{"sum":S,"count":C,"bytes":B}`
 */
export function process_data(input) {
  let deferred0;
  let deferred1;
  try {
    const ptr0 = passStringToWasm0(input, wasm.__wbindgen_malloc);
    const len0 = WASM_VECTOR_LEN;
    const ret = wasm.process_data(ptr0, len0);
    deferred0 = ret[0];
    deferred1 = ret[1];
    return getStringFromWasm0(ret[0], ret[1]);
  } finally {
    if (deferred0 !== undefined) wasm.__wbindgen_free(deferred0, deferred1, 1);
  }
}

function getImports() {
  const imports = {};
  imports.wbg = {};
  imports.wbg.__wbindgen_throw = function (arg0, arg1) {
    throw new Error(getStringFromWasm0(arg0, arg1));
  };
  return imports;
}

function finalizeInit(instance, module) {
  wasm = instance.exports;
  init.__wbindgen_wasm_module = module;
  cachedUint8ArrayMemory0 = null;
  return wasm;
}

async function load(module, imports) {
  if (module instanceof WebAssembly.Module) {
    const instance = await WebAssembly.instantiate(module, imports);
    return { instance, module };
  }
  // Bytes (an ArrayBuffer or a typed array).
  return await WebAssembly.instantiate(module, imports);
}

/**
 * Instantiates the module once.
 * @param {WebAssembly.Module | BufferSource | Promise<WebAssembly.Module>} module
 */
export default async function init(module) {
  if (wasm !== undefined) return wasm;
  if (module === undefined) {
    throw new TypeError('processor.js: pass the module (import it from ./processor.wasm)');
  }
  const { instance, module: compiled } = await load(await module, getImports());
  return finalizeInit(instance, compiled);
}
