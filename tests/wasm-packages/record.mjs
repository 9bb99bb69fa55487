// Runs photon.mjs and resize.mjs under Node with the packages' own Node setup and writes their
// answers to expected.json, which crates/isolate/tests/wasm_packages.rs compares with the
// isolate's. Run after `npm ci`: `node record.mjs`.
import { readFileSync, writeFileSync } from "node:fs";
import * as photon from "@cf-wasm/photon/node";
import * as resize from "@jsquash/resize";
import inline from "./node_modules/@cf-wasm/photon/dist/lib/photon_rs_bg.wasm.inline.js";
import { calls as photonCalls } from "./photon.mjs";
import { calls as resizeCalls } from "./resize.mjs";

const here = (p) => new URL(p, import.meta.url);
// The Node entry compiles the inlined copy of the module; the isolate imports the .wasm file.
const file = readFileSync(here("node_modules/@cf-wasm/photon/dist/lib/photon_rs_bg.wasm"));
if (Buffer.compare(Buffer.from(inline), file) !== 0) throw new Error("photon: the inlined wasm is not the .wasm file");

// Both modules use externref: an externref table (element type 0x6f) exported as
// `__wbindgen_externrefs`, which the glue fills from JavaScript and wasm grows.
function externrefTables(bytes) {
  let p = 8, n = 0;
  const leb = () => { let r = 0, s = 0, x; do { x = bytes[p++]; r |= (x & 0x7f) << s; s += 7; } while (x & 0x80); return r >>> 0; };
  while (p < bytes.length) {
    const id = bytes[p++], len = leb(), end = p + len;
    if (id === 4) for (let i = leb(); i > 0; i--) { if (bytes[p++] === 0x6f) n++; const flags = bytes[p++]; leb(); if (flags & 1) leb(); }
    p = end;
  }
  return n;
}

const lib = "node_modules/@jsquash/resize/lib";
await resize.initResize(readFileSync(here(`${lib}/resize/pkg/squoosh_resize_bg.wasm`)));
const kernel = await resize.initMagicKernel(readFileSync(here(`${lib}/magic-kernel/pkg/jsquash_magic_kernel_bg.wasm`)));

for (const bytes of [file, readFileSync(here(`${lib}/magic-kernel/pkg/jsquash_magic_kernel_bg.wasm`))]) {
  const exported = WebAssembly.Module.exports(new WebAssembly.Module(bytes));
  if (externrefTables(bytes) !== 1 || !exported.some((e) => e.name === "__wbindgen_externrefs" && e.kind === "table")) {
    throw new Error("a fixture module has no exported externref table");
  }
}

const expected = {
  node: process.version,
  photon: await photonCalls(photon, await photon.initPhoton.promise),
  resize: await resizeCalls(resize, kernel),
};
writeFileSync(here("expected.json"), JSON.stringify(expected, null, 2) + "\n");
console.log(JSON.stringify(expected));
