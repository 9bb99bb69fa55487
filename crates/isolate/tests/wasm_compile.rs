//! WebAssembly compilation: modules are capped in size, `WebAssembly.compile` runs off the
//! JavaScript thread (the isolate answers other calls meanwhile), and the compile time is
//! charged to the invocation's CPU time.

mod common;
use common::*;

use std::time::Duration;

use isolate::{Isolate, IsolateConfig, LoadError, ModuleSource, RESOURCE_LIMIT_ERROR};
use serde_json::json;

/// Builds (in JavaScript) a valid module of `n` bytes or more: the header and one custom
/// section holding `n` bytes.
const BIG_MODULE: &str = r#"
  function bigModule(n) {
    const leb = (v) => { const out = []; do { let b = v & 0x7f; v = Math.floor(v / 128); if (v) b |= 0x80; out.push(b); } while (v); return out; };
    const name = [1, 0x78];
    const size = leb(name.length + n);
    const head = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, ...size, ...name];
    const bytes = new Uint8Array(head.length + n);
    bytes.set(head);
    return bytes;
  }
"#;

fn big_limits(id: &str, src: &str) -> IsolateConfig {
    let mut cfg = IsolateConfig::single(id, src);
    cfg.limits.memory_bytes = 512 * 1024 * 1024;
    cfg.limits.cpu_time = Duration::from_secs(30);
    cfg
}

#[tokio::test]
async fn a_module_over_32_mib_is_refused_with_a_range_error() {
    let src = format!(
        "{BIG_MODULE}
        export default {{ rpc: class extends RpcTarget {{ async run() {{
          const name = async (f) => {{ try {{ await f(); return 'ok'; }} catch (e) {{ return e.name; }} }};
          const small = bigModule(1024);
          const over = bigModule(32 * 1024 * 1024);
          return {{
            small: await name(() => new WebAssembly.Module(small)),
            smallAsync: await name(() => WebAssembly.compile(small)),
            size: over.length,
            sync: await name(() => new WebAssembly.Module(over)),
            compile: await name(() => WebAssembly.compile(over)),
            instantiate: await name(() => WebAssembly.instantiate(over)),
            validate: WebAssembly.validate(over),
            message: await WebAssembly.compile(over).catch((e) => e.message),
          }};
        }} }} }};"
    );
    let iso = Isolate::new(big_limits("too-big", &src)).await.unwrap();
    let out = run(&iso).await;
    assert!(out["size"].as_u64().unwrap() > 32 * 1024 * 1024, "{out}");
    assert_eq!(out["small"], json!("ok"), "{out}");
    assert_eq!(out["smallAsync"], json!("ok"), "{out}");
    assert_eq!(out["sync"], json!("RangeError"), "{out}");
    assert_eq!(out["compile"], json!("RangeError"), "{out}");
    assert_eq!(out["instantiate"], json!("RangeError"), "{out}");
    assert_eq!(out["validate"], json!(false), "{out}");
    let message = out["message"].as_str().unwrap();
    assert!(message.contains("33554432"), "{message}");
}

#[tokio::test]
async fn a_module_map_wasm_module_over_32_mib_fails_to_load() {
    let mut bytes = vec![0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0];
    let n: u32 = 32 * 1024 * 1024 + 2;
    let mut v = n;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        bytes.push(if v != 0 { b | 0x80 } else { b });
        if v == 0 {
            break;
        }
    }
    bytes.extend_from_slice(&[1, 0x78]);
    bytes.resize(bytes.len() + n as usize - 2, 0);
    let mut cfg = config(
        "too-big-map",
        &[
            (
                "index.js",
                es("import m from './m.wasm'; export default {};"),
            ),
            ("m.wasm", ModuleSource::Wasm(bytes)),
        ],
    );
    cfg.limits.memory_bytes = 512 * 1024 * 1024;
    let err = Isolate::new(cfg).await.expect_err("too big to load");
    let LoadError::Module(message) = &err else {
        panic!("not a module error: {err:?}");
    };
    assert!(message.contains("m.wasm"), "{message}");
    assert!(message.contains("RangeError"), "{message}");
}

/// A module that takes a while to compile: `funcs` functions of arithmetic, varied by `seed`
/// so that no other test has compiled (and cached) the same bytes.
fn heavy_module(seed: u32, funcs: u32) -> Vec<u8> {
    let mut wat = String::from("(module\n");
    for i in 0..funcs {
        wat.push_str(&format!(
            "(func (export \"f{i}\") (param i32) (result i32) local.get 0"
        ));
        for j in 0..60 {
            wat.push_str(&format!(
                " i32.const {} i32.add i32.const {} i32.mul local.get 0 i32.xor",
                seed + i + j,
                j + 3
            ));
        }
        wat.push_str(")\n");
    }
    wat.push(')');
    wat::parse_str(&wat).expect("valid wat")
}

const COMPILER: &str = "import bytes from './heavy.bin';
export default { rpc: class extends RpcTarget {
  async compile() {
    const m = await WebAssembly.compile(bytes);
    globalThis.compiled = true;
    return WebAssembly.Module.exports(m).length;
  }
  ping() { return globalThis.compiled ? 'after the compile' : 'while compiling'; }
} };";

fn compiler(id: &str, seed: u32, cpu: Duration) -> IsolateConfig {
    let mut cfg = config(
        id,
        &[
            ("index.js", es(COMPILER)),
            ("heavy.bin", ModuleSource::Data(heavy_module(seed, 3000))),
        ],
    );
    cfg.limits.cpu_time = cpu;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webassembly_compile_runs_off_the_javascript_thread() {
    let iso = Isolate::new(compiler("compiler", 1, Duration::from_secs(60)))
        .await
        .unwrap();
    let target = iso.rpc_target();
    let compile = tokio::spawn(std::future::IntoFuture::into_future(
        target.call("compile", vec![]),
    ));
    // While the module compiles, the same isolate answers another call (made after it).
    let pong = target.call("ping", vec![]).await.unwrap();
    assert_eq!(pong.as_str(), Some("while compiling"));
    let n = compile.await.unwrap().unwrap();
    assert_eq!(n.as_f64(), Some(3000.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compile_time_is_charged_to_the_invocations_cpu_time() {
    let iso = Isolate::new(compiler("charged", 2, Duration::from_millis(50)))
        .await
        .unwrap();
    let err = iso
        .rpc_target()
        .call("compile", vec![])
        .await
        .expect_err("compiling takes longer than the CPU limit");
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert_eq!(err.message(), "CPU time limit of 50 ms exceeded");
    assert!(iso.is_broken());
}
