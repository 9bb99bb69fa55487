// Seed scenario 8: WebAssembly inside an RpcTarget. The seed's code as written (it uses the
// global RpcTarget without importing it, which works here as in the seed).
import init, { process_data } from './wasm/processor.js';
import wasmModule from './wasm/processor.wasm';

let wasmInitialized = false;

export class WasmProcessor extends RpcTarget {
  async initialize() {
    if (!wasmInitialized) {
      await init(wasmModule);
      wasmInitialized = true;
    }
    return { initialized: true };
  }

  async process(data) {
    if (!wasmInitialized) {
      await this.initialize();
    }
    return process_data(JSON.stringify(data));
  }
}

export default { rpc: WasmProcessor };
