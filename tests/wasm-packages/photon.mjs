// The calls made to @cf-wasm/photon (wasm-bindgen 0.2.126, externref): the same code runs under
// Node (record.mjs, which writes expected.json) and in an isolate (crates/isolate/tests/
// wasm_packages.rs, which compares). `photon` is the package's module namespace, `exports` the
// wasm instance's exports (what its init function resolves to).

// FNV-1a over bytes, as an unsigned 32-bit number.
export function fnv(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}

// A deterministic RGBA gradient.
function gradient(w, h) {
  const px = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      px[i] = (x * 255) / (w - 1);
      px[i + 1] = (y * 255) / (h - 1);
      px[i + 2] = (x * y) & 255;
      px[i + 3] = 255;
    }
  }
  return px;
}

// One round of calls on a 48x32 image; every answer is a plain JSON value.
function round(photon) {
  const out = {};
  const img = new photon.PhotonImage(gradient(48, 32), 48, 32);
  out.size = [img.get_width(), img.get_height()];
  photon.grayscale(img);
  out.grayscale = fnv(img.get_raw_pixels());
  photon.gaussian_blur(img, 2);
  out.blurred = fnv(img.get_raw_pixels());
  // An ImageData made by JavaScript, handed to wasm as an externref, and back.
  const data = img.get_image_data();
  out.imageData = [data.constructor.name, data.width, data.height, fnv(data.data)];
  const copy = new photon.PhotonImage(gradient(48, 32), 48, 32);
  copy.set_imgdata(data);
  out.fromImageData = fnv(copy.get_raw_pixels());
  // Multi-value returns (pointer and length) through arrays.
  const png = img.get_bytes();
  out.png = [png.length, fnv(png)];
  const decoded = photon.PhotonImage.new_from_byteslice(png);
  out.decoded = [decoded.get_width(), decoded.get_height(), fnv(decoded.get_raw_pixels())];
  const base64 = img.get_base64();
  out.base64 = [base64.slice(0, 30), base64.length];
  const resized = photon.resize(decoded, 71, 45, photon.SamplingFilter.Lanczos3);
  out.resized = [resized.get_width(), resized.get_height(), fnv(resized.get_raw_pixels())];
  // A Rust error comes back as a JavaScript value thrown through the externref table.
  try {
    photon.PhotonImage.new_from_byteslice(new Uint8Array([1, 2, 3]));
    out.error = "no error";
  } catch (e) {
    out.error = typeof e === "string" ? "string" : e?.constructor?.name ?? typeof e;
  }
  for (const x of [img, copy, decoded, resized]) x.free();
  return out;
}

export async function calls(photon, exports) {
  const first = round(photon);
  const before = exports.memory.buffer.byteLength;
  // Grow the memory: a large image allocated and processed, then freed.
  const big = new photon.PhotonImage(gradient(512, 384), 512, 384);
  photon.grayscale(big);
  const bigSum = fnv(big.get_raw_pixels());
  big.free();
  const after = exports.memory.buffer.byteLength;
  const second = round(photon);
  return { first, second, bigSum, grew: after > before };
}
