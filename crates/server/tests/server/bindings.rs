//! KV and blob bindings through capnweb stubs (directly, and reached by a function over a
//! real `/_rpc` WebSocket), and service bindings.

use std::sync::Arc;
use std::time::Duration;

use capnweb::transport::websocket;
use capnweb::{Limits, Stub, Value};
use serde_json::json;
use server::blob_binding::BlobBinding;
use server::kv_binding::KvBinding;
use store::{ManualClock, Quota, Store};

use crate::common::{bundle, code, TestServer};

fn obj(v: serde_json::Value) -> Value {
    Value::from_json(&v)
}

fn kv(clock: &ManualClock) -> Stub {
    let store = Store::in_memory_with_clock(Arc::new(clock.clone())).expect("store");
    Stub::new(KvBinding::new(store, "ns".into(), Quota::default()))
}

const NOW_MS: u64 = 1_700_000_000_000;

#[tokio::test]
async fn kv_get_returns_text_json_or_array_buffer_and_null_when_missing() {
    let kv = kv(&ManualClock::new(NOW_MS));
    kv.call("put", vec!["k".into(), r#"{"a":1}"#.into()])
        .await
        .expect("put");
    let text = kv.call("get", vec!["k".into()]).await.expect("get");
    assert_eq!(text.as_str(), Some(r#"{"a":1}"#));
    let parsed = kv
        .call("get", vec!["k".into(), "json".into()])
        .await
        .expect("json");
    assert_eq!(parsed.to_json(), json!({"a": 1}));
    let parsed = kv
        .call("get", vec!["k".into(), obj(json!({"type": "json"}))])
        .await
        .expect("json via options");
    assert_eq!(parsed.get("a").as_f64(), Some(1.0));
    let Value::Bytes(bytes) = kv
        .call("get", vec!["k".into(), "arrayBuffer".into()])
        .await
        .expect("bytes")
    else {
        panic!("arrayBuffer should be bytes")
    };
    assert_eq!(bytes.data, br#"{"a":1}"#);
    assert_eq!(bytes.kind, Some(capnweb::ByteKind::ArrayBuffer));
    let missing = kv.call("get", vec!["nope".into()]).await.expect("get");
    assert!(matches!(missing, Value::Null));
    let bad = kv
        .call("get", vec!["k".into(), "xml".into()])
        .await
        .expect_err("bad type");
    assert_eq!(bad.name(), "TypeError");
}

#[tokio::test]
async fn kv_ttl_expires_keys_and_too_short_ttl_is_refused() {
    let clock = ManualClock::new(NOW_MS);
    let kv = kv(&clock);
    kv.call(
        "put",
        vec!["t".into(), "v".into(), obj(json!({"expirationTtl": 60}))],
    )
    .await
    .expect("put");
    let listed = kv.call("list", vec![]).await.expect("list");
    assert_eq!(
        listed.get("keys").to_json(),
        json!([{"name": "t", "expiration": NOW_MS / 1000 + 60}])
    );
    assert_eq!(
        kv.call("get", vec!["t".into()])
            .await
            .expect("get")
            .as_str(),
        Some("v")
    );
    clock.advance(Duration::from_secs(61));
    assert!(matches!(
        kv.call("get", vec!["t".into()]).await.expect("get"),
        Value::Null
    ));
    let listed = kv.call("list", vec![]).await.expect("list");
    assert_eq!(listed.get("keys").to_json(), json!([]));
    let err = kv
        .call(
            "put",
            vec!["t".into(), "v".into(), obj(json!({"expirationTtl": 30}))],
        )
        .await
        .expect_err("ttl under 60 s");
    assert_eq!(err.name(), "TypeError");
    assert!(err.message().contains("60"), "{}", err.message());
}

#[tokio::test]
async fn kv_metadata_is_returned_by_get_with_metadata_and_list() {
    let kv = kv(&ManualClock::new(NOW_MS));
    kv.call(
        "put",
        vec![
            "m".into(),
            "v".into(),
            obj(json!({"metadata": {"owner": "ann"}})),
        ],
    )
    .await
    .expect("put");
    let got = kv
        .call("getWithMetadata", vec!["m".into()])
        .await
        .expect("getWithMetadata");
    assert_eq!(
        got.to_json(),
        json!({"value": "v", "metadata": {"owner": "ann"}, "cacheStatus": null})
    );
    let missing = kv
        .call("getWithMetadata", vec!["x".into()])
        .await
        .expect("missing");
    assert_eq!(
        missing.to_json(),
        json!({"value": null, "metadata": null, "cacheStatus": null})
    );
    let listed = kv.call("list", vec![]).await.expect("list");
    assert_eq!(
        listed.get("keys").to_json(),
        json!([{"name": "m", "metadata": {"owner": "ann"}}])
    );
    kv.call("delete", vec!["m".into()]).await.expect("delete");
    assert!(matches!(
        kv.call("get", vec!["m".into()]).await.expect("get"),
        Value::Null
    ));
}

#[tokio::test]
async fn kv_list_paginates_with_prefix_cursor_and_limit() {
    let kv = kv(&ManualClock::new(NOW_MS));
    for k in ["p:1", "p:2", "p:3", "p:4", "p:5", "q:1"] {
        kv.call("put", vec![k.into(), "x".into()])
            .await
            .expect("put");
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut opts = json!({"prefix": "p:", "limit": 2});
        if let Some(c) = &cursor {
            opts["cursor"] = json!(c);
        }
        let page = kv.call("list", vec![obj(opts)]).await.expect("list");
        pages += 1;
        for k in page.get("keys").as_array().expect("keys") {
            names.push(k.get("name").as_str().expect("name").to_owned());
        }
        if page.get("list_complete").as_bool() == Some(true) {
            assert!(
                page.get("cursor").is_undefined(),
                "no cursor on the last page"
            );
            break;
        }
        cursor = Some(page.get("cursor").as_str().expect("cursor").to_owned());
        assert!(pages < 10, "pagination must end");
    }
    assert_eq!(names, ["p:1", "p:2", "p:3", "p:4", "p:5"]);
    assert_eq!(pages, 3);
}

fn blob() -> Stub {
    let store = Store::in_memory_with_clock(Arc::new(ManualClock::new(NOW_MS))).expect("store");
    Stub::new(BlobBinding::new(store, "bucket".into(), Quota::default()))
}

#[tokio::test]
async fn blob_put_get_head_delete_follow_r2_semantics() {
    let b = blob();
    let put = b
        .call(
            "put",
            vec![
                "docs/a.txt".into(),
                "hello".into(),
                obj(json!({
                    "httpMetadata": {"contentType": "text/plain"},
                    "customMetadata": {"owner": "ann"}
                })),
            ],
        )
        .await
        .expect("put");
    assert_eq!(put.get("key").as_str(), Some("docs/a.txt"));
    assert_eq!(put.get("size").as_f64(), Some(5.0));
    assert_eq!(
        put.get("etag").as_str(),
        Some("5d41402abc4b2a76b9719d911017c592")
    );
    assert_eq!(
        put.get("httpEtag").as_str(),
        Some("\"5d41402abc4b2a76b9719d911017c592\"")
    );
    assert!(matches!(put.get("uploaded"), Value::Date(Some(ms)) if *ms == NOW_MS as f64));
    assert!(put.get("body").is_undefined(), "put returns metadata only");

    let got = b.call("get", vec!["docs/a.txt".into()]).await.expect("get");
    let Value::Readable(body) = got.get("body") else {
        panic!("get returns the body as a stream")
    };
    assert_eq!(body.read_all().await.expect("body"), b"hello");
    let Value::Stub(text) = got.get("text") else {
        panic!("text() is a function")
    };
    assert_eq!(
        text.call_fn(vec![]).await.expect("text()").as_str(),
        Some("hello"),
        "text() works after the stream was read"
    );
    assert_eq!(
        got.get("httpMetadata").get("contentType").as_str(),
        Some("text/plain")
    );
    assert_eq!(got.get("customMetadata").get("owner").as_str(), Some("ann"));

    let head = b
        .call("head", vec!["docs/a.txt".into()])
        .await
        .expect("head");
    assert_eq!(head.get("size").as_f64(), Some(5.0));
    assert!(head.get("body").is_undefined());

    assert!(matches!(
        b.call("get", vec!["nope".into()]).await.expect("get"),
        Value::Null
    ));
    assert!(matches!(
        b.call("head", vec!["nope".into()]).await.expect("head"),
        Value::Null
    ));
    b.call("delete", vec!["docs/a.txt".into()])
        .await
        .expect("delete");
    assert!(matches!(
        b.call("get", vec!["docs/a.txt".into()]).await.expect("get"),
        Value::Null
    ));
}

#[tokio::test]
async fn blob_list_paginates_groups_by_delimiter_and_includes_metadata_on_request() {
    let b = blob();
    for k in ["a/1", "a/2", "b/1", "top"] {
        b.call(
            "put",
            vec![
                k.into(),
                "x".into(),
                obj(json!({"customMetadata": {"k": k}})),
            ],
        )
        .await
        .expect("put");
    }
    let all = b.call("list", vec![]).await.expect("list");
    let keys: Vec<_> = all
        .get("objects")
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o.get("key").as_str().expect("key").to_owned())
        .collect();
    assert_eq!(keys, ["a/1", "a/2", "b/1", "top"]);
    assert_eq!(all.get("truncated").as_bool(), Some(false));
    assert!(all.get("objects").as_array().expect("objects")[0]
        .get("customMetadata")
        .is_undefined());

    let page = b
        .call("list", vec![obj(json!({"limit": 2}))])
        .await
        .expect("list");
    assert_eq!(page.get("truncated").as_bool(), Some(true));
    let cursor = page.get("cursor").as_str().expect("cursor").to_owned();
    let rest = b
        .call("list", vec![obj(json!({"limit": 2, "cursor": cursor}))])
        .await
        .expect("list");
    assert_eq!(rest.get("objects").as_array().expect("objects").len(), 2);
    assert_eq!(rest.get("truncated").as_bool(), Some(false));

    let grouped = b
        .call(
            "list",
            vec![obj(
                json!({"delimiter": "/", "include": ["customMetadata"]}),
            )],
        )
        .await
        .expect("list");
    assert_eq!(
        grouped.get("delimitedPrefixes").to_json(),
        json!(["a/", "b/"])
    );
    let objects = grouped.get("objects").as_array().expect("objects");
    assert_eq!(objects.len(), 1);
    assert_eq!(
        objects[0].get("customMetadata").get("k").as_str(),
        Some("top")
    );
}

#[tokio::test]
async fn kv_and_blob_bindings_reach_a_function_over_a_websocket_session() {
    let s = TestServer::start().await;
    s.deploy(
        "stateful",
        bundle(
            "v1",
            json!({
                "KV": {"type": "kv", "namespace": "shared"},
                "FILES": {"type": "blob", "bucket": "files"}
            }),
        ),
    )
    .await;
    let session = websocket::connect(&s.ws_url("stateful"), None, Limits::default())
        .await
        .expect("connects");
    let api = session.remote_main();
    let kv = api.call("binding", vec!["KV".into()]).to_stub();
    kv.call("put", vec!["hello".into(), "world".into()])
        .await
        .expect("put");
    let v = kv.call("get", vec!["hello".into()]).await.expect("get");
    assert_eq!(v.as_str(), Some("world"));
    let files = api.call("binding", vec!["FILES".into()]).to_stub();
    files
        .call("put", vec!["f.txt".into(), "data".into()])
        .await
        .expect("put");
    let size = files
        .call("head", vec!["f.txt".into()])
        .get("size")
        .await
        .expect("head");
    assert_eq!(size.as_f64(), Some(4.0));
    // A second function bound to the same namespace sees the same data.
    s.deploy(
        "reader",
        bundle("v1", json!({"KV": {"type": "kv", "namespace": "shared"}})),
    )
    .await;
    let session2 = websocket::connect(&s.ws_url("reader"), None, Limits::default())
        .await
        .expect("connects");
    let v = session2
        .remote_main()
        .call("binding", vec!["KV".into()])
        .to_stub()
        .call("get", vec!["hello".into()])
        .await
        .expect("get");
    assert_eq!(v.as_str(), Some("world"));
}

#[tokio::test]
async fn service_binding_calls_the_live_version_of_another_function() {
    let s = TestServer::start().await;
    s.deploy(
        "front",
        bundle(
            "front",
            json!({"BACK": {"type": "service", "service": "back"}}),
        ),
    )
    .await;
    let session = websocket::connect(&s.ws_url("front"), None, Limits::default())
        .await
        .expect("connects");
    let back = session
        .remote_main()
        .call("binding", vec!["BACK".into()])
        .to_stub();
    let err = back
        .call("version", vec![])
        .await
        .expect_err("not deployed yet");
    assert!(err.message().contains("not deployed"), "{}", err.message());
    s.deploy("back", bundle("b1", json!({}))).await;
    let v = back
        .call("version", vec![])
        .get("label")
        .await
        .expect("call");
    assert_eq!(v.as_str(), Some("b1"));
    s.deploy("back", bundle("b2", json!({}))).await;
    let v = back
        .call("version", vec![])
        .get("label")
        .await
        .expect("call");
    assert_eq!(v.as_str(), Some("b2"));
}

/// A function that writes through its KV and blob bindings and says what it got.
const QUOTA_JS: &str = r#"
    import { RpcTarget } from "cloudflare:workers";
    class Api extends RpcTarget {
      constructor(ctx, env) { super(); this.env = env; }
      async kv(key, size) {
        try { await this.env.KV.put(key, "x".repeat(size)); return "ok"; }
        catch (e) { return e.name + ": " + e.message; }
      }
      async blob(key, size) {
        try { await this.env.FILES.put(key, "x".repeat(size)); return "ok"; }
        catch (e) { return e.name + ": " + e.message; }
      }
      async del(key) { await this.env.KV.delete(key); return "ok"; }
    }
    export default { rpc: Api };
"#;

#[tokio::test]
async fn kv_and_blob_quotas_throw_quota_exceeded_in_js_and_show_in_functions_get() {
    let server = TestServer::start_js().await;
    server
        .deploy(
            "quota",
            code(
                QUOTA_JS,
                json!({
                    "KV": { "type": "kv", "namespace": "q", "quota": { "maxKeys": 2 } },
                    "FILES": { "type": "blob", "bucket": "q", "quota": { "maxBytes": 5000 } },
                }),
            ),
        )
        .await;
    let call = |method: &'static str, args: serde_json::Value| {
        let server = &server;
        async move {
            let r = server.rpc("quota", method, args).await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            r.json()["result"].as_str().unwrap_or_default().to_owned()
        }
    };
    assert_eq!(call("kv", json!(["a", 10])).await, "ok");
    assert_eq!(call("kv", json!(["b", 10])).await, "ok");
    let refused = call("kv", json!(["c", 10])).await;
    assert!(
        refused.starts_with("QuotaExceededError: ") && refused.contains("keys"),
        "{refused}"
    );
    assert_eq!(call("del", json!(["a"])).await, "ok");
    assert_eq!(
        call("kv", json!(["c", 10])).await,
        "ok",
        "a delete gives room back"
    );

    assert_eq!(call("blob", json!(["one", 3000])).await, "ok");
    let refused = call("blob", json!(["two", 3000])).await;
    assert!(
        refused.starts_with("QuotaExceededError: ") && refused.contains("bytes"),
        "{refused}"
    );

    let info = server
        .admin("GET", "/_admin/functions/quota", None)
        .await
        .json();
    let storage = info["storage"].as_array().expect("storage").clone();
    let kv = storage.iter().find(|s| s["binding"] == "KV").expect("KV");
    assert_eq!(
        (kv["type"].as_str(), kv["name"].as_str()),
        (Some("kv"), Some("q"))
    );
    assert_eq!(
        (kv["keys"].as_u64(), kv["maxKeys"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(kv["maxBytes"].as_u64(), Some(store::DEFAULT_QUOTA_BYTES));
    let files = storage
        .iter()
        .find(|s| s["binding"] == "FILES")
        .expect("FILES");
    assert_eq!(files["keys"].as_u64(), Some(1));
    assert!(
        files["bytes"]
            .as_u64()
            .is_some_and(|b| (3003..5000).contains(&b)),
        "{files}"
    );
    assert_eq!(files["maxBytes"].as_u64(), Some(5000));
}

#[tokio::test]
async fn a_binding_quota_is_refused_unless_positive_integers() {
    let server = TestServer::start_js().await;
    for quota in [
        json!({"maxKeys": -1}),
        json!({"maxBytes": "big"}),
        json!({"other": 1}),
        json!(5),
    ] {
        let r = server
            .admin(
                "PUT",
                "/_admin/functions/badquota",
                Some(code(
                    QUOTA_JS,
                    json!({ "KV": { "type": "kv", "namespace": "q", "quota": quota } }),
                )),
            )
            .await;
        assert_eq!(
            r.status,
            400,
            "{quota}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            String::from_utf8_lossy(&r.body).contains("bindings.KV.quota"),
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
}

#[tokio::test]
async fn blob_body_of_several_stored_chunks_streams_out_whole_and_in_order() {
    let b = blob();
    let big: Vec<u8> = (0..(2 * store::BLOB_CHUNK_BYTES + 100))
        .map(|i| (i % 253) as u8)
        .collect();
    b.call(
        "put",
        vec!["big".into(), Value::Bytes(capnweb::Bytes::new(big.clone()))],
    )
    .await
    .expect("put");
    let body = b
        .call("get", vec!["big".into()])
        .get("body")
        .await
        .expect("get");
    let Value::Readable(body) = body else {
        panic!("body is a stream")
    };
    let mut read = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = body.next().await {
        let Value::Bytes(chunk) = chunk.expect("chunk") else {
            panic!("bytes")
        };
        assert!(chunk.data.len() <= 64 * 1024, "chunks of at most 64 KiB");
        read.extend_from_slice(&chunk.data);
        chunks += 1;
    }
    assert_eq!(chunks, big.len().div_ceil(64 * 1024));
    assert!(read == big, "{} bytes read back", read.len());
}
