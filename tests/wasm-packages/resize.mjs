// The calls made to @jsquash/resize: its magic-kernel codec is wasm-bindgen 0.2.106 output with
// externref (it returns an ImageData made by JavaScript as an externref); its squoosh resize
// codec is older wasm-bindgen output without. The same code runs under Node (record.mjs) and in
// an isolate (crates/isolate/tests/wasm_packages.rs). `resize` is the package's module
// namespace, `kernel` the magic-kernel instance's exports.
import { fnv } from "./photon.mjs";

globalThis.ImageData ??= class ImageData {
  constructor(data, width, height) {
    this.data = data;
    this.width = width;
    this.height = height;
  }
};

function image(w, h) {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 5)) & 255;
  return new ImageData(data, w, h);
}

async function round(resize) {
  const out = {};
  for (const method of ["magicKernel", "magicKernelSharp2013", "magicKernelSharp2021", "lanczos3"]) {
    const r = await resize.default(image(40, 30), { width: 73, height: 55, method });
    out[method] = [r.constructor.name, r.width, r.height, fnv(r.data)];
  }
  return out;
}

export async function calls(resize, kernel) {
  const first = await round(resize);
  const before = kernel.memory.buffer.byteLength;
  const big = await resize.default(image(400, 300), { width: 500, height: 400, method: "magicKernelSharp2021" });
  const bigSum = fnv(big.data);
  const after = kernel.memory.buffer.byteLength;
  const second = await round(resize);
  return { first, second, bigSum, grew: after > before };
}
