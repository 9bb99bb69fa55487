//! Published wasm-bindgen packages whose output uses `externref` run unmodified, loaded as on
//! Workers (`import wasm from "./x.wasm"`), and answer as Node does: `@cf-wasm/photon`
//! (its `workerd` entry as published) and `@jsquash/resize` (its magic-kernel codec). The
//! packages are installed by `npm ci` in `tests/wasm-packages` (scripts/test.sh does it); the
//! calls are `tests/wasm-packages/{photon,resize}.mjs`, and Node's answers to them are
//! `tests/wasm-packages/expected.json` (written by `node record.mjs` there). Each package is
//! called twice on one instance, the second time after its memory has grown.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use isolate::{Isolate, ModuleSource};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/wasm-packages")
}

/// The fixture's installed packages, or `None` (and a note) when `npm ci` has not run there.
/// Under CI the packages must be there.
fn packages() -> Option<PathBuf> {
    let dir = fixture().join("node_modules");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "run `npm ci` in tests/wasm-packages (scripts/test.sh does)"
    );
    eprintln!("skipped: run `npm ci` in tests/wasm-packages first");
    None
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Node's answers for `package` (`photon` or `resize`).
fn expected(package: &str) -> serde_json::Value {
    let all: serde_json::Value =
        serde_json::from_str(&text(&fixture().join("expected.json"))).expect("expected.json");
    all[package].clone()
}

/// Loads `modules` (the first is the main module) with room for image work, runs `run()`.
async fn run_package(id: &str, modules: Vec<(String, ModuleSource)>) -> serde_json::Value {
    let refs: Vec<(&str, ModuleSource)> = modules
        .iter()
        .map(|(n, m)| (n.as_str(), m.clone()))
        .collect();
    let mut cfg = config(id, &refs);
    cfg.limits.cpu_time = Duration::from_secs(30);
    let iso = Isolate::new(cfg)
        .await
        .unwrap_or_else(|e| panic!("{id} deploys: {e}"));
    run(&iso).await
}

#[tokio::test]
async fn cf_wasm_photon_workerd_entry_runs_and_answers_as_node_does() {
    let Some(nm) = packages() else { return };
    let dist = nm.join("@cf-wasm/photon/dist");
    let main = r#"
        import * as photon from "./node_modules/@cf-wasm/photon/dist/workerd.js";
        import { calls } from "./photon.mjs";
        export default { rpc: class extends RpcTarget {
          async run() { return calls(photon, await photon.initPhoton.promise); }
        } };
    "#;
    let p = "node_modules/@cf-wasm/photon/dist";
    let modules = vec![
        ("index.js".to_owned(), es(main)),
        (
            "photon.mjs".into(),
            es(&text(&fixture().join("photon.mjs"))),
        ),
        (
            format!("{p}/workerd.js"),
            es(&text(&dist.join("workerd.js"))),
        ),
        (format!("{p}/photon.js"), es(&text(&dist.join("photon.js")))),
        (
            format!("{p}/lib/photon_rs.js"),
            es(&text(&dist.join("lib/photon_rs.js"))),
        ),
        (
            format!("{p}/lib/photon_rs_bg.wasm"),
            ModuleSource::Wasm(bytes(&dist.join("lib/photon_rs_bg.wasm"))),
        ),
        // What a bundler resolves the bare import in photon.js to.
        (
            "@cf-wasm/internals/polyfills/image-data".into(),
            es(&text(
                &nm.join("@cf-wasm/internals/dist/polyfills/image-data.js"),
            )),
        ),
    ];
    let out = run_package("photon", modules).await;
    assert_eq!(out, expected("photon"));
    assert_eq!(out["grew"], serde_json::json!(true));
}

#[tokio::test]
async fn jsquash_resize_magic_kernel_runs_and_answers_as_node_does() {
    let Some(nm) = packages() else { return };
    let pkg = nm.join("@jsquash/resize");
    let p = "node_modules/@jsquash/resize";
    let main = format!(
        r#"
        import * as resize from "./{p}/index.js";
        import RESIZE_WASM from "./{p}/lib/resize/pkg/squoosh_resize_bg.wasm";
        import KERNEL_WASM from "./{p}/lib/magic-kernel/pkg/jsquash_magic_kernel_bg.wasm";
        import {{ calls }} from "./resize.mjs";
        export default {{ rpc: class extends RpcTarget {{
          async run() {{
            await resize.initResize(RESIZE_WASM);
            const kernel = await resize.initMagicKernel(KERNEL_WASM);
            return calls(resize, kernel);
          }}
        }} }};
    "#
    );
    let mut modules = vec![
        ("index.js".to_owned(), es(&main)),
        (
            "resize.mjs".into(),
            es(&text(&fixture().join("resize.mjs"))),
        ),
        (
            "photon.mjs".into(),
            es(&text(&fixture().join("photon.mjs"))),
        ),
    ];
    for js in [
        "index.js",
        "util.js",
        "meta.js",
        "lib/resize/pkg/squoosh_resize.js",
        "lib/hqx/pkg/squooshhqx.js",
        "lib/magic-kernel/pkg/jsquash_magic_kernel.js",
    ] {
        modules.push((format!("{p}/{js}"), es(&text(&pkg.join(js)))));
    }
    for wasm in [
        "lib/resize/pkg/squoosh_resize_bg.wasm",
        "lib/magic-kernel/pkg/jsquash_magic_kernel_bg.wasm",
    ] {
        modules.push((
            format!("{p}/{wasm}"),
            ModuleSource::Wasm(bytes(&pkg.join(wasm))),
        ));
    }
    let out = run_package("resize", modules).await;
    assert_eq!(out, expected("resize"));
    assert_eq!(out["grew"], serde_json::json!(true));
}
