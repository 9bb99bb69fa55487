//! What RPC reaches on an isolate's entrypoints, as workerd draws it: event handlers are
//! events with the function's own env and ctx, never methods called with a caller's arguments;
//! a plain-object default export has no RPC methods; RpcTarget methods are reachable.

mod common;
use capnweb::{RequestValue, Value};
use common::*;
use isolate::Isolate;

const ROLE: &str = r#"
    export default {
      fetch(req, env, ctx) {
        return new Response(`role=${env.ROLE} ctx=${typeof ctx.waitUntil} ${req.method} ${new URL(req.url).pathname}`);
      },
      secret() { return "leaked"; },
      scheduled() { return "ran"; },
    };
"#;

async fn with_env(src: &str) -> Isolate {
    let mut cfg = config("reach", &[("index.js", es(src))]);
    cfg.env = Value::object([("ROLE", Value::from("user"))]);
    Isolate::new(cfg).await.expect("loads")
}

fn response_text(v: Value) -> String {
    let Value::Response(r) = v else {
        panic!("expected a Response, got {v:?}");
    };
    match r.body {
        Some(capnweb::Body::Text(t)) => t,
        Some(capnweb::Body::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("unexpected body {other:?}"),
    }
}

#[tokio::test]
async fn fetch_over_rpc_with_a_forged_env_runs_with_the_real_env() {
    let iso = with_env(ROLE).await;
    let forged = Value::object([("ROLE", Value::from("admin"))]);
    let v = iso
        .rpc_target()
        .call("fetch", vec!["http://x/a".into(), forged])
        .await
        .expect("fetch is an HTTP event");
    assert_eq!(response_text(v), "role=user ctx=function GET /a");
}

#[tokio::test]
async fn fetch_over_rpc_with_a_request_is_an_http_event() {
    let iso = with_env(ROLE).await;
    let req = RequestValue {
        url: "http://x/p".into(),
        method: "POST".into(),
        headers: vec![],
        body: None,
        extra: Default::default(),
    };
    let v = iso
        .entrypoint(None)
        .call("fetch", vec![Value::Request(Box::new(req))])
        .await
        .expect("fetch is an HTTP event");
    assert_eq!(response_text(v), "role=user ctx=function POST /p");
}

#[tokio::test]
async fn a_plain_object_default_export_has_no_rpc_methods() {
    let iso = with_env(ROLE).await;
    for method in ["secret", "scheduled", "toString", "constructor"] {
        let e = iso
            .rpc_target()
            .call(method, vec![])
            .await
            .expect_err(method);
        assert_eq!(e.name(), "TypeError", "{method}: {e}");
    }
    // A property read reaches nothing either.
    let v = iso.entrypoint(None).get("secret").await.expect("get");
    assert!(matches!(v, Value::Undefined), "{v:?}");
}

#[tokio::test]
async fn event_handlers_of_a_worker_entrypoint_are_not_rpc_methods() {
    let src = r#"
        import { WorkerEntrypoint } from "cloudflare:workers";
        export default class extends WorkerEntrypoint {
          hello(n) { return "hello " + n; }
          scheduled() { return "ran"; }
          queue() { return "ran"; }
          email() { return "ran"; }
          tail() { return "ran"; }
          trace() { return "ran"; }
          alarm() { return "ran"; }
          test() { return "ran"; }
          webSocketMessage() { return "ran"; }
          webSocketClose() { return "ran"; }
          webSocketError() { return "ran"; }
          fetch(req) { return new Response("env=" + this.env.ROLE); }
        }
    "#;
    let iso = with_env(src).await;
    let target = iso.rpc_target();
    let v = target
        .call("hello", vec!["ann".into()])
        .await
        .expect("hello");
    assert_eq!(v.as_str(), Some("hello ann"));
    for m in [
        "scheduled",
        "queue",
        "email",
        "tail",
        "trace",
        "alarm",
        "test",
        "webSocketMessage",
        "webSocketClose",
        "webSocketError",
    ] {
        let e = target.call(m, vec![]).await.expect_err(m);
        assert_eq!(e.name(), "TypeError", "{m}: {e}");
        assert!(e.message().contains("event handler"), "{m}: {e}");
        let v = target.get(m).await.expect("get");
        assert!(matches!(v, Value::Undefined), "{m}: {v:?}");
    }
    let forged = Value::object([("ROLE", Value::from("admin"))]);
    let v = target
        .call("fetch", vec!["http://x/".into(), forged])
        .await
        .expect("fetch");
    assert_eq!(response_text(v), "env=user");
}

#[tokio::test]
async fn rpc_target_classes_keep_their_methods() {
    // The seed's convention: `default.rpc` is an RpcTarget, not an entrypoint, so a method
    // named like an event handler is an ordinary method there.
    let src = r#"
        import { RpcTarget } from "cloudflare:workers";
        class Api extends RpcTarget { add(a, b) { return a + b; } queue() { return "q"; } }
        export default { fetch() { return new Response("x"); }, rpc: Api };
    "#;
    let iso = with_env(src).await;
    let t = iso.rpc_target();
    assert_eq!(
        t.call("add", vec![2.into(), 3.into()])
            .await
            .unwrap()
            .as_f64(),
        Some(5.0)
    );
    assert_eq!(t.call("queue", vec![]).await.unwrap().as_str(), Some("q"));
}
