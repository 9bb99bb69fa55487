// Seed scenario 2: methods whose results feed each other, for promise pipelining.
import { RpcTarget } from 'cloudflare:workers';

export class DataPipeline extends RpcTarget {
  async fetchData(id) {
    // Returns a promise that resolves to data
    return { id, value: Math.random() };
  }

  async transform(data) {
    return { ...data, transformed: true };
  }

  async save(data) {
    return { saved: true, data };
  }
}

export default { rpc: DataPipeline };
