//! The isolate's limits hold on WebAssembly's `externref` paths: a wasm loop that keeps making
//! JavaScript references (GC heap objects) ends at the CPU limit with the usual error; one
//! that keeps them alive is refused by the memory budget; an externref table grown without
//! bound is refused by the memory budget, from wasm (`table.grow` is -1) and from JavaScript
//! (`RangeError`).

mod common;
use common::*;

use isolate::{Isolate, ModuleSource, RESOURCE_LIMIT_ERROR};

const MIB: usize = 1024 * 1024;

/// An isolate whose `index.js` is `src` and whose `./m.wasm` is `wat`, with a 16 MiB memory
/// limit (and the default 1 s of CPU).
async fn load(id: &str, src: &str, wat: &str) -> Isolate {
    let mut cfg = config(
        id,
        &[
            ("index.js", es(src)),
            (
                "m.wasm",
                ModuleSource::Wasm(wat::parse_str(wat).expect("valid wat")),
            ),
        ],
    );
    cfg.limits.memory_bytes = 16 * MIB;
    Isolate::new(cfg).await.expect("isolate loads")
}

const LOOPS: &str = r#"(module
  (import "env" "make" (func $make (result externref)))
  (table $t (export "t") 0 externref)
  ;; Makes references for ever, dropping each.
  (func (export "churn") (loop $l (drop (call $make)) (br $l)))
  ;; Keeps every reference in a table grown by one each time; returns how many it kept once
  ;; growing is refused.
  (func (export "hoard") (result i32) (local $n i32)
    (loop $l
      (if (i32.eq (table.grow $t (call $make) (i32.const 1)) (i32.const -1))
        (then (return (local.get $n))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l))
    (unreachable))
  ;; Grows the table by 64 Ki null elements at a time until refused; returns its size.
  (func (export "sprawl") (result i32)
    (loop $l
      (br_if $l (i32.ne (table.grow $t (ref.null extern) (i32.const 65536)) (i32.const -1))))
    (table.size $t)))"#;

const SRC: &str = r#"import mod from './m.wasm';
const same = {};
let fresh = false;
const { exports: e } = new WebAssembly.Instance(mod, {
  env: { make: () => (fresh ? { pad: [1, 2, 3, 4] } : same) },
});
const outcome = (f) => { try { return { value: f() }; } catch (err) { return { error: err.name, message: err.message }; } };
export default { rpc: class extends RpcTarget {
  churn() { e.churn(); }
  hoard(makeFresh) { fresh = makeFresh; return outcome(() => e.hoard()); }
  sprawl() { return e.sprawl(); }
  jsGrow(n) { return outcome(() => e.t.grow(n)); }
  length() { return e.t.length; }
  ok() { return 'ok'; }
} };"#;

#[tokio::test]
async fn a_wasm_loop_making_javascript_references_ends_at_the_cpu_limit() {
    let iso = load("externref-churn", SRC, LOOPS).await;
    let err = iso.rpc_target().call("churn", vec![]).await.unwrap_err();
    assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
    assert_eq!(err.message(), "CPU time limit of 1000 ms exceeded");
    assert!(iso.is_broken());
}

#[tokio::test]
async fn a_wasm_loop_keeping_javascript_references_is_refused_by_the_memory_budget() {
    // The same object each time: the JavaScript heap stays put, so what refuses is what wasm
    // is charged for (the table, the held value, the GC heap).
    let iso = load("externref-hoard", SRC, LOOPS).await;
    let out = iso
        .rpc_target()
        .call("hoard", vec![false.into()])
        .await
        .unwrap()
        .to_json();
    // `table.grow` is -1, or making the externref is a RangeError in the import (thrown to the
    // caller through wasm: in practice the GC heap's growth is refused); either way the budget
    // refused.
    match (&out["value"], &out["error"]) {
        (serde_json::Value::Number(n), _) => {
            let n = n.as_u64().unwrap() as usize;
            assert!(
                n > 10_000 && n * (isolate::REF_BYTES + 8) <= 16 * MIB,
                "{out}"
            );
        }
        (_, serde_json::Value::String(name)) => {
            assert_eq!(name, "RangeError", "{out}");
            assert!(out["message"].as_str().unwrap().contains("16 MiB"), "{out}");
        }
        _ => panic!("{out}"),
    }
    assert!(!iso.is_broken(), "a refused growth is not fatal");
    let ok = iso.rpc_target().call("ok", vec![]).await.unwrap();
    assert_eq!(ok.as_str(), Some("ok"));

    // A new object each time: the JavaScript heap grows too, and whichever part of the one
    // budget runs out first refuses.
    let iso = load("externref-hoard-fresh", SRC, LOOPS).await;
    match iso.rpc_target().call("hoard", vec![true.into()]).await {
        Ok(v) => {
            let out = v.to_json();
            assert!(
                out["value"].is_number() || out["error"] == "RangeError",
                "{out}"
            );
        }
        Err(err) => {
            assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{err}");
            assert!(
                err.message().contains("memory limit 16 MiB exceeded"),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn an_externref_table_grown_without_bound_is_refused_by_the_memory_budget() {
    let iso = load("externref-sprawl", SRC, LOOPS).await;
    let size = iso
        .rpc_target()
        .call("sprawl", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap() as usize;
    // 8 bytes per element against 16 MiB (with the JavaScript heap): refused before 2 Mi.
    assert!(size >= 65536 && size * 8 <= 16 * MIB, "{size}");
    let out = iso
        .rpc_target()
        .call("jsGrow", vec![5_000_000.into()])
        .await
        .unwrap()
        .to_json();
    assert_eq!(out["error"], "RangeError", "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("would exceed the isolate's memory limit of 16 MiB"),
        "{out}"
    );
    let length = iso.rpc_target().call("length", vec![]).await.unwrap();
    assert_eq!(
        length.as_f64(),
        Some(size as f64),
        "a refused growth grows nothing"
    );
    assert!(!iso.is_broken());
}
