//! Module loading: the module map, relative specifiers, module types and load errors.

mod common;
use common::*;
use isolate::{LoadError, ModuleSource};

#[tokio::test]
async fn relative_imports_resolve_against_the_importing_module() {
    let iso = isolate::Isolate::new(config(
        "rel",
        &[
            ("index.js", es("import { f } from './lib/a.js'; export default { rpc: class extends RpcTarget { run() { return f(); } } };")),
            ("lib/a.js", es("import { g } from '../util/b.js'; export const f = () => 'a' + g();")),
            ("./util/b.js", es("import data from './data.json'; export const g = () => 'b' + data.n;")),
            ("util/data.json", ModuleSource::Json("{\"n\": 7}".into())),
        ],
    ))
    .await
    .unwrap();
    let v = iso.rpc_target().call("run", vec![]).await.unwrap();
    assert_eq!(v.as_str(), Some("ab7"));
}

#[tokio::test]
async fn text_data_json_and_commonjs_modules_load() {
    let v = run_modules(
        "types",
        &[
            ("index.js", es(r#"
                import text from './t.txt';
                import data from './d.bin';
                import json from './j.json';
                import cjs from './c.cjs';
                import { RpcTarget as R2 } from 'capnweb';
                export default { rpc: class extends R2 {
                  run() { return [text, new Uint8Array(data).join(','), json.a, cjs.twice(21)]; } } };
            "#)),
            ("t.txt", ModuleSource::Text("hello \"text\"\n".into())),
            ("d.bin", ModuleSource::Data(vec![1, 2, 255])),
            ("j.json", ModuleSource::Json("{\"a\": [1, 2]}".into())),
            ("c.cjs", ModuleSource::CommonJs("module.exports.twice = (x) => x * 2;".into())),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!(["hello \"text\"\n", "1,2,255", [1, 2], 42])
    );
}

#[tokio::test]
async fn commonjs_require_reaches_commonjs_text_json_and_es_modules() {
    let cjs = |s: &str| ModuleSource::CommonJs(s.into());
    let v = run_modules(
        "require",
        &[
            ("index.js", es(r#"
                import lib from './lib/index.cjs';
                export default { rpc: class extends RpcTarget { run() { return lib.report(); } } };
            "#)),
            ("lib/index.cjs", cjs(r#"
                const { double } = require('./math.cjs');
                const greeting = require("../greeting.txt");
                const config = require('../config.json');
                const esm = require('./esm.js');
                const { RpcTarget } = require('cloudflare:workers');
                let missing;
                try { require('fs'); } catch (e) { missing = [e.code, e.message]; }
                let dynamic;
                // Only literal specifiers are linked: this one exists but is built at run time.
                const name = '../other' + '.txt';
                try { require(name); } catch (e) { dynamic = e.code; }
                exports.report = () => ({
                  double: double(21), greeting, port: config.port, esm: esm.named + esm.default,
                  rpcTarget: typeof RpcTarget, sameInstance: require('./math.cjs') === require('./math.cjs'),
                  missing, dynamic,
                });
            "#)),
            ("lib/math.cjs", cjs("let loads = (globalThis.loads ?? 0) + 1; globalThis.loads = loads;\n\
                                  module.exports = { double: (x) => x * 2 * loads };")),
            ("lib/esm.js", es("export const named = 'n'; export default 'd';")),
            ("greeting.txt", ModuleSource::Text("hi".into())),
            ("other.txt", ModuleSource::Text("other".into())),
            ("config.json", ModuleSource::Json("{\"port\": 8080}".into())),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({
            "double": 42, "greeting": "hi", "port": 8080, "esm": "nd",
            "rpcTarget": "function", "sameInstance": true,
            "missing": ["MODULE_NOT_FOUND",
                "Cannot find module 'fs' required from lib/index.cjs: require() takes a string \
                 literal naming a module in the module map"],
            "dynamic": "MODULE_NOT_FOUND",
        })
    );
}

#[tokio::test]
async fn missing_module_is_a_load_error_naming_it() {
    let e = load_err(&[(
        "index.js",
        es("import x from './nope.js'; export default {};"),
    )])
    .await;
    let msg = e.to_string();
    assert!(matches!(e, LoadError::Module(_)), "{e:?}");
    assert!(
        msg.contains("./nope.js") && msg.contains("index.js"),
        "{msg}"
    );
}

#[tokio::test]
async fn syntax_error_names_the_module_and_line() {
    let e = load_err(&[
        ("index.js", es("import './broken.js';\nexport default {};")),
        ("broken.js", es("const a = 1;\nconst b = ;\n")),
    ])
    .await;
    let msg = e.to_string();
    assert!(
        msg.contains("SyntaxError") && msg.contains("broken.js"),
        "{msg}"
    );
    assert!(msg.contains("line 2"), "{msg}");
}

#[tokio::test]
async fn main_module_missing_and_invalid_wasm_are_clear_errors() {
    let mut cfg = config("m", &[("index.js", es("export default {};"))]);
    cfg.main_module = "main.js".into();
    let e = isolate::Isolate::new(cfg).await.unwrap_err();
    assert!(
        matches!(e, LoadError::MainModuleMissing(ref m) if m == "main.js"),
        "{e:?}"
    );

    let e = load_err(&[
        (
            "index.js",
            es("import p from './p.wasm'; export default {};"),
        ),
        ("p.wasm", ModuleSource::Wasm(vec![0, 97, 115, 109])),
    ])
    .await;
    let msg = e.to_string();
    assert!(matches!(e, LoadError::Module(_)), "{e:?}");
    assert!(msg.starts_with("CompileError in module 'p.wasm'"), "{msg}");
}

#[tokio::test]
async fn top_level_throw_is_a_load_error() {
    let e = load_err(&[("index.js", es("throw new TypeError('boom at load');"))]).await;
    assert!(e.to_string().contains("TypeError: boom at load"), "{e}");
}

#[tokio::test]
async fn worker_entrypoint_classes_get_ctx_and_env() {
    let mut cfg = config(
        "ep",
        &[(
            "index.js",
            es(r#"
            import { WorkerEntrypoint } from 'cloudflare:workers';
            export class Admin extends WorkerEntrypoint {
              whoami() { return this.env.NAME + ':' + typeof this.ctx.waitUntil; }
            }
            export default class extends WorkerEntrypoint { greet(name) { return 'hi ' + name; } };
        "#),
        )],
    );
    cfg.env = capnweb::Value::object([("NAME", capnweb::Value::from("admin"))]);
    let iso = isolate::Isolate::new(cfg).await.unwrap();
    assert!(!iso.has_rpc_surface());
    let v = iso
        .entrypoint(Some("Admin"))
        .call("whoami", vec![])
        .await
        .unwrap();
    assert_eq!(v.as_str(), Some("admin:function"));
    let v = iso
        .entrypoint(None)
        .call("greet", vec!["bob".into()])
        .await
        .unwrap();
    assert_eq!(v.as_str(), Some("hi bob"));
    // Without `rpc`, the RPC target is the default entrypoint.
    let v = iso
        .rpc_target()
        .call("greet", vec!["amy".into()])
        .await
        .unwrap();
    assert_eq!(v.as_str(), Some("hi amy"));
    let e = iso
        .entrypoint(Some("Nope"))
        .call("x", vec![])
        .await
        .unwrap_err();
    assert!(e.message().contains("Nope"), "{e}");
}
