// The seed's scenario 1 target written on the seed's FunctionTarget base class
// (`target.ts`, the "RpcTarget Template" verbatim), deployed as TypeScript, types and all.
import { FunctionTarget } from './target';

interface FunctionEnv {
  [name: string]: unknown;
}

export class MathTarget extends FunctionTarget {
  constructor(ctx: ExecutionContext, env: FunctionEnv) {
    super(ctx, env);
  }

  async add(a: number, b: number): Promise<number> {
    return this.invoke('add', async () => a + b);
  }

  async multiply(a: number, b: number): Promise<number> {
    return this.invoke('multiply', async () => a * b);
  }

  async divide(a: number, b: number): Promise<number> {
    return this.invoke('divide', async () => {
      if (b === 0) throw new RangeError('division by zero');
      return a / b;
    });
  }
}

export default {
  async fetch(request: Request, env: FunctionEnv): Promise<Response> {
    return new Response('OK');
  },
  rpc: MathTarget
};
