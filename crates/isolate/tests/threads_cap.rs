//! The JavaScript thread cap (its own test binary: the thread pool is per process and is
//! configured before the first isolate). With one base thread and a cap of two, a second thread
//! starts when the first is stuck, and no third ever does: spinners past the cap wait their
//! turn, and all of them end at their CPU limit.

use std::time::Duration;

use capnweb::{Stub, Value};
use isolate::{Isolate, IsolateConfig, RESOURCE_LIMIT_ERROR};
use tokio::sync::mpsc;

const SPINNER: &str = "export default { rpc: class extends RpcTarget {
  spin(started) { started(); for (;;) {} }
} };";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_start_on_demand_up_to_the_cap_and_no_further() {
    assert!(isolate::set_js_threads(1));
    assert!(isolate::set_max_js_threads(2));
    assert_eq!(isolate::js_threads(), 1);
    let (tx, mut started) = mpsc::unbounded_channel::<()>();
    let mut spins = Vec::new();
    for i in 0..4 {
        let mut cfg = IsolateConfig::single(format!("spinner-{i}"), SPINNER);
        cfg.limits.cpu_time = Duration::from_millis(300);
        let iso = Isolate::new(cfg).await.expect("spinner loads");
        let tx = tx.clone();
        let signal = Value::Stub(Stub::from_fn(move |_| {
            let _ = tx.send(());
            async { Ok(Value::Null) }
        }));
        let call = iso.rpc_target().call("spin", vec![signal]);
        spins.push((
            iso,
            tokio::spawn(std::future::IntoFuture::into_future(call)),
        ));
    }
    // Two spin at once: the one base thread was stuck, so a second one started...
    for _ in 0..2 {
        started.recv().await.expect("a spinner started");
    }
    assert_eq!(isolate::js_threads(), 2);
    // ...and every spinner gets its turn and ends at its CPU limit, on at most two threads.
    for (iso, spin) in spins {
        let err = spin.await.unwrap().unwrap_err();
        assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
        assert!(iso.is_broken());
        assert!(isolate::js_threads() <= 2);
    }
    for _ in 0..2 {
        started
            .recv()
            .await
            .expect("the other spinners started too");
    }
}
