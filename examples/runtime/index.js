// The "runtime" service that seed scenario 3 passes to the orchestrator as env.RUNTIME.
import { RpcTarget } from 'cloudflare:workers';

export class RuntimeTarget extends RpcTarget {
  async execute(functionId, payload) {
    return { functionId, payload, executedBy: 'runtime' };
  }
}

export default { rpc: RuntimeTarget };
