//! Cap'n Web (capnweb) RPC for Rust, wire-compatible with the official
//! [`capnweb`](https://www.npmjs.com/package/capnweb) npm package (tested against 0.12.0).
//!
//! capnweb is an object-capability RPC protocol: a connection carries calls on objects passed
//! by reference ([`Stub`]), results that can be used before they arrive ([`RpcPromise`],
//! *promise pipelining*), and data by value ([`Value`]). Messages are JSON; this crate writes
//! them byte for byte as the JavaScript implementation does.
//!
//! ```no_run
//! use std::sync::Arc;
//! use capnweb::{CallResult, Limits, RpcTarget, Session, Stub, Value};
//!
//! struct Calculator;
//! impl RpcTarget for Calculator {
//!     fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
//!         let n = args.first().and_then(Value::as_f64).unwrap_or(0.0);
//!         let method = method.to_owned();
//!         Box::pin(async move {
//!             match method.as_str() {
//!                 "square" => Ok(Value::Number(n * n)),
//!                 _ => Err(capnweb::RpcError::type_error("no such method")),
//!             }
//!         })
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (a, b) = capnweb::transport::memory_pair();
//! let _server = Session::new(a, Some(Stub::new(Calculator)), Limits::default());
//! let client = Session::new(b, None, Limits::default());
//! let api = client.remote_main();
//! // Pipelined: the second call is sent before the first has answered.
//! let four = api.call("square", vec![Value::Number(2.0)]);
//! let sixteen = api.call("square", vec![four.into()]).await?;
//! assert_eq!(sixteen.as_f64(), Some(16.0));
//! # Ok(()) }
//! ```
//!
//! What this crate deliberately does not do: run JavaScript, route HTTP, or store anything.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod budget;
mod codec;
mod error;
mod hook;
mod json;
pub mod limits;
mod map;
pub mod rt;
mod session;
mod stream;
mod stub;
mod target;
pub mod trace;
pub mod transport;
mod value;
mod wtf;

pub use budget::{Admission, AdmissionRefused, AdmissionTicket, Budget, Reservation};
pub use codec::{deserialize, serialize};
pub use error::{RpcError, TransportError};
pub use json::to_js_string;
pub use limits::{LimitExceeded, Limits, Refusal};
pub use map::MapInput;
pub use session::{Frame, Session, SessionStats, Transport};
pub use stream::{ReadableStream, StreamSender, STREAM_BUFFER_BYTES, STREAM_BUFFER_CHUNKS};
pub use stub::{RpcPromise, Stub};
pub use target::{method_not_found, CallResult, RpcTarget};
pub use value::{
    BlobValue, Body, ByteKind, Bytes, ErrorValue, JsString, Object, PathKey, RequestValue,
    ResponseValue, Value,
};
