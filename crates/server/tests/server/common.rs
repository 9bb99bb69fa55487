//! The harness: a server in-process, an HTTP client, bundle builders.

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use server::{CannedHost, Config, FunctionHost, LoaderHost, Server};

pub const TOKEN: &str = "test-admin-token";

pub struct TestServer {
    #[allow(dead_code)]
    pub server: Option<Server>,
    pub base: String,
    pub _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestServer {
    /// A server on the canned test host.
    pub async fn start() -> TestServer {
        TestServer::start_with(Arc::new(CannedHost::new())).await
    }

    /// A server on the Worker Loader's host (real JavaScript).
    #[allow(dead_code)]
    pub async fn start_js() -> TestServer {
        TestServer::start_with(Arc::new(LoaderHost::new())).await
    }

    pub async fn start_with(host: Arc<dyn FunctionHost>) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_owned(),
            admin_token: Some(TOKEN.into()),
            ..Config::default()
        };
        let server = Server::start(config, host).await.expect("server starts");
        TestServer {
            base: format!("http://{}", server.local_addr()),
            server: Some(server),
            _dir: dir,
        }
    }

    pub fn ws_url(&self, id: &str) -> String {
        format!("{}/_rpc/{id}", self.base.replacen("http://", "ws://", 1))
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Resp {
        request(&self.base, method, path, headers, body.into()).await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {TOKEN}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.request(method, path, &[("authorization", &auth)], body)
            .await
    }

    pub async fn deploy(&self, id: &str, bundle: Value) -> u64 {
        let r = self
            .admin("PUT", &format!("/_admin/functions/{id}"), Some(bundle))
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["version"].as_u64().expect("version")
    }

    pub async fn rpc(&self, id: &str, method: &str, args: Value) -> Resp {
        self.request(
            "POST",
            &format!("/{id}/"),
            &[("x-rpc-method", method)],
            args.to_string(),
        )
        .await
    }
}

pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body)))
        .expect("request");
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.request(req).await.expect("server answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

/// A bundle the canned host serves, labelled `label` (its `VERSION` var), with extra bindings.
pub fn bundle(label: &str, bindings: Value) -> Value {
    let mut b = json!({
        "compatibilityDate": "2025-06-01",
        "mainModule": "index.js",
        "modules": { "index.js": "export default { fetch() {} }" },
        "bindings": { "VERSION": label },
    });
    if let Value::Object(extra) = bindings {
        for (k, v) in extra {
            b["bindings"][k] = v;
        }
    }
    b
}

/// JavaScript with the canned host's RPC surface (for servers on the loader host, and the
/// binary): `add`, `version` → `{label}`, `fail(message)` (a `RangeError` with `code`),
/// `slow(ms)` → `{before, after}`, `binding(name)`, `echo(x)`; fetch answers `ok`.
#[allow(dead_code)]
pub const API_JS: &str = r#"
import { RpcTarget } from "cloudflare:workers";
export class Api extends RpcTarget {
  constructor(ctx, env) { super(); this.env = env; }
  echo(x) { return x; }
  add(a, b) { return a + b; }
  version() { return { label: this.env.VERSION }; }
  fail(message) { const e = new RangeError(message); e.code = "E_FAIL"; throw e; }
  async slow(ms) {
    const before = this.env.VERSION;
    await new Promise((resolve) => setTimeout(resolve, ms));
    return { before, after: this.env.VERSION };
  }
  binding(name) { return this.env[name]; }
}
export default { fetch() { return new Response("ok"); }, rpc: Api };
"#;

/// A bundle of one ES module, `index.js`, with `bindings`.
#[allow(dead_code)]
pub fn code(src: &str, bindings: Value) -> Value {
    json!({
        "mainModule": "index.js",
        "modules": { "index.js": src },
        "bindings": bindings,
    })
}

/// A bundle of [`API_JS`] labelled `label`, with extra bindings.
pub fn js_bundle(label: &str, bindings: Value) -> Value {
    let mut b = bundle(label, bindings);
    b["modules"]["index.js"] = json!(API_JS);
    b
}

/// Installs (once per test process) a global subscriber with the live-logs layer, as the
/// binary does, so console output reaches `server::logs::hub()`.
#[allow(dead_code)]
pub fn capture_logs() {
    use tracing_subscriber::layer::SubscriberExt as _;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(server::logs::layer());
        // Another harness may have set one first; then console lines are not observable
        // and the log tests fail loudly rather than hang.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// An open streaming response: `GET path` with headers, read line by line.
#[allow(dead_code)]
pub struct LineStream {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    body: hyper::body::Incoming,
    pending: Vec<u8>,
}

#[allow(dead_code)]
impl LineStream {
    pub async fn open(base: &str, path: &str, headers: &[(&str, &str)]) -> LineStream {
        let mut req = hyper::Request::builder()
            .method("GET")
            .uri(format!("{base}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(bytes::Bytes::new())).expect("request");
        let client: Client<_, Full<bytes::Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let resp = client.request(req).await.expect("server answers");
        LineStream {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.into_body(),
            pending: Vec::new(),
        }
    }

    /// The next non-empty line (the last one may be unterminated), or `None` when the
    /// stream ends; panics after `timeout`.
    pub async fn next_line(&mut self, timeout: std::time::Duration) -> Option<String> {
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(nl) = self.pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.pending.drain(..=nl).collect();
                    let line = String::from_utf8_lossy(&line[..nl]).trim().to_owned();
                    if line.is_empty() {
                        continue;
                    }
                    return Some(line);
                }
                let Some(frame) = self.body.frame().await else {
                    // The end: what is left is the last (unterminated) line, if any.
                    let rest = String::from_utf8_lossy(&self.pending).trim().to_owned();
                    self.pending.clear();
                    return (!rest.is_empty()).then_some(rest);
                };
                let frame = frame.expect("body frame");
                if let Ok(data) = frame.into_data() {
                    self.pending.extend_from_slice(&data);
                }
            }
        })
        .await
        .expect("a line within the timeout")
    }

    /// The next line as JSON.
    pub async fn next_json(&mut self) -> Value {
        let line = self
            .next_line(std::time::Duration::from_secs(10))
            .await
            .expect("the stream is still open");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }
}
