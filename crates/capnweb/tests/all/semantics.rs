//! RPC semantics, each proven over the in-memory pair and over a WebSocket.

use std::future::IntoFuture;
use std::sync::atomic::Ordering;
use std::time::Duration;

use capnweb::{Limits, RpcError, Stub, Value};

use crate::api::Api;
use crate::harness::connect;
use crate::over_both;

fn n(v: f64) -> Value {
    Value::Number(v)
}

over_both!(plain_call_returns_value, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let v = api.call("add", vec![n(2.0), n(3.0)]).await.expect("add");
    assert_eq!(v.as_f64(), Some(5.0));
});

over_both!(pipelined_chain_is_one_round_trip, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let sum = api.call("add", vec![n(1.0), n(2.0)]);
    let sq = api.call("square", vec![sum.into()]);
    let sq2 = api.call("square", vec![sq.into()]);
    let v = sq2.await.expect("chain");
    assert_eq!(v.as_f64(), Some(81.0));
    let (sent, received) = c.client.frame_counts();
    // Three pushes and one pull went out before anything came back; one resolve came back.
    assert_eq!(
        received, 1,
        "exactly one message back for a 3-call pipelined chain"
    );
    assert!(sent >= 4, "3 pushes + 1 pull, got {sent}");
});

over_both!(property_reads_pipeline_on_unresolved_results, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let bio = api
        .call("getUser", vec![n(5.0)])
        .get("profile")
        .get("bio")
        .await
        .expect("bio");
    assert_eq!(bio.as_str(), Some("bio of 5"));
    let (_, received) = c.client.frame_counts();
    assert_eq!(received, 1);
});

over_both!(returned_stub_is_callable_and_keeps_state, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let counter = api
        .call("makeCounter", vec![n(10.0)])
        .await
        .expect("counter");
    let Value::Stub(counter) = counter else {
        panic!("expected a stub, got {counter:?}")
    };
    assert_eq!(
        counter
            .call("increment", vec![n(5.0)])
            .await
            .expect("inc")
            .as_f64(),
        Some(15.0)
    );
    assert_eq!(
        counter
            .call("increment", vec![])
            .await
            .expect("inc")
            .as_f64(),
        Some(16.0)
    );
    assert_eq!(
        counter.get("value").await.expect("value").as_f64(),
        Some(16.0)
    );
    // Pipelined on the unresolved counter too.
    let other = api.call("makeCounter", vec![n(1.0)]);
    assert_eq!(
        other
            .call("increment", vec![n(1.0)])
            .await
            .expect("inc")
            .as_f64(),
        Some(2.0)
    );
});

over_both!(
    callbacks_from_the_caller_are_invoked_by_the_callee,
    |link| {
        let (main, _) = Api::stub();
        let c = connect(link, main, Limits::default()).await;
        let api = c.client.remote_main();
        let (local, _) = Api::stub();
        let r = api
            .call("callSquare", vec![Value::Stub(local), n(7.0)])
            .await
            .expect("callSquare");
        assert_eq!(r.get("result").as_f64(), Some(49.0));
        let f = Stub::from_fn(|args| async move { Ok(n(args[0].as_f64().unwrap_or(0.0) * 10.0)) });
        let r = api
            .call("callFunction", vec![Value::Stub(f), n(4.0)])
            .await
            .expect("callFunction");
        assert_eq!(r.get("result").as_f64(), Some(40.0));
    }
);

over_both!(errors_keep_type_message_and_properties, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let err = api.call("throwError", vec![]).await.expect_err("rejects");
    assert_eq!(err.name(), "RangeError");
    assert_eq!(err.message(), "out of range");
    assert_eq!(err.prop("code").and_then(Value::as_str), Some("E_RANGE"));
    assert_eq!(
        err.prop("details")
            .map(|d| d.get("reason").clone())
            .and_then(|r| r.as_str().map(str::to_owned))
            .as_deref(),
        Some("testing")
    );
    let err = api.call("noSuchMethod", vec![]).await.expect_err("rejects");
    assert_eq!(err.name(), "TypeError");
});

over_both!(calls_on_one_stub_are_delivered_in_order, |link| {
    let (main, api_obj) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let promises: Vec<_> = (0..200)
        .map(|i| api.call("record", vec![n(i as f64)]))
        .collect();
    for p in promises {
        p.await.expect("record");
    }
    let log = api_obj.log.lock().expect("log").clone();
    assert_eq!(log, (0..200).map(|i| i as f64).collect::<Vec<_>>());
});

over_both!(thousand_concurrent_calls_all_answer_correctly, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let calls: Vec<_> = (0..1000)
        .map(|i| api.call("square", vec![n(i as f64)]))
        .collect();
    let results = futures::future::join_all(calls.into_iter().map(|p| p.into_future())).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.expect("square").as_f64(), Some((i * i) as f64));
    }
});

over_both!(map_runs_on_the_remote_array_in_one_round_trip, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let squares = api
        .call("fib", vec![n(8.0)])
        .map(|x| x.call_captured(&api, "square", vec![x.value()]).value());
    let v = squares.await.expect("map");
    let got: Vec<f64> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(got, vec![0.0, 1.0, 1.0, 4.0, 9.0, 25.0, 64.0, 169.0]);
    let (_, received) = c.client.frame_counts();
    // One resolve of the map, plus the resolves of the promises it contains (as in JS), and
    // no request of ours in between: everything was sent before the first answer.
    assert!(received >= 1);
    let users = api
        .call("getUser", vec![n(3.0)])
        .map(|u| Value::object([("bio", u.get("profile").get("bio").value())]));
    let v = users.await.expect("map over object");
    assert_eq!(v.get("bio").as_str(), Some("bio of 3"));
});

over_both!(released_stubs_return_tables_to_baseline, |link| {
    let (main, target) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    // Warm up, then take the baseline.
    api.call("square", vec![n(1.0)]).await.expect("warm");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = c.server.stats();
    let live_before = target.live_counters.load(Ordering::SeqCst);
    {
        let counter = api
            .call("makeCounter", vec![n(0.0)])
            .await
            .expect("counter");
        let Value::Stub(counter) = counter else {
            panic!("stub")
        };
        counter.call("increment", vec![]).await.expect("inc");
        assert!(c.server.stats().exports > before.exports);
        counter.dispose();
    }
    let live = || target.live_counters.load(Ordering::SeqCst);
    let mut after = c.server.stats();
    for _ in 0..200 {
        if after == before && live() <= live_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        after = c.server.stats();
    }
    assert_eq!(
        after, before,
        "server tables back to baseline after release"
    );
    assert!(live() <= live_before, "the counter target was disposed");
});

over_both!(aborting_a_session_rejects_pending_calls, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    let pending = api.call("delay", vec![n(5_000.0), n(1.0)]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    api.on_rpc_broken(move |e| {
        let _ = tx.send(e.message());
    });
    c.server.abort(RpcError::error("server going away"));
    let err = tokio::time::timeout(Duration::from_secs(5), pending.into_future())
        .await
        .expect("settles")
        .expect_err("rejected");
    assert!(
        err.message().contains("server going away") || err.message().contains("closed"),
        "{err}"
    );
    let broken = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("callback ran")
        .expect("message");
    assert!(!broken.is_empty());
    let after = api
        .call("square", vec![n(2.0)])
        .await
        .expect_err("broken session");
    assert!(!after.message().is_empty());
});

over_both!(peer_exceeding_export_limit_is_aborted, |link| {
    let (main, _) = Api::stub();
    let limits = Limits {
        max_exports: 10,
        ..Limits::default()
    };
    let c = connect(link, main, limits).await;
    let api = c.client.remote_main();
    // Twenty unresolved pushes: the server's table would need more than 10 entries.
    let calls: Vec<_> = (0..20)
        .map(|_| api.call("delay", vec![n(2_000.0), n(0.0)]))
        .collect();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        calls.into_iter().last().expect("one").into_future(),
    )
    .await
    .expect("settles")
    .expect_err("aborted");
    assert!(err.message().contains("limit of 10 exports"), "{err}");
});

over_both!(streamed_chunks_reach_a_slow_reader_in_order, |link| {
    // 400 chunks of 8 KiB (3 MiB, past the reader's 1 MiB of room, so writes wait for it):
    // the reader yields many times between reads and must see them in the order written.
    const CHUNKS: u32 = 400;
    let main = Stub::from_fn(|args| async move {
        let Some(Value::Readable(stream)) = args.into_iter().next() else {
            return Err(RpcError::type_error("expected a stream"));
        };
        let mut order = Vec::new();
        while let Some(chunk) = stream.next().await {
            let Value::Bytes(b) = chunk? else {
                return Err(RpcError::type_error("expected bytes"));
            };
            let index: [u8; 4] = b.data[..4].try_into().expect("4 bytes");
            order.push(Value::Number(f64::from(u32::from_le_bytes(index))));
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
        }
        Ok(Value::Array(order))
    });
    let c = connect(link, main, Limits::default()).await;
    let (tx, stream) = capnweb::ReadableStream::channel();
    let writer = tokio::spawn(async move {
        for i in 0..CHUNKS {
            let mut data = vec![0u8; 8 * 1024];
            data[..4].copy_from_slice(&i.to_le_bytes());
            tx.write(Value::Bytes(capnweb::Bytes::new(data)))
                .await
                .expect("write");
        }
    });
    let got = c
        .client
        .remote_main()
        .call_fn(vec![Value::Readable(stream)])
        .await
        .expect("the reader answers");
    writer.await.expect("writer");
    let Value::Array(order) = got else {
        panic!("{got:?}")
    };
    let order: Vec<u32> = order
        .iter()
        .map(|v| v.as_f64().unwrap_or(-1.0) as u32)
        .collect();
    assert_eq!(order, (0..CHUNKS).collect::<Vec<_>>());
});

/// Asking for results in one turn (as JavaScript's `Promise.all` does) puts every `pull` on
/// the wire at once, before anything is polled: an HTTP batch is cut when the turn ends, and
/// a pull sent later would miss it (its call then fails with "closed by the peer").
#[tokio::test]
async fn asking_for_a_result_sends_its_pull_at_once_not_when_first_polled() {
    use capnweb::{Frame, Session, Transport};
    use futures::StreamExt;
    let (_to_client, from_peer) =
        tokio::sync::mpsc::unbounded_channel::<Result<String, capnweb::TransportError>>();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel();
    let incoming = futures::stream::unfold(from_peer, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    })
    .boxed();
    let session = Session::new(Transport::new(incoming, out_tx), None, Limits::default());
    let api = session.remote_main();
    let hello = api.call("hello", vec![Value::from("a")]);
    let add = api.call("add", vec![n(1.0), n(2.0)]);
    // Neither future is polled.
    let asked = (add.into_future(), hello.into_future());
    let mut sent = Vec::new();
    while let Ok(Frame::Text(t)) = out_rx.try_recv() {
        sent.push(t);
    }
    assert_eq!(
        sent,
        [
            r#"["push",["pipeline",0,["hello"],["a"]]]"#,
            r#"["push",["pipeline",0,["add"],[1,2]]]"#,
            r#"["pull",2]"#,
            r#"["pull",1]"#,
        ]
    );
    drop(asked);
}
