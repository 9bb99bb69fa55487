//! The `env.LOADER` binding: the Worker Loader as a capnweb capability, so JavaScript calls
//! `env.LOADER.get(id, () => code)` and `env.LOADER.load(code)` through the same bridge as
//! every other call. What it loads are the [`Children`] of the function that holds it.

use std::sync::Arc;

use capnweb::{CallResult, RpcError, RpcTarget, Value};

use crate::children::Children;
use crate::code::WorkerCode;

/// `env.LOADER` of one parent: what it loads are its [`Children`].
pub(crate) struct LoaderBinding {
    children: Children,
}

impl LoaderBinding {
    pub(crate) fn new(children: Children) -> Self {
        LoaderBinding { children }
    }
}

impl RpcTarget for LoaderBinding {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let loader = self.children.clone();
        match method {
            "get" => {
                let mut args = args.into_iter();
                let Some(Value::String(id)) = args.next() else {
                    return Box::pin(async {
                        Err(RpcError::type_error(
                            "LOADER.get(id, getCode): id must be a string",
                        ))
                    });
                };
                let get_code = match args.next() {
                    Some(Value::Stub(s)) => s,
                    Some(Value::Promise(p)) => p.to_stub(),
                    _ => {
                        return Box::pin(async {
                            Err(RpcError::type_error(
                                "LOADER.get(id, getCode): getCode must be a function",
                            ))
                        })
                    }
                };
                let stub = loader.get(id, move || {
                    let f = get_code.clone();
                    async move {
                        let v = f.call_fn(Vec::new()).await.map_err(|e| e.to_string())?;
                        WorkerCode::from_value(&v).map_err(|e| e.to_string())
                    }
                });
                Box::pin(async move { Ok(Value::Stub(stub.to_binding())) })
            }
            "load" => Box::pin(async move {
                let code = args
                    .first()
                    .ok_or_else(|| RpcError::type_error("LOADER.load(code): code is required"))?;
                let code = WorkerCode::from_value(code)
                    .map_err(|e| RpcError::type_error(e.to_string()))?;
                Ok(Value::Stub(loader.load(code).to_binding()))
            }),
            other => capnweb::method_not_found(other),
        }
    }
}
