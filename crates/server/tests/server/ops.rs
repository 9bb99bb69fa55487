//! `/_health`, `/_metrics`, `traceparent`.

use serde_json::json;

use crate::common::{bundle, TestServer};

#[tokio::test]
async fn health_answers_ok() {
    let s = TestServer::start().await;
    let r = s.request("GET", "/_health", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn metrics_contain_per_function_and_method_counters_after_calls() {
    let s = TestServer::start().await;
    s.deploy("metered", bundle("v1", json!({}))).await;
    for _ in 0..3 {
        s.request("GET", "/metered/x", &[], "").await;
    }
    s.rpc("metered", "add", json!([1, 2])).await;
    s.rpc("metered", "fail", json!(["x"])).await;
    let r = s.request("GET", "/_metrics", &[], "").await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("utf8");
    let has = |needle: &str| {
        assert!(
            text.lines().any(|l| l.contains(needle)),
            "metrics should contain {needle:?}:\n{text}"
        )
    };
    has(r#"functions_invocations_total{function="metered",method="fetch",surface="fetch"} 3"#);
    has(r#"functions_invocations_total{function="metered",method="add",surface="rpc_http"} 1"#);
    has(r#"functions_errors_total{function="metered",method="fail",surface="rpc_http"} 1"#);
    has(r#"functions_latency_seconds_bucket{function="metered",method="fetch""#);
    has(r#"functions_cold_starts_total{function="metered"}"#);
    has(r#"functions_resident_isolates{function="metered"}"#);
    has(r#"functions_memory_bytes{function="metered"}"#);
}

#[tokio::test]
async fn traceparent_is_continued_and_returned_with_our_span() {
    let s = TestServer::start().await;
    s.deploy("traced", bundle("v1", json!({}))).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = s
        .request("GET", "/traced/", &[("traceparent", incoming)], "")
        .await;
    let out = r.header("traceparent").expect("traceparent").to_owned();
    let parts: Vec<_> = out.split('-').collect();
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(parts[2], "00f067aa0ba902b7", "our own span id");
    assert_eq!(parts[3], "01");
    // The function sees our span as its parent.
    assert_eq!(r.json()["headers"]["traceparent"], out);

    let fresh = s
        .request("GET", "/_health", &[("traceparent", "garbage")], "")
        .await;
    let fresh = fresh.header("traceparent").expect("traceparent");
    assert_eq!(fresh.len(), 55);
    assert!(!fresh.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
}
