//! [`CannedHost`]: a [`FunctionHost`] written in Rust that runs no JavaScript, so the whole
//! server (routing, admin, metrics) can be tested without a JavaScript engine in the loop.
//!
//! Every deployed bundle gets the same canned behaviour, parameterised by its vars:
//!
//! - **check** refuses a main module whose source contains `<<syntax error>>` (standing in for
//!   a real syntax error) with [`HostError::InvalidCode`]; anything else loads.
//! - **fetch** answers `200` with JSON `{method, url, headers, body, version, label}`
//!   (`label` is the `VERSION` var) and an `x-function-version` header; `/status/NNN`
//!   answers status NNN; `/throw` throws `Error("boom")` with `code: "E_BOOM"`.
//! - **RPC target** methods: `echo(x)`, `add(a, b)`, `version()` → `{version, label}`,
//!   `fail(message)` throws `RangeError(message)` with `code: "E_FAIL"`, `slow(ms)` sleeps and
//!   returns `{before, after}` (the label read before and after the sleep), `binding(name)`
//!   returns the `env` entry (a stub for KV/blob/service bindings), `env()` lists env names.
//!
//! It also records cold starts and resident "isolates" (one per loaded version) the way a
//! real host would, so the metrics surface can be tested.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capnweb::{Body, CallResult, RequestValue, ResponseValue, RpcError, RpcTarget, Stub, Value};
use serde_json::json;

use crate::host::{Function, FunctionHost, HostError, HostFuture};
use crate::manifest::Bundle;

/// Marker that makes [`CannedHost::check`] refuse a bundle.
pub const SYNTAX_ERROR_MARKER: &str = "<<syntax error>>";

/// The test host. Cheap to create; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct CannedHost {
    loaded: Mutex<HashMap<String, HashSet<u64>>>,
}

impl CannedHost {
    /// A new host with nothing loaded.
    pub fn new() -> CannedHost {
        CannedHost::default()
    }

    fn warm(&self, function: &Function) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let versions = loaded.entry(function.id.clone()).or_default();
        if versions.insert(function.version) {
            telemetry::record_cold_start(&function.id, std::time::Duration::ZERO);
            crate::metrics::set_resident(
                &function.id,
                versions.len(),
                96 * 1024 * versions.len() as u64,
            );
        }
    }
}

fn label(function: &Function) -> Value {
    function
        .bundle
        .var("VERSION")
        .map_or(Value::Null, Value::from_json)
}

impl FunctionHost for CannedHost {
    fn check(&self, _id: &str, bundle: Arc<Bundle>) -> HostFuture<()> {
        let bad = bundle
            .main()
            .source()
            .is_some_and(|s| s.contains(SYNTAX_ERROR_MARKER));
        let main = bundle.main_module.clone();
        Box::pin(async move {
            if bad {
                Err(HostError::InvalidCode(format!(
                    "SyntaxError: unexpected token in module {main:?}"
                )))
            } else {
                Ok(())
            }
        })
    }

    fn fetch(&self, function: Arc<Function>, request: RequestValue) -> HostFuture<ResponseValue> {
        self.warm(&function);
        Box::pin(async move {
            let path = request
                .url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                .unwrap_or("/")
                .to_owned();
            if path.starts_with("/throw") {
                return Err(HostError::Thrown(
                    RpcError::error("boom").with_prop("code", "E_BOOM"),
                ));
            }
            let status = path
                .strip_prefix("/status/")
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|s| (200..=599).contains(s))
                .unwrap_or(200);
            let body = match request.body {
                None => String::new(),
                Some(Body::Text(t)) => t,
                Some(Body::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
                Some(Body::Stream(s)) => {
                    String::from_utf8_lossy(&s.read_all().await.map_err(HostError::Thrown)?)
                        .into_owned()
                }
                Some(_) => String::new(),
            };
            let headers: serde_json::Map<String, serde_json::Value> = request
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let out = json!({
                "method": request.method,
                "url": request.url,
                "headers": headers,
                "body": body,
                "version": function.version,
                "label": label(&function).to_json(),
            });
            Ok(ResponseValue {
                status,
                status_text: String::new(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-function-version".into(), function.version.to_string()),
                ],
                body: Some(Body::Text(out.to_string())),
                extra: capnweb::Object::new(),
            })
        })
    }

    fn rpc_target(&self, function: Arc<Function>, _entrypoint: Option<String>) -> HostFuture<Stub> {
        self.warm(&function);
        Box::pin(async move { Ok(Stub::new(CannedTarget { function })) })
    }

    fn retire(&self, id: &str, live_version: Option<u64>) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(versions) = loaded.get_mut(id) {
            versions.retain(|v| Some(*v) == live_version);
            crate::metrics::set_resident(id, versions.len(), 96 * 1024 * versions.len() as u64);
        }
    }
}

/// The canned RPC target of one function version.
struct CannedTarget {
    function: Arc<Function>,
}

fn number(args: &[Value], i: usize) -> Result<f64, RpcError> {
    args.get(i)
        .and_then(Value::as_f64)
        .ok_or_else(|| RpcError::type_error(format!("argument {i} must be a number")))
}

impl RpcTarget for CannedTarget {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let method = method.to_owned();
        Box::pin(async move {
            let f = &self.function;
            match method.as_str() {
                "echo" => Ok(args.into_iter().next().unwrap_or_default()),
                "add" => Ok(Value::Number(number(&args, 0)? + number(&args, 1)?)),
                "version" => Ok(Value::object([
                    ("version", Value::from(f.version)),
                    ("label", label(f)),
                ])),
                "fail" => {
                    let msg = args
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or("failed")
                        .to_owned();
                    Err(RpcError::range_error(msg).with_prop("code", "E_FAIL"))
                }
                "slow" => {
                    let before = label(f);
                    let ms = number(&args, 0)?.clamp(0.0, 10_000.0);
                    tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                    Ok(Value::object([("before", before), ("after", label(f))]))
                }
                "binding" => {
                    let name = args.first().and_then(Value::as_str).unwrap_or_default();
                    f.env
                        .get(name)
                        .cloned()
                        .ok_or_else(|| RpcError::type_error(format!("no binding named {name:?}")))
                }
                "env" => Ok(Value::Array(
                    f.env.keys().map(|k| Value::string(k.clone())).collect(),
                )),
                other => Err(RpcError::type_error(format!(
                    "'{other}' is not a function."
                ))),
            }
        })
    }
}
