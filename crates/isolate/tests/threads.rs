//! The JavaScript threads: a spinning isolate holds one thread, never its neighbours (isolates
//! are not pinned, and more threads start when every thread is busy), and the calls of one
//! isolate still run one at a time and in the order they were made.

mod common;
use common::*;

use std::time::Duration;

use capnweb::{Stub, Value};
use isolate::{Isolate, IsolateConfig, RESOURCE_LIMIT_ERROR};
use tokio::sync::mpsc;

/// `spin(started)` calls `started()` and then spins until its CPU limit ends it.
const SPINNER: &str = "export default { rpc: class extends RpcTarget {
  spin(started) { started(); for (;;) {} }
  ok() { return 'ok'; }
} };";

async fn spinner(id: &str, cpu: Duration) -> Isolate {
    let mut cfg = IsolateConfig::single(id, SPINNER);
    cfg.limits.cpu_time = cpu;
    Isolate::new(cfg).await.expect("spinner loads")
}

/// A stub JavaScript can call to say it started; each call sends `()` on the channel.
fn signal(tx: &mpsc::UnboundedSender<()>) -> Value {
    let tx = tx.clone();
    Value::Stub(Stub::from_fn(move |_| {
        let _ = tx.send(());
        async { Ok(Value::Null) }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_spinning_isolates_do_not_delay_a_neighbours_call() {
    let neighbour = load("neighbour", SPINNER).await;
    let (tx, mut started) = mpsc::unbounded_channel();
    let mut spins = Vec::new();
    for i in 0..4 {
        let iso = spinner(&format!("spinner-{i}"), Duration::from_millis(1500)).await;
        let call = iso.rpc_target().call("spin", vec![signal(&tx)]);
        spins.push((
            iso,
            tokio::spawn(std::future::IntoFuture::into_future(call)),
        ));
    }
    // All four spin at once (each on a thread of its own)...
    for _ in 0..4 {
        started.recv().await.expect("a spinner started");
    }
    // ...and the neighbour still answers while every one of them is spinning.
    let ok = neighbour.rpc_target().call("ok", vec![]).await.unwrap();
    assert_eq!(ok.as_str(), Some("ok"));
    for (i, (_, spin)) in spins.iter().enumerate() {
        assert!(!spin.is_finished(), "spinner {i} should still be spinning");
    }
    // A brand-new isolate loads and answers too.
    let fresh = load("fresh", SPINNER).await;
    let ok = fresh.rpc_target().call("ok", vec![]).await.unwrap();
    assert_eq!(ok.as_str(), Some("ok"));
    for (i, (_, spin)) in spins.iter().enumerate() {
        assert!(!spin.is_finished(), "spinner {i} should still be spinning");
    }
    for (iso, spin) in spins {
        let err = spin.await.unwrap().unwrap_err();
        assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
        assert!(iso.is_broken());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_of_one_isolate_run_in_order_while_other_isolates_spin() {
    let (tx, mut started) = mpsc::unbounded_channel();
    let mut spins = Vec::new();
    for i in 0..2 {
        let iso = spinner(&format!("busy-{i}"), Duration::from_millis(500)).await;
        let call = iso.rpc_target().call("spin", vec![signal(&tx)]);
        spins.push(tokio::spawn(std::future::IntoFuture::into_future(call)));
    }
    for _ in 0..2 {
        started.recv().await.expect("a spinner started");
    }
    let log = load(
        "ordered",
        "export default { rpc: class extends RpcTarget {
           constructor() { super(); this.seen = []; }
           async push(i) { this.seen.push(i); await null; this.seen.push(-i); }
           seen() { return this.seen; }
         } };",
    )
    .await;
    let target = log.rpc_target();
    let calls: Vec<_> = (1..=200)
        .map(|i| {
            std::future::IntoFuture::into_future(
                target.call("push", vec![Value::from(f64::from(i))]),
            )
        })
        .collect();
    for r in futures::future::join_all(calls).await {
        r.expect("push answers");
    }
    let seen = target.call("seen", vec![]).await.unwrap().to_json();
    let seen: Vec<i64> = serde_json::from_value(seen).unwrap();
    // Each call starts in the order it was made; the `await` lets the next one start before
    // the first finishes, exactly as on one thread.
    let starts: Vec<i64> = seen.iter().copied().filter(|i| *i > 0).collect();
    assert_eq!(starts, (1..=200).collect::<Vec<_>>());
    assert_eq!(seen.len(), 400);
    for spin in spins {
        let err = spin.await.unwrap().unwrap_err();
        assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    }
}
