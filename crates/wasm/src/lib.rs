//! The `WebAssembly` JavaScript API inside an isolate, on wasmtime: `WebAssembly.Module`,
//! `Instance`, `Memory`, `Table`, `Global`, `compile`, `validate`, `instantiate` and the
//! `CompileError` / `LinkError` / `RuntimeError` classes, as the
//! [JS API spec](https://webassembly.github.io/spec/js-api/) describes them.
//!
//! One process-wide wasmtime [`Engine`](wasmtime::Engine) compiles every module (compiled
//! modules are cached by their bytes). Each isolate gets one [`Wasm`]: a wasmtime store made
//! on first use, in which every instance, memory, table and global of that isolate lives. The
//! isolate hands it an [`Embedder`], through which it enforces the isolate's limits:
//!
//! - **CPU**: code is compiled with epoch interruption; a ticker thread advances the epoch
//!   every [`EPOCH_TICK`], and at each tick running wasm asks [`Embedder::should_stop`]. Once
//!   that says yes, the running wasm traps within one tick and no wasm of that isolate can run
//!   again. Guest code cannot avoid the check: it is compiled into every loop header and
//!   function entry.
//! - **Memory**: every byte a linear memory, table or GC heap grows by is first
//!   [reserved](Embedder::reserve) from the isolate's budget, which also holds the JavaScript
//!   heap. A refused `memory.grow` or `table.grow` returns `-1` (the spec's failure), a refused
//!   `WebAssembly.Memory`, `Table`, instantiation or externref throws a `RangeError`. What is
//!   charged: a memory's accessible size, 8 bytes per table element, the GC heap's size, and
//!   [`REF_BYTES`] per JavaScript value wasm holds as an externref; compiled code (shared
//!   through the per-process cache) and wasmtime's per-instance bookkeeping are not. Memories
//!   are reserved virtual address space (4 GiB plus a guard each, at most 16 per isolate) that
//!   never moves (`memory_may_move(false)`), so an `ArrayBuffer` over one stays valid.
//! - **Stack**: wasm may use [`MAX_WASM_STACK`] of native stack; deeper recursion is a
//!   `RuntimeError` ("call stack exhausted"), never a crash.
//! - **Compilation** runs on a few compile threads of its own ([`set_compile_threads`]), never
//!   on the thread that asked, for modules of at most [`max_module_bytes`] (default
//!   [`DEFAULT_MAX_MODULE_BYTES`], 32 MiB; bigger is a `RangeError`, and `validate` says
//!   `false`). `WebAssembly.compile` and `instantiate` use the embedder's `compileAsync`
//!   native when it adds one and it gives a promise (the isolate's does, inside an invocation:
//!   the JavaScript thread is free meanwhile, and the compile time is charged to the invocation
//!   afterwards); otherwise, and for `new WebAssembly.Module(bytes)`, which is synchronous, the
//!   thread waits for the compile thread and the time is charged through
//!   [`Embedder::charge_cpu`]. Modules compiled ahead of
//!   time ([`compile_in_background`], [`Wasm::preload`]) are taken without compiling again.
//!
//! ```
//! use std::rc::Rc;
//! # struct Unlimited;
//! # impl wasm::Embedder for Unlimited {
//! #     fn should_stop(&self) -> bool { false }
//! #     fn reserve(&self, _: usize) -> bool { true }
//! #     fn release(&self, _: usize) {}
//! #     fn memory_limit(&self) -> usize { 0 }
//! # }
//! # fn demo() -> rquickjs::Result<()> {
//! let wasm = wasm::Wasm::new(Rc::new(Unlimited)); // dropped last, after the runtime
//! let rt = rquickjs::Runtime::new()?;
//! let ctx = rquickjs::Context::full(&rt)?;
//! ctx.with(|ctx| -> rquickjs::Result<()> {
//!     let api: rquickjs::Function = ctx.eval(format!("({})", wasm::JS_API))?;
//!     let built: rquickjs::Object = api.call((wasm::natives(&ctx, &wasm)?,))?;
//!     ctx.globals().set("WebAssembly", built.get::<_, rquickjs::Object>("WebAssembly")?)?;
//!     let n: i32 = ctx.eval(
//!         "new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array([0,97,115,109,1,0,0,0,\
//!          1,5,1,96,0,1,127,3,2,1,0,7,5,1,1,102,0,0,10,6,1,4,0,65,42,11]))).exports.f()",
//!     )?;
//!     assert_eq!(n, 42);
//!     wasm.clear(&ctx); // before the context goes
//!     Ok(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! How it is built:
//!
//! - **Epoch interruption, not fuel**, for the CPU limit: the limit is wall-clock CPU time per
//!   invocation (the isolate's deadline), which an epoch check reads directly, and the check
//!   costs a load and a compare where fuel costs counting in every block (wasmtime's docs
//!   report epochs up to 2–3× faster in some measurements). Fuel's advantage, determinism, is
//!   not needed here.
//! - **JavaScript imports** become wasmtime host functions that hold only an index into the
//!   [`Wasm`]'s table of JavaScript functions. When wasm calls one, the host function lends
//!   its `Caller` to the [`Wasm`] for the duration of the JavaScript call, so JavaScript that
//!   reads `memory.buffer` or calls back into wasm reaches the same store re-entrantly; an
//!   exception it throws is kept, carried through the wasm frames as an error, and rethrown
//!   to the JavaScript caller unchanged.
//! - **`externref`** needs wasmtime's `gc` feature; the collector is deferred reference
//!   counting, so a JavaScript value is let go soon after wasm drops its last reference (see
//!   `externref.rs` for the choice). QuickJS values are not `Send`, so an externref holds only
//!   the index of a slot in the isolate's own table of values.
//! - **Memory buffers** are `ArrayBuffer`s over the linear memory itself. Memory never moves,
//!   so a buffer stays valid; after growth the old one is detached and a new one made, at every
//!   point JavaScript can observe it.
//!
//! What it deliberately does not do: know about capnweb, HTTP or the module map (the isolate
//! turns a `.wasm` module into a `WebAssembly.Module`), give wasm anything but what the
//! JavaScript import object hands it, or support shared memories, exceptions and the GC
//! proposal's structs, arrays and `anyref` (modules that use them fail to compile with a
//! `CompileError`).

#![warn(missing_docs, unreachable_pub)]
#![deny(unused_must_use, unsafe_op_in_unsafe_fn)]

mod call;
mod compile;
mod engine;
mod error;
mod externref;
mod handle;
mod imports;
mod memory;
mod natives;
mod store;
mod values;

pub use compile::{
    compile, compile_in_background, max_module_bytes, set_compile_threads, set_max_module_bytes,
    CompiledModule, DEFAULT_MAX_MODULE_BYTES,
};
pub use engine::{validate, EPOCH_TICK, MAX_WASM_STACK};
pub use error::WasmError;
pub use externref::REF_BYTES;
pub use natives::natives;
pub use store::{Embedder, Wasm};

/// The JavaScript half of the API: a function expression that takes the object [`natives`]
/// builds and returns `{ WebAssembly, newModule }` — the namespace object, and a function that
/// makes a `WebAssembly.Module` from bytes (for the module map; user code cannot replace it).
pub const JS_API: &str = include_str!("js/webassembly.js");
