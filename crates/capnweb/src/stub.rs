//! [`Stub`] and [`RpcPromise`]: the application's handles on capabilities.

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::hook::{error_hook, resolve_deep, HookRef, TargetHook};
use crate::map::MapRecorder;
use crate::target::{FnTarget, RpcTarget};
use crate::value::{PathKey, Value};
use crate::RpcError;

/// A reference to an object that may live here or across a connection.
///
/// Calls return [`RpcPromise`]s at once, without waiting for anything, so dependent calls
/// pipeline. Cloning a stub is `dup()`; dropping the last clone releases the capability (for a
/// remote object the peer is told, with a `release` message). Stubs are `Send + Sync`.
#[derive(Clone)]
pub struct Stub {
    pub(crate) hook: HookRef,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stub")
    }
}

impl Stub {
    /// Exposes a local target by reference.
    pub fn new<T: RpcTarget>(target: T) -> Stub {
        Stub::from_arc(Arc::new(target))
    }

    /// Exposes a shared local target by reference.
    pub fn from_arc(target: Arc<dyn RpcTarget>) -> Stub {
        Stub {
            hook: TargetHook::wrap(target),
        }
    }

    /// Exposes an async function by reference (what a JavaScript callback is on the wire).
    pub fn from_fn<F, Fut>(f: F) -> Stub
    where
        F: Fn(Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        Stub::new(FnTarget(move |args| -> BoxFuture<'static, _> {
            Box::pin(f(args))
        }))
    }

    /// A stub that is already broken: every call on it fails with `err`.
    pub fn broken(err: RpcError) -> Stub {
        Stub {
            hook: error_hook(err),
        }
    }

    pub(crate) fn from_hook(hook: HookRef) -> Stub {
        Stub { hook }
    }

    /// Calls `method`.
    pub fn call(&self, method: &str, args: Vec<Value>) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().call(&[PathKey::from(method)], args),
        }
    }

    /// Calls the stub itself, as a function.
    pub fn call_fn(&self, args: Vec<Value>) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().call(&[], args),
        }
    }

    /// Calls the function at a property path (`["a", "b"]` is `stub.a.b(...)`).
    pub fn call_path(&self, path: &[PathKey], args: Vec<Value>) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().call(path, args),
        }
    }

    /// Reads a property.
    pub fn get(&self, name: &str) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().get(&[PathKey::from(name)]),
        }
    }

    /// Reads the property at a path.
    pub fn get_path(&self, path: &[PathKey]) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().get(path),
        }
    }

    /// Another reference to the same object (the same as `clone`).
    pub fn dup(&self) -> Stub {
        self.clone()
    }

    /// Releases this reference now (the same as dropping it).
    pub fn dispose(self) {}

    /// Registers `callback` to run if the capability breaks (for example its connection is
    /// lost). Local objects never break.
    pub fn on_rpc_broken(&self, callback: impl FnOnce(RpcError) + Send + 'static) {
        self.hook.on_broken(Box::new(callback));
    }
}

/// The promised result of a call.
///
/// `.await` it for the value, or use it without waiting: call methods on it, read properties
/// of it, pass it as an argument. Those uses are sent at once (pipelined) and run when it
/// settles. Cloning shares the same result.
#[derive(Clone)]
pub struct RpcPromise {
    pub(crate) hook: HookRef,
}

impl std::fmt::Debug for RpcPromise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RpcPromise")
    }
}

impl RpcPromise {
    pub(crate) fn from_hook(hook: HookRef) -> RpcPromise {
        RpcPromise { hook }
    }

    /// A promise that is already settled to `value`.
    pub fn resolved(value: Value) -> RpcPromise {
        RpcPromise {
            hook: crate::hook::value_hook(value),
        }
    }

    /// A promise that is already rejected with `err`.
    pub fn rejected(err: RpcError) -> RpcPromise {
        RpcPromise {
            hook: error_hook(err),
        }
    }

    /// A promise settled by a future: the future runs now, in the background.
    pub fn from_future<F>(fut: F) -> RpcPromise
    where
        F: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        RpcPromise {
            hook: crate::hook::PromiseHook::from_future(async move {
                match fut.await {
                    Ok(v) => crate::hook::value_hook(v),
                    Err(e) => error_hook(e),
                }
            }),
        }
    }

    /// Calls `method` on the result, without waiting for it.
    pub fn call(&self, method: &str, args: Vec<Value>) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().call(&[PathKey::from(method)], args),
        }
    }

    /// Calls the function at a path inside the result, without waiting for it.
    pub fn call_path(&self, path: &[PathKey], args: Vec<Value>) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().call(path, args),
        }
    }

    /// Reads a property of the result, without waiting for it.
    pub fn get(&self, name: &str) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().get(&[PathKey::from(name)]),
        }
    }

    /// Reads an array element of the result, without waiting for it.
    pub fn index(&self, i: u64) -> RpcPromise {
        RpcPromise {
            hook: self.hook.clone().get(&[PathKey::Index(i)]),
        }
    }

    /// Transforms the result where it lives, in the same round trip: `f` is recorded once
    /// against a placeholder and the recording runs on the peer for the value (or for each
    /// element of an array). `f` may only read properties of its input and make calls on
    /// stubs (the input's or captured ones); like the JavaScript `map()`, it must have no
    /// side effects.
    pub fn map(&self, f: impl FnOnce(&crate::map::MapInput) -> Value) -> RpcPromise {
        let (captures, instructions) = MapRecorder::record(f);
        RpcPromise {
            hook: self.hook.clone().map(&[], captures, Arc::new(instructions)),
        }
    }

    /// The result as a stub (for results that are capabilities), without waiting.
    pub fn to_stub(&self) -> Stub {
        Stub {
            hook: self.hook.clone(),
        }
    }
}

impl IntoFuture for RpcPromise {
    type Output = Result<Value, RpcError>;
    type IntoFuture = BoxFuture<'static, Result<Value, RpcError>>;

    /// The pull is asked for now (see `Hook::pull`); the future only waits for it.
    fn into_future(self) -> Self::IntoFuture {
        let pulled = self.hook.pull();
        Box::pin(async move {
            let v = pulled.await?;
            resolve_deep(v).await
        })
    }
}
