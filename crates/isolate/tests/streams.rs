//! Streams across the bridge: JavaScript `ReadableStream`s become capnweb streams (pumped with
//! backpressure) and capnweb streams become JavaScript `ReadableStream`s.

mod common;
use std::time::Duration;

use capnweb::{Body, Bytes, ReadableStream, RequestValue, Value};
use common::*;
use serde_json::json;

fn get(url: &str) -> RequestValue {
    RequestValue {
        url: url.into(),
        method: "GET".into(),
        headers: vec![],
        body: None,
        extra: Default::default(),
    }
}

#[tokio::test]
async fn readable_stream_reads_cancels_and_iterates_in_javascript() {
    let v = eval(r#"
        let pulls = 0, cancelled = null;
        const s = new ReadableStream({
          start(c) { c.enqueue('a'); },
          pull(c) { pulls++; if (pulls <= 2) c.enqueue('p' + pulls); else c.close(); },
        });
        const seen = [];
        for await (const chunk of s) seen.push(chunk);
        const r = new ReadableStream({ pull(c) { c.enqueue(1); }, cancel(why) { cancelled = why; } }).getReader();
        const first = await r.read();
        await r.cancel('enough');
        const after = await r.read();
        const body = await new Response(ReadableStream.from(['x', new TextEncoder().encode('y')])).text();
        const viaBody = await new Response('hello').body.getReader().read();
        const locked = (() => { const s2 = new ReadableStream(); s2.getReader(); try { s2.getReader(); return 'no'; } catch (e) { return e.name; } })();
        const failed = await new ReadableStream({ start(c) { c.error(new RangeError('bad')); } }).getReader().read().catch((e) => e.name);
        return { seen, first: first.value, cancelled, afterDone: after.done, body,
                 viaBody: new TextDecoder().decode(viaBody.value), locked, failed };
    "#).await;
    assert_eq!(
        v,
        json!({ "seen": ["a", "p1", "p2"], "first": 1, "cancelled": "enough", "afterDone": true,
                "body": "xy", "viaBody": "hello", "locked": "TypeError", "failed": "RangeError" })
    );
}

#[tokio::test]
async fn fetch_handler_returning_a_stream_response_gives_a_streamed_body() {
    let iso = load(
        "stream-out",
        r#"export default { async fetch() {
             const enc = new TextEncoder();
             let i = 0;
             const stream = new ReadableStream({
               async pull(c) {
                 await new Promise((r) => setTimeout(r, 1));
                 if (i < 3) c.enqueue(enc.encode(`chunk${i++};`)); else c.close();
               },
             });
             return new Response(stream, { headers: { 'content-type': 'text/plain' } });
           } };"#,
    )
    .await;
    let resp = iso.fetch(get("https://x/")).await.unwrap();
    assert_eq!(resp.status, 200);
    let Some(Body::Stream(stream)) = resp.body else {
        panic!("expected a streamed body, got {:?}", resp.body);
    };
    let all = stream.read_all().await.unwrap();
    assert_eq!(String::from_utf8(all).unwrap(), "chunk0;chunk1;chunk2;");
}

#[tokio::test]
async fn streamed_request_body_is_readable_with_text() {
    let iso = load(
        "stream-in",
        r#"export default { async fetch(request) {
             const text = await request.text();
             return new Response(`got ${text.length}: ${text}`);
           } };"#,
    )
    .await;
    let (tx, stream) = ReadableStream::channel();
    let writer = tokio::spawn(async move {
        for part in ["hel", "lo ", "wor", "ld"] {
            tokio::time::sleep(Duration::from_millis(2)).await;
            tx.write(Value::Bytes(Bytes::new(part.as_bytes().to_vec())))
                .await
                .unwrap();
        }
    });
    let mut req = get("https://x/upload");
    req.method = "POST".into();
    req.body = Some(Body::Stream(stream));
    let resp = iso.fetch(req).await.unwrap();
    writer.await.unwrap();
    let text = match resp.body {
        Some(Body::Text(t)) => t,
        other => panic!("unexpected body {other:?}"),
    };
    assert_eq!(text, "got 11: hello world");
}

#[tokio::test]
async fn streams_cross_as_rpc_values_both_ways() {
    let iso = load(
        "stream-rpc",
        r#"export default { rpc: class extends RpcTarget {
             numbers() { let i = 0; return new ReadableStream({ pull(c) { if (i < 4) c.enqueue(String(i++)); else c.close(); } }); }
             async sum(stream) { let total = 0; for await (const chunk of stream) total += chunk.length; return total; }
           } };"#,
    )
    .await;
    let target = iso.rpc_target();
    let out = target.call("numbers", vec![]).await.unwrap();
    let Value::Readable(stream) = out else {
        panic!("expected a stream, got {:?}", out.to_json());
    };
    assert_eq!(stream.read_all().await.unwrap(), b"0123");

    let (tx, stream) = ReadableStream::channel();
    tokio::spawn(async move {
        for n in [3usize, 5, 7] {
            let _ = tx.write(Value::Bytes(Bytes::new(vec![0; n]))).await;
        }
    });
    let total = target
        .call("sum", vec![Value::Readable(stream)])
        .await
        .unwrap();
    assert_eq!(total.as_f64(), Some(15.0));
}

#[tokio::test]
async fn endless_javascript_stream_stays_bounded_ahead_of_a_slow_reader() {
    let iso = load(
        "stream-endless",
        r#"let produced = 0;
           export default {
             rpc: class extends RpcTarget { produced() { return produced; } },
             async fetch() {
               return new Response(new ReadableStream({
                 pull(c) { c.enqueue(new Uint8Array(1024)); produced++; },
               }));
             },
           };"#,
    )
    .await;
    let resp = iso.fetch(get("https://x/")).await.unwrap();
    let Some(Body::Stream(stream)) = resp.body else {
        panic!("expected a streamed body");
    };
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let chunk = stream.next().await.unwrap().unwrap();
        assert!(matches!(chunk, Value::Bytes(ref b) if b.data.len() == 1024));
    }
    // Give the producer every chance to run ahead.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let produced = iso
        .rpc_target()
        .call("produced", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        (3.0..40.0).contains(&produced),
        "{produced} chunks produced while the reader took 3"
    );
    // Dropping the reader stops the producer (its writes fail and the JS stream is canceled).
    drop(stream);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = iso.rpc_target().call("produced", vec![]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = iso.rpc_target().call("produced", vec![]).await.unwrap();
    assert_eq!(before.as_f64(), after.as_f64());
}
