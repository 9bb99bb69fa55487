//! `externref` in the WebAssembly JS API: any JavaScript value crosses as itself (parameters,
//! results, multi-value results, globals, tables from both sides, imports), and the values wasm
//! drops are let go: a module that drops a million JavaScript references leaves the isolate's
//! memory (what wasm charged, the JavaScript heap, the values held) where it was.

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::{Context, Runtime, TypedArray};

/// An embedder that counts what wasm charges, against an optional limit.
#[derive(Default)]
struct Counting {
    used: Cell<usize>,
    limit: usize,
}

impl wasm::Embedder for Counting {
    fn should_stop(&self) -> bool {
        false
    }
    fn reserve(&self, bytes: usize) -> bool {
        let used = self.used.get().saturating_add(bytes);
        if self.limit > 0 && used > self.limit {
            return false;
        }
        self.used.set(used);
        true
    }
    fn release(&self, bytes: usize) {
        self.used.set(self.used.get() - bytes);
    }
    fn memory_limit(&self) -> usize {
        self.limit
    }
}

/// A JavaScript runtime with `WebAssembly` installed over a counting embedder.
struct Js {
    counting: Rc<Counting>,
    // Dropped in this order: the context, the runtime, then the `Wasm` (see `Wasm::new`).
    ctx: Context,
    rt: Runtime,
    wasm: Rc<wasm::Wasm>,
}

impl Js {
    /// With `bytes` (the module compiled from `wat`, if any) as a global `Uint8Array`, and a
    /// memory limit of `limit` bytes (0: none).
    fn new(wat: &str, limit: usize) -> Js {
        let counting = Rc::new(Counting {
            used: Cell::new(0),
            limit,
        });
        let wasm = wasm::Wasm::new(counting.clone());
        let rt = Runtime::new().expect("runtime");
        let ctx = Context::full(&rt).expect("context");
        ctx.with(|ctx| {
            let api: rquickjs::Function<'_> = ctx.eval(format!("({})", wasm::JS_API)).expect("api");
            let built: rquickjs::Object<'_> = api
                .call((wasm::natives(&ctx, &wasm).expect("natives"),))
                .expect("built");
            let global: rquickjs::Object<'_> = built.get("WebAssembly").expect("namespace");
            ctx.globals().set("WebAssembly", global).expect("set");
            if !wat.is_empty() {
                let bytes = wat::parse_str(wat).expect("valid wat");
                let bytes = TypedArray::<u8>::new(ctx.clone(), bytes).expect("bytes");
                ctx.globals().set("bytes", bytes).expect("set");
            }
        });
        Js {
            counting,
            ctx,
            rt,
            wasm,
        }
    }

    /// Evaluates `src` and gives its value to `f`; a thrown exception fails the test.
    fn eval<R>(&self, src: &str, f: impl for<'js> FnOnce(rquickjs::Value<'js>) -> R) -> R {
        self.ctx
            .with(|ctx| match ctx.eval::<rquickjs::Value<'_>, _>(src) {
                Ok(v) => f(v),
                Err(e) => {
                    let thrown = ctx.catch();
                    let text = thrown
                        .as_exception()
                        .map(|x| format!("{:?}: {:?}", x.message(), x.stack()))
                        .unwrap_or_else(|| format!("{thrown:?}"));
                    panic!("{e}: {text}\nin: {src}");
                }
            })
    }

    /// Evaluates `src`, which makes a string.
    fn text(&self, src: &str) -> String {
        self.eval(src, |v| v.as_string().and_then(|s| s.to_string().ok()))
            .expect("a string")
    }

    /// What the isolate holds: bytes charged by wasm, the JavaScript heap, values held.
    fn usage(&self) -> (usize, i64, usize) {
        // First the collector (wasm's dropped references), then QuickJS's (the values they
        // held).
        let held = self.wasm.held_refs();
        self.rt.run_gc();
        (
            self.counting.used.get(),
            self.rt.memory_usage().malloc_size,
            held,
        )
    }
}

impl Drop for Js {
    fn drop(&mut self) {
        self.ctx.with(|ctx| self.wasm.clear(&ctx));
    }
}

const REFS: &str = r#"(module
  (import "env" "make" (func $make (param i32) (result externref)))
  (import "env" "seen" (func $seen (param externref) (result i32)))
  (import "env" "fixed" (global $fixed externref))
  (global $g (export "g") (mut externref) (ref.null extern))
  (table $t (export "t") 4 externref)
  (func (export "id") (param externref) (result externref) (local.get 0))
  (func (export "swap") (param externref externref) (result externref externref i32)
    (local.get 1) (local.get 0) (i32.const 7))
  (func (export "isNull") (param externref) (result i32) (ref.is_null (local.get 0)))
  (func (export "stash") (param i32 externref) (table.set $t (local.get 0) (local.get 1)))
  (func (export "fetch") (param i32) (result externref) (table.get $t (local.get 0)))
  (func (export "grow") (param externref i32) (result i32)
    (table.grow $t (local.get 0) (local.get 1)))
  (func (export "size") (result i32) (table.size $t))
  (func (export "setG") (param externref) (global.set $g (local.get 0)))
  (func (export "getG") (result externref) (global.get $g))
  (func (export "fixed") (result externref) (global.get $fixed))
  (func (export "viaImport") (param i32) (result i32) (call $seen (call $make (local.get 0)))))"#;

#[test]
fn any_javascript_value_crosses_as_itself() {
    let js = Js::new(REFS, 0);
    {
        let out = js.text(
            r#"
            const made = [];
            const o = { a: 1 }, s = Symbol("s"), f = () => 1, fixed = { fixed: true };
            const { exports: e } = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
              env: {
                make: (i) => { const x = { i }; made.push(x); return x; },
                seen: (x) => (x === made[made.length - 1] ? x.i : -1),
                fixed,
              },
            });
            const checks = {
              identity: [o, s, f, "str", 1.5, 10n, true, undefined, e.id].every((v) => e.id(v) === v),
              nullIsNull: e.id(null) === null && e.isNull(null) === 1,
              undefinedIsNotNull: e.isNull(undefined) === 0,
              multiValue: (() => { const r = e.swap(o, s); return Array.isArray(r) && r[0] === s && r[1] === o && r[2] === 7; })(),
              importRoundTrip: e.viaImport(41) === 41,
              importedGlobal: e.fixed() === fixed,
            };
            JSON.stringify(checks)
            "#,
        );
        assert_eq!(
            out,
            r#"{"identity":true,"nullIsNull":true,"undefinedIsNotNull":true,"multiValue":true,"importRoundTrip":true,"importedGlobal":true}"#
        );
    }
}

#[test]
fn externref_tables_and_globals_work_from_both_sides() {
    let js = Js::new(REFS, 0);
    {
        let out = js.text(
            r#"
            const o = { o: 1 }, p = { p: 2 };
            const { exports: e } = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
              env: { make: (i) => ({ i }), seen: () => 0, fixed: null },
            });
            const t = e.t, r = {};
            // Exported table: wasm and JavaScript see the same elements.
            r.initial = [t.length, t.get(0)];
            t.set(1, o);
            r.wasmSees = e.fetch(1) === o;
            e.stash(2, p);
            r.jsSees = t.get(2) === p;
            t.set(1);                                   // a missing value is undefined
            r.missing = t.get(1) === undefined && e.isNull(e.fetch(1)) === 0;
            t.set(1, null);
            r.nulled = t.get(1) === null;
            r.jsGrow = [t.grow(2), t.length, t.get(4) === undefined, t.get(5) === undefined];
            r.jsGrowWith = [t.grow(1, o), t.get(6) === o];
            r.wasmGrow = [e.grow(p, 3), e.size(), t.length, t.get(9) === p];
            try { t.get(10); r.outOfBounds = "no error"; } catch (err) { r.outOfBounds = err.name; }
            try { t.set(10, o); r.setOutOfBounds = "no error"; } catch (err) { r.setOutOfBounds = err.name; }
            // A table made by JavaScript.
            const made = new WebAssembly.Table({ element: "externref", initial: 2 });
            r.made = [made.length, made.get(0) === undefined];
            const filled = new WebAssembly.Table({ element: "externref", initial: 2 }, o);
            r.filled = filled.get(1) === o;
            const funcs = new WebAssembly.Table({ element: "anyfunc", initial: 1 });
            r.funcDefault = funcs.get(0);
            try { funcs.set(0, o); r.funcRefused = "no error"; } catch (err) { r.funcRefused = err.name; }
            // Globals: the module's, and ones made by JavaScript.
            r.moduleGlobal = [e.g.value, (e.setG(o), e.g.value === o)];
            e.g.value = p;
            r.setFromJs = e.getG() === p;
            const g = new WebAssembly.Global({ value: "externref", mutable: true }, o);
            r.jsGlobal = [g.value === o, (g.value = "x", g.value), new WebAssembly.Global({ value: "externref" }).value];
            const fixed = new WebAssembly.Global({ value: "externref" }, p);
            try { fixed.value = o; r.immutable = "no error"; } catch (err) { r.immutable = err.name; }
            r.fixedKept = fixed.value === p;
            JSON.stringify(r)
            "#,
        );
        assert_eq!(
            out,
            concat!(
                r#"{"initial":[4,null],"wasmSees":true,"jsSees":true,"missing":true,"nulled":true,"#,
                r#""jsGrow":[4,6,true,true],"jsGrowWith":[6,true],"wasmGrow":[7,10,10,true],"#,
                r#""outOfBounds":"RangeError","setOutOfBounds":"RangeError","made":[2,true],"#,
                r#""filled":true,"funcDefault":null,"funcRefused":"TypeError","#,
                r#""moduleGlobal":[null,true],"setFromJs":true,"jsGlobal":[true,"x",null],"#,
                r#""immutable":"TypeError","fixedKept":true}"#
            )
        );
    }
}

const CHURN: &str = r#"(module
  (import "env" "make" (func $make (param i32) (result externref)))
  (table $t (export "t") 1 externref)
  ;; Each new reference lives on the stack only, then is dropped.
  (func (export "dropEach") (param $n i32)
    (loop $l
      (drop (call $make (local.get $n)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  ;; Each new reference overwrites the one before in a table slot.
  (func (export "overwrite") (param $n i32)
    (loop $l
      (table.set $t (i32.const 0) (call $make (local.get $n)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (table.set $t (i32.const 0) (ref.null extern)))
  ;; References JavaScript passes in, dropped.
  (func (export "take") (param externref)))"#;

#[test]
fn a_module_that_drops_a_million_javascript_references_leaves_memory_where_it_was() {
    let js = Js::new(CHURN, 0);
    js.eval(
        r#"
        globalThis.e = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
          env: { make: (i) => ({ i, pad: [i, i, i] }) },
        }).exports;
        // Warm up: the GC heap, the tables and the slot table reach their working size.
        e.dropEach(10000); e.overwrite(10000);
        for (let i = 0; i < 10000; i++) e.take({ i });
        "#,
        |_| (),
    );
    let before = js.usage();
    assert_eq!(before.2, 0, "nothing is held once the collector ran");
    for (what, src) in [
        ("dropped from the stack", "e.dropEach(1000000)"),
        ("overwritten in a table", "e.overwrite(1000000)"),
        (
            "passed in and dropped",
            "for (let i = 0; i < 1000000; i++) e.take({ i })",
        ),
    ] {
        js.eval(src, |_| ());
        let after = js.usage();
        assert_eq!(after.0, before.0, "{what}: bytes charged by wasm");
        assert_eq!(after.2, 0, "{what}: values held");
        // A million objects of ~100 bytes each would be ~100 MB.
        assert!(
            (after.1 - before.1).abs() < 256 * 1024,
            "{what}: JavaScript heap {} -> {}",
            before.1,
            after.1
        );
    }
}

#[test]
fn values_held_are_charged_and_a_full_budget_refuses_more() {
    let limit = 4 * 1024 * 1024;
    let js = Js::new("", limit);
    // JavaScript keeps putting the same object into a table that grows by one each time:
    // every element holds a value (a slot, a GC heap object) and a table entry.
    let (n, error) = js.eval(
        r#"
        const t = new WebAssembly.Table({ element: "externref", initial: 0 });
        const o = {};
        let n = 0, error = "none";
        try { for (;;) { t.grow(1, o); n++; } } catch (err) { error = err.name + ": " + err.message; }
        [n, error]
        "#,
        |v| {
            let a = v.into_array().expect("an array");
            let n: usize = a.get(0).expect("n");
            let error: String = a.get(1).expect("error");
            (n, error)
        },
    );
    assert!(error.starts_with("RangeError"), "{error}");
    assert!(n > 1000 && n * (wasm::REF_BYTES + 8) <= limit, "{n}");
    assert!(js.counting.used.get() <= limit);
    assert_eq!(js.wasm.held_refs(), n, "one value per element");
    let counting = js.counting.clone();
    drop(js);
    assert_eq!(counting.used.get(), 0, "everything is given back");
}

const MEMORY: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "both") (param i32) (result i32 i32 i64)
    (local.get 0) (i32.load (local.get 0)) (i64.load (local.get 0))))"#;

#[test]
fn glue_habits_dataviews_detached_buffers_and_multi_value_results() {
    let js = Js::new(MEMORY, 0);
    let out = js.text(
        r#"
        const e = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
        const r = {};
        // wasm-bindgen writes results through a DataView over memory.buffer.
        let view = new DataView(e.memory.buffer);
        view.setInt32(16, 0x01020304, true);
        r.wasmReads = e.load(16);
        e.store(32, -7);
        r.jsReads = view.getInt32(32, true);
        r.sameBuffer = e.memory.buffer === e.memory.buffer;
        // Growth from wasm detaches the old buffer; the glue notices and makes a new view.
        const old = e.memory.buffer;
        r.grew = e.grow(1);
        r.oldLength = old.byteLength;
        r.viewOnOld = (() => { try { return view.getInt32(16, true); } catch (err) { return err.name; } })();
        r.detached = old.detached === undefined ? "no detached property" : old.detached;
        view = new DataView(e.memory.buffer);
        r.newLength = e.memory.buffer.byteLength;
        r.kept = view.getInt32(16, true);
        // Multi-value results are arrays.
        const both = e.both(16);
        r.both = [Array.isArray(both), both[0], both[1], typeof both[2]];
        JSON.stringify(r)
        "#,
    );
    assert_eq!(
        out,
        concat!(
            r#"{"wasmReads":16909060,"jsReads":-7,"sameBuffer":true,"grew":1,"oldLength":0,"#,
            r#""viewOnOld":"TypeError","detached":true,"newLength":131072,"kept":16909060,"#,
            r#""both":[true,16,16909060,"bigint"]}"#
        )
    );
}
