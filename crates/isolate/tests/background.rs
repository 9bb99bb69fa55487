//! Bounded background work: what an invocation leaves running after it answered (timers,
//! promises, `ctx.waitUntil`) ends with it, its CPU counts against the invocation's limit,
//! a timer holds a host task only while it is pending, an isolate holds at most so many
//! timers, and an invocation that never answers ends at the wall-clock limit.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use capnweb::{RequestValue, Value};
use common::*;
use isolate::{Isolate, IsolateConfig, Limits, RESOURCE_LIMIT_ERROR};

const SRC: &str = r#"
let runs = 0;
let done = false;
function busy(ms) { const t = Date.now(); while (Date.now() - t < ms) {} }
function spin() { for (;;) {} }
function tick() { runs++; }
export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname;
    if (path === '/arm') {
      for (let i = 0; i < 20; i++) setInterval(tick, 1);
    } else if (path === '/wait-forever') {
      for (let i = 0; i < 3; i++) setInterval(tick, 1);
      ctx.waitUntil(new Promise(() => {}));
    } else if (path === '/wait-briefly') {
      setInterval(tick, 1);
      ctx.waitUntil(new Promise((r) => setTimeout(() => { done = true; r(); }, 20)));
    } else if (path === '/heavy') {
      busy(600);
      ctx.waitUntil(new Promise((r) => setTimeout(() => { spin(); r(); }, 0)));
    } else if (path === '/hang') {
      setInterval(tick, 1);
      await new Promise(() => {});
    }
    return new Response('ok');
  },
  rpc: class extends RpcTarget {
    runs() { return runs; }
    done() { return done; }
    arm() { setInterval(tick, 1); return 'armed'; }
    armLong() { return setTimeout(tick, 365 * 86400e3); }
    clear(id) { clearTimeout(id); }
    heavyLater() { setTimeout(() => busy(600), 0); return 'armed'; }
    heavyNowAndLater() { busy(600); setTimeout(spin, 0); return 'armed'; }
    many(n) {
      const ids = [];
      try {
        for (let i = 0; i < n; i++) ids.push(setTimeout(tick, 365 * 86400e3));
        return [ids.length];
      } catch (e) {
        return [ids.length, e.name, e.message];
      } finally {
        ids.forEach(clearTimeout);
      }
    }
    hang() { setInterval(tick, 1); return new Promise(() => {}); }
    ok() { return 'ok'; }
  },
};
"#;

const GLOBAL_TIMER: &str = r#"
let refused = null;
try { setTimeout(() => {}, 1); } catch (e) { refused = [e.name, e.message]; }
export default { rpc: class extends RpcTarget { refused() { return refused; } } };
"#;

async fn load_with(id: &str, limits: Limits) -> Isolate {
    let mut cfg = IsolateConfig::single(id, SRC);
    cfg.limits = limits;
    Isolate::new(cfg).await.expect("isolate loads")
}

fn get(path: &str) -> RequestValue {
    RequestValue {
        url: format!("https://fn.example{path}"),
        method: "GET".into(),
        headers: Vec::new(),
        body: None,
        extra: Default::default(),
    }
}

/// How long a test waits for what it polls for.
const WITHIN: Duration = Duration::from_secs(10);

/// Polls `check` until it holds, failing after [`WITHIN`].
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + WITHIN;
    while !check().await {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until no timer of `iso` holds a host task; `what` says why they should be gone.
async fn until_no_timer_tasks(iso: &Isolate, what: &str) {
    until(what, || async { iso.timer_tasks() == 0 }).await;
}

/// Waits until `iso` is discarded for breaking its CPU limit (1 s) and checks that a call
/// then fails with that reason.
async fn until_discarded_for_cpu(iso: &Isolate) {
    until("the isolate is discarded", || async { iso.is_broken() }).await;
    let err = iso.rpc_target().call("ok", vec![]).await.unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert_eq!(err.message(), "CPU time limit of 1000 ms exceeded");
}

async fn call(iso: &Isolate, method: &str, args: Vec<Value>) -> Value {
    iso.rpc_target()
        .call(method, args)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

async fn runs(iso: &Isolate) -> f64 {
    call(iso, "runs", vec![]).await.as_f64().unwrap_or(-1.0)
}

#[tokio::test]
async fn timers_armed_by_a_fetch_are_cancelled_when_it_answers() {
    let iso = load("bg-fetch", SRC).await;
    let res = iso.fetch(get("/arm")).await.unwrap();
    assert_eq!(res.status, 200);
    until_no_timer_tasks(&iso, "the 20 intervals' host tasks are gone").await;
    // They were cancelled at the end of the job that answered: none ever fired.
    assert_eq!(runs(&iso).await, 0.0);
}

#[tokio::test]
async fn timers_of_an_rpc_call_live_while_its_capability_is_held() {
    let iso = load("bg-session", SRC).await;
    let session = iso.rpc_target();
    assert_eq!(
        session.call("arm", vec![]).await.unwrap().as_str(),
        Some("armed")
    );
    until("the interval ran after the call answered", || async {
        session.call("runs", vec![]).await.unwrap().as_f64() >= Some(3.0)
    })
    .await;
    assert!(iso.timer_tasks() >= 1, "the interval is still pending");
    // The session ends: what its calls left running ends too.
    drop(session);
    until_no_timer_tasks(&iso, "the interval's host task is gone").await;
}

#[tokio::test]
async fn each_call_of_a_session_has_its_own_cpu_budget_for_its_background_work() {
    let iso = load("bg-per-call", SRC).await;
    let session = iso.rpc_target();
    // Three calls whose background work takes 600 ms each: 1.8 s in all, 600 ms per call.
    for _ in 0..3 {
        session.call("heavyLater", vec![]).await.unwrap();
    }
    until_no_timer_tasks(&iso, "the background work is over").await;
    assert_eq!(
        session.call("ok", vec![]).await.unwrap().as_str(),
        Some("ok")
    );
    assert!(!iso.is_broken());
    // One call that answers after 600 ms and leaves work that spins is stopped by its 1 s.
    session.call("heavyNowAndLater", vec![]).await.unwrap();
    until_discarded_for_cpu(&iso).await;
}

#[tokio::test]
async fn wait_until_keeps_work_alive_after_the_response_until_the_bound() {
    let limits = Limits {
        wait_until: Duration::from_millis(500),
        ..Limits::default()
    };
    let iso = load_with("bg-wait-bound", limits).await;
    assert_eq!(iso.fetch(get("/wait-forever")).await.unwrap().status, 200);
    until("the intervals ran after the response", || async {
        runs(&iso).await >= 3.0
    })
    .await;
    until_no_timer_tasks(&iso, "the waitUntil bound cancelled them").await;
    assert!(!iso.is_broken());
}

#[tokio::test]
async fn work_kept_by_wait_until_ends_when_its_promises_settle() {
    // A bound that never comes: only the settled promise can end the invocation.
    let limits = Limits {
        wait_until: Duration::from_secs(3600),
        ..Limits::default()
    };
    let iso = load_with("bg-wait-settles", limits).await;
    assert_eq!(iso.fetch(get("/wait-briefly")).await.unwrap().status, 200);
    until("the waitUntil promise settled", || async {
        call(&iso, "done", vec![]).await.as_bool() == Some(true)
    })
    .await;
    until_no_timer_tasks(&iso, "the interval it left was cancelled").await;
}

#[tokio::test]
async fn wait_until_work_counts_against_the_invocations_cpu_limit() {
    let iso = load("bg-wait-cpu", SRC).await;
    // 600 ms before the response, then waitUntil work that spins until the invocation's CPU
    // limit stops it. (The limit is the thread's CPU time: a `busy(600)` that spins 600 ms of
    // wall-clock time uses less CPU than that when other tests share the cores, so the part
    // that must break the limit spins for good.)
    let res = iso.fetch(get("/heavy")).await.unwrap();
    assert_eq!(res.status, 200);
    until_discarded_for_cpu(&iso).await;
}

#[tokio::test]
async fn clear_timeout_frees_the_host_task_at_once() {
    let iso = load("bg-clear", SRC).await;
    let session = iso.rpc_target();
    let id = session.call("armLong", vec![]).await.unwrap();
    assert_eq!(iso.timer_tasks(), 1, "a year-long timer is pending");
    session.call("clear", vec![id]).await.unwrap();
    until_no_timer_tasks(&iso, "the timer's host task is gone").await;
}

#[tokio::test]
async fn the_10001st_pending_timer_is_refused_with_a_clear_error() {
    let iso = load("bg-many", SRC).await;
    let out = call(&iso, "many", vec![10_001.into()]).await.to_json();
    assert_eq!(out[0], 10_000, "{out}");
    assert_eq!(out[1], "RangeError", "{out}");
    assert_eq!(
        out[2], "too many pending timers: an isolate may have at most 10000",
        "{out}"
    );
    // Cleared, they make room again.
    until_no_timer_tasks(&iso, "the cleared timers' host tasks are gone").await;
    let out = call(&iso, "many", vec![10_000.into()]).await.to_json();
    assert_eq!(out, serde_json::json!([10_000]));
}

#[tokio::test]
async fn the_wall_clock_limit_ends_an_invocation_that_never_answers() {
    // Long enough that a call queued behind other tests' busy work still answers in time.
    let limits = Limits {
        wall_time: Duration::from_millis(2000),
        ..Limits::default()
    };
    let iso = load_with("bg-wall", limits).await;
    let target = iso.rpc_target();
    let (call, fetch) = tokio::join!(
        tokio::time::timeout(WITHIN, target.call("hang", vec![])),
        tokio::time::timeout(WITHIN, iso.fetch(get("/hang"))),
    );
    let call = call.expect("the call ends").unwrap_err();
    let fetch = fetch.expect("the fetch ends").unwrap_err();
    for err in [call, fetch] {
        assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
        assert_eq!(err.message(), "wall-clock time limit of 2000 ms exceeded");
    }
    // What the two invocations left running ends with them (the call's capability is still
    // held: only the limit can end it); the isolate carries on.
    until_no_timer_tasks(&iso, "their intervals are cancelled").await;
    assert!(!iso.is_broken());
    assert_eq!(
        target.call("ok", vec![]).await.unwrap().as_str(),
        Some("ok")
    );
}

#[tokio::test]
async fn work_of_an_invocation_whose_caller_went_away_is_cancelled() {
    let iso = load("bg-gone", SRC).await;
    // The caller gives up long before the wall-clock limit (60 s): the fetch is dropped.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), iso.fetch(get("/hang"))).await;
    assert!(gave_up.is_err(), "the fetch never answers");
    until_no_timer_tasks(&iso, "the interval it armed is cancelled").await;
    assert_eq!(call(&iso, "ok", vec![]).await.as_str(), Some("ok"));
}

#[tokio::test]
async fn timers_cannot_be_set_in_global_scope() {
    let iso = load("bg-global", GLOBAL_TIMER).await;
    let out = call(&iso, "refused", vec![]).await.to_json();
    assert_eq!(out[0], "Error", "{out}");
    assert!(
        out[1].as_str().is_some_and(|m| m.contains("global scope")),
        "{out}"
    );
    assert_eq!(iso.timer_tasks(), 0);
}
