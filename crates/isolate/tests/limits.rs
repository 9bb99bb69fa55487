//! Limits: memory, CPU and stack, each ending the call with a clear error while other isolates
//! carry on.

mod common;
use common::*;
use isolate::RESOURCE_LIMIT_ERROR;

const SPIN: &str = "export default { rpc: class extends RpcTarget { spin() { for (;;) {} } ok() { return 'ok'; } } };";
const HOG: &str = "export default { rpc: class extends RpcTarget { hog() { const a = []; for (;;) a.push(new Array(100000).fill(1)); } ok() { return 'ok'; } } };";

/// Loads isolates until one is on a different JavaScript thread than `other`.
async fn on_another_thread(other: &isolate::Isolate, src: &str) -> isolate::Isolate {
    loop {
        let iso = load("helper", src).await;
        if iso.thread() != other.thread() || isolate::js_threads() == 1 {
            return iso;
        }
    }
}

#[tokio::test]
async fn cpu_limit_ends_the_call_and_other_isolates_keep_working() {
    let spinner = load("spinner", SPIN).await;
    let other = on_another_thread(&spinner, SPIN).await;
    let spin = tokio::spawn(std::future::IntoFuture::into_future(
        spinner.rpc_target().call("spin", vec![]),
    ));
    // While one isolate spins, an isolate on another thread answers.
    let ok = other.rpc_target().call("ok", vec![]).await.unwrap();
    assert_eq!(ok.as_str(), Some("ok"));
    assert!(!spin.is_finished(), "the spinner should still be running");
    let err = spin.await.unwrap().unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR);
    assert_eq!(err.message(), "CPU time limit of 1000 ms exceeded");
    assert!(spinner.is_broken());
    // The broken isolate rejects later calls with the same reason; the other carries on.
    let again = spinner.rpc_target().call("ok", vec![]).await.unwrap_err();
    assert_eq!(again.name(), RESOURCE_LIMIT_ERROR);
    assert_eq!(
        other
            .rpc_target()
            .call("ok", vec![])
            .await
            .unwrap()
            .as_str(),
        Some("ok")
    );
}

#[tokio::test]
async fn memory_limit_ends_the_call_and_other_isolates_keep_working() {
    let mut cfg = isolate::IsolateConfig::single("hog", HOG);
    cfg.limits.memory_bytes = 16 * 1024 * 1024;
    let hog = isolate::Isolate::new(cfg).await.unwrap();
    let other = load("bystander", HOG).await;
    let err = hog.rpc_target().call("hog", vec![]).await.unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert!(
        err.message().contains("memory limit 16 MiB exceeded"),
        "{err}"
    );
    assert!(hog.is_broken());
    assert_eq!(
        other
            .rpc_target()
            .call("ok", vec![])
            .await
            .unwrap()
            .as_str(),
        Some("ok")
    );
}

/// Memory hogs with different allocation patterns. However QuickJS reacts to the refused
/// allocation (an "out of memory" error, a thrown `null`, a failed internal step), the call must
/// end as a memory-limit break: the check must not depend on the heap's layout.
const HOGS: &[(&str, &str)] = &[
    (
        "big arrays",
        "const a = []; for (;;) a.push(new Array(100000).fill(1));",
    ),
    (
        "small objects",
        "const a = []; for (let i = 0; ; i++) a.push({ i, s: 'x' + i });",
    ),
    (
        "long strings",
        "const a = []; for (let i = 0; ; i++) a.push('x'.repeat(100000) + i);",
    ),
    (
        "string pieces",
        "const a = []; for (let i = 0; ; i++) a.push(String(i).repeat(50));",
    ),
    (
        "one growing array",
        "const a = []; for (let i = 0; ; i++) a[i] = i + 0.5;",
    ),
    (
        "typed arrays",
        "const a = []; for (;;) a.push(new Float64Array(65536));",
    ),
    (
        "map entries",
        "const m = new Map(); for (let i = 0; ; i++) m.set(i, [i]);",
    ),
    (
        "caught and retried",
        "const a = []; for (;;) { try { a.push(new Array(100000).fill(1)); } catch (e) {} }",
    ),
];

#[tokio::test]
async fn memory_limit_is_detected_whatever_the_allocation_pattern() {
    let other = load("bystander", HOG).await;
    for (pad, padding) in [
        (0, ""),
        (1, "function unused(x) { return [x, x + 1, { x }]; }\n"),
    ] {
        for (name, body) in HOGS {
            let src = format!(
                "{padding}export default {{ rpc: class extends RpcTarget {{ hog() {{ {body} }} ok() {{ return 'ok'; }} }} }};"
            );
            let mut cfg = isolate::IsolateConfig::single("hog", &src);
            cfg.limits.memory_bytes = 16 * 1024 * 1024;
            let hog = isolate::Isolate::new(cfg).await.unwrap();
            let err = hog.rpc_target().call("hog", vec![]).await.unwrap_err();
            let what = format!("{name} (padding {pad}): {err}");
            assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{what}");
            assert!(
                err.message().contains("memory limit 16 MiB exceeded"),
                "{what}"
            );
            assert!(hog.is_broken(), "{what}");
            let again = hog.rpc_target().call("ok", vec![]).await.unwrap_err();
            assert_eq!(again.name(), RESOURCE_LIMIT_ERROR, "{what}");
            assert_eq!(
                other
                    .rpc_target()
                    .call("ok", vec![])
                    .await
                    .unwrap()
                    .as_str(),
                Some("ok"),
                "{what}"
            );
        }
    }
}

#[tokio::test]
async fn deep_recursion_is_a_clear_error_not_a_crash() {
    let iso = load(
        "recurse",
        "function f(n) { return f(n + 1) + 1; }\n\
         export default { rpc: class extends RpcTarget { deep() { return f(0); } ok() { return 'ok'; } } };",
    )
    .await;
    let err = iso.rpc_target().call("deep", vec![]).await.unwrap_err();
    assert!(
        err.message().to_lowercase().contains("stack"),
        "unexpected error: {err}"
    );
    assert!(!iso.is_broken());
    assert_eq!(
        iso.rpc_target().call("ok", vec![]).await.unwrap().as_str(),
        Some("ok")
    );
}

const SLICED: &str = r#"
function busy(ms) { const t = Date.now(); while (Date.now() - t < ms) {} }
export default { rpc: class extends RpcTarget {
  async microtasks() { for (;;) { await null; busy(10); } }
  async timers() { for (;;) { await new Promise((r) => setTimeout(r, 0)); busy(10); } }
  async short() { await new Promise((r) => setTimeout(r, 0)); busy(5); return 'done'; }
  ok() { return 'ok'; }
} };
"#;

#[tokio::test]
async fn cpu_limit_covers_an_invocation_across_its_awaits() {
    let iso = load("sliced", SLICED).await;
    let err = iso
        .rpc_target()
        .call("microtasks", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert_eq!(err.message(), "CPU time limit of 1000 ms exceeded");
    assert!(iso.is_broken());
}

#[tokio::test]
async fn cpu_limit_adds_up_slices_that_return_to_the_host_between_awaits() {
    let iso = load("sliced-timers", SLICED).await;
    let bystander = load("sliced-bystander", SLICED).await;
    let start = std::time::Instant::now();
    let err = iso.rpc_target().call("timers", vec![]).await.unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert_eq!(err.message(), "CPU time limit of 1000 ms exceeded");
    assert!(iso.is_broken());
    // Each slice is 10 ms, far under the limit: only the per-invocation total can stop it.
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(
        bystander
            .rpc_target()
            .call("ok", vec![])
            .await
            .unwrap()
            .as_str(),
        Some("ok")
    );
}

#[tokio::test]
async fn invocations_under_their_cpu_budget_are_not_stopped_by_earlier_ones() {
    let mut cfg = isolate::IsolateConfig::single("budget", SLICED);
    cfg.limits.cpu_time = std::time::Duration::from_millis(100);
    let iso = isolate::Isolate::new(cfg).await.unwrap();
    // 40 invocations of ~5 ms each: 200 ms in total, but each well under its own 100 ms.
    for _ in 0..40 {
        let v = iso.rpc_target().call("short", vec![]).await.unwrap();
        assert_eq!(v.as_str(), Some("done"));
    }
    assert!(!iso.is_broken());
}
