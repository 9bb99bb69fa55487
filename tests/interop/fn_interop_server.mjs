// The capnweb interop contract (ref_server.mjs's Api) served by a function from its own fetch
// with the built-in `capnweb` module's newWorkersRpcResponse, on a real `functions serve`, so
// that client.test.mjs checks a function's own URL as it checks the reference server:
//
//   INTEROP_SERVER="node fn_interop_server.mjs" INTEROP_PATH_PREFIX=/interop \
//     INTEROP_SKIP="$(node fn_interop_server.mjs --skip)" node --test client.test.mjs
//
// (fn_interop.test.mjs runs exactly that.) Prints `listening on PORT` once the function is
// deployed; stops the server on SIGTERM/SIGINT.

import { pathToFileURL } from "node:url";
import { bundle, startServer } from "./lib/serve.mjs";

// What a function serving capnweb cannot do, and why (the tests skipped through it):
// each entry is a regular expression of test names. The contract's sessionStats() reads the
// session's import/export tables, which the capnweb module does not hand to the function (its
// sessions run on the Rust core), so the tests that compare table sizes cannot run.
// The rest are differences of the isolate's JavaScript<->capnweb bridge, the same over
// /_rpc/<id>, not of serving capnweb from fetch.
export const SKIPS = {
  "session tables": "sessionStats() is not available to a function",
  "callback stub is released by the server": "sessionStats() is not available to a function",
  "raw websocket wire: push, pull, resolve, release": "sessionStats() is not available to a function",
  "throwError wire form|throwError with a custom name|throwError RangeError without props":
    "the isolate sends an error's stack on the wire (the reference sends null)",
  "Request DELETE with init options": "the isolate's Request does not keep `redirect` and other init options",
  "round-trips a Blob": "a Blob does not cross the isolate's bridge with its type",
  "lone surrogates nested in arrays, objects, error messages and props":
    "an error message with a lone surrogate cannot cross the isolate's bridge",
  "a 40 MiB message over http batch": "a function's URL takes request bodies up to 32 MiB (413), before capnweb sees them",
};

const CONTRACT = "const ERROR_CONSTRUCTORS = {\n  Error,\n  TypeError,\n  RangeError,\n  EvalError,\n  ReferenceError,\n  SyntaxError,\n  URIError,\n};\n\nclass Counter extends RpcTarget {\n  #value;\n  constructor(initial) {\n    super();\n    this.#value = initial;\n  }\n  increment(by = 1) {\n    this.#value += by;\n    return this.#value;\n  }\n  get value() {\n    return this.#value;\n  }\n}\n\nclass Api extends RpcTarget {\n  // Private, so it is not reachable over RPC (capnweb refuses instance properties anyway).\n  #stats;\n  constructor(stats) {\n    super();\n    this.#stats = stats;\n  }\n\n  square(i) {\n    return i * i;\n  }\n\n  add(a, b) {\n    return a + b;\n  }\n\n  echo(v) {\n    return v;\n  }\n\n  getUser(id) {\n    return { id, name: \"user\" + id, profile: { bio: \"bio of \" + id } };\n  }\n\n  makeCounter(initial) {\n    return new Counter(initial);\n  }\n\n  async callSquare(stub, i) {\n    return { result: await stub.square(i) };\n  }\n\n  async callFunction(fn, i) {\n    return { result: await fn(i) };\n  }\n\n  throwError(name, message, props) {\n    const Ctor = Object.hasOwn(ERROR_CONSTRUCTORS, name) ? ERROR_CONSTRUCTORS[name] : undefined;\n    let err;\n    if (Ctor) {\n      err = new Ctor(message);\n    } else {\n      err = new Error(message);\n      err.name = name;\n    }\n    Object.assign(err, props);\n    throw err;\n  }\n\n  async delay(ms, v) {\n    if (typeof ms !== \"number\" || !(ms >= 0)) throw new TypeError(\"delay: ms must be a non-negative number\");\n    if (ms > 10000) throw new RangeError(\"delay: ms must be at most 10000\");\n    await new Promise((resolve) => setTimeout(resolve, ms));\n    return v;\n  }\n\n  generateFibonacci(n) {\n    if (typeof n !== \"number\" || !Number.isInteger(n) || n < 0) {\n      throw new TypeError(\"generateFibonacci: n must be a non-negative integer\");\n    }\n    if (n > 1000) throw new RangeError(\"generateFibonacci: n must be at most 1000\");\n    const out = [];\n    let a = 0;\n    let b = 1;\n    for (let k = 0; k < n; k++) {\n      out.push(a);\n      [a, b] = [b, a + b];\n    }\n    return out;\n  }\n\n  sessionStats() {\n    throw new TypeError(\"sessionStats: a function serving capnweb cannot see its session's tables\");\n  }\n}\n\n";

const SOURCE = `
import { RpcTarget, newHttpBatchRpcResponse, newWorkersRpcResponse } from "capnweb";
${CONTRACT}
export default {
  fetch(request) {
    const api = new Api(() => null);
    // POST /batch answers as nodeHttpBatchRpcResponse does (405 for other methods).
    if (new URL(request.url).pathname === "/batch") return newHttpBatchRpcResponse(request, api);
    return newWorkersRpcResponse(request, api);
  },
};
`;

const MAIN = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;

if (MAIN && process.argv.includes("--skip")) {
  process.stdout.write(Object.keys(SKIPS).join("|"));
  process.exit(0);
}

if (MAIN) await serve();

async function serve() {
const server = await startServer({
  args: ["--ws-max-message-bytes", String(100 * 1024 * 1024), "--ws-max-outbound-mb", "512", "--max-memory-mb", "1024", "--max-cpu-ms", "60000"],
});
await server.deploy("interop", bundle(SOURCE, { limits: { memoryMb: 1024, cpuMs: 60000 } }));
const port = new URL(server.base).port;
process.stdout.write(`listening on ${port}\n`);
async function shutdown() {
  await server.stop();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
}
