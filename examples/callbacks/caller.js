// Seed scenario 5, the caller side: a callback RpcTarget passed to the dynamic worker.
// (The seed's ProgressCallback, plus a log so the test can see each callback arrive.)
const log = [];

class ProgressCallback extends RpcTarget {
  async onProgress(percent, message) {
    console.log(`Progress: ${percent}% - ${message}`);
    log.push(['progress', percent, message]);
    return { acknowledged: true };
  }

  async onComplete(result) {
    console.log('Complete:', result);
    log.push(['complete', result]);
    return { acknowledged: true };
  }
}

export class CallbackCaller extends RpcTarget {
  constructor(ctx, env) {
    super();
    this.env = env;
  }

  async run() {
    const stub = this.env.LOADER.get('callbacks', () => this.env.CODE);
    // Pass callback to dynamic worker
    const callback = new RpcStub(new ProgressCallback());
    const target = stub.getRpcTarget();
    const result = await target.execute(callback, { items: [1, 2, 3] });
    return { result, log };
  }
}

export default { rpc: CallbackCaller };
