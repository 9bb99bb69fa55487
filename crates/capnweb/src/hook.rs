//! Hooks: what a stub or promise points at. One trait, five kinds: a local target, a settled
//! value, an error, a local promise, and (in `session`) an import from a peer.
//!
//! Every operation returns at once with a new hook, so calls on results that have not arrived
//! yet are made without waiting for them: that is promise pipelining, locally and remotely.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::map::apply_map;
use crate::session::SessionInner;
use crate::target::RpcTarget;
use crate::value::{is_forbidden_property, PathKey, Value};
use crate::{rt, RpcError};

/// A shared reference to a hook. Cloning is `dup`; dropping the last clone is `dispose`.
pub(crate) type HookRef = Arc<dyn Hook>;

/// A capability: calls, property reads, `map`, and resolution.
pub(crate) trait Hook: Send + Sync + 'static {
    /// Calls the function at `path` (empty: this hook itself is the function).
    fn call(self: Arc<Self>, path: &[PathKey], args: Vec<Value>) -> HookRef;
    /// Reads the property at `path`.
    fn get(self: Arc<Self>, path: &[PathKey]) -> HookRef;
    /// Applies a recorded `map()` function to the value at `path`.
    fn map(
        self: Arc<Self>,
        path: &[PathKey],
        captures: Vec<HookRef>,
        instructions: Arc<Vec<serde_json::Value>>,
    ) -> HookRef;
    /// Waits for the value this hook settles to.
    fn pull(self: Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>>;
    /// The import id of this hook in `session`, when it is an import of that session.
    fn import_id(&self, session: &SessionInner) -> Option<i64> {
        let _ = session;
        None
    }
    /// For a `map()` placeholder: which recording (by address) and which variable it is.
    fn map_var(&self) -> Option<(usize, i64)> {
        None
    }
    /// Registers a callback for when this capability breaks (its connection is lost).
    fn on_broken(&self, callback: Box<dyn FnOnce(RpcError) + Send>) {
        drop(callback);
    }
    /// This hook as a local promise, if it is one (see [`when_settled`]).
    fn as_promise(&self) -> Option<&PromiseHook> {
        None
    }
    /// About how many bytes this hook holds (a settled result's data; see
    /// [`Value::held_bytes`]).
    fn held_bytes(&self) -> usize {
        0
    }
}

/// What [`when_settled`] runs.
pub(crate) type SettledCallback = Box<dyn FnOnce(&HookRef) + Send>;

/// Runs `f` with what `hook` finally settles to: a local promise waits until it has settled
/// (through any chain of promises); anything else is already what it is.
pub(crate) fn when_settled(hook: HookRef, f: SettledCallback) {
    match hook.as_promise() {
        Some(p) => p.when(Box::new(move |h| when_settled(h.clone(), f))),
        None => f(&hook),
    }
}

pub(crate) fn error_hook(err: RpcError) -> HookRef {
    Arc::new(ErrorHook(err))
}

pub(crate) fn value_hook(value: Value) -> HookRef {
    match value {
        Value::Promise(p) => p.hook,
        other => Arc::new(PayloadHook(other)),
    }
}

fn path_string(path: &[PathKey]) -> String {
    path.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A hook that has failed: every use of it fails the same way.
pub(crate) struct ErrorHook(pub(crate) RpcError);

impl Hook for ErrorHook {
    fn held_bytes(&self) -> usize {
        self.0.value().held_bytes()
    }
    fn call(self: Arc<Self>, _: &[PathKey], _: Vec<Value>) -> HookRef {
        self
    }
    fn get(self: Arc<Self>, _: &[PathKey]) -> HookRef {
        self
    }
    fn map(
        self: Arc<Self>,
        _: &[PathKey],
        _: Vec<HookRef>,
        _: Arc<Vec<serde_json::Value>>,
    ) -> HookRef {
        self
    }
    fn pull(self: Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>> {
        let err = self.0.clone();
        Box::pin(async move { Err(err) })
    }
}

/// Where a property path leads inside a value.
pub(crate) enum Followed {
    /// Plain data.
    Value(Value),
    /// A capability, and the part of the path still to apply to it.
    Hook(HookRef, Vec<PathKey>),
}

/// Follows `path` through data with the JavaScript implementation's rules: own properties of
/// plain objects, integer indexes of arrays, nothing else (and never `Object.prototype` names).
pub(crate) fn follow_path(value: &Value, path: &[PathKey]) -> Result<Followed, RpcError> {
    let mut current = value;
    for (i, key) in path.iter().enumerate() {
        if let PathKey::Name(name) = key {
            if is_forbidden_property(name) {
                return Ok(Followed::Value(Value::Undefined));
            }
        }
        current = match current {
            Value::Stub(s) => return Ok(Followed::Hook(s.hook.clone(), path[i..].to_vec())),
            Value::Promise(p) => return Ok(Followed::Hook(p.hook.clone(), path[i..].to_vec())),
            Value::Object(o) => {
                let name = match key {
                    PathKey::Name(n) => n.clone(),
                    PathKey::Index(i) => i.to_string(),
                };
                match o.get(&name) {
                    Some(v) => v,
                    None => return Ok(Followed::Value(Value::Undefined)),
                }
            }
            Value::Array(a) => match key {
                PathKey::Index(idx) => match usize::try_from(*idx).ok().and_then(|i| a.get(i)) {
                    Some(v) => v,
                    None => return Ok(Followed::Value(Value::Undefined)),
                },
                PathKey::Name(_) => return Ok(Followed::Value(Value::Undefined)),
            },
            Value::Undefined => {
                return Err(RpcError::type_error(format!(
                    "Cannot read properties of undefined (reading '{key}')"
                )))
            }
            _ => return Ok(Followed::Value(Value::Undefined)),
        };
    }
    Ok(match current {
        Value::Stub(s) => Followed::Hook(s.hook.clone(), Vec::new()),
        Value::Promise(p) => Followed::Hook(p.hook.clone(), Vec::new()),
        other => Followed::Value(other.clone()),
    })
}

/// A settled value: calls and reads follow paths into it.
pub(crate) struct PayloadHook(pub(crate) Value);

impl Hook for PayloadHook {
    fn held_bytes(&self) -> usize {
        self.0.held_bytes()
    }
    fn call(self: Arc<Self>, path: &[PathKey], args: Vec<Value>) -> HookRef {
        match follow_path(&self.0, path) {
            Ok(Followed::Hook(h, rest)) => h.call(&rest, args),
            Ok(Followed::Value(_)) => error_hook(RpcError::type_error(format!(
                "'{}' is not a function.",
                path_string(path)
            ))),
            Err(e) => error_hook(e),
        }
    }
    fn get(self: Arc<Self>, path: &[PathKey]) -> HookRef {
        if path.is_empty() {
            return self;
        }
        match follow_path(&self.0, path) {
            Ok(Followed::Hook(h, rest)) => h.get(&rest),
            Ok(Followed::Value(v)) => Arc::new(PayloadHook(v)),
            Err(e) => error_hook(e),
        }
    }
    fn map(
        self: Arc<Self>,
        path: &[PathKey],
        captures: Vec<HookRef>,
        instructions: Arc<Vec<serde_json::Value>>,
    ) -> HookRef {
        match follow_path(&self.0, path) {
            Ok(Followed::Hook(h, rest)) => h.map(&rest, captures, instructions),
            Ok(Followed::Value(v)) => apply_map(v, captures, &instructions),
            Err(e) => error_hook(e),
        }
    }
    fn pull(self: Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>> {
        let v = self.0.clone();
        Box::pin(async move { Ok(v) })
    }
    fn on_broken(&self, callback: Box<dyn FnOnce(RpcError) + Send>) {
        if let Value::Stub(s) = &self.0 {
            s.hook.on_broken(callback);
        }
    }
}

/// A local object exposed by reference.
pub(crate) struct TargetHook {
    target: Arc<dyn RpcTarget>,
}

impl TargetHook {
    pub(crate) fn wrap(target: Arc<dyn RpcTarget>) -> HookRef {
        Arc::new(TargetHook { target })
    }

    fn deliver(&self, method: String, args: Vec<Value>) -> HookRef {
        let target = self.target.clone();
        if args.iter().any(contains_promise) {
            // Arguments that are promises are resolved before the call is delivered, as in the
            // JavaScript implementation.
            let trace = crate::trace::current();
            return PromiseHook::from_future(async move {
                let args = match resolve_deep(Value::Array(args)).await {
                    Ok(Value::Array(a)) => a,
                    Ok(_) => Vec::new(),
                    Err(e) => return error_hook(e),
                };
                let fut = crate::trace::with_trace(trace, || target.call(&method, args));
                settle(fut.await)
            });
        }
        let mut fut = target.call(&method, args);
        // Most methods finish without waiting for anything: poll once here and settle at
        // once, saving a task and a thread wake-up per call. A future that is not ready is
        // spawned; its task's first poll registers the real waker (the contract of `poll`).
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The future may expect a tokio context (spawn_blocking, timers) even when the caller
        // runs on a thread without one, such as a JavaScript isolate's.
        let _runtime = rt::handle().enter();
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => settle(result),
            std::task::Poll::Pending => PromiseHook::from_future(async move { settle(fut.await) }),
        }
    }
}

impl Drop for TargetHook {
    fn drop(&mut self) {
        self.target.on_dispose();
    }
}

fn settle(result: Result<Value, RpcError>) -> HookRef {
    match result {
        Ok(v) => value_hook(v),
        Err(e) => error_hook(e),
    }
}

impl Hook for TargetHook {
    fn call(self: Arc<Self>, path: &[PathKey], args: Vec<Value>) -> HookRef {
        match path {
            [] => self.deliver(String::new(), args),
            [PathKey::Name(m)] if is_forbidden_property(m) => {
                error_hook(RpcError::type_error(format!("'{m}' is not a function.")))
            }
            [PathKey::Name(m)] => self.deliver(m.clone(), args),
            [PathKey::Index(i)] => {
                error_hook(RpcError::type_error(format!("'{i}' is not a function.")))
            }
            [first @ .., last] => {
                let owner = self.get(first);
                owner.call(std::slice::from_ref(last), args)
            }
        }
    }
    fn get(self: Arc<Self>, path: &[PathKey]) -> HookRef {
        let Some((first, rest)) = path.split_first() else {
            return self;
        };
        let name = match first {
            PathKey::Name(n) if !is_forbidden_property(n) => n.clone(),
            _ => return Arc::new(PayloadHook(Value::Undefined)),
        };
        let fut = self.target.clone().get(&name);
        let hook = PromiseHook::from_future(async move { settle(fut.await) });
        if rest.is_empty() {
            hook
        } else {
            hook.get(rest)
        }
    }
    fn map(
        self: Arc<Self>,
        _: &[PathKey],
        _: Vec<HookRef>,
        _: Arc<Vec<serde_json::Value>>,
    ) -> HookRef {
        error_hook(RpcError::type_error(
            "map() is not supported on an RpcTarget",
        ))
    }
    fn pull(self: Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>> {
        Box::pin(async { Err(RpcError::error("Tried to resolve a non-promise stub.")) })
    }
}

type Waiter = Box<dyn FnOnce(&HookRef) + Send>;

enum PromiseState {
    Pending(Vec<Waiter>),
    Settled(HookRef),
}

/// A local promise: settles to another hook. Uses before it settles are queued in order and
/// replayed on the settled hook, which keeps e-order for pipelined calls.
pub(crate) struct PromiseHook {
    state: Mutex<PromiseState>,
}

impl PromiseHook {
    pub(crate) fn pending() -> Arc<PromiseHook> {
        Arc::new(PromiseHook {
            state: Mutex::new(PromiseState::Pending(Vec::new())),
        })
    }

    pub(crate) fn from_future<F>(fut: F) -> HookRef
    where
        F: std::future::Future<Output = HookRef> + Send + 'static,
    {
        let p = Self::pending();
        let p2 = p.clone();
        // The trace current now is current for the future too (and for calls it makes).
        let fut = crate::trace::Traced::new(crate::trace::current(), fut);
        rt::spawn(async move { p2.settle(fut.await) });
        p
    }

    pub(crate) fn settle(&self, hook: HookRef) {
        let waiters = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match std::mem::replace(&mut *st, PromiseState::Settled(hook.clone())) {
                PromiseState::Pending(w) => w,
                PromiseState::Settled(old) => {
                    *st = PromiseState::Settled(old);
                    return;
                }
            }
        };
        for w in waiters {
            w(&hook);
        }
    }

    /// Runs `f` with the settled hook: now if settled, else when it settles.
    fn when(&self, f: Waiter) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *st {
            PromiseState::Pending(w) => w.push(f),
            PromiseState::Settled(h) => {
                let h = h.clone();
                drop(st);
                f(&h);
            }
        }
    }

    fn chain(&self, f: impl FnOnce(HookRef) -> HookRef + Send + 'static) -> HookRef {
        let child = Self::pending();
        let c = child.clone();
        // A pipelined call is delivered when the promise settles, wherever that happens: it
        // carries the trace current when it was made.
        let trace = crate::trace::current();
        self.when(Box::new(move |h| {
            crate::trace::with_trace(trace, || c.settle(f(h.clone())))
        }));
        child
    }
}

impl Hook for PromiseHook {
    fn call(self: Arc<Self>, path: &[PathKey], args: Vec<Value>) -> HookRef {
        let path = path.to_vec();
        self.chain(move |h| h.call(&path, args))
    }
    fn get(self: Arc<Self>, path: &[PathKey]) -> HookRef {
        if path.is_empty() {
            return self;
        }
        let path = path.to_vec();
        self.chain(move |h| h.get(&path))
    }
    fn map(
        self: Arc<Self>,
        path: &[PathKey],
        captures: Vec<HookRef>,
        instructions: Arc<Vec<serde_json::Value>>,
    ) -> HookRef {
        let path = path.to_vec();
        self.chain(move |h| h.map(&path, captures, instructions))
    }
    fn pull(self: Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>> {
        let (tx, rx) = tokio::sync::oneshot::channel::<HookRef>();
        self.when(Box::new(move |h| {
            let _ = tx.send(h.clone());
        }));
        Box::pin(async move {
            match rx.await {
                Ok(h) => h.pull().await,
                Err(_) => Err(RpcError::error("promise was dropped before it settled")),
            }
        })
    }
    fn on_broken(&self, callback: Box<dyn FnOnce(RpcError) + Send>) {
        self.when(Box::new(move |h| h.on_broken(callback)));
    }
    fn as_promise(&self) -> Option<&PromiseHook> {
        Some(self)
    }
}

/// Whether `v` holds a promise anywhere inside its data.
pub(crate) fn contains_promise(v: &Value) -> bool {
    match v {
        Value::Promise(_) => true,
        Value::Array(a) => a.iter().any(contains_promise),
        Value::Object(o) => o.values().any(contains_promise),
        Value::Error(e) => e.props.values().any(contains_promise),
        _ => false,
    }
}

/// Replaces every promise inside `v` by what it settles to (the JavaScript implementation
/// does this before delivering a call and before handing a result to the application).
pub(crate) fn resolve_deep(v: Value) -> BoxFuture<'static, Result<Value, RpcError>> {
    Box::pin(async move {
        if !contains_promise(&v) {
            return Ok(v);
        }
        Ok(match v {
            Value::Promise(p) => {
                let inner = p.hook.pull().await?;
                resolve_deep(inner).await?
            }
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    out.push(resolve_deep(x).await?);
                }
                Value::Array(out)
            }
            Value::Object(o) => {
                let mut out = crate::Object::with_capacity(o.len());
                for (k, x) in o {
                    out.insert(k, resolve_deep(x).await?);
                }
                Value::Object(out)
            }
            Value::Error(mut e) => {
                let props = std::mem::take(&mut e.props);
                for (k, x) in props {
                    e.props.insert(k, resolve_deep(x).await?);
                }
                Value::Error(e)
            }
            other => other,
        })
    })
}
