// Seed scenario 2, the caller side: three dependent calls made without awaiting in between.
export class PipelineCaller extends RpcTarget {
  constructor(ctx, env) {
    super();
    this.env = env;
  }

  async run() {
    const stub = this.env.PIPELINE;
    // Pipelined calls - no await between calls
    const target = stub.getRpcTarget();
    const fetchPromise = target.fetchData('user-123');
    const transformPromise = target.transform(fetchPromise); // Pipeline!
    const savePromise = target.save(transformPromise);       // Pipeline!
    const finalResult = await savePromise;
    return finalResult;
  }
}

export default { rpc: PipelineCaller };
