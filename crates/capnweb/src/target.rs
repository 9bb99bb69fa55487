//! The [`RpcTarget`] trait: an object whose methods the peer can call by name.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::{RpcError, Value};

/// What a method call returns: a future of the result or of the thrown error.
pub type CallResult = BoxFuture<'static, Result<Value, RpcError>>;

/// An object exposed over RPC by reference.
///
/// The peer sees only what this trait lets it see: the methods `call` dispatches and the
/// properties `get` returns. Nothing else of the object is reachable (the JavaScript
/// implementation's rule that instance fields are private).
///
/// `call` is invoked synchronously, in the order the calls were made on the stub (e-order); the
/// future it returns may run concurrently with later calls. A target that is passed as a
/// function (JavaScript callbacks) is called with the method name `""`.
pub trait RpcTarget: Send + Sync + 'static {
    /// Calls `method` with `args`.
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult;

    /// Reads property `name` (a getter). The default has no properties: `undefined`.
    fn get(self: Arc<Self>, name: &str) -> CallResult {
        let _ = name;
        Box::pin(async { Ok(Value::Undefined) })
    }

    /// Called once when the last reference to this target is released (the peer disposed
    /// every stub it had, or the session ended).
    fn on_dispose(&self) {}
}

/// An [`RpcTarget`] made from an async function: what a JavaScript callback is.
pub(crate) struct FnTarget<F>(pub(crate) F);

impl<F> RpcTarget for FnTarget<F>
where
    F: Fn(Vec<Value>) -> CallResult + Send + Sync + 'static,
{
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        if method.is_empty() {
            (self.0)(args)
        } else {
            let msg = format!("'{method}' is not a function.");
            Box::pin(async move { Err(RpcError::type_error(msg)) })
        }
    }
}

/// Fails a method that the target does not have, with the JavaScript runtime's wording.
pub fn method_not_found(method: &str) -> CallResult {
    let msg = format!("'{method}' is not a function.");
    Box::pin(async move { Err(RpcError::type_error(msg)) })
}
