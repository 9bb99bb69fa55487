//! The Node built-in modules `node:buffer`, `node:events` and `node:util` answer as Node 20
//! does: `tests/node-builtins/cases.mjs` (and `require_cases.cjs`, for `require()`) runs in an
//! isolate and its answers must equal Node's, recorded in `tests/node-builtins/expected.json`
//! by `node record.mjs` there. Also: bare names win over modules of the same name, other Node
//! built-ins are not there, and a Buffer is memory like any other (the isolate's limit holds).

mod common;
use common::*;

use std::path::{Path, PathBuf};

use isolate::{Isolate, ModuleSource, RESOURCE_LIMIT_ERROR};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node-builtins")
}

fn text(name: &str) -> String {
    let path = fixture().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn node_builtins_answer_as_node_20_does() {
    let main = r#"
        import { answers } from "./cases.mjs";
        export default { rpc: class extends RpcTarget { async run() { return answers(); } } };
    "#;
    let out = run_modules(
        "node-builtins",
        &[
            ("index.js", es(main)),
            ("cases.mjs", es(&text("cases.mjs"))),
            (
                "require_cases.cjs",
                ModuleSource::CommonJs(text("require_cases.cjs")),
            ),
        ],
    )
    .await;
    let expected: serde_json::Value =
        serde_json::from_str(&text("expected.json")).expect("expected.json");
    let (Some(got), Some(want)) = (out.as_object(), expected.as_object()) else {
        panic!("answers are objects: {out}");
    };
    let mut differ = Vec::new();
    for (name, want) in want {
        match got.get(name) {
            Some(g) if g == want => {}
            Some(g) => differ.push(describe(name, want, g)),
            None => differ.push(format!("{name}: no answer")),
        }
    }
    for name in got.keys().filter(|k| !want.contains_key(*k)) {
        differ.push(format!(
            "{name}: not in expected.json (run `node record.mjs`)"
        ));
    }
    assert!(
        differ.is_empty(),
        "{} of {} cases differ from Node:\n{}",
        differ.len(),
        want.len(),
        differ.join("\n")
    );
}

/// What differs between Node's answer and ours, entry by entry when both are objects or arrays.
fn describe(name: &str, want: &serde_json::Value, got: &serde_json::Value) -> String {
    let (want_v, got_v) = (&want["value"], &got["value"]);
    let mut lines = vec![format!("{name}:")];
    let entries: Vec<(String, &serde_json::Value, &serde_json::Value)> = match (want_v, got_v) {
        (serde_json::Value::Object(w), serde_json::Value::Object(g)) => w
            .iter()
            .map(|(k, v)| (k.clone(), v, g.get(k).unwrap_or(&serde_json::Value::Null)))
            .collect(),
        (serde_json::Value::Array(w), serde_json::Value::Array(g)) => w
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    i.to_string(),
                    v,
                    g.get(i).unwrap_or(&serde_json::Value::Null),
                )
            })
            .collect(),
        _ => vec![(String::new(), want, got)],
    };
    for (k, w, g) in entries {
        if w != g {
            lines.push(format!("  [{k}]\n    node: {w}\n    ours: {g}"));
        }
    }
    if lines.len() == 1 {
        // The values agree entry by entry: the difference is elsewhere (a thrown error).
        lines.push(format!("    node: {want}\n    ours: {got}"));
    }
    lines.join("\n")
}

#[tokio::test]
async fn a_bare_builtin_name_wins_over_a_module_of_that_name() {
    let out = run_modules(
        "shadow",
        &[
            (
                "index.js",
                es(r#"
                import Bare from "events";
                import Relative from "./events";
                import lib from "./lib.cjs";
                export default { rpc: class extends RpcTarget { run() {
                  return [typeof Bare.once, Relative, lib];
                } } };
            "#),
            ),
            ("events", es("export default 'the module named events';")),
            (
                "lib.cjs",
                ModuleSource::CommonJs(
                    "const E = require('events'); module.exports = typeof new E().emit;".into(),
                ),
            ),
        ],
    )
    .await;
    assert_eq!(
        out,
        serde_json::json!(["function", "the module named events", "function"])
    );
}

#[tokio::test]
async fn other_node_builtins_are_not_there() {
    let err = load_err(&[(
        "index.js",
        es("import fs from 'node:fs'; export default {};"),
    )])
    .await;
    assert!(
        err.to_string().contains("Cannot find module 'node:fs'"),
        "{err}"
    );
    let out = run_modules(
        "cjs-fs",
        &[
            (
                "index.js",
                es("import r from './r.cjs'; export default { rpc: class extends RpcTarget { run() { return r; } } };"),
            ),
            (
                "r.cjs",
                ModuleSource::CommonJs(
                    "let code; try { require('fs'); } catch (e) { code = e.code; } module.exports = code;"
                        .into(),
                ),
            ),
        ],
    )
    .await;
    assert_eq!(out, serde_json::json!("MODULE_NOT_FOUND"));
}

#[tokio::test]
async fn a_buffer_past_the_memory_limit_fails_as_other_allocations_do() {
    for (what, body) in [
        ("one big alloc", "return Buffer.alloc(64 * 1024 * 1024).length;"),
        (
            "many allocUnsafe",
            "const a = []; for (;;) a.push(Buffer.allocUnsafe(1024 * 1024));",
        ),
        ("concat", "let b = Buffer.alloc(1024 * 1024, 1); for (;;) b = Buffer.concat([b, b]);"),
        ("from string", "let s = 'x'.repeat(1 << 20); const a = []; for (;;) a.push(Buffer.from(s + a.length));"),
    ] {
        let src = format!(
            "import {{ Buffer }} from 'node:buffer';\n\
             export default {{ rpc: class extends RpcTarget {{ hog() {{ {body} }} ok() {{ return 'ok'; }} }} }};"
        );
        let mut cfg = isolate::IsolateConfig::single("buffer-hog", &src);
        cfg.limits.memory_bytes = 16 * 1024 * 1024;
        let hog = Isolate::new(cfg).await.expect("loads");
        let err = hog.rpc_target().call("hog", vec![]).await.unwrap_err();
        assert_eq!(err.name(), RESOURCE_LIMIT_ERROR, "{what}: {err}");
        assert!(
            err.message().contains("memory limit 16 MiB exceeded"),
            "{what}: {err}"
        );
        assert!(hog.is_broken(), "{what}");
    }
    let fine = eval(
        "const { Buffer } = await import('node:buffer'); return Buffer.alloc(1024 * 1024).length;",
    )
    .await;
    assert_eq!(fine, serde_json::json!(1024 * 1024));
}
