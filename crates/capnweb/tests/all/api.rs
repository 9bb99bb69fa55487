//! A test API, written with the public `RpcTarget` trait, that the semantic tests call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capnweb::{CallResult, RpcError, RpcTarget, Stub, Value};

pub struct Api {
    /// Arguments of every `record` call, in arrival order (for e-order tests).
    pub log: Mutex<Vec<f64>>,
    /// Live Counter objects made by this API (per instance, so parallel tests do not
    /// disturb each other), so tests can prove a release reached the target.
    pub live_counters: Arc<AtomicUsize>,
}

impl Api {
    pub fn stub() -> (Stub, Arc<Api>) {
        let api = Arc::new(Api {
            log: Mutex::new(Vec::new()),
            live_counters: Arc::new(AtomicUsize::new(0)),
        });
        (Stub::from_arc(api.clone()), api)
    }
}

fn num(args: &[Value], i: usize) -> Result<f64, RpcError> {
    args.get(i)
        .and_then(Value::as_f64)
        .ok_or_else(|| RpcError::type_error(format!("argument {i} must be a number")))
}

impl RpcTarget for Api {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        if method == "record" {
            // Recorded synchronously at delivery: the order calls reached the target.
            let n = num(&args, 0);
            if let Ok(n) = n {
                self.log.lock().expect("log").push(n);
            }
            return Box::pin(async move { n.map(Value::Number) });
        }
        let method = method.to_owned();
        Box::pin(async move {
            match method.as_str() {
                "square" => Ok(Value::Number(num(&args, 0)?.powi(2))),
                "add" => Ok(Value::Number(num(&args, 0)? + num(&args, 1)?)),
                "echo" => Ok(args.into_iter().next().unwrap_or_default()),
                // A small call with a big answer (n bytes).
                "bytes" => Ok(Value::Bytes(capnweb::Bytes::new(vec![
                    7u8;
                    num(&args, 0)?
                        as usize
                ]))),
                "getUser" => {
                    let id = num(&args, 0)?;
                    Ok(Value::object([
                        ("id", Value::Number(id)),
                        (
                            "profile",
                            Value::object([("bio", Value::string(format!("bio of {id}")))]),
                        ),
                    ]))
                }
                "makeCounter" => {
                    self.live_counters.fetch_add(1, Ordering::SeqCst);
                    Ok(Value::Stub(Stub::new(Counter {
                        value: Mutex::new(num(&args, 0).unwrap_or(0.0)),
                        live: self.live_counters.clone(),
                    })))
                }
                "callSquare" => {
                    let Some(Value::Stub(s)) = args.first() else {
                        return Err(RpcError::type_error("need stub"));
                    };
                    let r = s
                        .call("square", vec![args.get(1).cloned().unwrap_or_default()])
                        .await?;
                    Ok(Value::object([("result", r)]))
                }
                "callFunction" => {
                    let Some(Value::Stub(f)) = args.first() else {
                        return Err(RpcError::type_error("need fn"));
                    };
                    let r = f
                        .call_fn(vec![args.get(1).cloned().unwrap_or_default()])
                        .await?;
                    Ok(Value::object([("result", r)]))
                }
                "throwError" => Err(RpcError::new("RangeError", "out of range")
                    .with_prop("code", "E_RANGE")
                    .with_prop(
                        "details",
                        Value::object([("reason", Value::string("testing"))]),
                    )),
                "delay" => {
                    tokio::time::sleep(Duration::from_millis(num(&args, 0)? as u64)).await;
                    Ok(args.get(1).cloned().unwrap_or_default())
                }
                "fib" => {
                    let n = num(&args, 0)? as usize;
                    let (mut a, mut b) = (0.0_f64, 1.0_f64);
                    let mut out = Vec::new();
                    for _ in 0..n {
                        out.push(Value::Number(a));
                        (a, b) = (b, a + b);
                    }
                    Ok(Value::Array(out))
                }
                other => Err(RpcError::type_error(format!(
                    "'{other}' is not a function."
                ))),
            }
        })
    }
}

pub struct Counter {
    value: Mutex<f64>,
    live: Arc<AtomicUsize>,
}

impl RpcTarget for Counter {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let r = match method {
            "increment" => {
                let mut v = self.value.lock().expect("counter");
                *v += args.first().and_then(Value::as_f64).unwrap_or(1.0);
                Ok(Value::Number(*v))
            }
            other => Err(RpcError::type_error(format!(
                "'{other}' is not a function."
            ))),
        };
        Box::pin(async move { r })
    }
    fn get(self: Arc<Self>, name: &str) -> CallResult {
        let v = if name == "value" {
            Value::Number(*self.value.lock().expect("counter"))
        } else {
            Value::Undefined
        };
        Box::pin(async move { Ok(v) })
    }
    fn on_dispose(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}
