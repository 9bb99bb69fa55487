//! Turns a bundle's `env` and `bindings` into the `env` object the code sees.
//!
//! Vars become plain capnweb values; every other binding becomes a capnweb [`Stub`] on a
//! Rust [`RpcTarget`]: [`KvBinding`],
//! [`BlobBinding`], [`ServiceBinding`] (calls another
//! function, resolved at call time to its live version) and the host's loader binding
//! ([`LoaderBinding`] when the host has none). The isolate's
//! bridge turns these stubs into JS stubs, so a binding works the same in-process as over
//! the wire. A function reaches nothing but what is on its `env` (capability security).

use std::sync::{Arc, Weak};

use capnweb::{CallResult, Object, RequestValue, RpcError, RpcTarget, Stub, Value};
use store::{Store, StoreError};

use crate::blob_binding::BlobBinding;
use crate::kv_binding::KvBinding;
use crate::manifest::{Binding, Bundle};
use crate::registry::Registry;

/// Builds the `env` object for one loaded version of a function. `loader` is the host's
/// Worker Loader binding (`None`: `loader` bindings refuse every call).
pub fn build_env(
    bundle: &Bundle,
    store: &Store,
    registry: Weak<Registry>,
    loader: Option<Stub>,
    quota_cap: store::Quota,
) -> Object {
    let mut env = Object::new();
    for (name, value) in &bundle.env {
        env.insert(name.clone(), Value::from_json(value));
    }
    for (name, binding) in &bundle.bindings {
        let value = match binding {
            Binding::Var(v) => Value::from_json(v),
            Binding::Kv { namespace, quota } => Value::Stub(Stub::new(KvBinding::new(
                store.clone(),
                namespace.clone(),
                quota.within(quota_cap),
            ))),
            Binding::Blob { bucket, quota } => Value::Stub(Stub::new(BlobBinding::new(
                store.clone(),
                bucket.clone(),
                quota.within(quota_cap),
            ))),
            Binding::Service {
                service,
                entrypoint,
            } => Value::Stub(Stub::new(ServiceBinding {
                registry: registry.clone(),
                service: service.clone(),
                entrypoint: entrypoint.clone(),
            })),
            Binding::Loader => match &loader {
                Some(l) => Value::Stub(l.clone()),
                None => Value::Stub(Stub::new(LoaderBinding)),
            },
        };
        env.insert(name.clone(), value);
    }
    env
}

/// The error name a write past a namespace's or bucket's quota throws (the web platform's
/// name for a storage quota refusal).
pub const QUOTA_EXCEEDED_ERROR: &str = "QuotaExceededError";

/// The error name a KV or blob call throws when the store cannot be reached (the shared
/// database is down or every connection is busy): retrying later may succeed.
pub const STORAGE_UNAVAILABLE_ERROR: &str = "StorageUnavailableError";

/// Awaits a store call and turns its error into a thrown JS error.
pub(crate) async fn store_call<T>(
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, RpcError> {
    f.await.map_err(store_error)
}

/// A store error as the JS error a Workers binding would throw: bad input is a `TypeError`
/// (a `RangeError` for sizes and limits, [`QUOTA_EXCEEDED_ERROR`] past a quota), an
/// unreachable store is a [`STORAGE_UNAVAILABLE_ERROR`], a backend failure is an `Error`.
pub(crate) fn store_error(e: StoreError) -> RpcError {
    let name = match &e {
        StoreError::TooLarge { .. }
        | StoreError::InvalidListLimit { .. }
        | StoreError::TooManyKeys { .. } => "RangeError",
        StoreError::QuotaExceeded { .. } => QUOTA_EXCEEDED_ERROR,
        StoreError::Unavailable(_) => STORAGE_UNAVAILABLE_ERROR,
        e if e.is_client_error() => "TypeError",
        _ => "Error",
    };
    RpcError::new(name, e.to_string())
}

/// Reads argument `i` as a string key.
pub(crate) fn key_arg(args: &[Value], i: usize, what: &str) -> Result<String, RpcError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(RpcError::type_error(format!("{what} must be a string"))),
    }
}

/// Body bytes from a value a binding accepts as data: a string (UTF-8), bytes, a blob, or
/// a stream (read to its end).
pub(crate) async fn body_bytes(value: Value, what: &str) -> Result<Vec<u8>, RpcError> {
    match value {
        Value::String(s) => Ok(s.into_bytes()),
        Value::Bytes(b) => Ok(b.data),
        Value::Blob(b) => Ok(b.data),
        Value::Readable(r) => r.read_all().await,
        _ => Err(RpcError::type_error(format!(
            "{what} must be a string, ArrayBuffer, ArrayBufferView, Blob or ReadableStream"
        ))),
    }
}

/// An optional options object (`undefined`/`null` are "no options").
pub(crate) fn options_arg(args: &[Value], i: usize) -> Result<Object, RpcError> {
    match args.get(i) {
        None | Some(Value::Undefined) | Some(Value::Null) => Ok(Object::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(RpcError::type_error("options must be an object")),
    }
}

/// A non-negative whole number option (seconds, or a count).
pub(crate) fn number_opt(opts: &Object, name: &str) -> Result<Option<u64>, RpcError> {
    match opts.get(name) {
        None | Some(Value::Undefined) | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if *n >= 0.0 && n.is_finite() => Ok(Some(n.floor() as u64)),
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| RpcError::type_error(format!("{name} must be a number"))),
        Some(_) => Err(RpcError::type_error(format!(
            "{name} must be a non-negative number"
        ))),
    }
}

pub(crate) fn string_opt(opts: &Object, name: &str) -> Result<Option<String>, RpcError> {
    match opts.get(name) {
        None | Some(Value::Undefined) | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(RpcError::type_error(format!("{name} must be a string"))),
    }
}

/// A service binding: calls go to the named function's RPC target (`fetch(request)` to its
/// fetch handler), on whatever version is live at call time. Like a Worker Loader stub it
/// also answers `getRpcTarget()` and `getEntrypoint(name?)` with the target itself, so
/// `env.RUNTIME.getRpcTarget().execute(…)` (the seed's scenario 3) works.
pub struct ServiceBinding {
    registry: Weak<Registry>,
    service: String,
    entrypoint: Option<String>,
}

impl std::fmt::Debug for ServiceBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBinding")
            .field("service", &self.service)
            .field("entrypoint", &self.entrypoint)
            .finish()
    }
}

impl RpcTarget for ServiceBinding {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let method = method.to_owned();
        Box::pin(async move {
            let registry = self
                .registry
                .upgrade()
                .ok_or_else(|| RpcError::error("the server is shutting down"))?;
            let function = registry
                .live(&self.service)
                .await
                .map_err(|e| RpcError::error(e.to_string()))?
                .ok_or_else(|| {
                    RpcError::error(format!("service {:?} is not deployed", self.service))
                })?;
            let host = registry.host().clone();
            drop(registry);
            if method == "fetch" && self.entrypoint.is_none() {
                let req = match args.first() {
                    Some(Value::Request(req)) => Some((**req).clone()),
                    Some(Value::String(url)) | Some(Value::Url(url)) => Some(RequestValue {
                        url: url.clone(),
                        method: "GET".into(),
                        headers: Vec::new(),
                        body: None,
                        extra: Default::default(),
                    }),
                    _ => None,
                };
                if let Some(req) = req {
                    let resp = host
                        .fetch(function, req)
                        .await
                        .map_err(|e| e.to_rpc_error())?;
                    return Ok(Value::Response(Box::new(resp)));
                }
            }
            let entrypoint = match method.as_str() {
                // A binding reaches the entrypoint it declares and no other (as in workerd).
                "getEntrypoint" => match args.first() {
                    Some(Value::String(name)) if Some(name) == self.entrypoint.as_ref() => {
                        Some(name.clone())
                    }
                    Some(Value::String(name)) => {
                        return Err(RpcError::type_error(format!(
                            "this service binding reaches {} of {:?}, not entrypoint {name:?}",
                            match &self.entrypoint {
                                Some(e) => format!("entrypoint {e:?}"),
                                None => "the default entrypoint".to_owned(),
                            },
                            self.service
                        )))
                    }
                    None | Some(Value::Undefined) | Some(Value::Null) => self.entrypoint.clone(),
                    Some(_) => {
                        return Err(RpcError::type_error(
                            "getEntrypoint(name?): name must be a string",
                        ))
                    }
                },
                _ => self.entrypoint.clone(),
            };
            let target = host
                .rpc_target(function, entrypoint)
                .await
                .map_err(|e| e.to_rpc_error())?;
            if method == "getRpcTarget" || method == "getEntrypoint" {
                return Ok(Value::Stub(target));
            }
            target.call(&method, args).await
        })
    }
}

/// The `loader` binding of a host that cannot load code (the canned test host): every call
/// fails with a clear error. The Worker Loader's host hands out the real one.
#[derive(Debug)]
pub struct LoaderBinding;

impl RpcTarget for LoaderBinding {
    fn call(self: Arc<Self>, method: &str, _args: Vec<Value>) -> CallResult {
        let msg = format!("loader.{method}() is not available: this server has no Worker Loader");
        Box::pin(async move { Err(RpcError::error(msg)) })
    }
}
