//! The seed's scenarios 1–8 (shared/seed/capnweb-rpctarget-worker-loader-spike.md), run in
//! process through the Loader, with the seed's JavaScript from `examples/<name>/index.js`.

use std::sync::{Arc, Mutex, OnceLock};

use capnweb::{RequestValue, Value};
use loader::{Loader, WorkerCode, WorkerStub};

const MATH: &str = include_str!("../../../examples/math/index.js");
const MATH_CALLER: &str = include_str!("../../../examples/math/caller.js");
const PIPELINE: &str = include_str!("../../../examples/pipeline/index.js");
const PIPELINE_CALLER: &str = include_str!("../../../examples/pipeline/caller.js");
const ORCHESTRATOR: &str = include_str!("../../../examples/orchestrator/index.js");
const RUNTIME: &str = include_str!("../../../examples/runtime/index.js");
const SESSIONS: &str = include_str!("../../../examples/sessions/index.js");
const CALLBACKS: &str = include_str!("../../../examples/callbacks/index.js");
const CALLBACKS_CALLER: &str = include_str!("../../../examples/callbacks/caller.js");
const ERRORS: &str = include_str!("../../../examples/errors/index.js");
const CONCURRENT: &str = include_str!("../../../examples/concurrent/index.js");
const WASM: &str = include_str!("../../../examples/wasm/index.js");
const WASM_GLUE: &str = include_str!("../../../examples/wasm/wasm/processor.js");
const WASM_WAT: &str = include_str!("../../../examples/wasm/wasm/processor.wat");
const WASM_BINARY: &[u8] = include_bytes!("../../../examples/wasm/wasm/processor.wasm");

fn get(loader: &Loader, id: &str, code: WorkerCode) -> WorkerStub {
    loader.get(id, move || {
        let code = code.clone();
        async move { Ok::<_, String>(code) }
    })
}

fn code_value(src: &str) -> Value {
    Value::object([
        ("compatibilityDate", Value::from("2024-01-01")),
        ("mainModule", Value::from("index.js")),
        (
            "modules",
            Value::object([("index.js", Value::object([("esModule", Value::from(src))]))]),
        ),
    ])
}

/// The value as JSON, with integral numbers written as integers (so `json!` literals compare).
fn json(v: &Value) -> serde_json::Value {
    fn ints(j: serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match j {
            J::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => J::from(f as i64),
                _ => J::Number(n),
            },
            J::Array(a) => J::Array(a.into_iter().map(ints).collect()),
            J::Object(o) => J::Object(o.into_iter().map(|(k, v)| (k, ints(v))).collect()),
            other => other,
        }
    }
    ints(v.to_json())
}

#[tokio::test]
async fn scenario_1_rpc_target_in_dynamic_worker() {
    let loader = Loader::default();
    let stub = get(&loader, "math-function", WorkerCode::single(MATH));
    let target = stub.get_rpc_target();
    let sum = target.call("add", vec![2.into(), 3.into()]).await.unwrap();
    let product = target
        .call("multiply", vec![4.into(), 5.into()])
        .await
        .unwrap();
    assert_eq!(sum.as_f64(), Some(5.0));
    assert_eq!(product.as_f64(), Some(20.0));

    // The same through env.LOADER from a JavaScript caller, as the seed's loader worker does.
    let caller = get(
        &loader,
        "math-caller",
        WorkerCode::single(MATH_CALLER)
            .with_env("LOADER", loader.binding())
            .with_env("CODE", MATH),
    );
    let out = caller.get_rpc_target().call("run", vec![]).await.unwrap();
    assert_eq!(
        json(&out),
        serde_json::json!({ "sum": 5, "product": 20, "status": 200, "text": "OK" })
    );
}

/// Records the bridge's `isolate::rpc` trace events (call issued / call settled) in order.
#[derive(Default, Clone)]
struct RpcTrace(Arc<Mutex<Vec<(String, String, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RpcTrace {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "isolate::rpc" {
            return;
        }
        #[derive(Default)]
        struct Fields(String, String, String);
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "function" => self.0 = value.to_owned(),
                    "event" => self.1 = value.to_owned(),
                    "method" => self.2 = value.to_owned(),
                    _ => {}
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.record_str(field, format!("{value:?}").trim_matches('"'));
            }
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if let Ok(mut log) = self.0.lock() {
            log.push((f.0, f.1, f.2));
        }
    }
}

fn rpc_trace() -> RpcTrace {
    static TRACE: OnceLock<RpcTrace> = OnceLock::new();
    TRACE
        .get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt;
            let trace = RpcTrace::default();
            let subscriber = tracing_subscriber::registry().with(trace.clone());
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber");
            trace
        })
        .clone()
}

#[tokio::test]
async fn scenario_2_promise_pipelining() {
    let trace = rpc_trace();
    let loader = Loader::default();
    let pipeline = get(&loader, "pipeline", WorkerCode::single(PIPELINE));
    let caller = get(
        &loader,
        "pipeline-caller",
        WorkerCode::single(PIPELINE_CALLER).with_env("PIPELINE", pipeline.to_binding()),
    );
    let result = caller.get_rpc_target().call("run", vec![]).await.unwrap();
    let r = json(&result);
    assert_eq!(r["saved"], true);
    assert_eq!(r["data"]["id"], "user-123");
    assert_eq!(r["data"]["transformed"], true);
    assert!(r["data"]["value"].is_number());

    // The caller issued all three calls before the pipeline answered the first one.
    let events = trace.0.lock().unwrap().clone();
    let pos = |function: &str, event: &str, method: &str| {
        events
            .iter()
            .position(|(f, e, m)| f == function && e == event && m == method)
            .unwrap_or_else(|| panic!("no {event} {method} from {function} in {events:?}"))
    };
    let first_settled = pos("pipeline", "settled", "fetchData");
    for method in ["fetchData", "transform", "save"] {
        assert!(
            pos("pipeline-caller", "issued", method) < first_settled,
            "{method} was not issued before fetchData settled: {events:?}"
        );
    }
    assert!(pos("pipeline", "settled", "transform") > first_settled);
    assert!(pos("pipeline", "settled", "save") > pos("pipeline", "settled", "transform"));
}

#[tokio::test]
async fn scenario_3_service_binding_pass_through() {
    let loader = Loader::default();
    let runtime = get(&loader, "runtime", WorkerCode::single(RUNTIME));
    let orchestrator = get(
        &loader,
        "orchestrator",
        WorkerCode::single(ORCHESTRATOR).with_env("RUNTIME", runtime.to_binding()),
    );
    let payload = Value::object([("task", Value::from("resize")), ("width", Value::from(640))]);
    let out = orchestrator
        .get_rpc_target()
        .call("executeWithRuntime", vec!["fn-42".into(), payload])
        .await
        .unwrap();
    assert_eq!(
        json(&out),
        serde_json::json!({
            "functionId": "fn-42",
            "payload": { "task": "resize", "width": 640 },
            "executedBy": "runtime"
        })
    );
}

#[tokio::test]
async fn scenario_4_rpc_stub_return_values() {
    let loader = Loader::default();
    let stub = get(&loader, "sessions", WorkerCode::single(SESSIONS));
    let manager = stub.get_rpc_target();
    let session = manager
        .call("createSession", vec!["user-123".into()])
        .await
        .unwrap();
    let Value::Stub(session) = session else {
        panic!("createSession did not return a stub: {session:?}");
    };
    let set = session
        .call("set", vec!["preference".into(), "dark".into()])
        .await
        .unwrap();
    assert_eq!(set.as_bool(), Some(true));
    let pref = session
        .call("get", vec!["preference".into()])
        .await
        .unwrap();
    assert_eq!(pref.as_str(), Some("dark"));
    let id = session.call("getSessionId", vec![]).await.unwrap();
    assert!(
        id.as_str().unwrap().starts_with("session-user-123-"),
        "{id:?}"
    );
    // Instance fields are private: only prototype methods are reachable.
    let err = session.call("data", vec![]).await.unwrap_err();
    assert_eq!(err.name(), "TypeError");
    let field = session.get("sessionId").await.unwrap();
    assert!(field.is_undefined());
    // A second session has its own state.
    let Value::Stub(other) = manager
        .call("createSession", vec!["user-456".into()])
        .await
        .unwrap()
    else {
        panic!("not a stub");
    };
    assert!(other
        .call("get", vec!["preference".into()])
        .await
        .unwrap()
        .is_undefined());
}

#[tokio::test]
async fn scenario_5_bidirectional_callbacks() {
    let loader = Loader::default();
    let caller = get(
        &loader,
        "callback-caller",
        WorkerCode::single(CALLBACKS_CALLER)
            .with_env("LOADER", loader.binding())
            .with_env("CODE", code_value(CALLBACKS)),
    );
    let out = json(&caller.get_rpc_target().call("run", vec![]).await.unwrap());
    assert_eq!(
        out["result"]["processed"],
        serde_json::json!({ "items": [1, 2, 3] })
    );
    assert!(out["result"]["timestamp"].is_number());
    assert_eq!(
        out["log"],
        serde_json::json!([
            ["progress", 0, "Starting..."],
            ["progress", 50, "Halfway done..."],
            ["progress", 100, "Finishing..."],
            ["complete", out["result"].clone()],
        ])
    );
}

#[tokio::test]
async fn scenario_6_error_propagation() {
    let loader = Loader::default();
    let target = get(&loader, "errors", WorkerCode::single(ERRORS)).get_rpc_target();
    let err = target.call("willFail", vec![]).await.unwrap_err();
    assert_eq!(err.name(), "Error");
    assert_eq!(err.message(), "Intentional failure");

    let err = target.call("willThrowCustom", vec![]).await.unwrap_err();
    assert_eq!(err.name(), "Error");
    assert_eq!(err.message(), "Custom error");
    assert_eq!(
        err.prop("code").and_then(Value::as_str),
        Some("CUSTOM_ERROR")
    );
    assert_eq!(
        err.prop("details").map(json),
        Some(serde_json::json!({ "reason": "testing" }))
    );
}

#[tokio::test]
async fn scenario_7_concurrent_rpc_calls() {
    let loader = Loader::default();
    let target = get(&loader, "concurrent", WorkerCode::single(CONCURRENT)).get_rpc_target();
    for concurrency in [100usize, 1000] {
        let promises: Vec<_> = (0..concurrency)
            .map(|i| std::future::IntoFuture::into_future(target.call("compute", vec![i.into()])))
            .collect();
        let results = futures::future::join_all(promises).await;
        for (i, r) in results.into_iter().enumerate() {
            let r = json(&r.unwrap());
            assert_eq!(r, serde_json::json!({ "input": i, "square": i * i }));
        }
    }
    let calls = target.call("callCount", vec![]).await.unwrap();
    assert_eq!(calls.as_f64(), Some(1100.0));
}

#[tokio::test]
async fn scenario_8_wasm_rpc_target() {
    let loader = Loader::default();
    // The seed's loader call: index.js, the glue and the binary, as module-map entries.
    let code = WorkerCode::from_value(&Value::object([
        ("compatibilityDate", Value::from("2024-01-01")),
        ("mainModule", Value::from("index.js")),
        (
            "modules",
            Value::object([
                ("index.js", Value::object([("esModule", Value::from(WASM))])),
                (
                    "./wasm/processor.js",
                    Value::object([("esModule", Value::from(WASM_GLUE))]),
                ),
                (
                    "./wasm/processor.wasm",
                    Value::object([("wasm", Value::Bytes(capnweb::Bytes::new(WASM_BINARY)))]),
                ),
            ]),
        ),
    ]))
    .expect("valid WorkerCode");
    let target = get(&loader, "wasm-rpc", code).get_rpc_target();

    // `process` before `initialize` initializes on first call, as the seed says.
    let data = serde_json::json!({ "id": "user-123", "items": [1, 2, 3], "delta": -40, "nested": { "n": 100 } });
    let text = serde_json::to_string(&data).unwrap();
    let out = target
        .call("process", vec![Value::from_json(&data)])
        .await
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(out.as_str().expect("a string")).unwrap();
    assert_eq!(
        out,
        serde_json::json!({ "sum": 66, "count": 5, "bytes": text.len() })
    );
    let init = target.call("initialize", vec![]).await.unwrap();
    assert_eq!(json(&init), serde_json::json!({ "initialized": true }));

    // Big enough that the allocator grows linear memory, detaching the glue's cached view.
    let many: Vec<i64> = (1..=40_000).collect();
    let out = target
        .call("process", vec![Value::from_json(&serde_json::json!(many))])
        .await
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(out.as_str().unwrap()).unwrap();
    assert_eq!(out["sum"], 800_020_000);
    assert_eq!(out["count"], 40_000);

    // An error thrown by wasm (through its `__wbindgen_throw` import) reaches the caller.
    let err = target
        .call("process", vec![Value::from_json(&serde_json::json!([1.5]))])
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Error");
    assert_eq!(err.message(), "process_data: only integers are supported");
    // And the module still works after it.
    let out = target
        .call(
            "process",
            vec![Value::from_json(&serde_json::json!([2, "3", -1]))],
        )
        .await
        .unwrap();
    assert_eq!(out.as_str(), Some(r#"{"sum":1,"count":2,"bytes":10}"#));
}

/// `examples/wasm/wasm/processor.wasm` is `processor.wat` compiled (`BLESS=1` rewrites it).
#[test]
fn processor_wasm_is_its_wat_source_compiled() {
    let compiled = wat::parse_str(WASM_WAT).expect("processor.wat is valid");
    if std::env::var_os("BLESS").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/wasm/wasm/processor.wasm"
        );
        std::fs::write(path, &compiled).expect("write processor.wasm");
        return;
    }
    assert!(
        compiled == WASM_BINARY,
        "processor.wasm is stale: run `BLESS=1 cargo test -p loader --test seed processor`"
    );
}

#[tokio::test]
async fn fetch_handler_of_a_loaded_function_answers() {
    let loader = Loader::default();
    let stub = get(&loader, "math-fetch", WorkerCode::single(MATH));
    let res = stub
        .fetch(RequestValue {
            url: "https://math.example/".into(),
            method: "GET".into(),
            headers: vec![],
            body: None,
            extra: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(res.status, 200);
    assert!(matches!(res.body, Some(capnweb::Body::Text(ref t)) if t == "OK"));
}
