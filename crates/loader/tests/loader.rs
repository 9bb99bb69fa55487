//! The Loader's cache: shared loads, failures not cached, eviction, broken isolates rebuilt,
//! and WorkerCode validation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use loader::{CodeError, Loader, LoaderConfig, WorkerCode};
use serde_json::json;

const ECHO: &str = "export default { rpc: class extends RpcTarget { echo(x) { return x; } spin() { for (;;) {} } } };";

fn counting(
    loader: &Loader,
    id: &str,
    src: &'static str,
    count: Arc<AtomicUsize>,
) -> loader::WorkerStub {
    loader.get(id, move || {
        count.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, String>(WorkerCode::single(src)) }
    })
}

#[tokio::test]
async fn concurrent_gets_of_one_id_share_one_load() {
    let loader = Loader::default();
    let count = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let stub = counting(&loader, "shared", ECHO, count.clone());
            async move { stub.get_rpc_target().call("echo", vec![i.into()]).await }
        })
        .collect();
    for (i, r) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap().as_f64(), Some(i as f64));
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(loader.resident(), 1);
}

#[tokio::test]
async fn failing_get_code_reaches_the_first_call_and_is_not_cached() {
    let loader = Loader::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let stub = loader.get("flaky", move || {
        let n = a.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err("store unavailable".to_owned())
            } else {
                Ok(WorkerCode::single(ECHO))
            }
        }
    });
    let err = stub
        .get_rpc_target()
        .call("echo", vec![1.into()])
        .await
        .unwrap_err();
    assert!(err.message().contains("store unavailable"), "{err}");
    let ok = stub
        .get_rpc_target()
        .call("echo", vec![2.into()])
        .await
        .unwrap();
    assert_eq!(ok.as_f64(), Some(2.0));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn load_errors_reach_the_caller() {
    let loader = Loader::default();
    let stub = loader.get("broken-syntax", || async {
        Ok::<_, String>(WorkerCode::single("export default {"))
    });
    let err = stub.get_rpc_target().call("x", vec![]).await.unwrap_err();
    assert!(
        err.message().contains("SyntaxError") && err.message().contains("index.js"),
        "{err}"
    );
}

#[tokio::test]
async fn lru_evicts_beyond_max_isolates_and_reloads_on_use() {
    let loader = Loader::new(LoaderConfig {
        max_isolates: 2,
        ..Default::default()
    });
    let count = Arc::new(AtomicUsize::new(0));
    for id in ["a", "b", "c"] {
        let stub = counting(&loader, id, ECHO, count.clone());
        stub.get_rpc_target()
            .call("echo", vec![1.into()])
            .await
            .unwrap();
    }
    assert_eq!(loader.resident(), 2);
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // "a" was evicted: using it again is a cold start, invisible otherwise.
    let stub = counting(&loader, "a", ECHO, count.clone());
    assert_eq!(
        stub.get_rpc_target()
            .call("echo", vec![5.into()])
            .await
            .unwrap()
            .as_f64(),
        Some(5.0)
    );
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn broken_isolate_is_replaced_on_next_use() {
    let loader = Loader::default();
    let code = WorkerCode {
        limits: loader::WorkerLimits {
            cpu_ms: Some(50),
            memory_mb: None,
        },
        ..WorkerCode::single(ECHO)
    };
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let stub = loader.get("spinner", move || {
        c.fetch_add(1, Ordering::SeqCst);
        let code = code.clone();
        async move { Ok::<_, String>(code) }
    });
    let err = stub
        .get_rpc_target()
        .call("spin", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ResourceLimitError");
    assert_eq!(err.message(), "CPU time limit of 50 ms exceeded");
    let ok = stub
        .get_rpc_target()
        .call("echo", vec!["back".into()])
        .await
        .unwrap();
    assert_eq!(ok.as_str(), Some("back"));
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn load_is_one_shot_and_uncached() {
    let loader = Loader::default();
    let stub = loader.load(WorkerCode::single(ECHO));
    assert_eq!(
        stub.get_rpc_target()
            .call("echo", vec![3.into()])
            .await
            .unwrap()
            .as_f64(),
        Some(3.0)
    );
    assert_eq!(loader.resident(), 0);
}

#[test]
fn worker_code_parses_workerd_field_names() {
    let code: WorkerCode = serde_json::from_value(json!({
        "compatibilityDate": "2024-01-01",
        "compatibilityFlags": ["nodejs_compat"],
        "mainModule": "index.js",
        "modules": {
            "index.js": { "esModule": "export default {}" },
            "b.js": "export const b = 1;",
            "c.cjs": { "commonJsModule": "module.exports = 1" },
            "d.txt": { "text": "hi" },
            "e.bin": { "data": "AQID" },
            "f.json": { "json": { "a": 1 } }
        },
        "env": { "NAME": "x" },
        "limits": { "cpuMs": 50, "memoryMb": 64 }
    }))
    .unwrap();
    assert_eq!(code.compatibility_date.as_deref(), Some("2024-01-01"));
    assert_eq!(code.modules.len(), 6);
    assert!(matches!(code.modules["e.bin"], loader::ModuleSource::Data(ref d) if d == &[1, 2, 3]));
    assert_eq!(code.limits.cpu_ms, Some(50));
    assert_eq!(code.env["NAME"].as_str(), Some("x"));
    let again: WorkerCode = serde_json::from_value(serde_json::to_value(&code).unwrap()).unwrap();
    assert_eq!(again.modules.len(), 6);
}

#[test]
fn worker_code_validation_errors_are_clear() {
    let parse = |v: serde_json::Value| WorkerCode::from_json(&v).unwrap_err();
    assert_eq!(
        parse(json!({ "modules": { "a.js": "x" } })),
        CodeError::MissingMainModule
    );
    assert_eq!(
        parse(json!({ "mainModule": "main.js", "modules": { "a.js": "x" } })),
        CodeError::MainModuleNotFound("main.js".into())
    );
    assert!(matches!(
        parse(json!({ "mainModule": "a.js", "modules": { "a.js": { "python": "x" } } })),
        CodeError::UnknownModuleType { ref module, .. } if module == "a.js"
    ));
    assert!(matches!(
        parse(json!({ "mainModule": "a.js", "modules": { "a.js": { "esModule": 5 } } })),
        CodeError::InvalidModule { .. }
    ));
    assert_eq!(parse(json!({ "mainModule": "a.js" })), CodeError::NoModules);
    assert_eq!(parse(json!([1])), CodeError::NotAnObject);
}

#[test]
fn bare_string_modules_are_typed_by_extension_as_in_a_deploy_bundle() {
    // One parser for the deploy manifest and WorkerCode: a `.cjs` string is CommonJS here too,
    // and TypeScript is refused (code loaded through env.LOADER is JavaScript, as in workerd).
    let code = WorkerCode::from_json(&json!({
        "mainModule": "index.js",
        "modules": { "index.js": "export default {}", "util.cjs": "module.exports = 1" }
    }))
    .unwrap();
    assert!(matches!(
        code.modules["util.cjs"],
        loader::ModuleSource::CommonJs(_)
    ));
    let err = WorkerCode::from_json(&json!({
        "mainModule": "index.ts",
        "modules": { "index.ts": "export default {} as {}" }
    }))
    .unwrap_err();
    assert!(err.to_string().contains("must be JavaScript"), "{err}");
}

const SOCKETS: &str = r#"export default { fetch() {
  const [client, server] = Object.values(new WebSocketPair());
  server.accept();
  return new Response(null, { status: 101, webSocket: client });
} };"#;

#[tokio::test]
async fn an_isolate_with_open_sockets_is_pinned_in_the_cache() {
    let loader = Loader::new(LoaderConfig {
        max_isolates: 1,
        ..Default::default()
    });
    let count = Arc::new(AtomicUsize::new(0));
    let room = counting(&loader, "room", SOCKETS, count.clone());
    let iso = room.isolate().await.unwrap();
    let request = capnweb::RequestValue {
        url: "http://x/".into(),
        method: "GET".into(),
        headers: Vec::new(),
        body: None,
        extra: Default::default(),
    };
    let (_, socket) = iso.fetch_socket(request).await.unwrap();
    let socket = socket.expect("a socket");
    assert_eq!(iso.open_sockets(), 1);
    // Loading another function would evict "room" (max 1), but its socket pins it.
    let other = counting(&loader, "other", ECHO, count.clone());
    other
        .get_rpc_target()
        .call("echo", vec![1.into()])
        .await
        .unwrap();
    assert_eq!(loader.resident(), 2);
    // A new connection to "room" reaches the same isolate (no reload).
    let again = counting(&loader, "room", SOCKETS, count.clone());
    again.isolate().await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
    // Once it closes, the pin is gone and the LRU may evict it.
    socket.finish(1000, String::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while iso.open_sockets() != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(iso.open_sockets(), 0);
    let third = counting(&loader, "third", ECHO, count.clone());
    third
        .get_rpc_target()
        .call("echo", vec![1.into()])
        .await
        .unwrap();
    assert_eq!(loader.resident(), 1);
}
