//! A panic on a JavaScript thread (injected with the test-only `test-panic` feature): the
//! isolate whose job panicked fails its calls with an internal error and is discarded, the
//! thread is replaced, and every other isolate carries on.
//!
//!   cargo test -p isolate --features test-panic --test panic

mod common;
use common::*;

use isolate::Isolate;

const SRC: &str = "export default { rpc: class extends RpcTarget {
  panicInJob() { __functionsTestPanic('job'); return new Promise(() => {}); }
  panicInNative() { __functionsTestPanic('native'); return 'went on'; }
  wait() { return new Promise(() => {}); }
  ok() { return 'ok'; }
} };";

fn assert_internal(err: &capnweb::RpcError) {
    assert_eq!(err.name(), "Error", "{err}");
    assert!(err.message().starts_with("internal error"), "{err}");
}

async fn ok(iso: &Isolate) {
    let r = iso.rpc_target().call("ok", vec![]).await;
    assert_eq!(r.expect("ok answers").as_str(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_that_isolates_calls_with_an_internal_error_and_others_carry_on() {
    let bystander = load("bystander", SRC).await;
    // More panics than there are threads: each panicking thread must be replaced.
    for i in 0..isolate::js_threads() + 2 {
        let victim = load(&format!("victim-{i}"), SRC).await;
        let target = victim.rpc_target();
        // A call already waiting on the victim when it panics...
        let waiting = tokio::spawn(std::future::IntoFuture::into_future(
            target.call("wait", vec![]),
        ));
        // ...and the call whose isolate panics: both fail with an internal error.
        let err = target.call("panicInJob", vec![]).await.unwrap_err();
        assert_internal(&err);
        assert_internal(&waiting.await.unwrap().unwrap_err());
        assert!(victim.is_broken());
        // So does every later call; nothing else noticed.
        assert_internal(&target.call("ok", vec![]).await.unwrap_err());
        ok(&bystander).await;
        ok(&load("fresh", SRC).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_native_function_is_contained_too() {
    let bystander = load("bystander-2", SRC).await;
    let victim = load("victim-native", SRC).await;
    let err = victim
        .rpc_target()
        .call("panicInNative", vec![])
        .await
        .unwrap_err();
    assert_internal(&err);
    assert!(victim.is_broken());
    ok(&bystander).await;
    ok(&load("fresh-2", SRC).await).await;
}
