// sdk-templates/typescript/src/target.ts
import { RpcTarget, RpcStub } from 'cloudflare:workers';

/**
 * Base class for Functions.do RPC targets.
 * Provides common functionality and metrics.
 */
export abstract class FunctionTarget extends RpcTarget {
  protected readonly env: FunctionEnv;
  protected readonly ctx: ExecutionContext;

  private _invocationCount = 0;
  private _errorCount = 0;

  constructor(ctx: ExecutionContext, env: FunctionEnv) {
    super();
    this.ctx = ctx;
    this.env = env;
  }

  /**
   * Wrap method execution with metrics and error handling.
   */
  protected async invoke<T>(
    name: string,
    fn: () => Promise<T>
  ): Promise<T> {
    this._invocationCount++;
    const start = performance.now();

    try {
      const result = await fn();

      // Log metrics asynchronously
      this.ctx.waitUntil(
        this.logMetrics(name, performance.now() - start, true)
      );

      return result;
    } catch (error) {
      this._errorCount++;

      this.ctx.waitUntil(
        this.logMetrics(name, performance.now() - start, false)
      );

      throw error;
    }
  }

  private async logMetrics(
    method: string,
    durationMs: number,
    success: boolean
  ): Promise<void> {
    // Send to analytics
  }

  getMetrics(): FunctionMetrics {
    return {
      invocations: this._invocationCount,
      errors: this._errorCount,
    };
  }
}
