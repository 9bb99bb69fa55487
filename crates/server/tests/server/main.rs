//! Integration tests of the `functions` server: in-process servers on 127.0.0.1:0 with the
//! canned test host, and the built binary for the CLI, SIGKILL and SIGTERM scenarios.

mod admin;
mod bindings;
mod common;
mod fetch;
mod loader_host;
mod ops;
mod process;
mod rpc;
