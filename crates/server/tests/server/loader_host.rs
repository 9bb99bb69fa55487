//! The server on the Worker Loader's host: real JavaScript behind every surface.

use serde_json::json;

use crate::common::{code, js_bundle, TestServer};

#[tokio::test]
async fn js_fetch_sees_the_rewritten_url_and_x_rpc_method_calls_the_rpc_target() {
    let s = TestServer::start_js().await;
    s.deploy(
        "hello",
        code(
            r#"import { RpcTarget } from "cloudflare:workers";
            class Api extends RpcTarget { add(a, b) { return a + b; } }
            export default {
              fetch(req) { return new Response("url=" + req.url, { status: 201 }); },
              rpc: Api,
            };"#,
            json!({}),
        ),
    )
    .await;
    let r = s.request("GET", "/hello/users/42?q=1", &[], "").await;
    assert_eq!(r.status, 201);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        body.starts_with("url=http://") && body.ends_with("/users/42?q=1"),
        "{body}"
    );
    let r = s.rpc("hello", "add", json!([2, 3])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "result": 5 }));
    let r = s.rpc("hello", "nope", json!([])).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["name"], "TypeError");
}

#[tokio::test]
async fn redeploy_runs_the_new_code_and_a_broken_deploy_changes_nothing() {
    let s = TestServer::start_js().await;
    let src = |v: &str| format!("export default {{ fetch() {{ return new Response('{v}') }} }}");
    s.deploy("f", code(&src("one"), json!({}))).await;
    assert_eq!(s.request("GET", "/f/", &[], "").await.body, b"one");
    s.deploy("f", code(&src("two"), json!({}))).await;
    assert_eq!(s.request("GET", "/f/", &[], "").await.body, b"two");
    let bad = s
        .admin(
            "PUT",
            "/_admin/functions/f",
            Some(code("export default { fetch( {", json!({}))),
        )
        .await;
    assert_eq!(bad.status, 400);
    // The build parses every module: a syntax error is refused before any isolate runs it.
    assert_eq!(bad.json()["error"]["name"], "BuildError");
    let missing = s
        .admin(
            "PUT",
            "/_admin/functions/f",
            Some(code("import './gone.js'; export default {}", json!({}))),
        )
        .await;
    assert_eq!(missing.status, 400);
    let msg = missing.json()["error"]["message"].to_string();
    assert!(msg.contains("gone.js"), "{msg}");
    assert_eq!(s.request("GET", "/f/", &[], "").await.body, b"two");
}

#[tokio::test]
async fn x_rpc_method_on_a_fetch_only_function_reaches_its_fetch_handler() {
    let s = TestServer::start_js().await;
    s.deploy(
        "front",
        code(
            r#"export default { async fetch(req) {
                 const m = req.headers.get("X-RPC-Method");
                 const args = await req.json();
                 return Response.json({ result: { method: m, args } });
               } };"#,
            json!({}),
        ),
    )
    .await;
    let r = s.rpc("front", "add", json!([1, 2])).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json(),
        json!({ "result": { "method": "add", "args": [1, 2] } })
    );
}

#[tokio::test]
async fn js_reads_kv_text_and_r2_object_text_through_bindings() {
    let s = TestServer::start_js().await;
    s.deploy(
        "store",
        code(
            r#"import { RpcTarget } from "cloudflare:workers";
            class Api extends RpcTarget {
              constructor(ctx, env) { super(); this.env = env; }
              async roundTrip() {
                await this.env.KV.put("k", "kv-text");
                await this.env.R2.put("o", '{"a":1}', { httpMetadata: { contentType: "application/json" } });
                const kv = await this.env.KV.get("k");
                const obj = await this.env.R2.get("o");
                return { kv, key: obj.key, size: obj.size, text: await obj.text(),
                         json: await obj.json(), missing: await this.env.R2.get("none") };
              }
            }
            export default { rpc: Api };"#,
            json!({
                "KV": { "type": "kv", "namespace": "ns" },
                "R2": { "type": "blob", "bucket": "b" },
            }),
        ),
    )
    .await;
    let r = s.rpc("store", "roundTrip", json!([])).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["result"],
        json!({ "kv": "kv-text", "key": "o", "size": 7, "text": "{\"a\":1}",
                "json": { "a": 1 }, "missing": null })
    );
}

#[tokio::test]
async fn js_reads_an_r2_body_as_a_stream_in_chunks() {
    let s = TestServer::start_js().await;
    s.deploy(
        "files",
        code(
            r#"import { RpcTarget } from "cloudflare:workers";
            class Api extends RpcTarget {
              constructor(ctx, env) { super(); this.env = env; }
              async chunks(size) {
                const data = new Uint8Array(size);
                for (let i = 0; i < size; i++) data[i] = i % 251;
                await this.env.R2.put("big", data);
                const obj = await this.env.R2.get("big");
                const isStream = obj.body instanceof ReadableStream;
                const reader = obj.body.getReader();
                let chunks = 0, total = 0, ok = true;
                for (;;) {
                  const { done, value } = await reader.read();
                  if (done) break;
                  for (let i = 0; i < value.length; i++) ok &&= value[i] === (total + i) % 251;
                  chunks++; total += value.length;
                }
                const again = await this.env.R2.get("big");
                const viaResponse = (await new Response(again.body).arrayBuffer()).byteLength;
                return { isStream, chunks, total, ok, viaResponse };
              }
            }
            export default { rpc: Api };"#,
            json!({ "R2": { "type": "blob", "bucket": "b" } }),
        ),
    )
    .await;
    let r = s.rpc("files", "chunks", json!([200_000])).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["result"],
        json!({ "isStream": true, "chunks": 4, "total": 200_000, "ok": true,
                "viaResponse": 200_000 })
    );
}

#[tokio::test]
async fn service_binding_get_rpc_target_and_env_loader_work_from_js() {
    let s = TestServer::start_js().await;
    s.deploy("runtime", js_bundle("rt", json!({}))).await;
    s.deploy(
        "caller",
        code(
            r#"import { RpcTarget } from "cloudflare:workers";
            class Api extends RpcTarget {
              constructor(ctx, env) { super(); this.env = env; }
              viaService() { return this.env.RUNTIME.getRpcTarget().add(20, 22); }
              async viaLoader() {
                const w = this.env.LOADER.get("dyn", () => ({
                  mainModule: "index.js",
                  modules: { "index.js": "export default { fetch() { return new Response('dyn') } }" },
                }));
                return await (await w.fetch("http://x/")).text();
              }
            }
            export default { rpc: Api };"#,
            json!({
                "RUNTIME": { "type": "service", "service": "runtime" },
                "LOADER": { "type": "loader" },
            }),
        ),
    )
    .await;
    let r = s.rpc("caller", "viaService", json!([])).await;
    assert_eq!(
        r.json(),
        json!({ "result": 42 }),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = s.rpc("caller", "viaLoader", json!([])).await;
    assert_eq!(
        r.json(),
        json!({ "result": "dyn" }),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn a_cpu_limit_from_the_bundle_stops_a_spinning_call_with_503() {
    let s = TestServer::start_js().await;
    let mut b = code(
        r#"import { RpcTarget } from "cloudflare:workers";
        class Api extends RpcTarget { spin() { for (;;) {} } ok() { return 1; } }
        export default { rpc: Api };"#,
        json!({}),
    );
    b["limits"] = json!({ "cpuMs": 50 });
    s.deploy("spin", b).await;
    let r = s.rpc("spin", "spin", json!([])).await;
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    // The next call gets a fresh isolate.
    let r = s.rpc("spin", "ok", json!([])).await;
    assert_eq!(r.json(), json!({ "result": 1 }));
}

#[tokio::test]
async fn every_example_deploys_and_the_orchestrator_reaches_runtime() {
    let s = TestServer::start_js().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let found = server::function_dir::discover(&dir).expect("examples");
    let mut ids: Vec<String> = Vec::new();
    for f in found {
        s.deploy(&f.id, f.bundle.to_json()).await;
        ids.push(f.id);
    }
    for id in [
        "callbacks",
        "concurrent",
        "errors",
        "front",
        "math",
        "orchestrator",
        "pipeline",
        "runtime",
        "sessions",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} deployed: {ids:?}");
    }
    let r = s
        .rpc(
            "orchestrator",
            "executeWithRuntime",
            json!(["f", { "x": 1 }]),
        )
        .await;
    assert_eq!(
        r.json(),
        json!({ "result": { "functionId": "f", "payload": { "x": 1 }, "executedBy": "runtime" } })
    );
}
