//! The build: from the modules a user deployed to the modules that run. Every script module
//! of the user's own (anything outside `node_modules/`) is parsed and stripped of types; the
//! import graph is followed from them, resolving each specifier as Node and wrangler do
//! (oxc_resolver: `exports`/`imports` maps with the conditions `workerd`, `worker`,
//! `browser`, `import`/`require`, `default`; `browser`/`module`/`main` fields; directory
//! indexes; `.ts` for `.js`); files of packages go in only when reached, each its own module,
//! and each specifier whose target the isolate would not find by itself is rewritten to the
//! target's module-map name.
//!
//! The Node built-ins the isolate provides ([`NODE_BUILTINS`]: `buffer`, `events`, `util`,
//! bare or with `node:`) are left as written and never resolved from `node_modules` (a built-in
//! wins over a package of the same name, as in Node); any other Node built-in imported fails
//! the build naming the importing file ([`BuildError::NodeBuiltin`]).

use std::collections::{HashSet, VecDeque};
use std::path::Path;

use indexmap::IndexMap;
use oxc_resolver::{FileSystem as _, ResolveError, ResolveOptions, ResolverGeneric};
use oxc_span::Span;

use crate::error::BuildError;
use crate::fs::{SourceFs, Violation};
use crate::manifest::{Bundle, Module};
use crate::strip::{self, ImportKind, Lang};

/// The Node built-in modules the isolate provides (by bare name; `node:NAME` too). The isolate
/// crate keeps the same list (`isolate::NODE_BUILTINS`).
pub const NODE_BUILTINS: [&str; 3] = ["buffer", "events", "util"];

/// The export conditions used when a deploy names none, in priority order.
pub const DEFAULT_CONDITIONS: [&str; 3] = ["workerd", "worker", "browser"];

/// How imports are resolved.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Export conditions, in priority order; `import` (or `require` for `require()`) and
    /// `default` are always added after them.
    pub conditions: Vec<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            conditions: DEFAULT_CONDITIONS.map(String::from).to_vec(),
        }
    }
}

impl BuildOptions {
    /// The options a bundle asks for: its `conditions`, else the defaults.
    pub fn for_bundle(bundle: &Bundle) -> BuildOptions {
        match &bundle.conditions {
            Some(c) => BuildOptions {
                conditions: c.clone(),
            },
            None => BuildOptions::default(),
        }
    }
}

fn resolver(opts: &BuildOptions, fs: &SourceFs, require: bool) -> ResolverGeneric<SourceFs> {
    let mut conditions = opts.conditions.clone();
    conditions.push(if require { "require" } else { "import" }.into());
    conditions.push("default".into());
    ResolverGeneric::new_with_file_system(
        fs.clone(),
        ResolveOptions {
            condition_names: conditions,
            extensions: [".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".json"]
                .map(String::from)
                .to_vec(),
            extension_alias: vec![
                (".js".into(), vec![".ts".into(), ".js".into()]),
                (".mjs".into(), vec![".mts".into(), ".mjs".into()]),
                (".cjs".into(), vec![".cts".into(), ".cjs".into()]),
            ],
            main_fields: ["browser", "module", "main"].map(String::from).to_vec(),
            alias_fields: vec![vec!["browser".into()]],
            builtin_modules: true,
            node_path: false,
            ..ResolveOptions::default()
        },
    )
}

fn in_packages(name: &str) -> bool {
    name.starts_with("node_modules/") || name.contains("/node_modules/")
}

fn is_runtime_builtin(spec: &str) -> bool {
    spec == "cloudflare:workers"
        || spec == "capnweb"
        || spec.starts_with("cloudflare:")
        || is_provided_node_builtin(spec)
}

/// `buffer`, `node:buffer`, `events`, ... (not `buffer/`, which names the npm package).
pub fn is_provided_node_builtin(spec: &str) -> bool {
    NODE_BUILTINS.contains(&spec.strip_prefix("node:").unwrap_or(spec))
}

/// What the isolate's module map would resolve `spec` to from `base` (see the isolate's
/// `modules::resolve`), so a specifier that already works is left as written.
fn isolate_resolves(base: &str, spec: &str) -> String {
    let joined = if spec.starts_with("./") || spec.starts_with("../") {
        match base.rfind('/') {
            Some(i) => format!("{}/{spec}", &base[..i]),
            None => spec.to_owned(),
        }
    } else {
        spec.to_owned()
    };
    let mut out: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// A module read from disk (or memory), typed by its name's extension.
pub fn module_from_file(name: &str, bytes: Vec<u8>) -> Result<Module, BuildError> {
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| BuildError::Read {
            file: name.to_owned(),
            reason: "is not UTF-8 text".into(),
        })
    };
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    Ok(match ext {
        "js" | "mjs" => Module::EsModule(text(bytes)?),
        "cjs" => Module::CommonJs(text(bytes)?),
        "ts" | "mts" | "cts" => Module::TypeScript(text(bytes)?),
        "txt" => Module::Text(text(bytes)?),
        "json" => Module::Json(
            serde_json::from_slice(&bytes).map_err(|e| BuildError::Read {
                file: name.to_owned(),
                reason: format!("is not valid JSON: {e}"),
            })?,
        ),
        "wasm" => Module::Wasm(bytes),
        _ => Module::Data(bytes),
    })
}

fn bytes_of(m: &Module) -> Vec<u8> {
    match m {
        Module::EsModule(s) | Module::CommonJs(s) | Module::Text(s) | Module::TypeScript(s) => {
            s.clone().into_bytes()
        }
        Module::Data(b) | Module::Wasm(b) => b.clone(),
        Module::Json(v) => v.to_string().into_bytes(),
    }
}

/// The in-memory file system of a bundle's modules (the server's build).
pub fn memory_fs(bundle: &Bundle) -> SourceFs {
    modules_fs(&bundle.modules)
}

/// The in-memory file system of `modules`.
pub(crate) fn modules_fs(modules: &IndexMap<String, Module>) -> SourceFs {
    SourceFs::in_memory(modules.iter().map(|(name, m)| (name.clone(), bytes_of(m))))
}

/// The module `spec` names when `from` imports it, resolved as [`build`] resolves an `import`
/// (with `opts`' conditions), or `None`. Provided Node built-ins and runtime modules are
/// `None`: they are not files.
pub fn resolve_import(
    fs: &SourceFs,
    opts: &BuildOptions,
    from: &str,
    spec: &str,
) -> Option<String> {
    if is_runtime_builtin(spec) {
        return None;
    }
    let dir = Path::new("/").join(from);
    let dir = dir.parent().unwrap_or(Path::new("/")).to_owned();
    let res = resolver(opts, fs, false).resolve(&dir, spec).ok()?;
    SourceFs::name_of(res.path())
}

/// Builds `bundle` (its modules are sources) with `fs` (see [`memory_fs`]): returns the
/// bundle that runs, its `sources` set to what was deployed when building changed anything.
pub fn build(bundle: &Bundle, fs: &SourceFs, opts: &BuildOptions) -> Result<Bundle, BuildError> {
    let import_resolver = resolver(opts, fs, false);
    let require_resolver = resolver(opts, fs, true);
    let mut out: IndexMap<String, Module> = IndexMap::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut seen: HashSet<String> = HashSet::new();
    queue.push_back(bundle.main_module.clone());
    seen.insert(bundle.main_module.clone());
    for (name, m) in &bundle.modules {
        // Packages' files go in when reached; declaration files (`.d.ts`) never run.
        if in_packages(name) || seen.contains(name) || strip::is_declaration_file(name) {
            continue;
        }
        seen.insert(name.clone());
        match m {
            Module::EsModule(_) | Module::CommonJs(_) | Module::TypeScript(_) => {
                queue.push_back(name.clone());
            }
            // Named `package.json`: resolution metadata, not a module anyone imports.
            Module::Json(_) if name == "package.json" || name.ends_with("/package.json") => {}
            other => {
                out.insert(name.clone(), other.clone());
            }
        }
    }
    // Keep the user's order for the user's modules: reserve their places now.
    while let Some(name) = queue.pop_front() {
        let module = match bundle.modules.get(&name) {
            Some(m) => m.clone(),
            None => {
                let bytes = fs.read_name(&name).map_err(|e| BuildError::Read {
                    file: name.clone(),
                    reason: e.to_string(),
                })?;
                module_from_file(&name, bytes)?
            }
        };
        let lang = match (&module, Lang::of(&name)) {
            (Module::TypeScript(_), Some(l)) => l,
            (Module::TypeScript(_), None) => Lang::TypeScript,
            (Module::CommonJs(_), _) => Lang::CommonJs,
            (Module::EsModule(_), Some(Lang::Unknown)) if in_packages(&name) => Lang::Unknown,
            (Module::EsModule(_), _) => Lang::EsModule,
            (other, _) => {
                out.insert(name.clone(), other.clone());
                continue;
            }
        };
        let Some(source) = module.source_text() else {
            continue;
        };
        let parsed = strip::parse(&name, source, lang)?;
        let dir = Path::new("/").join(&name);
        let dir = dir.parent().unwrap_or(Path::new("/")).to_owned();
        let mut rewrites: Vec<(Span, String)> = Vec::new();
        for import in &parsed.imports {
            let spec = import.specifier.as_str();
            if is_runtime_builtin(spec) {
                continue;
            }
            // A module-map name the isolate finds by itself (`import "lib"` of a module named
            // `lib`, `./a.js` of `a.js`) is taken as it is.
            let direct = isolate_resolves(&name, spec);
            if !direct.is_empty()
                && fs
                    .metadata(&Path::new("/").join(&direct))
                    .is_ok_and(|m| m.is_file())
            {
                if seen.insert(direct.clone()) {
                    queue.push_back(direct);
                }
                continue;
            }
            let r = if import.kind == ImportKind::Require {
                &require_resolver
            } else {
                &import_resolver
            };
            match r.resolve(&dir, spec) {
                Ok(res) => {
                    let Some(target) = SourceFs::name_of(res.path()) else {
                        continue;
                    };
                    if isolate_resolves(&name, spec) != target {
                        rewrites.push((import.span, format!("/{target}")));
                    }
                    if seen.insert(target.clone()) {
                        queue.push_back(target);
                    }
                }
                Err(e) => {
                    if let Some(v) = fs.violation() {
                        return Err(match v {
                            Violation::Outside { path } => BuildError::OutsideDirectory {
                                file: name.clone(),
                                path,
                            },
                            Violation::TooLarge { path, size } => BuildError::TooLarge {
                                file: path,
                                reason: format!(
                                    "is {size} bytes, more than the limit of {} for one file",
                                    crate::fs::MAX_FILE_BYTES
                                ),
                            },
                        });
                    }
                    if import.kind == ImportKind::Require {
                        // `try { require("optional") } catch {}`: it throws when called.
                        continue;
                    }
                    return Err(resolve_error(&name, spec, &dir, fs, e));
                }
            }
        }
        let code = parsed.commonjs;
        let text = parsed.finish(&rewrites);
        out.insert(
            name.clone(),
            if code {
                Module::CommonJs(text)
            } else {
                Module::EsModule(text)
            },
        );
    }
    // The user's modules first, in the order given; then packages' in the order reached.
    let mut ordered: IndexMap<String, Module> = IndexMap::new();
    for name in bundle.modules.keys() {
        if let Some(m) = out.shift_remove(name) {
            ordered.insert(name.clone(), m);
        }
    }
    ordered.extend(out);
    let changed = ordered != bundle.modules;
    let mut built = bundle.clone();
    built.modules = ordered;
    built.sources = changed.then(|| bundle.modules.clone());
    Ok(built)
}

fn package_name(spec: &str) -> &str {
    let mut parts = spec.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(scope), Some(name)) if scope.starts_with('@') => {
            &spec[..scope.len() + 1 + name.len()]
        }
        (Some(name), _) => name,
        _ => spec,
    }
}

fn resolve_error(file: &str, spec: &str, dir: &Path, fs: &SourceFs, e: ResolveError) -> BuildError {
    if let ResolveError::Builtin { .. } = e {
        return BuildError::NodeBuiltin {
            file: file.to_owned(),
            specifier: spec.to_owned(),
        };
    }
    if spec.starts_with("node:") {
        return BuildError::NodeBuiltin {
            file: file.to_owned(),
            specifier: spec.to_owned(),
        };
    }
    let bare = !(spec.starts_with('.') || spec.starts_with('/'));
    if bare && matches!(e, ResolveError::NotFound(_)) {
        let package = package_name(spec);
        // Is the package installed anywhere up the tree?
        let mut d = Some(dir);
        let mut installed = false;
        while let Some(p) = d {
            if fs
                .metadata(&p.join("node_modules").join(package))
                .is_ok_and(|m| m.is_dir())
            {
                installed = true;
                break;
            }
            d = p.parent();
        }
        if !installed {
            return BuildError::MissingPackage {
                file: file.to_owned(),
                specifier: spec.to_owned(),
                package: package.to_owned(),
            };
        }
    }
    BuildError::Unresolved {
        file: file.to_owned(),
        specifier: spec.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(json: &str) -> Result<Bundle, BuildError> {
        let b = Bundle::from_json(json.as_bytes()).expect("bundle");
        build(&b, &memory_fs(&b), &BuildOptions::default())
    }

    #[test]
    fn a_bare_specifier_naming_a_module_of_the_map_is_left_as_written() {
        let b = built(
            r#"{"mainModule": "index.js", "modules": {"index.js": "import x from 'lib';\nexport default x;", "lib": {"js": "export default 1"}}}"#,
        )
        .expect("builds");
        assert_eq!(
            b.modules["index.js"],
            Module::EsModule("import x from 'lib';\nexport default x;".into())
        );
        assert!(
            b.sources.is_none(),
            "nothing changed, so no sources are kept"
        );
    }

    #[test]
    fn a_bare_builtin_import_wins_over_a_package_of_that_name_which_is_not_bundled() {
        let b = built(
            r#"{"mainModule": "index.js", "modules": {
                "index.js": "import E from 'events';\nimport { Buffer } from 'node:buffer';\nimport u from 'util';\nimport lib from 'lib';\nexport default { E, Buffer, u, lib };",
                "node_modules/events/package.json": {"json": {"name": "events", "main": "./events.js"}},
                "node_modules/events/events.js": "module.exports = 'the npm package';",
                "node_modules/util/package.json": {"json": {"name": "util", "main": "./util.js"}},
                "node_modules/util/util.js": "module.exports = 'the npm package';",
                "node_modules/lib/package.json": {"json": {"name": "lib", "main": "./index.js"}},
                "node_modules/lib/index.js": "const E = require('events');\nconst { inspect } = require('node:util');\nmodule.exports = { E, inspect };"
            }}"#,
        )
        .expect("builds");
        let Module::EsModule(index) = &b.modules["index.js"] else {
            panic!("index.js is built")
        };
        assert!(index.starts_with("import E from 'events';\nimport { Buffer } from 'node:buffer';\nimport u from 'util';"), "{index}");
        let Module::CommonJs(lib) = &b.modules["node_modules/lib/index.js"] else {
            panic!("lib is CommonJS")
        };
        assert!(
            lib.contains("require('events')") && lib.contains("require('node:util')"),
            "{lib}"
        );
        let names: Vec<&str> = b.modules.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["index.js", "node_modules/lib/index.js"],
            "no events or util package"
        );
    }

    #[test]
    fn other_node_builtins_fail_the_build_naming_the_importer() {
        for spec in ["node:fs", "fs", "node:crypto", "path"] {
            let err = built(&format!(
                r#"{{"mainModule": "index.js", "modules": {{
                    "index.js": "import {{ x }} from './lib.js';\nexport default x;",
                    "lib.js": "import fs from '{spec}';\nexport const x = fs;"
                }}}}"#
            ))
            .expect_err("refused");
            assert_eq!(
                err,
                BuildError::NodeBuiltin {
                    file: "lib.js".into(),
                    specifier: spec.into()
                }
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("lib.js: imports \"{spec}\"")),
                "{err}"
            );
        }
    }

    #[test]
    fn the_conditions_choose_a_packages_export() {
        let json = r#"{"mainModule": "index.js", "modules": {
            "index.js": "import v from 'pkg';\nexport default v;",
            "node_modules/pkg/package.json": {"json": {"name": "pkg", "exports": {".": {"custom": "./custom.js", "worker": "./worker.js", "default": "./default.js"}}}},
            "node_modules/pkg/custom.js": "export default 'custom';",
            "node_modules/pkg/worker.js": "export default 'worker';",
            "node_modules/pkg/default.js": "export default 'default';"
        }}"#;
        let reached = |opts: &BuildOptions| -> Vec<String> {
            let b = Bundle::from_json(json.as_bytes()).expect("bundle");
            let out = build(&b, &memory_fs(&b), opts).expect("builds");
            out.modules.keys().skip(1).cloned().collect()
        };
        let custom = BuildOptions {
            conditions: vec!["custom".into()],
        };
        assert_eq!(reached(&custom), ["node_modules/pkg/custom.js"]);
        assert_eq!(
            reached(&BuildOptions::default()),
            ["node_modules/pkg/worker.js"]
        );
        let none = BuildOptions { conditions: vec![] };
        assert_eq!(reached(&none), ["node_modules/pkg/default.js"]);
        let mut with_field = Bundle::from_json(json.as_bytes()).expect("bundle");
        with_field.conditions = Some(vec!["custom".into()]);
        assert_eq!(BuildOptions::for_bundle(&with_field).conditions, ["custom"]);
    }

    #[test]
    fn extensionless_ts_imports_and_packages_are_rewritten_to_module_map_names() {
        let b = built(
            r#"{"mainModule": "index.ts", "modules": {
                "index.ts": "import { f } from './lib';\nimport p from 'pkg';\nexport default { f, p };",
                "lib.ts": "export const f = (n: number) => n;",
                "node_modules/pkg/package.json": {"json": {"name": "pkg", "exports": {".": {"node": "./node.js", "worker": "./worker.js"}}}},
                "node_modules/pkg/node.js": "import 'node:fs'; export default 'node';",
                "node_modules/pkg/worker.js": "export default 'worker';",
                "node_modules/unused/index.js": "export default 1;"
            }}"#,
        )
        .expect("builds");
        let Module::EsModule(index) = &b.modules["index.ts"] else {
            panic!("index.ts is built")
        };
        assert!(index.contains("from \"/lib.ts\""), "{index}");
        assert!(
            index.contains("from \"/node_modules/pkg/worker.js\""),
            "{index}"
        );
        let names: Vec<&str> = b.modules.keys().map(String::as_str).collect();
        assert_eq!(names, ["index.ts", "lib.ts", "node_modules/pkg/worker.js"]);
        assert!(b.sources.as_ref().is_some_and(|s| s.len() == 6));
    }
}
