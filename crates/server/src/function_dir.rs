//! Builds a [`Bundle`] from files on disk: a function directory with a small manifest
//! (`function.json`), or a single `.js` file. Used by `functions deploy PATH` and
//! `functions serve --deploy DIR`.
//!
//! `function.json` (every field optional):
//!
//! ```json
//! {
//!   "id": "hello",
//!   "main": "index.js",
//!   "modules": ["index.js", "lib/util.js", "data/words.txt"],
//!   "compatibilityDate": "2025-06-01",
//!   "compatibilityFlags": [],
//!   "env": { "GREETING": "hi" },
//!   "bindings": { "KV": { "type": "kv", "namespace": "hello" } },
//!   "limits": { "cpuMs": 50, "memoryMb": 64 },
//!   "conditions": ["workerd", "worker", "browser"]
//! }
//! ```
//!
//! `id` defaults to the directory's name, `main` to the first of [`DEFAULT_MAINS`] that exists
//! (`index.ts`, `index.js`, …). `modules` defaults to every `.js`, `.mjs`, `.cjs`, `.ts`,
//! `.mts`, `.cts`, `.json`, `.txt` and `.wasm` file under the directory (recursively; hidden
//! entries, `node_modules`, `.d.ts` files, `package-lock.json`, `tsconfig.json` and
//! `function.json` itself skipped). Files are typed by extension: `.js`/`.mjs` ES module,
//! `.cjs` CommonJS, `.ts`/`.mts`/`.cts` TypeScript, `.json` JSON, `.txt` text, `.wasm`
//! WebAssembly, anything else listed explicitly a data module. When the directory has a
//! `node_modules`, the files of packages that the function's modules import (and the
//! `package.json` files that resolving them read) are added: only those, read through the
//! build's guards. The CLI only collects files: the server builds them ([`bundle::build`]). `bindings`, `env`, `limits`,
//! `conditions` and the compatibility fields are as in the bundle ([`crate::manifest`]);
//! `conditions` (the export conditions packages resolve with, replacing `workerd`, `worker`,
//! `browser`) can also be given to [`load_with_conditions`] (`--conditions` of `deploy`, `dev`),
//! which wins over the file's.
//!
//! A single `file.js` becomes a function with id `file` and that one module.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::manifest::{Bundle, ManifestError, Module};

/// The manifest file's name.
pub const MANIFEST_FILE: &str = "function.json";
/// Files never collected from a function's directory (tooling, not code).
const SKIPPED_FILES: [&str; 3] = ["package-lock.json", "tsconfig.json", "jsconfig.json"];
/// Most files one function may have.
pub const MAX_FILES: usize = 1000;
/// Most bytes one function's files may have in total.
pub const MAX_TOTAL_BYTES: u64 = 32 * 1024 * 1024;

/// Why a function could not be built from disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FunctionDirError {
    /// Reading a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `function.json` is not valid.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The resulting bundle is not valid.
    #[error("{path}: {source}")]
    Bundle {
        /// The function's path.
        path: PathBuf,
        /// The validation error.
        #[source]
        source: ManifestError,
    },
    /// The id (given or derived from the name) is not a valid function id.
    #[error("{path}: {reason} (pass --id ID, or set \"id\" in function.json)")]
    Id {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Too many files or bytes.
    #[error("{path}: {reason}")]
    TooLarge {
        /// The directory.
        path: PathBuf,
        /// Which limit.
        reason: String,
    },
    /// The path is neither a directory nor a script file.
    #[error("{0}: expected a function directory or a .js/.mjs/.ts/.mts file")]
    NotAFunction(PathBuf),
    /// The function's sources do not build (checked here so the CLI can say so before
    /// uploading; the server builds them again).
    #[error("{path}: {source}")]
    Build {
        /// The function's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: bundle::BuildError,
    },
}

/// A function read from disk.
#[derive(Debug, Clone)]
pub struct FunctionSource {
    /// Its id.
    pub id: String,
    /// Its bundle.
    pub bundle: Bundle,
    /// Where it was read from.
    pub path: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DirManifest {
    id: Option<String>,
    main: Option<String>,
    modules: Option<Vec<String>>,
    compatibility_date: Option<String>,
    #[serde(default)]
    compatibility_flags: Vec<String>,
    #[serde(default)]
    env: Map<String, Value>,
    #[serde(default)]
    bindings: Map<String, Value>,
    limits: Option<Value>,
    conditions: Option<Vec<String>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FunctionDirError + '_ {
    move |source| FunctionDirError::Io {
        path: path.to_owned(),
        source,
    }
}

fn check_id(path: &Path, id: &str) -> Result<(), FunctionDirError> {
    store::validate_function_id(id).map_err(|e| FunctionDirError::Id {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Reads one function: a directory or a single `.js`/`.mjs` file. `id` overrides the id.
pub fn load(path: &Path, id: Option<&str>) -> Result<FunctionSource, FunctionDirError> {
    load_with_conditions(path, id, None)
}

/// [`load`], resolving packages with the export `conditions` given (replacing those of
/// `function.json`, if any, and the defaults); they go in the bundle, so the server builds
/// with them too.
pub fn load_with_conditions(
    path: &Path,
    id: Option<&str>,
    conditions: Option<&[String]>,
) -> Result<FunctionSource, FunctionDirError> {
    if let Some(c) = conditions {
        bundle::manifest::validate_conditions(c).map_err(|source| FunctionDirError::Bundle {
            path: path.to_owned(),
            source,
        })?;
    }
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.is_dir() {
        load_dir(path, id, conditions)
    } else if is_script_file(path) {
        load_file(path, id, conditions)
    } else {
        Err(FunctionDirError::NotAFunction(path.to_owned()))
    }
}

fn is_script_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("js") | Some("mjs") | Some("ts") | Some("mts")
    ) && !bundle::strip::is_declaration_file(&path.to_string_lossy())
}

fn load_file(
    path: &Path,
    id: Option<&str>,
    conditions: Option<&[String]>,
) -> Result<FunctionSource, FunctionDirError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| FunctionDirError::NotAFunction(path.to_owned()))?
        .to_owned();
    let stem = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let id = id.unwrap_or(stem).to_owned();
    check_id(path, &id)?;
    let source = std::fs::read_to_string(path).map_err(io(path))?;
    let mut modules = IndexMap::new();
    let module = if name.ends_with(".ts") || name.ends_with(".mts") {
        Module::TypeScript(source)
    } else {
        Module::EsModule(source)
    };
    modules.insert(name.clone(), module);
    let bundle = Bundle {
        compatibility_date: None,
        compatibility_flags: Vec::new(),
        main_module: name,
        modules,
        env: Map::new(),
        bindings: IndexMap::new(),
        limits: Default::default(),
        sources: None,
        conditions: conditions.map(<[String]>::to_vec),
    };
    Ok(FunctionSource {
        id,
        bundle: revalidate(path, &bundle)?,
        path: path.to_owned(),
    })
}

fn revalidate(path: &Path, bundle: &Bundle) -> Result<Bundle, FunctionDirError> {
    Bundle::from_value(bundle.to_json()).map_err(|source| FunctionDirError::Bundle {
        path: path.to_owned(),
        source,
    })
}

fn load_dir(
    dir: &Path,
    id: Option<&str>,
    conditions: Option<&[String]>,
) -> Result<FunctionSource, FunctionDirError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest: DirManifest = match std::fs::read(&manifest_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| FunctionDirError::Manifest {
            path: manifest_path.clone(),
            reason: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DirManifest::default(),
        Err(e) => return Err(io(&manifest_path)(e)),
    };
    let dir_name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .unwrap_or_default();
    let id = id
        .map(str::to_owned)
        .or(manifest.id.clone())
        .unwrap_or(dir_name);
    check_id(dir, &id)?;
    let files = match &manifest.modules {
        Some(list) => list.clone(),
        None => {
            let mut found = Vec::new();
            collect(dir, dir, &mut found)?;
            found.sort();
            found
        }
    };
    if files.len() > MAX_FILES {
        return Err(FunctionDirError::TooLarge {
            path: dir.to_owned(),
            reason: format!("{} files exceeds the limit of {MAX_FILES}", files.len()),
        });
    }
    let mut total = 0u64;
    let mut modules = Map::new();
    let real_dir = dir.canonicalize().map_err(io(dir))?;
    for name in &files {
        let path = dir.join(name);
        // The same guards as for package files: the real path stays inside the directory
        // (a listed module may be a symlink), and the size is checked before reading.
        let real = path.canonicalize().map_err(io(&path))?;
        if !real.starts_with(&real_dir) {
            return Err(FunctionDirError::Build {
                path: dir.to_owned(),
                source: bundle::BuildError::OutsideDirectory {
                    file: name.clone(),
                    path: real.display().to_string(),
                },
            });
        }
        let size = std::fs::metadata(&real).map_err(io(&path))?.len();
        if size > bundle::fs::MAX_FILE_BYTES {
            return Err(FunctionDirError::TooLarge {
                path: path.clone(),
                reason: format!(
                    "is {size} bytes, more than the limit of {} for one file",
                    bundle::fs::MAX_FILE_BYTES
                ),
            });
        }
        let bytes = std::fs::read(&real).map_err(io(&path))?;
        total += bytes.len() as u64;
        if total > MAX_TOTAL_BYTES {
            return Err(FunctionDirError::TooLarge {
                path: dir.to_owned(),
                reason: format!("files exceed {MAX_TOTAL_BYTES} bytes in total"),
            });
        }
        modules.insert(name.clone(), module_json(&path, name, bytes)?);
    }
    let main = manifest.main.unwrap_or_else(|| {
        DEFAULT_MAINS
            .iter()
            .find(|m| modules.contains_key(**m))
            .map_or("index.js", |m| *m)
            .to_owned()
    });
    let conditions = conditions.map(<[String]>::to_vec).or(manifest.conditions);
    // Files of npm packages: the ones the build reaches from these modules, read from disk
    // with the build's guards (symlinks stay inside the directory, sizes checked first).
    if dir.join("node_modules").is_dir() {
        add_package_files(dir, &main, conditions.as_deref(), &mut modules, &mut total)?;
    }
    let mut raw = Map::new();
    raw.insert("mainModule".into(), Value::String(main));
    raw.insert("modules".into(), Value::Object(modules));
    if let Some(d) = manifest.compatibility_date {
        raw.insert("compatibilityDate".into(), Value::String(d));
    }
    raw.insert(
        "compatibilityFlags".into(),
        serde_json::json!(manifest.compatibility_flags),
    );
    raw.insert("env".into(), Value::Object(manifest.env));
    raw.insert("bindings".into(), Value::Object(manifest.bindings));
    if let Some(l) = manifest.limits {
        raw.insert("limits".into(), l);
    }
    if let Some(c) = conditions {
        raw.insert("conditions".into(), serde_json::json!(c));
    }
    let bundle =
        Bundle::from_value(Value::Object(raw)).map_err(|source| FunctionDirError::Bundle {
            path: dir.to_owned(),
            source,
        })?;
    Ok(FunctionSource {
        id,
        bundle,
        path: dir.to_owned(),
    })
}

/// The main module when `function.json` names none: the first of these that exists.
pub const DEFAULT_MAINS: [&str; 6] = [
    "index.ts",
    "index.js",
    "index.mjs",
    "index.mts",
    "src/index.ts",
    "src/index.js",
];

fn add_package_files(
    dir: &Path,
    main: &str,
    conditions: Option<&[String]>,
    modules: &mut Map<String, Value>,
    total: &mut u64,
) -> Result<(), FunctionDirError> {
    let build_err = |source| FunctionDirError::Build {
        path: dir.to_owned(),
        source,
    };
    let mut raw = serde_json::json!({ "mainModule": main, "modules": modules.clone() });
    if let Some(c) = conditions {
        raw["conditions"] = serde_json::json!(c);
    }
    let own = Bundle::from_value(raw).map_err(|source| FunctionDirError::Bundle {
        path: dir.to_owned(),
        source,
    })?;
    let files = own
        .modules
        .iter()
        .map(|(name, m)| (name.clone(), module_bytes(m)));
    let fs = bundle::fs::SourceFs::with_disk(dir, files).map_err(io(dir))?;
    bundle::build(&own, &fs, &bundle::BuildOptions::for_bundle(&own)).map_err(build_err)?;
    for (name, bytes) in fs.take_read_from_disk() {
        *total += bytes.len() as u64;
        if *total > MAX_TOTAL_BYTES {
            return Err(FunctionDirError::TooLarge {
                path: dir.to_owned(),
                reason: format!("files exceed {MAX_TOTAL_BYTES} bytes in total"),
            });
        }
        let module = bundle::module_from_file(&name, bytes).map_err(build_err)?;
        modules.insert(name, module.to_json());
    }
    if modules.len() > MAX_FILES {
        return Err(FunctionDirError::TooLarge {
            path: dir.to_owned(),
            reason: format!("{} files exceeds the limit of {MAX_FILES}", modules.len()),
        });
    }
    Ok(())
}

fn module_bytes(m: &Module) -> Vec<u8> {
    match m {
        Module::Data(b) | Module::Wasm(b) => b.clone(),
        Module::Json(v) => v.to_string().into_bytes(),
        other => other.source_text().unwrap_or_default().as_bytes().to_vec(),
    }
}

fn module_json(path: &Path, name: &str, bytes: Vec<u8>) -> Result<Value, FunctionDirError> {
    use base64::Engine as _;
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| FunctionDirError::Manifest {
            path: path.to_owned(),
            reason: "is not UTF-8 text".into(),
        })
    };
    Ok(match ext {
        "js" | "mjs" => serde_json::json!({ "js": text(bytes)? }),
        "cjs" => serde_json::json!({ "cjs": text(bytes)? }),
        "ts" | "mts" | "cts" => serde_json::json!({ "ts": text(bytes)? }),
        "txt" => serde_json::json!({ "text": text(bytes)? }),
        "json" => {
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|e| FunctionDirError::Manifest {
                    path: path.to_owned(),
                    reason: format!("is not valid JSON: {e}"),
                })?;
            serde_json::json!({ "json": v })
        }
        "wasm" => {
            serde_json::json!({ "wasm": base64::engine::general_purpose::STANDARD.encode(bytes) })
        }
        _ => serde_json::json!({ "data": base64::engine::general_purpose::STANDARD.encode(bytes) }),
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), FunctionDirError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        let path = entry.path();
        let ty = entry.file_type().map_err(io(&path))?;
        if ty.is_dir() {
            collect(root, &path, out)?;
            if out.len() > MAX_FILES {
                return Ok(());
            }
        } else if ty.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
            let wanted = matches!(
                ext,
                "js" | "mjs" | "cjs" | "ts" | "mts" | "cts" | "json" | "txt" | "wasm"
            ) && !bundle::strip::is_declaration_file(name)
                && !SKIPPED_FILES.contains(&name);
            if rel != MANIFEST_FILE && wanted {
                out.push(rel);
            }
        }
    }
    Ok(())
}

/// Every function in `dir` (for `serve --deploy DIR`): each subdirectory that has a
/// `function.json`, and each top-level `.js`/`.mjs` file. In name order.
pub fn discover(dir: &Path) -> Result<Vec<FunctionSource>, FunctionDirError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        let is_function_dir = path.is_dir() && path.join(MANIFEST_FILE).is_file();
        if is_function_dir || (path.is_file() && is_script_file(&path)) {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|p| load(p, None)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_modules_default_to_known_extensions_typed_by_extension() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("my-fn");
        std::fs::create_dir_all(f.join("lib")).expect("mkdir");
        std::fs::write(f.join("index.js"), "export default {}").expect("write");
        std::fs::write(f.join("lib/u.cjs"), "module.exports = 1").expect("write");
        std::fs::write(f.join("words.txt"), "hi").expect("write");
        std::fs::write(f.join("c.json"), "{\"a\":1}").expect("write");
        std::fs::write(f.join("README.md"), "ignored").expect("write");
        std::fs::write(
            f.join(MANIFEST_FILE),
            r#"{"bindings": {"KV": {"type": "kv", "namespace": "n"}}}"#,
        )
        .expect("write");
        let src = load(&f, None).expect("loads");
        assert_eq!(src.id, "my-fn");
        assert_eq!(src.bundle.main_module, "index.js");
        let names: Vec<_> = src.bundle.modules.keys().cloned().collect();
        assert_eq!(names, ["c.json", "index.js", "lib/u.cjs", "words.txt"]);
        assert!(matches!(
            src.bundle.modules["lib/u.cjs"],
            Module::CommonJs(_)
        ));
        assert!(matches!(src.bundle.modules["words.txt"], Module::Text(_)));
        assert_eq!(src.bundle.bindings.len(), 1);
    }

    #[test]
    fn single_js_file_gets_its_id_from_the_file_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("hello.js");
        std::fs::write(&f, "export default {}").expect("write");
        let src = load(&f, None).expect("loads");
        assert_eq!(src.id, "hello");
        assert_eq!(src.bundle.main_module, "hello.js");
        let bad = dir.path().join("Bad_Name.js");
        std::fs::write(&bad, "x").expect("write");
        let err = load(&bad, None).expect_err("bad id");
        assert!(err.to_string().contains("--id"), "{err}");
        assert_eq!(load(&bad, Some("ok")).expect("override").id, "ok");
    }

    #[test]
    fn discover_finds_manifest_dirs_and_top_level_js_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a")).expect("mkdir");
        std::fs::write(dir.path().join("a/index.js"), "x").expect("write");
        std::fs::write(dir.path().join("a/function.json"), "{}").expect("write");
        std::fs::create_dir_all(dir.path().join("no-manifest")).expect("mkdir");
        std::fs::write(dir.path().join("b.js"), "x").expect("write");
        let ids: Vec<_> = discover(dir.path())
            .expect("discovers")
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn unknown_manifest_fields_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.js"), "x").expect("write");
        std::fs::write(dir.path().join(MANIFEST_FILE), r#"{"mian": "x.js"}"#).expect("write");
        let err = load(dir.path(), Some("x")).expect_err("refused");
        assert!(err.to_string().contains("unknown field `mian`"), "{err}");
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn a_listed_module_that_links_out_of_the_directory_is_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.js"), "export default {}").expect("write");
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.txt")).expect("symlink");
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            r#"{"modules": ["index.js", "zero.txt"]}"#,
        )
        .expect("write");
        let err = load(dir.path(), Some("x")).expect_err("refused");
        assert!(
            err.to_string().contains("outside the function's directory"),
            "{err}"
        );
    }
}
