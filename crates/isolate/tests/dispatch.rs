//! How an RPC call's result settles: plain values at once, promises and other thenables when
//! they settle, and throws (including from a `then` getter) as rejections.

mod common;
use common::*;

#[tokio::test]
async fn plain_values_promises_and_thenables_all_settle_as_await_would() {
    let iso = load(
        "dispatch",
        r#"export default { rpc: class extends RpcTarget {
            plain(x) { return x + 1; }
            async later(x) { await null; return x * 2; }
            thenable(x) { return { then(ok) { ok(x * 3); ok("ignored second call"); } }; }
            nested(x) { return { then(ok) { ok(Promise.resolve(x * 4)); } }; }
            badThen() { return { get then() { throw new RangeError("then getter"); } }; }
            rejects() { return { then(_, fail) { fail(new TypeError("thenable said no")); } }; }
            throws() { throw new SyntaxError("sync throw"); }
            notThenable() { return { then: 5, v: 1 }; }
            get value() { return Promise.resolve(7); }
        } };"#,
    )
    .await;
    let t = iso.rpc_target();
    let call = |m: &'static str, x: f64| t.call(m, vec![x.into()]);
    assert_eq!(call("plain", 1.0).await.unwrap().as_f64(), Some(2.0));
    assert_eq!(call("later", 2.0).await.unwrap().as_f64(), Some(4.0));
    assert_eq!(call("thenable", 3.0).await.unwrap().as_f64(), Some(9.0));
    assert_eq!(call("nested", 4.0).await.unwrap().as_f64(), Some(16.0));
    let e = call("badThen", 0.0).await.unwrap_err();
    assert_eq!(
        (e.name(), e.message().as_str()),
        ("RangeError", "then getter")
    );
    let e = call("rejects", 0.0).await.unwrap_err();
    assert_eq!(
        (e.name(), e.message().as_str()),
        ("TypeError", "thenable said no")
    );
    let e = call("throws", 0.0).await.unwrap_err();
    assert_eq!(
        (e.name(), e.message().as_str()),
        ("SyntaxError", "sync throw")
    );
    assert_eq!(
        call("notThenable", 0.0).await.unwrap().to_json(),
        serde_json::json!({"then": 5, "v": 1})
    );
    assert_eq!(t.get("value").await.unwrap().as_f64(), Some(7.0));
}

/// Only the allocator's flag says a heap ran out: an `Error` whose message merely says "out
/// of memory", thrown by one function and passed on by another, discards neither isolate.
#[tokio::test]
async fn an_error_that_says_out_of_memory_discards_no_isolate() {
    let thrower = load(
        "thrower",
        r#"export default { rpc: class extends RpcTarget {
            fail() { throw new Error("out of memory"); }
        } };"#,
    )
    .await;
    let mut cfg = config(
        "passer",
        &[(
            "index.js",
            es(r#"export default { rpc: class extends RpcTarget {
                constructor(ctx, env) { super(); this.env = env; }
                async pass() { return await this.env.UP.fail(); }
            } };"#),
        )],
    );
    cfg.env = capnweb::Value::object([("UP", capnweb::Value::Stub(thrower.rpc_target()))]);
    let passer = isolate::Isolate::new(cfg).await.expect("loads");
    let e = passer
        .rpc_target()
        .call("pass", vec![])
        .await
        .expect_err("the error passes through");
    assert_eq!((e.name(), e.message().as_str()), ("Error", "out of memory"));
    assert!(!thrower.is_broken(), "the thrower is not discarded");
    assert!(
        !passer.is_broken(),
        "the isolate passing it on is not discarded"
    );
    // Both keep answering.
    let e = passer
        .rpc_target()
        .call("pass", vec![])
        .await
        .expect_err("again");
    assert_eq!(e.name(), "Error");
}
