// Seed scenario 1, the loader side: env.LOADER.get(id, getCode) from JavaScript.
export class LoaderCaller extends RpcTarget {
  constructor(ctx, env) {
    super();
    this.env = env;
  }

  async run() {
    const dynamicCode = this.env.CODE;
    const stub = this.env.LOADER.get('math-function', () => ({
      compatibilityDate: '2024-01-01',
      mainModule: 'index.js',
      modules: {
        'index.js': { esModule: dynamicCode }
      }
    }));
    const target = stub.getRpcTarget();
    const sum = await target.add(2, 3);
    const product = await target.multiply(4, 5);
    const response = await stub.fetch(new Request('https://math.example/'));
    return { sum, product, status: response.status, text: await response.text() };
  }
}

export default { rpc: LoaderCaller };
