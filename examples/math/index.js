// Seed scenario 1: a basic RpcTarget in a dynamically loaded worker.
import { RpcTarget } from 'cloudflare:workers';

export class MathTarget extends RpcTarget {
  async add(a, b) {
    return a + b;
  }

  async multiply(a, b) {
    return a * b;
  }
}

export default {
  async fetch(request, env) {
    return new Response('OK');
  },
  rpc: MathTarget
};
