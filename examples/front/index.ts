// The seed's "Loader Integration" front end, in the seed's own TypeScript: a fetch-only
// function that loads a function's code from the FUNCTION_STORE KV namespace into a dynamic
// worker (env.LOADER) and either forwards the request to it or, with X-RPC-Method, calls
// that method on its RPC target. Deployed as it is (the server strips the types); the only
// change from the seed: an unknown id answers 404. The code it loads stays JavaScript.
interface Env {
  FUNCTION_STORE: KVNamespace;
  LOADER: WorkerLoader;
  RUNTIME: Fetcher;
  KV: KVNamespace;
  R2: R2Bucket;
}

// Function loader with RPC support
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const functionId = url.pathname.slice(1);

    const functionCode = await env.FUNCTION_STORE.get(functionId);
    if (functionCode === null) {
      return Response.json({ error: { name: 'NotFound', message: `no code for '${functionId}'` } }, { status: 404 });
    }

    const stub = env.LOADER.get(functionId, () => ({
      compatibilityDate: '2024-01-01',
      mainModule: 'index.js',
      modules: {
        'index.js': { esModule: functionCode }
      },
      env: {
        RUNTIME: env.RUNTIME,
        KV: env.KV,
        R2: env.R2
      }
    }));

    // For RPC requests
    if (request.headers.get('X-RPC-Method')) {
      const target = stub.getRpcTarget();
      const method = request.headers.get('X-RPC-Method');
      const params = await request.json();

      const result = await (target as any)[method](...params);
      return Response.json({ result });
    }

    // For HTTP requests
    return stub.fetch(request);
  }
};
