//! Integration tests of the `functions` server: in-process servers on 127.0.0.1:0 with the
//! canned test host or the Worker Loader's host (`loader_host`), and the built binary (which runs
//! the loader host) for the CLI, SIGKILL and SIGTERM scenarios.

mod admin;
mod bindings;
mod children;
mod common;
mod fetch;
mod loader_host;
mod logs;
mod ops;
mod process;
mod rpc;
mod shared_store;
mod soak;
mod spawned;
mod typescript;
