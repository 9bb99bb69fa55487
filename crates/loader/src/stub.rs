//! [`WorkerStub`]: a handle on a loaded function, usable at once (the load happens behind it),
//! and the capability JavaScript sees for it (`getRpcTarget()`, `getEntrypoint()`, `fetch()`).

use std::sync::Arc;

use capnweb::{
    CallResult, RequestValue, ResponseValue, RpcError, RpcPromise, RpcTarget, Stub, Value,
};
use isolate::Isolate;

use crate::children::{ChildKey, Children};
use crate::loader::{GetCode, LoadFuture, Loader};
use crate::LoaderError;

pub(crate) enum Source {
    Cached {
        loader: Loader,
        id: String,
        get_code: GetCode,
    },
    OneShot(LoadFuture),
    /// A child of one parent (`Children::get` or `Children::load`).
    Child {
        children: Children,
        key: ChildKey,
        /// `None` for a `load` child.
        get_code: Option<GetCode>,
    },
}

/// A loaded (or loading) function.
#[derive(Clone)]
pub struct WorkerStub {
    source: Arc<Source>,
}

impl std::fmt::Debug for WorkerStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.source {
            Source::Cached { id, .. } => write!(f, "WorkerStub({id})"),
            Source::OneShot(_) => f.write_str("WorkerStub(one-shot)"),
            Source::Child { children, key, .. } => {
                write!(f, "WorkerStub({:?} of {:?})", key, children.name())
            }
        }
    }
}

impl WorkerStub {
    pub(crate) fn new(source: Source) -> Self {
        WorkerStub {
            source: Arc::new(source),
        }
    }

    /// The isolate, loading it if needed (a cold start).
    pub async fn isolate(&self) -> Result<Isolate, LoaderError> {
        match &*self.source {
            Source::Cached {
                loader,
                id,
                get_code,
            } => loader.resolve(id, get_code).await,
            Source::OneShot(fut) => fut.clone().await,
            Source::Child {
                children,
                key,
                get_code,
            } => children.resolve(key, get_code.as_ref())?.await,
        }
    }

    fn lazy(&self, f: impl FnOnce(&Isolate) -> Stub + Send + 'static) -> Stub {
        let this = self.clone();
        RpcPromise::from_future(async move {
            let iso = this.isolate().await.map_err(|e| e.to_rpc_error())?;
            Ok(Value::Stub(f(&iso)))
        })
        .to_stub()
    }

    /// An entrypoint (`None`: the default export), usable at once.
    pub fn get_entrypoint(&self, name: Option<&str>) -> Stub {
        let name = name.map(str::to_owned);
        self.lazy(move |iso| iso.entrypoint(name.as_deref()))
    }

    /// The RPC target (`new default.rpc(ctx, env)`, or the default entrypoint), usable at once.
    pub fn get_rpc_target(&self) -> Stub {
        self.lazy(Isolate::rpc_target)
    }

    /// Calls the function's fetch handler.
    pub async fn fetch(&self, request: RequestValue) -> Result<ResponseValue, RpcError> {
        let iso = self.isolate().await.map_err(|e| e.to_rpc_error())?;
        iso.fetch(request).await
    }

    /// This function as a service binding for another function's env: JavaScript calls
    /// `getRpcTarget()`, `getEntrypoint(name?)` and `fetch(request)` on it.
    pub fn to_binding(&self) -> Stub {
        Stub::new(WorkerStubTarget(self.clone()))
    }
}

/// The capability JavaScript holds for a [`WorkerStub`].
struct WorkerStubTarget(WorkerStub);

impl RpcTarget for WorkerStubTarget {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let stub = self.0.clone();
        match method {
            "getRpcTarget" => {
                let s = stub.get_rpc_target();
                Box::pin(async move { Ok(Value::Stub(s)) })
            }
            "getEntrypoint" => {
                let name = args.first().and_then(Value::as_str).map(str::to_owned);
                let s = stub.get_entrypoint(name.as_deref());
                Box::pin(async move { Ok(Value::Stub(s)) })
            }
            "fetch" => Box::pin(async move {
                match args.into_iter().next() {
                    Some(Value::Request(r)) => Ok(Value::Response(Box::new(stub.fetch(*r).await?))),
                    Some(Value::String(url)) | Some(Value::Url(url)) => {
                        let req = RequestValue {
                            url,
                            method: "GET".into(),
                            headers: Vec::new(),
                            body: None,
                            extra: Default::default(),
                        };
                        Ok(Value::Response(Box::new(stub.fetch(req).await?)))
                    }
                    _ => Err(RpcError::type_error("fetch() requires a Request or a URL")),
                }
            }),
            other => capnweb::method_not_found(other),
        }
    }
}
