//! The Functions server: the HTTP and WebSocket front end, admin API, bindings and metrics,
//! behind the binary `functions` (see the crate README for the CLI).
//!
//! The server wires the other crates together and owns no JavaScript: code runs on a
//! [`FunctionHost`] (the Worker Loader's [`LoaderHost`], or the test host [`CannedHost`]); code,
//! KV and blobs live in the [`store`] crate; every RPC hop is [`capnweb`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use server::{CannedHost, Config, Server};
//!
//! # async fn demo() -> Result<(), server::ServerError> {
//! let config = Config { listen: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
//! let server = Server::start(config, Arc::new(CannedHost::new())).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Modules: [`manifest`] (the bundle format), [`registry`] (atomic versioned deploys),
//! [`host`] (the runtime interface), [`host_loader`] (the Worker Loader's host),
//! [`host_canned`] (the test host), [`bindings`], [`kv_binding`], [`blob_binding`],
//! [`http`] (routes and the status mapping), [`logs`] (live console output), [`metrics`], [`function_dir`] (building a
//! bundle from a directory), [`token`], [`server`], [`node`] and [`cluster`] (several nodes on one PostgreSQL store:
//! this node in the registry, following the others' deploys).
//!
//! What it does not do: run JavaScript itself (the loader and isolate crates do), serve TLS (put a proxy in front), or
//! balance load across nodes (nginx does: `deploy/nginx.conf`, `docs/scaling.md`).

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![deny(unused_must_use)]

pub mod bindings;
pub mod blob_binding;
pub mod cluster;
pub mod function_dir;
pub mod host;
pub mod host_canned;
pub mod host_loader;
pub mod http;
pub mod kv_binding;
pub mod logs;
pub mod manifest;
pub mod metrics;
pub mod node;
pub mod registry;
pub mod server;
pub mod token;

pub use host::{Function, FunctionHost, HostError, HostFuture};
pub use host_canned::CannedHost;
pub use host_loader::LoaderHost;
pub use manifest::{Binding, Bundle, ManifestError, Module};
pub use registry::{Registry, RegistryError};
pub use server::{Config, Server, ServerError};
