//! capnweb integration tests, one binary: the wire codec against strings captured from the
//! official JavaScript implementation, every RPC semantic over the in-memory pair and over a
//! real WebSocket, the Rust client against the official JavaScript server, and hostile input.

mod api;
mod harness;
mod hostile;
mod js_peer;
mod semantics;
mod session_limits;
mod strings;
mod wire;
