// What the npm copy of Node's string_decoder (CommonJS; it requires Node's `buffer` through
// safe-buffer) makes of chunks that split characters. The function answers this at /decode,
// and tests/interop/npm_app.test.mjs runs the same code under Node and compares.
export function decodeSample(StringDecoder, Buffer) {
  const text = Buffer.from("€ and 😀 and é", "utf8");
  const utf8 = new StringDecoder("utf8");
  const pieces = [];
  for (let i = 0; i < text.length; i += 2) pieces.push(utf8.write(text.subarray(i, i + 2)));
  pieces.push(utf8.end());
  const b64 = new StringDecoder("base64");
  const u16 = new StringDecoder("utf16le");
  return {
    pieces,
    base64: [b64.write(Buffer.from("hello")), b64.end()],
    utf16: [u16.write(Buffer.from([0x3d, 0xd8])), u16.write(Buffer.from([0x00, 0xde, 0x41])), u16.end(Buffer.from([0x00]))],
    hex: new StringDecoder("hex").write(Buffer.from([1, 254])),
    latin1: new StringDecoder("latin1").write(Buffer.from([0xe9, 0x41])),
  };
}
