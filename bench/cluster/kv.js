// A function that reads or writes one KV key per request (bench/cluster/kv.lua).
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const op = url.searchParams.get("op");
    const key = url.searchParams.get("k");
    if (op === "put") {
      await env.KV.put(key, "value of " + key);
      return new Response("ok");
    }
    if (op === "get") {
      const v = await env.KV.get(key);
      return new Response(v ?? "missing", { status: v === null ? 404 : 200 });
    }
    return new Response("none");
  },
};
