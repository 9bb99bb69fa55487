//! [`TracedTarget`]: wraps a function's RPC target so every method call on it carries the
//! trace that was current when it was made: a `/_rpc` WebSocket session's calls arrive long
//! after the upgrade request that opened it, and each continues that request's trace. (Calls
//! are counted and timed where they run, by the isolate crate, through `telemetry`.)

use std::future::IntoFuture;
use std::sync::Arc;

use capnweb::{CallResult, RpcTarget, Stub, Value};

/// A stub that forwards to `inner` under the trace it was made in.
pub struct TracedTarget {
    inner: Stub,
    function: String,
    trace: Option<capnweb::trace::TraceId>,
}

impl std::fmt::Debug for TracedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedTarget")
            .field("function", &self.function)
            .finish()
    }
}

impl TracedTarget {
    /// Wraps `inner` (the RPC target of `function`) as a new stub; calls on it carry the
    /// trace current now.
    pub fn wrap(inner: Stub, function: &str) -> Stub {
        Stub::new(TracedTarget {
            inner,
            function: function.to_owned(),
            trace: capnweb::trace::current(),
        })
    }
}

impl RpcTarget for TracedTarget {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let trace = self.trace.or_else(capnweb::trace::current);
        let promise = capnweb::trace::with_trace(trace, || {
            if method.is_empty() {
                self.inner.call_fn(args)
            } else {
                self.inner.call(method, args)
            }
        });
        Box::pin(promise.into_future())
    }

    fn get(self: Arc<Self>, name: &str) -> CallResult {
        let trace = self.trace.or_else(capnweb::trace::current);
        let promise = capnweb::trace::with_trace(trace, || self.inner.get(name));
        Box::pin(promise.into_future())
    }
}
