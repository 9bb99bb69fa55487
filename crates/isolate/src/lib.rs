//! JavaScript sandboxes on QuickJS (rquickjs): the `cloudflare:workers` module, web APIs
//! (including `ReadableStream`, carried as capnweb streams with backpressure), the
//! `WebAssembly` API (the `wasm` crate, on wasmtime; `.wasm` modules of the module map import as
//! `WebAssembly.Module`s), memory and CPU limits that cover JavaScript and wasm alike, bounded
//! background work (what an invocation leaves running — timers, awaited results,
//! `ctx.waitUntil` — is charged to it and ends with it; a wall-clock limit per invocation; a
//! cap on pending timers), the Node built-in modules `node:buffer`, `node:events` and
//! `node:util` (evaluated on first import; see `node.rs`), and the bridge between JavaScript
//! values and capnweb values.
//!
//! An [`Isolate`] is one QuickJS runtime with its own heap. Its jobs run one at a time, in
//! order, on whichever JavaScript thread is free (JavaScript never runs on tokio's I/O
//! threads); a spinning isolate holds one thread until its CPU limit, and more threads start
//! when every one is busy, up to a cap ([`set_max_js_threads`]; see `pool.rs`, and `state.rs`
//! for why a whole isolate can move between threads). A panic in a job discards only that
//! isolate (its calls fail with an internal error) and the thread is replaced. WebAssembly
//! compiles on the `wasm` crate's compile threads, off the JavaScript threads, and its time is
//! charged to the invocation that asked. Everything that crosses
//! into or out of it goes through capnweb: entrypoints and RPC targets are [`capnweb::Stub`]s,
//! JavaScript `RpcTarget`s and functions passed out become capabilities, and stubs passed in
//! become JavaScript stubs whose calls pipeline.
//!
//! ```no_run
//! use isolate::{Isolate, IsolateConfig};
//! use capnweb::Value;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let code = r#"
//!   import { RpcTarget } from "cloudflare:workers";
//!   class MathTarget extends RpcTarget { add(a, b) { return a + b; } }
//!   export default { rpc: MathTarget };
//! "#;
//! let isolate = Isolate::new(IsolateConfig::single("math", code)).await?;
//! let sum = isolate.rpc_target().call("add", vec![1.into(), 2.into()]).await?;
//! assert_eq!(sum.as_f64(), Some(3.0));
//! # Ok(()) }
//! ```
//!
//! What it deliberately does not do: give JavaScript a file system, environment variables,
//! Node built-ins other than those three, or the network (a global `fetch` works only through a `globalOutbound` capability), or cache
//! isolates (that is the loader's job).

#![warn(missing_docs, unreachable_pub)]
#![deny(unused_must_use, unsafe_op_in_unsafe_fn)]

mod background;
mod bridge;
mod bytecode;
mod capnweb_js;
mod cjs;
mod config;
mod cpu;
mod error;
mod gate;
mod host;
mod isolate;
mod limits;
mod modules;
mod natives;
mod node;
mod pool;
mod slot;
mod socket;
mod state;
mod target;
#[cfg(feature = "test-panic")]
mod test_panic;
mod wall;
mod wasm_compile;

pub use capnweb_js::set_function_rpc_limits;
pub use config::{IsolateConfig, Limits, ModuleSource};
pub use error::{internal_error, resource_limit_error, LoadError, RESOURCE_LIMIT_ERROR};
pub use gate::{
    evicted_error, use_tick, CallBudget, CallPass, EVICTED_ERROR, TOO_MANY_CALLS_ERROR,
};
pub use isolate::{Isolate, RpcSession};
pub use natives::MAX_CONSOLE_LINE_BYTES;
pub use node::NODE_BUILTINS;
pub use pool::{
    js_threads, set_js_threads, set_max_js_threads, DEFAULT_MAX_JS_THREADS, IDLE_EXIT, STALL,
};
pub use socket::{
    set_socket_limits, socket_limits, Outgoing, Socket, SocketFrame, SocketLimits, SocketMessage,
};
pub use wasm::{
    set_compile_threads as set_wasm_compile_threads,
    set_max_module_bytes as set_max_wasm_module_bytes,
    DEFAULT_MAX_MODULE_BYTES as DEFAULT_MAX_WASM_MODULE_BYTES, REF_BYTES,
};
