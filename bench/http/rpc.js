import { RpcTarget } from "cloudflare:workers";

export class Api extends RpcTarget {
  add(a, b) { return a + b }
}

export default { fetch() { return new Response("ok") }, rpc: Api }
