//! Limits: memory, CPU and stack, in JavaScript and in WebAssembly, each ending the call with a
//! clear error while other isolates carry on.

mod common;
use common::*;
use isolate::RESOURCE_LIMIT_ERROR;

const SPIN: &str = "export default { rpc: class extends RpcTarget { spin() { for (;;) {} } ok() { return 'ok'; } } };";
const HOG: &str = "export default { rpc: class extends RpcTarget { hog() { const a = []; for (;;) a.push(new Array(100000).fill(1)); } ok() { return 'ok'; } } };";

/// Loads another isolate besides `other` (isolates are not pinned to threads: whichever
/// thread is free runs it, see `tests/threads.rs`).
async fn on_another_thread(_other: &isolate::Isolate, src: &str) -> isolate::Isolate {
    load("helper", src).await
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
        "bytes the host makes (TextEncoder)",
        "const s = 'x'.repeat(1 << 20); const a = []; for (;;) a.push(new TextEncoder().encode(s));",
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

/// An isolate whose `index.js` is `src` and whose `./m.wasm` is `wat`, with `limits`.
async fn load_wasm(id: &str, src: &str, wat: &str, limits: isolate::Limits) -> isolate::Isolate {
    let mut cfg = config(
        id,
        &[
            ("index.js", es(src)),
            (
                "m.wasm",
                isolate::ModuleSource::Wasm(wat::parse_str(wat).expect("valid wat")),
            ),
        ],
    );
    cfg.limits = limits;
    isolate::Isolate::new(cfg).await.expect("isolate loads")
}

const WASM_SPIN: &str = r#"(module (func (export "spin") (loop $again (br $again))))"#;
const WASM_SPINNER: &str = r#"import mod from './m.wasm';
const { exports: e } = new WebAssembly.Instance(mod);
export default { rpc: class extends RpcTarget {
  spin() { e.spin(); }
  spinAndRetry() { for (;;) { try { e.spin(); } catch (err) {} } }
  ok() { return 'ok'; }
} };"#;

#[tokio::test]
async fn wasm_infinite_loop_ends_the_call_like_javascript_and_other_isolates_keep_working() {
    for method in ["spin", "spinAndRetry"] {
        let spinner = load_wasm("wasm-spinner", WASM_SPINNER, WASM_SPIN, Default::default()).await;
        let other = on_another_thread(&spinner, SPIN).await;
        let start = std::time::Instant::now();
        let spin = tokio::spawn(std::future::IntoFuture::into_future(
            spinner.rpc_target().call(method, vec![]),
        ));
        // While the wasm spins, an isolate on another thread answers.
        let ok = other.rpc_target().call("ok", vec![]).await.unwrap();
        assert_eq!(ok.as_str(), Some("ok"));
        assert!(
            !spin.is_finished(),
            "{method}: the spinner should still be running"
        );
        let err = spin.await.unwrap().unwrap_err();
        assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{method}: {err}");
        assert_eq!(
            err.message(),
            "CPU time limit of 1000 ms exceeded",
            "{method}"
        );
        // The limit is CPU time: with other tests' spinners sharing the cores it takes longer
        // than 1 s of wall-clock time, but it does end.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{method}"
        );
        assert!(spinner.is_broken(), "{method}");
        let again = spinner.rpc_target().call("ok", vec![]).await.unwrap_err();
        assert_eq!(again.name(), RESOURCE_LIMIT_ERROR, "{method}");
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
}

const WASM_GROW: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;

#[tokio::test]
async fn wasm_memory_grow_past_the_memory_limit_returns_minus_one() {
    let src = r#"import mod from './m.wasm';
const { exports: e } = new WebAssembly.Instance(mod);
export default { rpc: class extends RpcTarget {
  grow(pages) { return e.grow(pages); }
  size() { return e.memory.buffer.byteLength; }
} };"#;
    let limits = isolate::Limits {
        memory_bytes: 16 * 1024 * 1024,
        ..Default::default()
    };
    let iso = load_wasm("wasm-grow", src, WASM_GROW, limits).await;
    let call = |m: &'static str, args: Vec<capnweb::Value>| iso.rpc_target().call(m, args);
    // 64 MiB more does not fit in 16 MiB: the spec's failure, not a broken isolate.
    let refused = call("grow", vec![1024.into()]).await.unwrap();
    assert_eq!(refused.as_f64(), Some(-1.0));
    let grown = call("grow", vec![100.into()]).await.unwrap();
    assert_eq!(grown.as_f64(), Some(1.0), "6.25 MiB more fits");
    assert_eq!(
        call("size", vec![]).await.unwrap().as_f64(),
        Some(101.0 * 65536.0)
    );
    assert!(!iso.is_broken());
    // What wasm holds counts as the isolate's memory (measured at most every 100 ms).
    let mut usage = 0;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        call("size", vec![]).await.unwrap();
        usage = iso.memory_usage();
        if usage >= 101 * 65536 {
            break;
        }
    }
    assert!(usage >= 101 * 65536, "{usage}");
    let refused = call("grow", vec![200.into()]).await.unwrap();
    assert_eq!(
        refused.as_f64(),
        Some(-1.0),
        "heap + wasm together stay under 16 MiB"
    );
}

#[tokio::test]
async fn wasm_memory_and_the_javascript_heap_share_one_limit() {
    let src = r#"import mod from './m.wasm';
const { exports: e } = new WebAssembly.Instance(mod);
export default { rpc: class extends RpcTarget {
  grow(pages) { return e.grow(pages); }
  hog() { const a = []; for (;;) a.push(new Array(100000).fill(1)); }
} };"#;
    let limits = isolate::Limits {
        memory_bytes: 16 * 1024 * 1024,
        ..Default::default()
    };
    let iso = load_wasm("wasm-share", src, WASM_GROW, limits).await;
    // 12 MiB of linear memory leaves the heap about 4 MiB.
    let grown = iso
        .rpc_target()
        .call("grow", vec![192.into()])
        .await
        .unwrap();
    assert_eq!(grown.as_f64(), Some(1.0));
    let err = iso.rpc_target().call("hog", vec![]).await.unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert!(
        err.message().contains("memory limit 16 MiB exceeded"),
        "{err}"
    );
    assert!(iso.is_broken());
}

#[tokio::test]
async fn huge_initial_wasm_memory_fails_instantiation_with_a_clear_range_error() {
    let src = r#"import mod from './m.wasm';
export default { rpc: class extends RpcTarget {
  instantiate() { try { new WebAssembly.Instance(mod); return 'instantiated'; } catch (e) { return [e.name, e.message]; } }
  memory() { try { new WebAssembly.Memory({ initial: 4000 }); return 'made'; } catch (e) { return [e.name, e.message]; } }
  ok() { return 'ok'; }
} };"#;
    // 4000 pages: 250 MiB, past the default 128 MiB.
    let iso = load_wasm(
        "wasm-huge",
        src,
        "(module (memory 4000))",
        Default::default(),
    )
    .await;
    for method in ["instantiate", "memory"] {
        let out = iso
            .rpc_target()
            .call(method, vec![])
            .await
            .unwrap()
            .to_json();
        assert_eq!(out[0], "RangeError", "{method}: {out}");
        let message = out[1].as_str().unwrap_or_default();
        assert!(
            message.contains("262144000 bytes") && message.contains("memory limit of 128 MiB"),
            "{method}: {message}"
        );
    }
    assert!(!iso.is_broken());
    assert_eq!(
        iso.rpc_target().call("ok", vec![]).await.unwrap().as_str(),
        Some("ok")
    );
}

#[tokio::test]
async fn deep_wasm_recursion_is_a_runtime_error_not_a_crash() {
    let wat = r#"(module
      (import "env" "again" (func $again (param i32) (result i32)))
      (func $down (export "down") (param i32) (result i32)
        (i32.add (call $down (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
      (func (export "bounce") (param i32) (result i32)
        (i32.add (call $again (i32.add (local.get 0) (i32.const 1))) (i32.const 1))))"#;
    let src = r#"import mod from './m.wasm';
let e;
({ exports: e } = new WebAssembly.Instance(mod, { env: { again: (n) => e.bounce(n) } }));
const attempt = (f) => { try { f(); return 'returned'; } catch (err) { return [err.name, err.message]; } };
export default { rpc: class extends RpcTarget {
  down() { return attempt(() => e.down(0)); }
  bounce() { return attempt(() => e.bounce(0)); }
  ok() { return 'ok'; }
} };"#;
    let iso = load_wasm("wasm-deep", src, wat, Default::default()).await;
    let down = iso
        .rpc_target()
        .call("down", vec![])
        .await
        .unwrap()
        .to_json();
    assert_eq!(
        down,
        serde_json::json!(["RuntimeError", "call stack exhausted"])
    );
    // wasm -> JavaScript -> wasm -> ...: whichever stack limit comes first, an error.
    let bounce = iso
        .rpc_target()
        .call("bounce", vec![])
        .await
        .unwrap()
        .to_json();
    let name = bounce[0].as_str().unwrap_or_default();
    assert!(
        name == "RuntimeError" || name == "InternalError" || name == "RangeError",
        "{bounce}"
    );
    assert!(
        bounce[1].as_str().unwrap_or_default().contains("stack"),
        "{bounce}"
    );
    assert!(!iso.is_broken());
    assert_eq!(
        iso.rpc_target().call("ok", vec![]).await.unwrap().as_str(),
        Some("ok")
    );
}

#[tokio::test]
async fn javascript_spinning_inside_a_wasm_import_hits_the_cpu_limit() {
    let wat = r#"(module
      (import "env" "spin" (func $spin))
      (func (export "run") (call $spin)))"#;
    let src = r#"import mod from './m.wasm';
const { exports: e } = new WebAssembly.Instance(mod, { env: { spin() { for (;;) {} } } });
export default { rpc: class extends RpcTarget { run() { e.run(); } } };"#;
    let iso = load_wasm("wasm-import-spin", src, wat, Default::default()).await;
    let err = iso.rpc_target().call("run", vec![]).await.unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert_eq!(err.message(), "CPU time limit of 1000 ms exceeded");
    assert!(iso.is_broken());
}

#[tokio::test]
async fn an_isolate_may_make_only_so_many_wasm_memories() {
    let src = r#"import mod from './m.wasm';
export default { rpc: class extends RpcTarget { run() {
  const made = [];
  try { for (;;) made.push(new WebAssembly.Memory({ initial: 0 })); }
  catch (e) { return [made.length, e.name, e.message]; }
} } };"#;
    let iso = load_wasm("wasm-memories", src, "(module)", Default::default()).await;
    let out = iso
        .rpc_target()
        .call("run", vec![])
        .await
        .unwrap()
        .to_json();
    assert_eq!(
        out,
        serde_json::json!([
            16,
            "RangeError",
            "an isolate may make at most 16 WebAssembly memories"
        ])
    );
}
