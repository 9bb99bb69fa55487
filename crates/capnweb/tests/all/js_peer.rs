//! The Rust client against the official JavaScript server (`tests/interop/ref_server.mjs`,
//! capnweb 0.12.0 under Node), over WebSocket and HTTP batch.

use std::future::IntoFuture;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use capnweb::transport::batch::HttpBatch;
use capnweb::transport::websocket;
use capnweb::{serialize, ByteKind, Bytes, ErrorValue, Limits, Session, Stub, Value};

use crate::api::Api;

struct JsServer {
    child: Child,
    port: u16,
}

impl Drop for JsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Starts the JavaScript reference server, or returns `None` (outside CI) when its Node
/// packages are not installed.
fn start_js_server() -> Option<JsServer> {
    let dir = interop_dir();
    if !dir.join("node_modules/capnweb").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install tests/interop's node packages (npm ci)"
        );
        eprintln!("skipping: run `npm ci` in tests/interop to test against the JavaScript server");
        return None;
    }
    let mut child = Command::new("node")
        .arg("ref_server.mjs")
        .args(["--port", "0"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .expect("listening line");
    Some(JsServer { child, port })
}

async fn js_session() -> Option<(JsServer, Session)> {
    let server = start_js_server()?;
    let session = websocket::connect(
        &format!("ws://127.0.0.1:{}/", server.port),
        None,
        Limits::default(),
    )
    .await
    .expect("connect to JS server");
    Some((server, session))
}

fn n(v: f64) -> Value {
    Value::Number(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_calls_and_pipelines_against_javascript_server() {
    let Some((_server, session)) = js_session().await else {
        return;
    };
    let api = session.remote_main();
    assert_eq!(
        api.call("square", vec![n(12.0)])
            .await
            .expect("square")
            .as_f64(),
        Some(144.0)
    );
    let before = session.frame_counts().1;
    let bio = api
        .call("getUser", vec![n(5.0)])
        .get("profile")
        .get("bio")
        .await
        .expect("bio");
    assert_eq!(bio.as_str(), Some("bio of 5"));
    assert_eq!(
        session.frame_counts().1 - before,
        1,
        "one message back for the pipelined read"
    );
    let sum = api.call("add", vec![n(1.0), n(2.0)]);
    let chain = api.call("square", vec![api.call("square", vec![sum.into()]).into()]);
    assert_eq!(chain.await.expect("chain").as_f64(), Some(81.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_type_round_trips_through_javascript_echo() {
    let Some((_server, session)) = js_session().await else {
        return;
    };
    let api = session.remote_main();
    let mut err = ErrorValue::new("TypeError", "bad");
    err.props.insert("code".into(), "E_BAD".into());
    let values = vec![
        n(0.0),
        n(-1.5),
        n(9007199254740991.0),
        Value::string("héllo \"world\"\n"),
        Value::Bool(false),
        Value::Null,
        Value::Undefined,
        n(f64::INFINITY),
        n(f64::NEG_INFINITY),
        n(f64::NAN),
        Value::BigInt("-123456789012345678901234567890".into()),
        Value::Date(Some(1.7e12)),
        Value::Date(None),
        Value::Bytes(Bytes::new(vec![0, 1, 2, 255])),
        Value::Bytes(Bytes {
            data: vec![1, 0, 2, 0],
            kind: Some(ByteKind::Int16Array),
        }),
        Value::Bytes(Bytes {
            data: vec![9, 9],
            kind: Some(ByteKind::ArrayBuffer),
        }),
        Value::Array(vec!["bigint".into(), "1".into()]),
        Value::object([(
            "a",
            Value::Array(vec![n(1.0), Value::object([("b", Value::Undefined)])]),
        )]),
        err.into(),
        Value::Url("https://example.com/x?y=1".into()),
        Value::Headers(vec![("x-a".into(), "1".into())]),
    ];
    for v in values {
        let expected = serialize(&v).expect("serializable");
        let back = api.call("echo", vec![v]).await.expect("echo");
        assert_eq!(serialize(&back).expect("serializable"), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_targets_callbacks_and_errors_work_against_javascript() {
    let Some((_server, session)) = js_session().await else {
        return;
    };
    let api = session.remote_main();
    let counter = api.call("makeCounter", vec![n(10.0)]);
    assert_eq!(
        counter
            .call("increment", vec![n(5.0)])
            .await
            .expect("inc")
            .as_f64(),
        Some(15.0)
    );
    assert_eq!(
        counter.get("value").await.expect("value").as_f64(),
        Some(15.0)
    );
    let (local, _) = Api::stub();
    let r = api
        .call("callSquare", vec![Value::Stub(local), n(9.0)])
        .await
        .expect("callSquare");
    assert_eq!(r.get("result").as_f64(), Some(81.0));
    let f = Stub::from_fn(|args| async move { Ok(n(args[0].as_f64().unwrap_or(0.0) + 0.5)) });
    let r = api
        .call("callFunction", vec![Value::Stub(f), n(2.0)])
        .await
        .expect("callFunction");
    assert_eq!(r.get("result").as_f64(), Some(2.5));
    let props = Value::object([
        ("code", Value::string("E_BAD")),
        ("details", Value::object([("reason", Value::string("x"))])),
    ]);
    let err = api
        .call("throwError", vec!["TypeError".into(), "bad".into(), props])
        .await
        .expect_err("throws");
    assert_eq!(err.name(), "TypeError");
    assert_eq!(err.message(), "bad");
    assert_eq!(err.prop("code").and_then(Value::as_str), Some("E_BAD"));
    assert_eq!(
        err.prop("details")
            .map(|d| d.get("reason").clone())
            .and_then(|v| v.as_str().map(str::to_owned))
            .as_deref(),
        Some("x")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_map_and_release_against_javascript() {
    let Some((_server, session)) = js_session().await else {
        return;
    };
    let api = session.remote_main();
    let calls: Vec<_> = (0..1000)
        .map(|i| api.call("square", vec![n(i as f64)]).into_future())
        .collect();
    for (i, r) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.expect("square").as_f64(), Some((i * i) as f64));
    }
    let mapped = api
        .call("generateFibonacci", vec![n(7.0)])
        .map(|x| x.call_captured(&api, "square", vec![x.value()]).value())
        .await
        .expect("map");
    let got: Vec<f64> = mapped
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(got, vec![0.0, 1.0, 1.0, 4.0, 9.0, 25.0, 64.0]);

    let stats = |v: Value| (v.get("imports").as_f64(), v.get("exports").as_f64());
    let before = stats(api.call("sessionStats", vec![]).await.expect("stats"));
    let counter = api
        .call("makeCounter", vec![n(1.0)])
        .await
        .expect("counter");
    let Value::Stub(counter) = counter else {
        panic!("stub")
    };
    counter.call("increment", vec![]).await.expect("inc");
    let during = stats(api.call("sessionStats", vec![]).await.expect("stats"));
    assert_ne!(during, before);
    counter.dispose();
    let mut after = stats(api.call("sessionStats", vec![]).await.expect("stats"));
    for _ in 0..50 {
        if after == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = stats(api.call("sessionStats", vec![]).await.expect("stats"));
    }
    assert_eq!(
        after, before,
        "the JavaScript server's tables are back to baseline after our release"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_batch_against_javascript_is_one_request() {
    let Some(server) = start_js_server() else {
        return;
    };
    let batch = HttpBatch::new(
        format!("http://127.0.0.1:{}/batch", server.port),
        Limits::default(),
    );
    let api = batch.main();
    let a = api.call("square", vec![n(7.0)]);
    let bio = api.call("getUser", vec![n(2.0)]).get("profile").get("bio");
    let (a, bio) = batch
        .run(async { tokio::join!(a.into_future(), bio.into_future()) })
        .await
        .expect("batch");
    assert_eq!(a.expect("square").as_f64(), Some(49.0));
    assert_eq!(bio.expect("bio").as_str(), Some("bio of 2"));
}
