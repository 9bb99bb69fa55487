//! The interop server: a capnweb server written with this crate's public API, for the
//! official JavaScript client to test against.
//!
//! `cargo run --release -p capnweb --example interop_server -- --port PORT` prints
//! `listening on PORT`, serves WebSocket at `ws://127.0.0.1:PORT/` and HTTP batch at
//! `http://127.0.0.1:PORT/batch`, and exits on SIGTERM.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{any, post};
use capnweb::transport::{batch, websocket};
use capnweb::{CallResult, Limits, RpcError, RpcTarget, Session, Stub, Value};
use clap::Parser;

mod add;

#[derive(Parser)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

/// The main object: one per session, so `sessionStats` can see its own session.
struct Api {
    session: OnceLock<Session>,
}

fn num(args: &[Value], i: usize) -> Result<f64, RpcError> {
    args.get(i)
        .and_then(Value::as_f64)
        .ok_or_else(|| RpcError::type_error(format!("argument {i} must be a number")))
}

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or_default()
}

impl RpcTarget for Api {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let method = method.to_owned();
        Box::pin(async move {
            match method.as_str() {
                "square" => {
                    let i = num(&args, 0)?;
                    Ok(Value::Number(i * i))
                }
                "add" => add::js_add(&arg(&args, 0), &arg(&args, 1)),
                "echo" => Ok(arg(&args, 0)),
                "getUser" => {
                    let id = arg(&args, 0);
                    let text = match &id {
                        Value::Number(n) => capnweb::to_js_string(&serde_json::json!(n)),
                        Value::String(s) => s.clone(),
                        other => format!("{:?}", other.to_json()),
                    };
                    Ok(Value::object([
                        ("id", id),
                        ("name", Value::string(format!("user{text}"))),
                        (
                            "profile",
                            Value::object([("bio", Value::string(format!("bio of {text}")))]),
                        ),
                    ]))
                }
                "makeCounter" => {
                    let initial = args.first().and_then(Value::as_f64).unwrap_or(0.0);
                    Ok(Value::Stub(Stub::new(Counter {
                        value: Mutex::new(initial),
                    })))
                }
                "callSquare" => {
                    let Some(Value::Stub(stub)) = args.first() else {
                        return Err(RpcError::type_error("callSquare needs a stub"));
                    };
                    let result = stub.call("square", vec![arg(&args, 1)]).await?;
                    Ok(Value::object([("result", result)]))
                }
                "callFunction" => {
                    let Some(Value::Stub(f)) = args.first() else {
                        return Err(RpcError::type_error("callFunction needs a function"));
                    };
                    let result = f.call_fn(vec![arg(&args, 1)]).await?;
                    Ok(Value::object([("result", result)]))
                }
                "throwError" => {
                    let name = arg(&args, 0).as_str().unwrap_or("Error").to_owned();
                    // An error message is a Rust string: lone surrogates become U+FFFD.
                    let message = arg(&args, 1)
                        .to_string_lossy()
                        .map(|m| m.into_owned())
                        .unwrap_or_default();
                    let mut err = capnweb::ErrorValue::new(name, message);
                    if let Value::Object(props) = arg(&args, 2) {
                        err.props = props;
                    }
                    Err(RpcError::from(err))
                }
                "delay" => {
                    let ms = num(&args, 0)?;
                    if !(0.0..=10_000.0).contains(&ms) {
                        return Err(RpcError::range_error(
                            "delay must be between 0 and 10000 ms",
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                    Ok(arg(&args, 1))
                }
                "generateFibonacci" => {
                    let n = num(&args, 0)?;
                    if !(0.0..=1000.0).contains(&n) {
                        return Err(RpcError::range_error("n must be between 0 and 1000"));
                    }
                    let (mut a, mut b) = (0.0_f64, 1.0_f64);
                    let mut out = Vec::with_capacity(n as usize);
                    for _ in 0..n as usize {
                        out.push(Value::Number(a));
                        (a, b) = (b, a + b);
                    }
                    Ok(Value::Array(out))
                }
                "sessionStats" => {
                    let stats = self
                        .session
                        .get()
                        .map(Session::stats)
                        .ok_or_else(|| RpcError::error("no session"))?;
                    Ok(Value::object([
                        ("imports", Value::from(stats.imports)),
                        ("exports", Value::from(stats.exports)),
                    ]))
                }
                other => Err(RpcError::type_error(format!(
                    "'{other}' is not a function."
                ))),
            }
        })
    }
}

struct Counter {
    value: Mutex<f64>,
}

impl RpcTarget for Counter {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let result = match method {
            "increment" => {
                let by = args.first().and_then(Value::as_f64).unwrap_or(1.0);
                let mut v = self.value.lock().unwrap_or_else(|e| e.into_inner());
                *v += by;
                Ok(Value::Number(*v))
            }
            other => Err(RpcError::type_error(format!(
                "'{other}' is not a function."
            ))),
        };
        Box::pin(async move { result })
    }

    fn get(self: Arc<Self>, name: &str) -> CallResult {
        let result = match name {
            "value" => Value::Number(*self.value.lock().unwrap_or_else(|e| e.into_inner())),
            _ => Value::Undefined,
        };
        Box::pin(async move { Ok(result) })
    }
}

async fn ws_route(State(limits): State<Limits>, ws: WebSocketUpgrade) -> impl IntoResponse {
    websocket::axum_upgrade(ws, &limits).on_upgrade(|socket| async move {
        let api = Arc::new(Api {
            session: OnceLock::new(),
        });
        let session = Session::new(
            websocket::axum_transport(socket),
            Some(Stub::from_arc(api.clone())),
            limits,
        );
        let _ = api.session.set(session.clone());
        session.closed().await;
    })
}

async fn batch_route(State(limits): State<Limits>, body: String) -> impl IntoResponse {
    let api = Arc::new(Api {
        session: OnceLock::new(),
    });
    // Batch sessions are per request; sessionStats there reports "no session".
    batch::serve_batch(&body, Stub::from_arc(api), limits).await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let limits = Limits::default();
    let app = axum::Router::new()
        .route("/", any(ws_route))
        .route("/batch", post(batch_route))
        // The body cap comes from the session limits, so it never fires before them.
        .layer(axum::extract::DefaultBodyLimit::max(
            limits.max_batch_bytes(),
        ))
        .with_state(limits);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on {}", listener.local_addr()?.port());
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        term.recv().await;
    };
    // TCP_NODELAY: small RPC messages must not wait for delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::select! {
        r = axum::serve(listener, app) => r,
        () = shutdown => std::process::exit(0),
    }
}
