//! The gate in front of an isolate: eviction (new calls refused through every stub, running
//! calls finish, then the isolate is torn down) and a call budget shared by a group.

mod common;

use std::sync::Arc;

use capnweb::{CallResult, RpcTarget, Stub, Value};
use isolate::{CallBudget, Isolate, IsolateConfig, EVICTED_ERROR, TOO_MANY_CALLS_ERROR};
use tokio::sync::{mpsc, watch};

/// `env.LATCH.wait()` blocks until the test opens the latch; each wait is reported on
/// `entered`. Dropping the latch (the isolate released its env) is reported on `dropped`.
struct Latch {
    open: watch::Receiver<bool>,
    entered: mpsc::UnboundedSender<()>,
    dropped: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RpcTarget for Latch {
    fn call(self: Arc<Self>, method: &str, _args: Vec<Value>) -> CallResult {
        assert_eq!(method, "wait");
        let mut open = self.open.clone();
        let _ = self.entered.send(());
        Box::pin(async move {
            let _ = open.wait_for(|o| *o).await;
            Ok(Value::Undefined)
        })
    }
}

impl Drop for Latch {
    fn drop(&mut self) {
        if let Some(tx) = self.dropped.take() {
            let _ = tx.send(());
        }
    }
}

struct Harness {
    open: watch::Sender<bool>,
    entered: mpsc::UnboundedReceiver<()>,
    dropped: tokio::sync::oneshot::Receiver<()>,
}

const SRC: &str = r#"
import { RpcTarget } from "cloudflare:workers";
class Inner extends RpcTarget { hello() { return "inner"; } }
class Api extends RpcTarget {
  constructor(ctx, env) { super(); this.env = env; }
  async slow() { await this.env.LATCH.wait(); return "finished"; }
  quick() { return "quick"; }
  inner() { return new Inner(); }
}
export default { rpc: Api, fetch() { return new Response("fetched"); } };
"#;

async fn isolate_with_latch(budget: Option<Arc<CallBudget>>) -> (Isolate, Harness) {
    let (open_tx, open_rx) = watch::channel(false);
    let (entered_tx, entered_rx) = mpsc::unbounded_channel();
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
    let latch = Stub::new(Latch {
        open: open_rx,
        entered: entered_tx,
        dropped: Some(dropped_tx),
    });
    let mut config = IsolateConfig::single("gated", SRC);
    let mut env = capnweb::Object::new();
    env.insert("LATCH".into(), Value::Stub(latch));
    config.env = Value::Object(env);
    config.call_budget = budget;
    let iso = Isolate::new(config).await.expect("loads");
    (
        iso,
        Harness {
            open: open_tx,
            entered: entered_rx,
            dropped: dropped_rx,
        },
    )
}

fn request() -> capnweb::RequestValue {
    capnweb::RequestValue {
        url: "http://x/".into(),
        method: "GET".into(),
        headers: Vec::new(),
        body: None,
        extra: Default::default(),
    }
}

#[tokio::test]
async fn an_evicted_isolate_refuses_new_calls_through_every_stub_and_running_calls_finish() {
    let (iso, mut h) = isolate_with_latch(None).await;
    let api = iso.rpc_target();
    assert_eq!(
        api.call("quick", vec![]).await.unwrap().as_str(),
        Some("quick")
    );
    let inner = match api.call("inner", vec![]).await.unwrap() {
        Value::Stub(s) => s,
        other => panic!("expected a stub, got {other:?}"),
    };
    let running = tokio::spawn({
        let api = api.clone();
        async move { api.call("slow", vec![]).await }
    });
    h.entered.recv().await.expect("slow() is waiting");

    iso.evict();
    assert!(iso.is_evicted());
    for (what, result) in [
        ("the rpc target", api.call("quick", vec![]).await),
        (
            "a capability it returned",
            inner.call("hello", vec![]).await,
        ),
        (
            "a new entrypoint stub",
            iso.entrypoint(None).call("quick", vec![]).await,
        ),
    ] {
        let err = result.expect_err(what);
        assert_eq!(err.name(), EVICTED_ERROR, "{what}: {err}");
        assert!(err.message().contains("evicted"), "{what}: {err}");
    }
    let err = iso.fetch(request()).await.expect_err("fetch");
    assert_eq!(err.name(), EVICTED_ERROR);

    // The call that was running when the isolate was evicted finishes normally.
    h.open.send(true).expect("latch");
    let done = running.await.expect("joins").expect("slow() finishes");
    assert_eq!(done.as_str(), Some("finished"));
}

#[tokio::test]
async fn an_evicted_isolate_is_torn_down_once_its_last_call_ends() {
    let (iso, mut h) = isolate_with_latch(None).await;
    let api = iso.rpc_target();
    let running = tokio::spawn({
        let api = api.clone();
        async move { api.call("slow", vec![]).await }
    });
    h.entered.recv().await.expect("slow() is waiting");
    iso.evict();
    // Still running: the isolate (and the env it holds) is alive.
    assert!(matches!(
        h.dropped.try_recv(),
        Err(tokio::sync::oneshot::error::TryRecvError::Empty)
    ));
    h.open.send(true).expect("latch");
    running.await.expect("joins").expect("slow() finishes");
    // The last call ended: the isolate is torn down and lets go of its env, although the
    // test still holds the isolate handle and a stub into it.
    tokio::time::timeout(std::time::Duration::from_secs(10), h.dropped)
        .await
        .expect("the env is released when the evicted isolate is torn down")
        .expect("dropped, not lost");
    drop((iso, api));
}

#[tokio::test]
async fn an_idle_evicted_isolate_is_torn_down_at_once() {
    let (iso, h) = isolate_with_latch(None).await;
    let api = iso.rpc_target();
    assert_eq!(
        api.call("quick", vec![]).await.unwrap().as_str(),
        Some("quick")
    );
    iso.evict();
    tokio::time::timeout(std::time::Duration::from_secs(10), h.dropped)
        .await
        .expect("torn down")
        .expect("dropped");
    let err = api.call("quick", vec![]).await.expect_err("refused");
    assert_eq!(err.name(), EVICTED_ERROR);
}

#[tokio::test]
async fn a_call_budget_refuses_the_call_over_it_at_once_and_is_freed_as_calls_settle() {
    let budget = CallBudget::new("parent", 2);
    let (a, mut ha) = isolate_with_latch(Some(budget.clone())).await;
    let (b, _hb) = isolate_with_latch(Some(budget.clone())).await;
    let spawn_slow = |iso: &Isolate| {
        let api = iso.rpc_target();
        tokio::spawn(async move { api.call("slow", vec![]).await })
    };
    // Two calls into the group (both into `a`) fill the budget.
    let first = spawn_slow(&a);
    let second = spawn_slow(&a);
    ha.entered.recv().await.expect("first waits");
    ha.entered.recv().await.expect("second waits");
    assert_eq!(budget.in_flight(), 2);
    // A third, into either isolate of the group, is refused at once, fetch included.
    for (what, result) in [
        ("same isolate", a.rpc_target().call("quick", vec![]).await),
        ("other isolate", b.rpc_target().call("quick", vec![]).await),
    ] {
        let err = result.expect_err(what);
        assert_eq!(err.name(), TOO_MANY_CALLS_ERROR, "{what}: {err}");
        assert!(err.message().contains("at most 2"), "{what}: {err}");
    }
    let err = b.fetch(request()).await.expect_err("fetch");
    assert_eq!(err.name(), TOO_MANY_CALLS_ERROR);
    // An isolate outside the group is not affected.
    let outsider = common::load("outsider", SRC).await;
    assert_eq!(
        outsider
            .rpc_target()
            .call("quick", vec![])
            .await
            .unwrap()
            .as_str(),
        Some("quick")
    );
    // As the calls settle the budget frees up.
    ha.open.send(true).expect("latch");
    first.await.expect("joins").expect("first finishes");
    second.await.expect("joins").expect("second finishes");
    assert_eq!(budget.in_flight(), 0);
    assert_eq!(
        b.rpc_target().call("quick", vec![]).await.unwrap().as_str(),
        Some("quick")
    );
    assert_eq!(budget.in_flight(), 0);
}
