//! `GET /_admin/functions/<id>/logs`: console output of real JavaScript (the Worker Loader's
//! host), streamed as NDJSON to admin clients.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{capture_logs, code, LineStream, TestServer, TOKEN};

const HELLO_JS: &str = r#"export default {
  fetch(request) {
    console.log("hello from", request.url);
    console.error("and an error");
    return new Response("ok");
  }
}"#;

async fn open(s: &TestServer, id: &str) -> LineStream {
    let auth = format!("Bearer {TOKEN}");
    let stream = LineStream::open(
        &s.base,
        &format!("/_admin/functions/{id}/logs"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    stream
}

#[tokio::test]
async fn logs_stream_delivers_console_lines_with_function_and_level() {
    capture_logs();
    let s = TestServer::start_js().await;
    s.deploy("loghello", code(HELLO_JS, json!({}))).await;
    let mut stream = open(&s, "loghello").await;
    let r = s.request("GET", "/loghello/some/path?q=1", &[], "").await;
    assert_eq!(r.status, 200);

    let line = stream.next_json().await;
    assert_eq!(line["function"], "loghello", "{line}");
    assert_eq!(line["level"], "info", "{line}");
    let message = line["message"].as_str().expect("message");
    assert!(message.starts_with("hello from http://"), "{line}");
    assert!(message.ends_with("/some/path?q=1"), "{line}");
    assert!(line["timestamp_ms"].as_u64().expect("timestamp") > 1_600_000_000_000);
    assert!(line.get("source").is_none(), "{line}");

    let line = stream.next_json().await;
    assert_eq!(line["level"], "error", "{line}");
    assert_eq!(line["message"], "and an error", "{line}");
}

#[tokio::test]
async fn a_console_line_is_cut_to_its_bound_and_a_lone_surrogate_prints() {
    // One console.log of 3 MiB must not become a 3 MiB line every log reader (and every
    // peer node's fan-out) holds; a lone surrogate is legal JavaScript and must not throw.
    capture_logs();
    let s = TestServer::start_js().await;
    let js = r#"export default {
      fetch() {
        console.log("big:" + "é".repeat(1536 * 1024));
        console.log("lone \ud800 surrogate");
        return new Response("ok");
      }
    }"#;
    s.deploy("logbig", code(js, json!({}))).await;
    let mut stream = open(&s, "logbig").await;
    let r = s.request("GET", "/logbig/", &[], "").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let line = stream.next_json().await;
    let message = line["message"].as_str().expect("message");
    let max = isolate::MAX_CONSOLE_LINE_BYTES;
    let kept = message.find('…').expect("the cut is marked");
    assert!(kept <= max && kept > max - 4, "{kept} bytes kept");
    assert!(message.starts_with("big:éé"), "{}", &message[..16]);
    let total = 4 + 2 * 1536 * 1024;
    assert_eq!(
        &message[kept..],
        format!("… [{} more bytes]", total - kept),
        "the marker says how much was cut"
    );

    let line = stream.next_json().await;
    assert_eq!(line["message"], "lone \u{fffd} surrogate", "{line}");
}

#[tokio::test]
async fn logs_stream_leaves_out_other_functions() {
    capture_logs();
    let s = TestServer::start_js().await;
    let talker = |name: &str| {
        code(
            &format!(
                "export default {{ fetch() {{ console.log('I am {name}'); return new Response('ok') }} }}"
            ),
            json!({}),
        )
    };
    s.deploy("logmine", talker("mine")).await;
    s.deploy("logother", talker("other")).await;
    let mut stream = open(&s, "logmine").await;
    // The other function talks first: if its lines leaked, one would arrive first.
    for _ in 0..3 {
        assert_eq!(s.request("GET", "/logother/", &[], "").await.status, 200);
    }
    assert_eq!(s.request("GET", "/logmine/", &[], "").await.status, 200);
    let line = stream.next_json().await;
    assert_eq!(line["function"], "logmine", "{line}");
    assert_eq!(line["message"], "I am mine", "{line}");
    // And nothing else is pending.
    assert_eq!(s.request("GET", "/logother/", &[], "").await.status, 200);
    let extra = tokio::time::timeout(
        Duration::from_millis(300),
        stream.next_line(Duration::from_secs(1)),
    )
    .await;
    assert!(extra.is_err(), "unexpected line {extra:?}");
}

#[tokio::test]
async fn logs_of_loader_code_count_as_the_callers_with_its_sub_id() {
    capture_logs();
    let s = TestServer::start_js().await;
    s.deploy(
        "logfront",
        code(
            r#"export default {
              async fetch(request, env) {
                const w = env.LOADER.get("child", () => ({
                  mainModule: "index.js",
                  modules: { "index.js": "export default { fetch() { console.warn('from the child'); return new Response('dyn') } }" },
                }));
                return w.fetch(request);
              }
            }"#,
            json!({ "LOADER": { "type": "loader" } }),
        ),
    )
    .await;
    let mut stream = open(&s, "logfront").await;
    let r = s.request("GET", "/logfront/", &[], "").await;
    assert_eq!(r.body, b"dyn");
    let line = stream.next_json().await;
    assert_eq!(
        (&line["function"], &line["source"], &line["level"]),
        (&json!("logfront"), &json!("child"), &json!("warn")),
        "{line}"
    );
    assert_eq!(line["message"], "from the child");
}

#[tokio::test]
async fn logs_stream_needs_the_token_and_a_deployed_function() {
    capture_logs();
    let s = TestServer::start_js().await;
    s.deploy("logauth", code(HELLO_JS, json!({}))).await;
    let none = LineStream::open(&s.base, "/_admin/functions/logauth/logs", &[]).await;
    assert_eq!(none.status, 401);
    let wrong = LineStream::open(
        &s.base,
        "/_admin/functions/logauth/logs",
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let auth = format!("Bearer {TOKEN}");
    let mut missing = LineStream::open(
        &s.base,
        "/_admin/functions/nosuchfn/logs",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(missing.status, 404);
    let body = missing
        .next_line(Duration::from_secs(5))
        .await
        .expect("an error body");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["error"]["name"], "NotFound");
}

#[tokio::test]
async fn logs_stream_ends_when_the_server_shuts_down() {
    capture_logs();
    let mut s = TestServer::start_js().await;
    s.deploy("logbye", code(HELLO_JS, json!({}))).await;
    let mut stream = open(&s, "logbye").await;
    let server = s.server.take().expect("server");
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown does not wait for the log stream")
        .expect("clean shutdown");
    assert_eq!(stream.next_line(Duration::from_secs(5)).await, None);
}

#[tokio::test]
async fn a_traceparent_reaches_the_console_lines_of_every_function_it_calls() {
    capture_logs();
    let s = TestServer::start_js().await;
    s.deploy(
        "tracedb",
        code(
            r#"import { RpcTarget } from "cloudflare:workers";
            class Api extends RpcTarget { hello() { console.log("in b"); return "hi"; } }
            export default { rpc: Api };"#,
            json!({}),
        ),
    )
    .await;
    s.deploy(
        "traceda",
        code(
            r#"export default {
              async fetch(request, env) {
                console.log("in a");
                await env.B.getRpcTarget().hello();
                return new Response("ok");
              }
            }"#,
            json!({ "B": { "type": "service", "service": "tracedb" } }),
        ),
    )
    .await;
    let mut a = open(&s, "traceda").await;
    let mut b = open(&s, "tracedb").await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let tp = format!("00-{trace}-00f067aa0ba902b7-01");
    let r = s
        .request("GET", "/traceda/", &[("traceparent", &tp)], "")
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.body, b"ok");

    let line = a.next_json().await;
    assert_eq!(line["message"], "in a", "{line}");
    assert_eq!(line["trace"], trace, "{line}");
    let line = b.next_json().await;
    assert_eq!(line["message"], "in b", "{line}");
    assert_eq!(line["trace"], trace, "{line}");

    // Without a traceparent a new trace is started, and the lines carry that one.
    let r = s.request("GET", "/traceda/", &[], "").await;
    assert_eq!(r.status, 200);
    let started = r
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('-').nth(1))
        .expect("a traceparent on the response")
        .to_owned();
    assert_ne!(started, trace);
    assert_eq!(a.next_json().await["trace"], started.as_str());
    assert_eq!(b.next_json().await["trace"], started.as_str());

    // An X-RPC-Method call carries the trace too.
    let r = s
        .request(
            "POST",
            "/tracedb/",
            &[("x-rpc-method", "hello"), ("traceparent", &tp)],
            "[]",
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let line = b.next_json().await;
    assert_eq!(line["message"], "in b", "{line}");
    assert_eq!(line["trace"], trace, "{line}");
}

#[tokio::test]
async fn a_traceparent_on_the_rpc_upgrade_or_batch_reaches_every_call_of_that_session() {
    use capnweb::transport::websocket;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    capture_logs();
    let s = TestServer::start_js().await;
    s.deploy(
        "tracedws",
        code(
            r#"import { RpcTarget } from "cloudflare:workers";
            class Api extends RpcTarget { hello(n) { console.log("call " + n); return n; } }
            export default { rpc: Api };"#,
            json!({}),
        ),
    )
    .await;
    let mut lines = open(&s, "tracedws").await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let tp = format!("00-{trace}-b7ad6b7169203331-01");

    let mut req = s.ws_url("tracedws").into_client_request().expect("request");
    req.headers_mut()
        .insert("traceparent", tp.parse().expect("header value"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let session = capnweb::Session::new(websocket::transport(ws), None, capnweb::Limits::default());
    let api = session.remote_main();
    for n in [1, 2] {
        // Calls made well after the upgrade still carry its trace.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let v = api.call("hello", vec![n.into()]).await.expect("call");
        assert_eq!(v.as_f64(), Some(f64::from(n)));
        let line = lines.next_json().await;
        assert_eq!(line["message"], format!("call {n}"), "{line}");
        assert_eq!(line["trace"], trace, "{line}");
    }

    let batch = "[\"push\",[\"pipeline\",0,[\"hello\"],[3]]]\n[\"pull\",1]";
    let r = s
        .request("POST", "/_rpc/tracedws", &[("traceparent", &tp)], batch)
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let line = lines.next_json().await;
    assert_eq!(line["message"], "call 3", "{line}");
    assert_eq!(line["trace"], trace, "{line}");
}
