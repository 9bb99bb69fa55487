//! Web platform basics inside an isolate, and the capability rule for the network.

mod common;
use std::sync::Arc;

use capnweb::{Body, CallResult, RequestValue, ResponseValue, RpcTarget, Stub, Value};
use common::*;
use serde_json::json;

#[tokio::test]
async fn timers_and_microtasks_run() {
    let v = eval(r#"
        const order = [];
        queueMicrotask(() => order.push('micro'));
        await new Promise((r) => setTimeout(() => { order.push('timeout'); r(); }, 5));
        let n = 0;
        await new Promise((r) => { const id = setInterval(() => { if (++n === 3) { clearInterval(id); r(); } }, 1); });
        const cancelled = setTimeout(() => order.push('never'), 1);
        clearTimeout(cancelled);
        await new Promise((r) => setTimeout(r, 10));
        return [order, n];
    "#).await;
    assert_eq!(v, json!([["micro", "timeout"], 3]));
}

#[tokio::test]
async fn text_encoder_encodes_a_lone_surrogate_as_the_replacement_character() {
    // JavaScript strings may hold lone surrogates; UTF-8 cannot, and the Encoding Standard
    // encodes each as U+FFFD (EF BF BD). It threw a TypeError before.
    let v = eval(
        r#"
        const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
        return [hex(new TextEncoder().encode('a\ud800b')), hex(new TextEncoder().encode('\udfff')),
                hex(new TextEncoder().encode('\ud83d\ude00'))];
    "#,
    )
    .await;
    assert_eq!(v, serde_json::json!(["61efbfbd62", "efbfbd", "f09f9880"]));
}

#[tokio::test]
async fn encoding_base64_clone_and_crypto_work() {
    let v = eval(r#"
        const bytes = new TextEncoder().encode('héllo €');
        const back = new TextDecoder().decode(bytes);
        const orig = { a: [1, { b: new Date(5) }], m: new Map([[1, 'x']]) };
        const c = structuredClone(orig);
        const rnd = crypto.getRandomValues(new Uint8Array(32));
        const uuid = crypto.randomUUID();
        return {
          len: bytes.length, back, b64: btoa('hello'), unb64: atob('aGVsbG8='),
          cloneOk: c !== orig && c.a[1].b.getTime() === 5 && c.m.get(1) === 'x' && c.a[1] !== orig.a[1],
          rndNonZero: rnd.some((x) => x !== 0),
          uuidOk: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid),
          perf: typeof performance.now() === 'number' && Date.now() > 1.6e12,
        };
    "#).await;
    assert_eq!(
        v,
        json!({ "len": 10, "back": "héllo €", "b64": "aGVsbG8=", "unb64": "hello",
                "cloneOk": true, "rndNonZero": true, "uuidOk": true, "perf": true })
    );
}

#[tokio::test]
async fn url_and_search_params_follow_whatwg() {
    let v = eval(r#"
        const u = new URL('../b/c?x=1&y=two%20words#frag', 'https://user:pw@example.com:8080/a/z');
        u.searchParams.append('z', 'a b');
        const bad = (() => { try { new URL('not a url'); return 'parsed'; } catch (e) { return e.name; } })();
        return [u.href, u.origin, u.host, u.pathname, u.searchParams.get('y'), u.hash, bad,
                new URLSearchParams({ q: 'a&b' }).toString()];
    "#).await;
    assert_eq!(
        v,
        json!([
            "https://user:pw@example.com:8080/b/c?x=1&y=two+words&z=a+b#frag",
            "https://example.com:8080",
            "example.com:8080",
            "/b/c",
            "two words",
            "#frag",
            "TypeError",
            "q=a%26b"
        ])
    );
}

#[tokio::test]
async fn request_response_and_headers_work() {
    let v = eval(r#"
        const h = new Headers({ 'X-A': '1' });
        h.append('x-a', '2');
        const req = new Request('https://example.com/p', { method: 'post', body: JSON.stringify({ k: 1 }), headers: h });
        const body = await req.json();
        const res = Response.json({ ok: true }, { status: 201 });
        const bytes = new Uint8Array(await new Response(new Uint8Array([1, 2, 3])).arrayBuffer());
        return [req.method, req.headers.get('x-a'), body.k, res.status, res.headers.get('content-type'),
                await res.text(), [...bytes], res.bodyUsed];
    "#).await;
    assert_eq!(
        v,
        json!([
            "POST",
            "1, 2",
            1,
            201,
            "application/json",
            "{\"ok\":true}",
            [1, 2, 3],
            true
        ])
    );
}

#[tokio::test]
async fn fetch_handler_reads_a_json_body_and_answers_json() {
    let iso = load(
        "api",
        r#"export default {
            async fetch(request, env, ctx) {
              const url = new URL(request.url);
              const input = await request.json();
              ctx.waitUntil(Promise.resolve());
              return Response.json({ path: url.pathname, q: url.searchParams.get('q'), sum: input.a + input.b,
                                     method: request.method, ct: request.headers.get('content-type') },
                                   { status: 202, headers: { 'x-served-by': 'isolate' } });
            }
          };"#,
    )
    .await;
    let res = iso
        .fetch(RequestValue {
            url: "https://fn.example/users/42?q=1".into(),
            method: "POST".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(Body::Text("{\"a\": 2, \"b\": 40}".into())),
            extra: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(res.status, 202);
    assert!(res
        .headers
        .iter()
        .any(|(k, v)| k == "x-served-by" && v == "isolate"));
    assert!(res
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/json"));
    let Some(Body::Text(text)) = res.body else {
        panic!("no text body: {:?}", res.body)
    };
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({ "path": "/users/42", "q": "1", "sum": 42, "method": "POST", "ct": "application/json" })
    );
}

#[tokio::test]
async fn no_network_without_global_outbound() {
    let v = eval(
        r#"
        try { await fetch('https://example.com/'); return 'fetched'; }
        catch (e) { return [e.name, e.message]; }
    "#,
    )
    .await;
    assert_eq!(v[0], "TypeError");
    assert!(v[1].as_str().unwrap().contains("no network access"), "{v}");
    // And no ambient authority: no file system, process or require.
    let v =
        eval("return [typeof process, typeof require, typeof std, typeof os, typeof Deno];").await;
    assert_eq!(
        v,
        json!([
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined"
        ])
    );
}

struct Outbound;
impl RpcTarget for Outbound {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let method = method.to_owned();
        Box::pin(async move {
            let Some(Value::Request(req)) = args.into_iter().next() else {
                return Err(capnweb::RpcError::type_error("expected a Request"));
            };
            assert_eq!(method, "fetch");
            Ok(Value::Response(Box::new(ResponseValue {
                status: 200,
                status_text: String::new(),
                headers: vec![],
                body: Some(Body::Text(format!(
                    "outbound saw {} {}",
                    req.method, req.url
                ))),
                extra: Default::default(),
            })))
        })
    }
}

#[tokio::test]
async fn fetch_goes_through_a_granted_global_outbound() {
    let mut cfg = isolate::IsolateConfig::single(
        "net",
        "export default { rpc: class extends RpcTarget { async run() { const r = await fetch('https://api.example/x', { method: 'PUT', body: 'b' }); return await r.text(); } } };",
    );
    cfg.global_outbound = Some(Stub::new(Outbound));
    let iso = isolate::Isolate::new(cfg).await.unwrap();
    let v = iso.rpc_target().call("run", vec![]).await.unwrap();
    assert_eq!(v.as_str(), Some("outbound saw PUT https://api.example/x"));
}

#[tokio::test]
async fn bridged_request_normalizes_its_url_and_checks_headers_even_when_unread() {
    let iso = load(
        "lazy",
        r#"export default {
            async fetch(request) {
              if (new URL(request.url).pathname === '/unread') return new Response('ok');
              const h = request.headers;
              return new Response(JSON.stringify({ url: request.url, method: request.method,
                a: h.get('x-a'), pairs: [...h], same: request.headers === h }));
            }
          };"#,
    )
    .await;
    let req = |url: &str, headers: Vec<(String, String)>| RequestValue {
        url: url.into(),
        method: "get".into(),
        headers,
        body: None,
        extra: Default::default(),
    };
    let res = iso
        .fetch(req(
            "HTTP://Fn.Example/p?q=1",
            vec![
                ("X-A".into(), " 1 ".into()),
                ("x-a".into(), "2".into()),
                ("b".into(), "3".into()),
            ],
        ))
        .await
        .unwrap();
    let Some(Body::Text(text)) = res.body else {
        panic!("no text body: {:?}", res.body)
    };
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({ "url": "http://fn.example/p?q=1", "method": "GET", "a": "1, 2",
                "pairs": [["b", "3"], ["x-a", "1, 2"]], "same": true })
    );
    assert!(res
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "text/plain;charset=UTF-8"));
    // A bad header name is refused even by a handler that never reads the headers.
    let err = iso
        .fetch(req(
            "http://fn.example/unread",
            vec![("bad name".into(), "x".into())],
        ))
        .await
        .unwrap_err();
    assert!(err.message().contains("Invalid header name"), "{err:?}");
    let ok = iso
        .fetch(req("http://fn.example/unread", vec![]))
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn fetch_handlers_answer_sync_async_and_refuse_non_responses() {
    let iso = load(
        "kinds",
        r#"export default {
            fetch(request) {
              const p = new URL(request.url).pathname;
              if (p === '/sync') return new Response('s', { status: 201 });
              if (p === '/async') return Promise.resolve().then(() => new Response('a'));
              if (p === '/throw') throw new RangeError('nope');
              return 'not a response';
            }
          };"#,
    )
    .await;
    let req = |path: &str| RequestValue {
        url: format!("http://fn.example{path}"),
        method: "GET".into(),
        headers: vec![],
        body: None,
        extra: Default::default(),
    };
    let sync = iso.fetch(req("/sync")).await.unwrap();
    assert_eq!(sync.status, 201);
    assert!(matches!(sync.body, Some(Body::Text(ref t)) if t == "s"));
    let later = iso.fetch(req("/async")).await.unwrap();
    assert!(matches!(later.body, Some(Body::Text(ref t)) if t == "a"));
    let thrown = iso.fetch(req("/throw")).await.unwrap_err();
    assert_eq!(thrown.name(), "RangeError");
    assert_eq!(thrown.message(), "nope");
    let other = iso.fetch(req("/other")).await.unwrap_err();
    assert_eq!(other.name(), "TypeError");
    assert!(
        other.message().contains("did not return a Response"),
        "{other:?}"
    );
}
