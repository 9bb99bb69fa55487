// Seed scenario 7: a target under many concurrent calls.
import { RpcTarget } from 'cloudflare:workers';

export class ComputeTarget extends RpcTarget {
  constructor(ctx, env) {
    super();
    this.calls = 0;
  }

  async compute(i) {
    this.calls++;
    await null; // yield, so calls interleave
    return { input: i, square: i * i };
  }

  async callCount() {
    return this.calls;
  }
}

export default { rpc: ComputeTarget };
