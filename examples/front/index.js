// The seed's "Loader Integration" front end: a fetch-only function that loads a function's
// code from the FUNCTION_STORE KV namespace into a dynamic worker (env.LOADER) and either
// forwards the request to it or, with X-RPC-Method, calls that method on its RPC target.
// Adapted from the seed: TypeScript removed, and an unknown id answers 404.
export default {
  async fetch(request, env) {
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

      const result = await target[method](...params);
      return Response.json({ result });
    }

    // For HTTP requests
    return stub.fetch(request);
  }
};
