// Seed scenario 3: a dynamic worker that calls another service through a binding.
export class OrchestratorTarget extends RpcTarget {
  constructor(ctx, env) {
    super();
    this.runtime = env.RUNTIME;
  }

  async executeWithRuntime(functionId, payload) {
    // Call the runtime service's RpcTarget
    const runtimeTarget = this.runtime.getRpcTarget();
    return await runtimeTarget.execute(functionId, payload);
  }
}

export default { rpc: OrchestratorTarget };
