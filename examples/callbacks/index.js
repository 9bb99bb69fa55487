// Seed scenario 5: the dynamic worker calls back into a target the caller passed in.
export class LongRunningTask extends RpcTarget {
  async execute(callback, data) {
    // Call back to the caller
    await callback.onProgress(0, 'Starting...');

    // Do work...
    await callback.onProgress(50, 'Halfway done...');

    // More work...
    await callback.onProgress(100, 'Finishing...');

    const result = { processed: data, timestamp: Date.now() };
    await callback.onComplete(result);

    return result;
  }
}

export default { rpc: LongRunningTask };
