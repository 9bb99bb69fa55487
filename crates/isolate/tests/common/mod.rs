//! Helpers shared by the isolate tests.
#![allow(dead_code)]

use capnweb::Value;
use isolate::{Isolate, IsolateConfig, LoadError, ModuleSource};

pub fn config(id: &str, modules: &[(&str, ModuleSource)]) -> IsolateConfig {
    IsolateConfig {
        id: id.into(),
        modules: modules
            .iter()
            .map(|(n, m)| ((*n).to_owned(), m.clone()))
            .collect(),
        main_module: modules[0].0.to_owned(),
        env: Value::Object(Default::default()),
        global_outbound: None,
        limits: Default::default(),
        call_budget: None,
    }
}

pub fn es(src: &str) -> ModuleSource {
    ModuleSource::EsModule(src.to_owned())
}

pub async fn load(id: &str, src: &str) -> Isolate {
    Isolate::new(IsolateConfig::single(id, src))
        .await
        .expect("isolate loads")
}

pub async fn load_err(modules: &[(&str, ModuleSource)]) -> LoadError {
    Isolate::new(config("bad", modules))
        .await
        .expect_err("load fails")
}

/// Runs `body` (an async function body) in a fresh isolate and returns its result as JSON.
pub async fn eval(body: &str) -> serde_json::Value {
    let src = format!(
        "export default {{ rpc: class extends RpcTarget {{ async run() {{ {body} }} }} }};"
    );
    run(&load("eval", &src).await).await
}

/// Loads `modules` (the first is the main module) and returns its RPC target's `run()` as JSON.
pub async fn run_modules(id: &str, modules: &[(&str, ModuleSource)]) -> serde_json::Value {
    let iso = Isolate::new(config(id, modules))
        .await
        .unwrap_or_else(|e| panic!("{id} loads: {e}"));
    run(&iso).await
}

/// The isolate's RPC target's `run()`, as JSON.
pub async fn run(iso: &Isolate) -> serde_json::Value {
    iso.rpc_target()
        .call("run", vec![])
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"))
        .to_json()
}
