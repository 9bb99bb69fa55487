//! `/_health`, `/_metrics`, `traceparent`.

use serde_json::json;

use crate::common::{bundle, code, TestServer};

#[tokio::test]
async fn health_answers_ok() {
    let s = TestServer::start().await;
    let r = s.request("GET", "/_health", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

/// The function behind the metrics tests: a fetch handler, RPC methods, and loader children.
const METERED_JS: &str = r#"
    import { RpcTarget } from "cloudflare:workers";
    class Api extends RpcTarget {
      constructor(ctx, env) { super(); this.env = env; }
      add(a, b) { return a + b; }
      fail() { throw new Error("no"); }
      async child(n) {
        const w = this.env.LOADER.get("child-" + n, () => ({
          compatibilityDate: "2025-01-01",
          mainModule: "c.js",
          modules: { "c.js": "import { WorkerEntrypoint } from 'cloudflare:workers'; export default class extends WorkerEntrypoint { hi() { return 'hi'; } }" },
        }));
        return await w.getEntrypoint().hi();
      }
      async oneShot() {
        const w = this.env.LOADER.load({
          compatibilityDate: "2025-01-01",
          mainModule: "c.js",
          modules: { "c.js": "import { WorkerEntrypoint } from 'cloudflare:workers'; export default class extends WorkerEntrypoint { hi() { return 'hi'; } }" },
        });
        return await w.getEntrypoint().hi();
      }
    }
    export default { fetch() { return new Response("x"); }, rpc: Api };
"#;

fn metrics_lines(text: &str, function: &str) -> Vec<String> {
    let label = format!("function=\"{function}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&label))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn each_invocation_is_counted_once_with_bounded_labels() {
    let s = TestServer::start_js().await;
    s.deploy(
        "metered",
        code(METERED_JS, json!({ "LOADER": { "type": "loader" } })),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(s.request("GET", "/metered/x", &[], "").await.status, 200);
    }
    assert_eq!(s.rpc("metered", "add", json!([1, 2])).await.status, 200);
    assert_eq!(s.rpc("metered", "fail", json!([])).await.status, 500);
    let r = s.request("GET", "/_metrics", &[], "").await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("utf8");
    let has = |needle: &str| {
        assert!(
            text.lines().any(|l| l == needle || l.starts_with(needle)),
            "metrics should contain {needle:?}:\n{text}"
        )
    };
    // One series per (function, method), whatever the surface: no second count by the server.
    has(r#"functions_invocations_total{function="metered",method="fetch"} 3"#);
    has(r#"functions_invocations_total{function="metered",method="add"} 1"#);
    has(r#"functions_invocation_errors_total{function="metered",method="fail"} 1"#);
    has(r#"functions_invocation_duration_seconds_bucket{function="metered",le="#);
    has(r#"functions_cold_starts_total{function="metered"} 1"#);
    has(r#"functions_resident_isolates{function="metered"}"#);
    has(r#"functions_memory_bytes{function="metered"}"#);
    let invocations: Vec<_> = text
        .lines()
        .filter(|l| l.starts_with("functions_invocations_total{") && l.contains("metered"))
        .collect();
    assert_eq!(invocations.len(), 3, "fetch, add, fail: {invocations:?}");
    assert!(
        !text.contains("metered@"),
        "no series carries a version:\n{text}"
    );
}

#[tokio::test]
async fn junk_methods_and_loader_children_cannot_grow_metrics() {
    let s = TestServer::start_js().await;
    s.deploy(
        "junk",
        code(METERED_JS, json!({ "LOADER": { "type": "loader" } })),
    )
    .await;
    for i in 0..2000 {
        let r = s.rpc("junk", &format!("junk{i}"), json!([])).await;
        assert_eq!(r.status, 500, "a missing method is an error");
    }
    for i in 0..100 {
        let r = s.rpc("junk", "child", json!([i])).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let r = s.rpc("junk", "oneShot", json!([])).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let text = String::from_utf8(s.request("GET", "/_metrics", &[], "").await.body).expect("utf8");
    // Tests in this process share one recorder, so count this function's and the
    // one-shots' series (all the children's calls land in those two).
    let series = metrics_lines(&text, "junk").len() + metrics_lines(&text, "anonymous").len();
    assert!(
        series < 1000,
        "{series} series after 2000 junk methods and 200 children"
    );
    let methods: std::collections::BTreeSet<String> = metrics_lines(&text, "junk")
        .iter()
        .filter(|l| l.starts_with("functions_invocations_total{"))
        .filter_map(|l| {
            l.split("method=\"")
                .nth(1)?
                .split('"')
                .next()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        methods.len(),
        telemetry::MAX_METHODS_PER_FUNCTION + 1,
        "{methods:?}"
    );
    assert!(methods.contains("other"));
    // Children count under their parent (`hi` is the children's method), one-shots under
    // `anonymous`; none gets a series of its own.
    assert!(!text.contains("junk/"), "no series per child");
    assert!(
        !text.contains("anonymous-"),
        "no series per one-shot isolate"
    );
    assert!(
        metrics_lines(&text, "anonymous")
            .iter()
            .any(|l| l.starts_with("functions_invocations_total{") && l.contains("method=\"hi\"")),
        "{text}"
    );
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
