// Front worker for the workerd side of the benchmark. It does what the Functions server does
// for each request: pick the function by the first path segment, get it from the Worker
// Loader (cached by id after the first load), strip the id from the URL and call `fetch`, or,
// with an `X-RPC-Method` header, call that method with the JSON array body and answer
// `{"result": ...}`.

const HELLO_SRC = `export default { fetch() { return new Response("Hello, world!") } }`;

// workerd has no `getRpcTarget()`: the RPC side is a WorkerEntrypoint with the method.
const RPC_SRC = `import { WorkerEntrypoint } from "cloudflare:workers";
export default class extends WorkerEntrypoint {
  fetch() { return new Response("ok") }
  add(a, b) { return a + b }
}`;

const CODE = {
  hello: HELLO_SRC,
  rpc: RPC_SRC,
};

function code(id) {
  return {
    compatibilityDate: "2025-06-01",
    mainModule: "index.js",
    modules: { "index.js": CODE[id] },
  };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const slash = url.pathname.indexOf("/", 1);
    const id = slash < 0 ? url.pathname.slice(1) : url.pathname.slice(1, slash);
    if (!(id in CODE)) return Response.json({ error: { name: "NotFound", message: id } }, { status: 404 });
    const worker = env.LOADER.get(id, () => code(id));
    const entry = worker.getEntrypoint();
    const method = request.headers.get("X-RPC-Method");
    if (method !== null) {
      let params;
      try {
        params = await request.json();
      } catch (e) {
        return Response.json({ error: { name: "SyntaxError", message: String(e) } }, { status: 400 });
      }
      if (!Array.isArray(params)) {
        return Response.json({ error: { name: "TypeError", message: "body is not an array" } }, { status: 400 });
      }
      try {
        const result = await entry[method](...params);
        return Response.json({ result });
      } catch (e) {
        return Response.json({ error: { name: e.name, message: e.message } }, { status: 500 });
      }
    }
    url.pathname = slash < 0 ? "/" : url.pathname.slice(slash);
    return entry.fetch(new Request(url, request));
  },
};
