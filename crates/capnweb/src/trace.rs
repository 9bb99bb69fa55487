//! The current trace (a W3C trace id) on this thread, so code that posts work elsewhere (an
//! isolate's job, a pipelined call) can carry it along.
//!
//! [`with_trace`] sets it for a closure, [`Traced`] for every poll of a future; [`current`]
//! reads it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A trace id: 16 bytes (32 hex digits in `traceparent`).
pub type TraceId = [u8; 16];

thread_local! {
    static CURRENT: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The trace current on this thread, if any.
pub fn current() -> Option<TraceId> {
    CURRENT.with(Cell::get)
}

/// Makes `trace` current and returns what was current before (for code that cannot use a
/// closure; restore it with another `set`).
pub fn set(trace: Option<TraceId>) -> Option<TraceId> {
    CURRENT.with(|c| c.replace(trace))
}

/// Runs `f` with `trace` current, restoring the previous trace afterwards (even on panic).
pub fn with_trace<R>(trace: Option<TraceId>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<TraceId>);
    impl Drop for Restore {
        fn drop(&mut self) {
            set(self.0);
        }
    }
    let _restore = Restore(set(trace));
    f()
}

/// A future that has `trace` current while it is polled.
pub struct Traced<F> {
    trace: Option<TraceId>,
    fut: Pin<Box<F>>,
}

impl<F> std::fmt::Debug for Traced<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced")
            .field("trace", &self.trace)
            .finish()
    }
}

impl<F: Future> Traced<F> {
    /// Wraps `fut`.
    pub fn new(trace: Option<TraceId>, fut: F) -> Self {
        Traced {
            trace,
            fut: Box::pin(fut),
        }
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let trace = self.trace;
        with_trace(trace, || self.fut.as_mut().poll(cx))
    }
}

/// Lowercase hex of a trace id.
pub fn to_hex(trace: &TraceId) -> String {
    let mut s = String::with_capacity(32);
    for b in trace {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// Parses 32 hex digits (either case); `None` if malformed.
pub fn from_hex(s: &str) -> Option<TraceId> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_trace_is_scoped_and_nests() {
        let a = [1u8; 16];
        let b = [2u8; 16];
        assert_eq!(current(), None);
        with_trace(Some(a), || {
            assert_eq!(current(), Some(a));
            with_trace(Some(b), || assert_eq!(current(), Some(b)));
            assert_eq!(current(), Some(a));
            with_trace(None, || assert_eq!(current(), None));
            assert_eq!(current(), Some(a));
        });
        assert_eq!(current(), None);
        let r = std::panic::catch_unwind(|| with_trace(Some(a), || panic!("boom")));
        assert!(r.is_err());
        assert_eq!(current(), None);
    }

    #[test]
    fn hex_round_trips() {
        let t = from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("valid");
        assert_eq!(to_hex(&t), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(from_hex("4bf92f"), None);
        assert_eq!(from_hex("zz f92f3577b34da6a3ce929d0e0e473"), None);
    }

    #[test]
    fn traced_futures_see_their_trace_on_every_poll() {
        let t = [7u8; 16];
        let fut = Traced::new(Some(t), async {
            let before = current();
            tokio::task::yield_now().await;
            (before, current())
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(rt.block_on(fut), (Some(t), Some(t)));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_pipelined_call_on_a_pending_promise_carries_the_trace_it_was_made_under() {
        use crate::{CallResult, RpcPromise, RpcTarget, Stub, Value};
        use std::sync::{Arc, Mutex};

        struct Seen(Mutex<Option<Option<TraceId>>>);
        impl RpcTarget for Seen {
            fn call(self: Arc<Self>, _: &str, _: Vec<Value>) -> CallResult {
                *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(current());
                Box::pin(async { Ok(Value::Null) })
            }
        }
        let seen = Arc::new(Seen(Mutex::new(None)));
        let target = Stub::from_arc(seen.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let t = [9u8; 16];
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let _guard = rt.enter();
        let pending = RpcPromise::from_future(async move {
            let _ = rx.await;
            Ok(Value::Stub(target))
        });
        let call = with_trace(Some(t), || pending.call("m", Vec::new()));
        let _ = tx.send(());
        rt.block_on(async move { call.await }).expect("call");
        assert_eq!(
            *seen.0.lock().unwrap_or_else(|e| e.into_inner()),
            Some(Some(t))
        );
    }
}
