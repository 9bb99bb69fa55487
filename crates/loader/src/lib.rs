//! The Worker Loader: functions by id, loaded from [`WorkerCode`] into
//! [`isolate::Isolate`]s, cached (LRU under a count and memory budget), with bindings
//! (service, loader, vars, any capnweb stub) and per-function metrics.
//!
//! ```no_run
//! use loader::{Loader, WorkerCode};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let loader = Loader::default();
//! let code = r#"
//!   import { RpcTarget } from "cloudflare:workers";
//!   class MathTarget extends RpcTarget { add(a, b) { return a + b; } }
//!   export default { rpc: MathTarget };
//! "#;
//! let stub = loader.get("math", move || {
//!     let code = code.to_owned();
//!     async move { Ok::<_, String>(WorkerCode::single(code)) }
//! });
//! let sum = stub.get_rpc_target().call("add", vec![1.into(), 2.into()]).await?;
//! assert_eq!(sum.as_f64(), Some(3.0));
//! # Ok(()) }
//! ```
//!
//! What a function loads itself (through its `env.LOADER`) are its [`Children`]
//! ([`Loader::children`]): they run with at most the function's limits, are counted and capped
//! per parent (resident, in flight), and stop with it ([`Children::close`]); calls through stubs
//! into an evicted child fail with `IsolateEvictedError` ([`isolate::EVICTED_ERROR`]).
//!
//! Both JavaScript conventions work: workerd's (`export default { fetch }`, `WorkerEntrypoint`
//! classes, [`WorkerStub::get_entrypoint`]) and the seed's (`export default { rpc: Class }`,
//! [`WorkerStub::get_rpc_target`]). What it deliberately does not do: speak HTTP or store code
//! (the server and store crates do).

#![warn(missing_docs, unreachable_pub)]

mod binding;
mod children;
mod code;
mod error;
mod limits;
mod loader;
mod metrics;
mod stub;

pub use children::Children;
pub use code::{module_source, CodeError, WorkerCode, WorkerLimits};
pub use error::LoaderError;
pub use isolate::{Limits, ModuleSource};
pub use loader::{ChildrenConfig, Loader, LoaderConfig};
pub use stub::WorkerStub;
