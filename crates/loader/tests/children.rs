//! The children of one parent: limits clamped to the parent's, resident children capped per
//! parent (LRU, `load` counted too), calls in flight capped per parent, eviction that stops
//! old stubs with `IsolateEvictedError`, and `close` (the parent was retired).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use capnweb::{CallResult, RpcTarget, Stub, Value};
use isolate::{EVICTED_ERROR, RESOURCE_LIMIT_ERROR, TOO_MANY_CALLS_ERROR};
use loader::{Children, ChildrenConfig, Limits, Loader, LoaderConfig, LoaderError, WorkerCode};
use tokio::sync::{mpsc, watch};

const ECHO: &str = r#"
let calls = 0;
export default { rpc: class extends RpcTarget {
  constructor(ctx, env) { super(); this.env = env; }
  echo(x) { return x; }
  count() { return ++calls; }
  spin() { for (;;) {} }
  grow() { const a = []; for (;;) a.push(new Array(1024).fill(1)); }
  async slow() { await this.env.LATCH.wait(); return "finished"; }
} };
"#;

fn parent_limits(cpu_ms: u64, memory_mb: usize) -> Limits {
    Limits {
        cpu_time: Duration::from_millis(cpu_ms),
        memory_bytes: memory_mb * 1024 * 1024,
        ..Limits::default()
    }
}

fn loader_with(children: ChildrenConfig) -> Loader {
    Loader::new(LoaderConfig {
        children,
        ..LoaderConfig::default()
    })
}

fn code(cpu_ms: Option<u64>, memory_mb: Option<u64>) -> WorkerCode {
    WorkerCode {
        limits: loader::WorkerLimits { cpu_ms, memory_mb },
        ..WorkerCode::single(ECHO)
    }
}

/// `get(id)` with code `c`, counting how often the code is asked for.
fn get(
    children: &Children,
    id: &str,
    c: WorkerCode,
    count: &Arc<AtomicUsize>,
) -> loader::WorkerStub {
    let count = count.clone();
    children.get(id, move || {
        count.fetch_add(1, Ordering::SeqCst);
        let c = c.clone();
        async move { Ok::<_, String>(c) }
    })
}

async fn echo(stub: &Stub, v: i32) -> Result<Value, capnweb::RpcError> {
    stub.call("echo", vec![v.into()]).await
}

#[tokio::test]
async fn a_child_asking_for_more_cpu_than_its_parent_gets_the_parents() {
    let loader = Loader::default();
    let children = loader.children("parent", parent_limits(100, 64));
    let n = Arc::new(AtomicUsize::new(0));
    let greedy = get(&children, "greedy", code(Some(1_000_000_000), None), &n);
    let err = greedy
        .get_rpc_target()
        .call("spin", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR);
    assert_eq!(err.message(), "CPU time limit of 100 ms exceeded");
    // One that asks for nothing gets the parent's too.
    let silent = get(&children, "silent", code(None, None), &n);
    let err = silent
        .get_rpc_target()
        .call("spin", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.message(), "CPU time limit of 100 ms exceeded");
    // `load` children are clamped the same way.
    let once = children.load(code(Some(1_000_000_000), None));
    let err = once
        .get_rpc_target()
        .call("spin", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.message(), "CPU time limit of 100 ms exceeded");
}

#[tokio::test]
async fn a_child_asking_for_less_than_its_parent_keeps_it() {
    let loader = Loader::default();
    let children = loader.children("parent", parent_limits(2000, 64));
    let n = Arc::new(AtomicUsize::new(0));
    let modest = get(&children, "modest", code(Some(30), None), &n);
    let err = modest
        .get_rpc_target()
        .call("spin", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.message(), "CPU time limit of 30 ms exceeded");
}

#[tokio::test]
async fn a_child_asking_for_more_memory_than_its_parent_gets_the_parents() {
    let loader = Loader::default();
    let children = loader.children("parent", parent_limits(5000, 16));
    let n = Arc::new(AtomicUsize::new(0));
    let greedy = get(&children, "greedy", code(None, Some(4096)), &n);
    let err = greedy
        .get_rpc_target()
        .call("grow", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert!(err.message().contains("16 MiB"), "{err}");
}

#[tokio::test]
async fn the_loaders_maximum_clamps_what_a_function_asks_for() {
    let loader = Loader::new(LoaderConfig {
        max_limits: parent_limits(80, 32),
        ..LoaderConfig::default()
    });
    let stub = loader.get("f", || async {
        Ok::<_, String>(code(Some(1_000_000), Some(4096)))
    });
    let err = stub
        .get_rpc_target()
        .call("spin", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.message(), "CPU time limit of 80 ms exceeded");
    let limits = loader.limits_for(&loader::WorkerLimits::default());
    assert_eq!(
        limits.cpu_time,
        Duration::from_millis(80),
        "the default is clamped too"
    );
    assert_eq!(limits.memory_bytes, 32 << 20);
}

#[tokio::test]
async fn resident_children_are_capped_per_parent_least_recently_used_first() {
    let loader = loader_with(ChildrenConfig {
        max_resident: 2,
        ..ChildrenConfig::default()
    });
    let parent = loader.children("parent", parent_limits(1000, 64));
    let neighbour = loader.children("neighbour", parent_limits(1000, 64));
    let n = Arc::new(AtomicUsize::new(0));
    let their = get(&neighbour, "theirs", code(None, None), &n).get_rpc_target();
    assert_eq!(echo(&their, 0).await.unwrap().as_f64(), Some(0.0));

    let a = get(&parent, "a", code(None, None), &n);
    let b = get(&parent, "b", code(None, None), &n);
    let a_target = a.get_rpc_target();
    assert_eq!(echo(&a_target, 1).await.unwrap().as_f64(), Some(1.0));
    assert_eq!(
        echo(&b.get_rpc_target(), 2).await.unwrap().as_f64(),
        Some(2.0)
    );
    assert_eq!(parent.resident(), 2);
    // A third child (a `load` one: it counts too) evicts the least recently used, "a".
    let c = parent.load(code(None, None));
    assert_eq!(
        echo(&c.get_rpc_target(), 3).await.unwrap().as_f64(),
        Some(3.0)
    );
    assert_eq!(parent.resident(), 2);

    // The stub that pointed into the evicted "a" is refused...
    let err = echo(&a_target, 4).await.unwrap_err();
    assert_eq!(err.name(), EVICTED_ERROR, "{err}");
    // ...while `get("a")` loads it again (a cold start), which in turn evicts "b".
    assert_eq!(n.load(Ordering::SeqCst), 3);
    assert_eq!(
        echo(&a.get_rpc_target(), 5).await.unwrap().as_f64(),
        Some(5.0)
    );
    assert_eq!(n.load(Ordering::SeqCst), 4);
    assert_eq!(parent.resident(), 2);

    // The cap is per parent: the neighbour's child was never touched.
    assert_eq!(neighbour.resident(), 1);
    assert_eq!(echo(&their, 6).await.unwrap().as_f64(), Some(6.0));
}

#[tokio::test]
async fn a_child_used_through_a_held_stub_is_not_the_one_evicted() {
    let loader = loader_with(ChildrenConfig {
        max_resident: 2,
        ..ChildrenConfig::default()
    });
    let parent = loader.children("parent", parent_limits(1000, 64));
    let n = Arc::new(AtomicUsize::new(0));
    let a = get(&parent, "a", code(None, None), &n).get_rpc_target();
    assert_eq!(echo(&a, 1).await.unwrap().as_f64(), Some(1.0));
    let b = get(&parent, "b", code(None, None), &n).get_rpc_target();
    assert_eq!(echo(&b, 2).await.unwrap().as_f64(), Some(2.0));
    // "a" is used again only through the stub the parent holds (the cache never sees a get).
    assert_eq!(echo(&a, 3).await.unwrap().as_f64(), Some(3.0));
    let c = get(&parent, "c", code(None, None), &n).get_rpc_target();
    assert_eq!(echo(&c, 4).await.unwrap().as_f64(), Some(4.0));
    assert_eq!(parent.resident(), 2);
    assert_eq!(
        echo(&a, 5).await.unwrap().as_f64(),
        Some(5.0),
        "a was used last"
    );
    let err = echo(&b, 6).await.unwrap_err();
    assert_eq!(
        err.name(),
        EVICTED_ERROR,
        "b was the least recently used: {err}"
    );
}

#[tokio::test]
async fn an_evicted_load_child_is_gone_for_good() {
    let loader = loader_with(ChildrenConfig {
        max_resident: 1,
        ..ChildrenConfig::default()
    });
    let parent = loader.children("parent", parent_limits(1000, 64));
    let first = parent.load(code(None, None));
    assert_eq!(
        echo(&first.get_rpc_target(), 1).await.unwrap().as_f64(),
        Some(1.0)
    );
    let second = parent.load(code(None, None));
    assert_eq!(
        echo(&second.get_rpc_target(), 2).await.unwrap().as_f64(),
        Some(2.0)
    );
    let err = first.isolate().await.unwrap_err();
    assert!(matches!(err, LoaderError::Evicted { .. }), "{err:?}");
    let err = echo(&first.get_rpc_target(), 3).await.unwrap_err();
    assert_eq!(err.name(), EVICTED_ERROR);
}

#[tokio::test]
async fn a_child_keeps_its_state_while_resident() {
    let loader = Loader::default();
    let parent = loader.children("parent", parent_limits(1000, 64));
    let n = Arc::new(AtomicUsize::new(0));
    let stub = get(&parent, "counter", code(None, None), &n);
    for i in 1..=3 {
        let v = stub.get_rpc_target().call("count", vec![]).await.unwrap();
        assert_eq!(v.as_f64(), Some(f64::from(i)));
    }
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

/// `env.LATCH.wait()` blocks until the latch opens; each wait is reported on `entered`.
struct Latch {
    open: watch::Receiver<bool>,
    entered: mpsc::UnboundedSender<()>,
}

impl RpcTarget for Latch {
    fn call(self: Arc<Self>, _method: &str, _args: Vec<Value>) -> CallResult {
        let mut open = self.open.clone();
        let _ = self.entered.send(());
        Box::pin(async move {
            let _ = open.wait_for(|o| *o).await;
            Ok(Value::Undefined)
        })
    }
}

#[tokio::test]
async fn calls_in_flight_into_one_parents_children_are_capped_and_loads_count() {
    let loader = loader_with(ChildrenConfig {
        max_in_flight: 2,
        ..ChildrenConfig::default()
    });
    let parent = loader.children("parent", parent_limits(5000, 64));
    let neighbour = loader.children("neighbour", parent_limits(5000, 64));
    let (open, open_rx) = watch::channel(false);
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let latch = Stub::new(Latch {
        open: open_rx,
        entered: entered_tx,
    });
    let n = Arc::new(AtomicUsize::new(0));
    let with_latch = code(None, None).with_env("LATCH", latch);
    let a = get(&parent, "a", with_latch.clone(), &n);
    let b = get(&parent, "b", with_latch, &n);
    // Load both before the budget fills (a load counts while it runs).
    assert_eq!(
        echo(&a.get_rpc_target(), 1).await.unwrap().as_f64(),
        Some(1.0)
    );
    assert_eq!(
        echo(&b.get_rpc_target(), 1).await.unwrap().as_f64(),
        Some(1.0)
    );
    assert_eq!(parent.in_flight(), 0);

    let slow_a = tokio::spawn({
        let t = a.get_rpc_target();
        async move { t.call("slow", vec![]).await }
    });
    let slow_b = tokio::spawn({
        let t = b.get_rpc_target();
        async move { t.call("slow", vec![]).await }
    });
    entered.recv().await.expect("a waits");
    entered.recv().await.expect("b waits");
    assert_eq!(parent.in_flight(), 2);

    // The 33rd call (here the 3rd) is refused at once, whichever child it goes to.
    let err = echo(&a.get_rpc_target(), 2).await.unwrap_err();
    assert_eq!(err.name(), TOO_MANY_CALLS_ERROR, "{err}");
    assert!(
        err.message().contains("'parent'") && err.message().contains("at most 2"),
        "{err}"
    );
    // A cold load counts too.
    let cold = get(&parent, "cold", code(None, None), &n);
    let err = echo(&cold.get_rpc_target(), 3).await.unwrap_err();
    assert_eq!(err.name(), TOO_MANY_CALLS_ERROR, "{err}");
    // Another parent's children are not held up.
    let other = get(&neighbour, "x", code(None, None), &n);
    assert_eq!(
        echo(&other.get_rpc_target(), 4).await.unwrap().as_f64(),
        Some(4.0)
    );

    open.send(true).expect("latch");
    assert_eq!(slow_a.await.unwrap().unwrap().as_str(), Some("finished"));
    assert_eq!(slow_b.await.unwrap().unwrap().as_str(), Some("finished"));
    assert_eq!(parent.in_flight(), 0);
    // The refused load was not cached as a failure.
    assert_eq!(
        echo(&cold.get_rpc_target(), 5).await.unwrap().as_f64(),
        Some(5.0)
    );
    assert_eq!(
        echo(&a.get_rpc_target(), 6).await.unwrap().as_f64(),
        Some(6.0)
    );
}

#[tokio::test]
async fn close_evicts_every_child_and_refuses_every_stub_and_new_load() {
    let loader = Loader::default();
    let parent = loader.children("parent", parent_limits(1000, 64));
    let n = Arc::new(AtomicUsize::new(0));
    let got = get(&parent, "a", code(None, None), &n);
    let got_target = got.get_rpc_target();
    let once = parent.load(code(None, None));
    let once_target = once.get_rpc_target();
    assert_eq!(echo(&got_target, 1).await.unwrap().as_f64(), Some(1.0));
    assert_eq!(echo(&once_target, 1).await.unwrap().as_f64(), Some(1.0));
    assert_eq!(parent.close(), 2);
    assert!(parent.is_closed());
    assert_eq!(parent.resident(), 0);
    for (what, stub) in [
        ("get target", got_target),
        ("load target", once_target),
        (
            "get again through the old worker stub",
            got.get_rpc_target(),
        ),
        (
            "a new get",
            get(&parent, "b", code(None, None), &n).get_rpc_target(),
        ),
        ("a new load", parent.load(code(None, None)).get_rpc_target()),
    ] {
        let err = echo(&stub, 2).await.unwrap_err();
        assert_eq!(err.name(), EVICTED_ERROR, "{what}: {err}");
    }
    assert_eq!(
        n.load(Ordering::SeqCst),
        1,
        "no code is asked for after close"
    );
    assert_eq!(parent.resident(), 0);
}

#[tokio::test]
async fn env_loader_gives_javascript_children_at_most_the_parents_limits() {
    let loader = Loader::default();
    let children = loader.children("parent", parent_limits(120, 64));
    let parent_src = r#"
      const CHILD = "export default { fetch() { for (;;) {} } };";
      export default { rpc: class extends RpcTarget {
        constructor(ctx, env) { super(); this.env = env; }
        async run() {
          const child = this.env.LOADER.get("spin", () => ({
            mainModule: "c.js", modules: { "c.js": CHILD }, limits: { cpuMs: 1e9 },
          }));
          try { await child.fetch("http://x/"); return "no error"; }
          catch (e) { return e.message; }
        }
      } };
    "#;
    let parent = loader.get("parent", move || {
        let code = WorkerCode::single(parent_src).with_env("LOADER", children.binding());
        async move { Ok::<_, String>(code) }
    });
    let out = parent.get_rpc_target().call("run", vec![]).await.unwrap();
    assert_eq!(out.as_str(), Some("CPU time limit of 120 ms exceeded"));
}

#[tokio::test]
async fn the_children_of_one_parent_together_use_at_most_its_memory_limit() {
    // Each child keeps 6 MiB in module scope; twenty of them would hold 120 MiB under a parent
    // whose own limit is 32 MiB. The least recently used go instead.
    const HOLDS_6_MIB: &str = r#"
const kept = new Uint8Array(6 * 1024 * 1024).fill(1);
export default { rpc: class extends RpcTarget { size() { return kept.length; } } };
"#;
    let loader = loader_with(ChildrenConfig::default());
    let parent = loader.children("parent", parent_limits(1000, 32));
    let neighbour = loader.children("neighbour", parent_limits(1000, 32));
    let n = Arc::new(AtomicUsize::new(0));
    let theirs = get(&neighbour, "theirs", WorkerCode::single(HOLDS_6_MIB), &n);
    assert!(theirs.get_rpc_target().call("size", vec![]).await.is_ok());

    let mut stubs = Vec::new();
    for i in 0..20 {
        let stub = get(
            &parent,
            &format!("c{i}"),
            WorkerCode::single(HOLDS_6_MIB),
            &n,
        );
        let size = stub.get_rpc_target().call("size", vec![]).await;
        assert_eq!(
            size.unwrap().as_f64(),
            Some(6.0 * 1024.0 * 1024.0),
            "child {i}"
        );
        assert!(
            parent.memory_usage() <= 32 * 1024 * 1024,
            "after child {i}: {} bytes resident in {} children",
            parent.memory_usage(),
            parent.resident()
        );
        stubs.push(stub);
    }
    let resident = parent.resident();
    assert!((2..20).contains(&resident), "{resident} children resident");
    // The one used last is still there; the first one is loaded again when used.
    let asked = n.load(Ordering::SeqCst);
    assert!(stubs[19]
        .get_rpc_target()
        .call("size", vec![])
        .await
        .is_ok());
    assert_eq!(
        n.load(Ordering::SeqCst),
        asked,
        "the last child stayed resident"
    );
    assert!(stubs[0].get_rpc_target().call("size", vec![]).await.is_ok());
    assert_eq!(
        n.load(Ordering::SeqCst),
        asked + 1,
        "the first child was loaded again"
    );
    // Another parent's children are not its business.
    assert_eq!(neighbour.resident(), 1);
}
