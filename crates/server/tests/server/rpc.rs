//! `/_rpc/<id>`: capnweb over WebSocket and HTTP batch; versions during redeploys.

use std::collections::HashSet;
use std::future::IntoFuture;
use std::sync::Arc;

use capnweb::transport::{batch::HttpBatch, websocket};
use capnweb::{Limits, Value};
use serde_json::json;

use crate::common::{bundle, TestServer};

#[tokio::test]
async fn rpc_over_websocket_with_the_rust_capnweb_client() {
    let s = TestServer::start().await;
    s.deploy("calc", bundle("v1", json!({}))).await;
    let session = websocket::connect(&s.ws_url("calc"), None, Limits::default())
        .await
        .expect("connects");
    let api = session.remote_main();
    // Pipelined: the second call uses the first's result before it arrives. (`five` is kept
    // alive until the call ends: capnweb currently releases a promise moved into arguments
    // before the peer has used it.)
    let five = api.call("add", vec![2.into(), 3.into()]);
    let ten = api
        .call("add", vec![five.clone().into(), 5.into()])
        .await
        .expect("add");
    drop(five);
    assert_eq!(ten.as_f64(), Some(10.0));
    let err = api
        .call("fail", vec!["nope".into()])
        .await
        .expect_err("throws");
    assert_eq!(err.name(), "RangeError");
    assert_eq!(err.prop("code").and_then(Value::as_str), Some("E_FAIL"));
}

#[tokio::test]
async fn rpc_over_http_batch_with_pipelining() {
    let s = TestServer::start().await;
    s.deploy("calc", bundle("v7", json!({}))).await;
    let batch = HttpBatch::new(format!("{}/_rpc/calc", s.base), Limits::default());
    let api = batch.main();
    let (sum, version) = batch
        .run(async move {
            let a = api.call("add", vec![1.into(), 2.into()]);
            let b = api.call("add", vec![a.clone().into(), 3.into()]);
            let v = api.call("version", vec![]).get("label");
            // Both awaited in the first poll, so both go out in the one POST.
            let out = futures::join!(b.into_future(), v.into_future());
            drop(a);
            out
        })
        .await
        .expect("batch");
    assert_eq!(sum.expect("sum").as_f64(), Some(6.0));
    assert_eq!(version.expect("label").as_str(), Some("v7"));
}

#[tokio::test]
async fn rpc_to_unknown_function_is_404_and_get_without_upgrade_is_405() {
    let s = TestServer::start().await;
    assert_eq!(s.request("POST", "/_rpc/nope", &[], "").await.status, 404);
    s.deploy("calc", bundle("v1", json!({}))).await;
    assert_eq!(s.request("GET", "/_rpc/calc", &[], "").await.status, 405);
}

#[tokio::test]
async fn redeploy_while_calls_are_in_flight_each_call_sees_one_version() {
    let s = Arc::new(TestServer::start().await);
    s.deploy("app", bundle("v1", json!({}))).await;
    // A session opened before the deploy is bound to v1, deterministically.
    let session = websocket::connect(&s.ws_url("app"), None, Limits::default())
        .await
        .expect("connects");
    let old = session.remote_main();
    let in_flight = old.call("slow", vec![300.into()]);
    let mut before = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        before.push(tokio::spawn(async move {
            s.rpc("app", "slow", json!([150])).await
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    s.deploy("app", bundle("v2", json!({}))).await;
    let mut after = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        after.push(tokio::spawn(async move {
            s.rpc("app", "slow", json!([50])).await
        }));
    }
    let label = |r: crate::common::Resp| {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let j = r.json();
        assert_eq!(
            j["result"]["before"], j["result"]["after"],
            "a call mixed versions"
        );
        j["result"]["before"].as_str().expect("label").to_owned()
    };
    let mut seen = HashSet::new();
    for c in before {
        seen.insert(label(c.await.expect("task")));
    }
    assert!(seen.iter().all(|l| l == "v1" || l == "v2"), "{seen:?}");
    for c in after {
        assert_eq!(
            label(c.await.expect("task")),
            "v2",
            "calls after the deploy see v2"
        );
    }
    let in_flight = in_flight.await.expect("in-flight call finishes");
    assert_eq!(in_flight.get("before").as_str(), Some("v1"));
    assert_eq!(in_flight.get("after").as_str(), Some("v1"));
    let still_old = old
        .call("version", vec![])
        .get("label")
        .await
        .expect("call");
    assert_eq!(
        still_old.as_str(),
        Some("v1"),
        "an open session keeps its version"
    );
    let after = s.rpc("app", "version", json!([])).await.json();
    assert_eq!(after["result"]["label"], "v2");
}
