//! The `WebAssembly` JavaScript API inside an isolate: exported functions and value
//! conversions, imports calling JavaScript, memory buffers, globals, tables, the error classes,
//! and `.wasm` modules of the module map.

mod common;
use common::*;
use isolate::{Isolate, ModuleSource};
use serde_json::json;

/// Runs `body` (an async function body) in an isolate where `mod` is the WebAssembly.Module
/// compiled from `wat` (imported from the module map as `./m.wasm`); returns its result.
async fn run(wat: &str, body: &str) -> serde_json::Value {
    let bytes = wat::parse_str(wat).expect("valid wat");
    let src = format!(
        "import mod from './m.wasm';\n\
         export default {{ rpc: class extends RpcTarget {{ async run() {{ {body} }} }} }};"
    );
    let iso = Isolate::new(config(
        "wasm",
        &[
            ("index.js", es(&src)),
            ("m.wasm", ModuleSource::Wasm(bytes)),
        ],
    ))
    .await
    .expect("isolate loads");
    iso.rpc_target()
        .call("run", vec![])
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"))
        .to_json()
}

const NUMBERS: &str = r#"(module
  (func (export "add32") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "add64") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func (export "mul32f") (param f32 f32) (result f32) (f32.mul (local.get 0) (local.get 1)))
  (func (export "div64f") (param f64 f64) (result f64) (f64.div (local.get 0) (local.get 1)))
  (func (export "swap") (param i32 i64) (result i64 i32) (local.get 1) (local.get 0))
  (func (export "nothing")))"#;

#[tokio::test]
async fn exported_functions_convert_each_numeric_type() {
    let out = run(
        NUMBERS,
        r#"
        const e = new WebAssembly.Instance(mod).exports;
        let numberForI64;
        try { e.add64(1, 2n); } catch (err) { numberForI64 = err instanceof TypeError; }
        return [
          e.add32(2147483647, 1),              // wraps like ToInt32
          e.add32("40", 2.9),                  // ToInt32 of a string and a fraction
          String(e.add64(9007199254740993n, 1n)),
          String(e.add64(-1n, 0n)),
          typeof e.add64(1n, 1n),
          String(e.add64(2n ** 64n + 5n, 0n)), // ToBigInt64 wraps
          numberForI64,
          e.mul32f(0.1, 3) === Math.fround(Math.fround(0.1) * 3),
          e.div64f(1, 3) === 1 / 3,
          e.div64f(1, 0),
          String(e.swap(7, 8n)),
          e.nothing(),
          e.add32.length,
          typeof e.add32,
          Object.isFrozen(e),
          Object.getPrototypeOf(e),
        ].map((v) => v === undefined ? "undefined" : v === Infinity ? "Infinity" : v);
        "#,
    )
    .await;
    assert_eq!(
        out,
        json!([
            -2147483648,
            42,
            "9007199254740994",
            "-1",
            "bigint",
            "5",
            true,
            true,
            true,
            "Infinity",
            "8,7",
            "undefined",
            2,
            "function",
            true,
            null
        ])
    );
}

const IMPORTS: &str = r#"(module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "env" "big" (func $big (param i64) (result i64)))
  (import "env" "fail" (func $fail))
  (func (export "callTwice") (param i32) (result i32) (call $twice (local.get 0)))
  (func (export "callBig") (param i64) (result i64) (call $big (local.get 0)))
  (func (export "callFail") (call $fail)))"#;

#[tokio::test]
async fn imports_call_javascript_and_exceptions_cross_wasm_unchanged() {
    let out = run(
        IMPORTS,
        r#"
        const seen = [];
        const boom = new Error("from JavaScript");
        boom.code = 7;
        const { exports: e } = new WebAssembly.Instance(mod, { env: {
          twice: (x) => { seen.push(x); return x * 2; },
          big: (x) => { seen.push(typeof x); return x * 3n; },
          fail: () => { throw boom; },
        } });
        let caught;
        try { e.callFail(); } catch (err) { caught = err; }
        return [e.callTwice(21), String(e.callBig(5n)), seen, caught === boom, caught.code];
        "#,
    )
    .await;
    assert_eq!(out, json!([42, "15", [21, "bigint"], true, 7]));
}

const MEMORY: &str = r#"(module
  (memory (export "memory") 1 4)
  (func (export "sum") (param $ptr i32) (param $len i32) (result i32) (local $acc i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $len)))
      (local.set $acc (i32.add (local.get $acc) (i32.load8_u (local.get $ptr))))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (br $next)))
    (local.get $acc))
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;

#[tokio::test]
async fn memory_buffer_is_the_linear_memory_and_is_replaced_after_grow() {
    let out = run(
        MEMORY,
        r#"
        const { exports: e } = new WebAssembly.Instance(mod);
        const m = e.memory;
        const before = m.buffer;
        const view = new Uint8Array(before);
        view.set([1, 2, 3, 250], 100);
        e.poke(7, 99);
        const sameBuffer = m.buffer === before;
        const sawJs = e.sum(100, 4);
        const sawWasm = view[7];
        const old = e.grow(1);           // grown by wasm
        const detached = before.byteLength === 0 && view.length === 0;
        const after = m.buffer;
        const afterLength = after.byteLength;
        const kept = new Uint8Array(after)[101];
        const jsGrow = m.grow(2);         // grown by JavaScript
        const tooMuch = e.grow(10);       // past the declared maximum
        let rangeError;
        try { m.grow(10); } catch (err) { rangeError = err instanceof RangeError; }
        return [m instanceof WebAssembly.Memory, sameBuffer, sawJs, sawWasm, old, detached,
                afterLength, kept, jsGrow, after.byteLength, m.buffer.byteLength, tooMuch,
                rangeError];
        "#,
    )
    .await;
    assert_eq!(
        out,
        json!([true, true, 256, 99, 1, true, 131072, 2, 2, 0, 262144, -1, true])
    );
}

const REENTRANT: &str = r#"(module
  (import "env" "log" (func $log (param i32 i32)))
  (import "env" "again" (func $again (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasm")
  (func (export "hello") (call $log (i32.const 16) (i32.const 15)))
  (func $fact (export "fact") (param i32) (result i32)
    (if (result i32) (i32.le_s (local.get 0) (i32.const 1))
      (then (i32.const 1))
      (else (i32.mul (local.get 0) (call $again (i32.sub (local.get 0) (i32.const 1))))))))"#;

#[tokio::test]
async fn javascript_called_from_wasm_reads_memory_and_calls_wasm_again() {
    let out = run(
        REENTRANT,
        r#"
        const lines = [];
        let e;
        ({ exports: e } = new WebAssembly.Instance(mod, { env: {
          log: (ptr, len) => lines.push(new TextDecoder().decode(new Uint8Array(e.memory.buffer, ptr, len))),
          again: (n) => e.fact(n),   // wasm -> JS -> wasm -> JS -> ...
        } }));
        e.hello();
        return [lines, e.fact(10)];
        "#,
    )
    .await;
    assert_eq!(out, json!([["hello from wasm"], 3628800]));
}

const TRAPS: &str = r#"(module
  (memory 1)
  (func (export "unreachable") unreachable)
  (func (export "divide") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))"#;

#[tokio::test]
async fn traps_are_runtime_errors_and_the_instance_stays_usable() {
    let out = run(
        TRAPS,
        r#"
        const { exports: e } = new WebAssembly.Instance(mod);
        const trap = (f) => { try { f(); return "no trap"; } catch (err) {
          return [err instanceof WebAssembly.RuntimeError, err instanceof Error, err.name, err.message]; } };
        return [trap(() => e.unreachable()), trap(() => e.divide(1, 0)), trap(() => e.load(65536)),
                e.divide(7, 2)];
        "#,
    )
    .await;
    assert_eq!(
        out,
        json!([
            [
                true,
                true,
                "RuntimeError",
                "wasm `unreachable` instruction executed"
            ],
            [true, true, "RuntimeError", "integer divide by zero"],
            [true, true, "RuntimeError", "out of bounds memory access"],
            3
        ])
    );
}

#[tokio::test]
async fn invalid_bytes_are_compile_errors() {
    let out = eval(
        r#"
        const bad = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 99]);
        let sync, notBytes;
        try { new WebAssembly.Module(bad); } catch (err) { sync = [err instanceof WebAssembly.CompileError, err.name]; }
        try { new WebAssembly.Module("(module)"); } catch (err) { notBytes = err instanceof TypeError; }
        const rejected = await WebAssembly.compile(bad.buffer).then(() => "compiled", (err) => err.constructor.name);
        const text = new TextEncoder().encode("(module)");
        return [sync, notBytes, rejected, WebAssembly.validate(bad), WebAssembly.validate(text),
                WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))];
        "#,
    )
    .await;
    assert_eq!(
        out,
        json!([
            [true, "CompileError"],
            true,
            "CompileError",
            false,
            false,
            true
        ])
    );
}

const NEEDS: &str = r#"(module
  (import "env" "f" (func (param i32)))
  (import "env" "m" (memory 1))
  (import "env" "g" (global i32)))"#;

#[tokio::test]
async fn missing_or_mismatched_imports_are_link_errors() {
    let out = run(
        NEEDS,
        r#"
        const memory = new WebAssembly.Memory({ initial: 1 });
        const ok = { f() {}, m: memory, g: 1 };
        const fails = (imports) => { try { new WebAssembly.Instance(mod, imports); return "linked"; }
          catch (err) { return err.name; } };
        const other = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array([0,97,115,109,1,0,0,0,
          1,4,1,96,0,0, 3,2,1,0, 7,5,1,1,102,0,0, 10,4,1,2,0,11]))).exports.f; // () -> ()
        return [
          fails({ env: ok }),
          fails({ env: { ...ok, f: undefined } }),
          fails({ env: { ...ok, f: 42 } }),
          fails({ env: { ...ok, f: other } }),          // a wasm function of the wrong type
          fails({ env: { ...ok, m: new ArrayBuffer(65536) } }),
          fails({ env: { ...ok, g: 1n } }),
          fails({ env: { ...ok, m: new WebAssembly.Memory({ initial: 0 }) } }), // too small
          fails({}),
          fails(undefined),
          WebAssembly.Module.imports(mod),
        ];
        "#,
    )
    .await;
    assert_eq!(
        out,
        json!([
            "linked",
            "LinkError",
            "LinkError",
            "LinkError",
            "LinkError",
            "LinkError",
            "LinkError",
            "TypeError",
            "TypeError",
            [
                { "module": "env", "name": "f", "kind": "function" },
                { "module": "env", "name": "m", "kind": "memory" },
                { "module": "env", "name": "g", "kind": "global" }
            ]
        ])
    );
}

const START: &str = r#"(module
  (import "env" "seen" (func $seen (param i32)))
  (global (export "answer") i32 (i32.const 42))
  (func $start (call $seen (i32.const 1)))
  (start $start)
  (func (export "f") (result i32) (global.get 0)))"#;

#[tokio::test]
async fn instantiate_compile_and_module_reflection_follow_the_spec() {
    let bytes = wat::parse_str(START).expect("valid wat");
    let list: Vec<String> = bytes.iter().map(u8::to_string).collect();
    let out = eval(&format!(
        r#"
        const bytes = new Uint8Array([{}]);
        let starts = 0;
        const imports = {{ env: {{ seen: (x) => {{ starts += x; }} }} }};
        const both = await WebAssembly.instantiate(bytes, imports);
        const module = await WebAssembly.compile(bytes.buffer);
        const instance = await WebAssembly.instantiate(module, imports);
        const rejected = await WebAssembly.instantiate(42).then(() => "resolved", (e) => e.name);
        return [
          both.module instanceof WebAssembly.Module, both.instance instanceof WebAssembly.Instance,
          instance instanceof WebAssembly.Instance, instance.exports.f(), starts,
          instance.exports.answer instanceof WebAssembly.Global, instance.exports.answer.value,
          WebAssembly.Module.exports(module), rejected, String(WebAssembly),
          Object.keys(WebAssembly).length,
        ];
        "#,
        list.join(",")
    ))
    .await;
    assert_eq!(
        out,
        json!([
            true,
            true,
            true,
            42,
            2,
            true,
            42,
            [
                { "name": "answer", "kind": "global" },
                { "name": "f", "kind": "function" }
            ],
            "TypeError",
            "[object WebAssembly]",
            0
        ])
    );
}

const TABLE: &str = r#"(module
  (import "env" "g" (global $g (mut i64)))
  (type $unary (func (param i32) (result i32)))
  (table (export "table") 2 funcref)
  (elem (i32.const 0) $inc)
  (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func (export "dbl") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func (export "apply") (param i32 i32) (result i32)
    (call_indirect (type $unary) (local.get 1) (local.get 0)))
  (func (export "bump") (global.set $g (i64.add (global.get $g) (i64.const 1)))))"#;

#[tokio::test]
async fn globals_and_tables_work_from_both_sides() {
    let out = run(
        TABLE,
        r#"
        const g = new WebAssembly.Global({ value: "i64", mutable: true }, 41n);
        const { exports: e } = new WebAssembly.Instance(mod, { env: { g } });
        e.bump();
        const afterBump = String(g.value);
        g.value = 100n;
        e.bump();
        const fixed = new WebAssembly.Global({ value: "f32" }, 1.5);
        let immutable;
        try { fixed.value = 2; } catch (err) { immutable = err instanceof TypeError; }
        const t = e.table;
        const viaInc = e.apply(0, 5);
        t.set(1, e.dbl);
        const viaDbl = e.apply(1, 5);
        let nullCall;
        t.set(1, null);
        try { e.apply(1, 5); } catch (err) { nullCall = err instanceof WebAssembly.RuntimeError; }
        const grown = t.grow(3);
        let notAFunction;
        try { t.set(0, () => 1); } catch (err) { notAFunction = err instanceof TypeError; }
        const own = new WebAssembly.Table({ element: "anyfunc", initial: 1 });
        own.set(0, e.dbl);
        return [afterBump, String(g.value), fixed.value, immutable, t instanceof WebAssembly.Table,
                viaInc, viaDbl, nullCall, grown, t.length, t.get(0)(9), t.get(4), notAFunction,
                own.get(0)(21), own.length];
        "#,
    )
    .await;
    assert_eq!(
        out,
        json!(["42", "101", 1.5, true, true, 6, 10, true, 2, 5, 10, null, true, 42, 1])
    );
}

#[tokio::test]
async fn webassembly_is_built_on_first_use_and_can_be_replaced() {
    let out = eval(
        r#"
        const d = Object.getOwnPropertyDescriptor(globalThis, "WebAssembly");
        const lazy = typeof d.get === "function";
        const first = WebAssembly;
        const same = WebAssembly === first;
        const enumerable = Object.keys(globalThis).includes("WebAssembly");
        globalThis.WebAssembly = 5;
        return [lazy, same, typeof first.instantiate, enumerable, WebAssembly];
        "#,
    )
    .await;
    assert_eq!(out, json!([true, true, "function", false, 5]));
}

#[tokio::test]
async fn a_wasm_module_of_the_module_map_is_a_webassembly_module_even_if_the_global_is_replaced() {
    let bytes = wat::parse_str(NUMBERS).expect("valid wat");
    let iso = Isolate::new(config(
        "map",
        &[
            (
                "index.js",
                es("globalThis.WebAssembly = undefined;\n\
                    const { default: m } = await import('./lib/numbers.wasm');\n\
                    export default { rpc: class extends RpcTarget { run() {\n\
                      return [typeof m, Object.prototype.toString.call(m)]; } } };"),
            ),
            ("lib/numbers.wasm", ModuleSource::Wasm(bytes)),
        ],
    ))
    .await
    .expect("loads");
    let out = iso
        .rpc_target()
        .call("run", vec![])
        .await
        .unwrap()
        .to_json();
    assert_eq!(out, json!(["object", "[object WebAssembly.Module]"]));
}
