//! The deploy bundle: the Worker Loader's `WorkerCode` JSON (workerd's field names) plus a
//! `bindings` section the server resolves.
//!
//! ```json
//! {
//!   "compatibilityDate": "2025-06-01",
//!   "compatibilityFlags": ["nodejs_compat"],
//!   "mainModule": "index.js",
//!   "modules": {
//!     "index.js": "export default { fetch() { return new Response('hi') } }",
//!     "util.cjs": { "cjs": "module.exports = 1" },
//!     "greeting.txt": { "text": "hello" },
//!     "config.json": { "json": { "debug": true } },
//!     "blob.bin": { "data": "AAEC" },
//!     "add.wasm": { "wasm": "AGFzbQEAAAA=" }
//!   },
//!   "env": { "GREETING": "hello" },
//!   "bindings": {
//!     "VERSION": "1.2.3",
//!     "USERS": { "type": "service", "service": "users", "entrypoint": "Admin" },
//!     "SESSIONS": { "type": "kv", "namespace": "sessions" },
//!     "FILES": { "type": "blob", "bucket": "files" },
//!     "LOADER": { "type": "loader" },
//!     "RAW": { "type": "var", "value": { "type": "not-a-binding" } }
//!   },
//!   "limits": { "cpuMs": 50, "memoryMb": 64 },
//!   "conditions": ["workerd", "worker", "browser"]
//! }
//! ```
//!
//! `conditions` (optional) are the export conditions the deploy resolves packages with, in
//! priority order, instead of the defaults (`workerd`, `worker`, `browser`); `import` (or
//! `require`) and `default` are always added. At most [`MAX_CONDITIONS`], each 1 to
//! [`MAX_CONDITION_BYTES`] bytes of `A-Z a-z 0-9 . _ -`.
//!
//! Modules are a bare string (typed by the name's extension: `.js`/`.mjs` ES module, `.cjs`
//! CommonJS, `.json` JSON text, `.txt` text) or an object with exactly one of `js`/`esModule`,
//! `cjs`/`commonJsModule`, `text`, `data` (base64), `json` (any JSON), `wasm` (base64).
//!
//! A binding is a plain JSON value (a var), or an object whose `type` is one of `service`, `kv`,
//! `blob`, `loader` or `var` (`{"type":"var","value":…}` is how to pass an object var that has
//! a `type` field of its own). An object with any other string `type` is refused, so a typo does
//! not silently turn a binding into a var. A service binding names a function that need not exist
//! yet: it is resolved at call time, to whatever version of that function is live then.
//!
//! [`Bundle::from_json`] parses and validates in one step and refuses anything it does not
//! understand (unknown fields included) with a [`ManifestError`] that names the field.
//! [`Bundle::to_json`] writes the canonical form the server stores (typed modules only).

use base64::Engine as _;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Largest `limits.cpuMs` a bundle can say (whatever the server allows; a server's own
/// maximum, [`MaxLimits`], is at most this).
pub const MAX_CPU_MS: u64 = 300_000;
/// Largest `limits.memoryMb` a bundle can say (a server's own maximum is at most this).
pub const MAX_MEMORY_MB: u64 = 4096;
/// Longest module name, in bytes.
pub const MAX_MODULE_NAME_BYTES: usize = 512;
/// Longest binding or env name, in bytes.
pub const MAX_BINDING_NAME_BYTES: usize = 128;
/// Most export conditions a bundle may name.
pub const MAX_CONDITIONS: usize = 16;
/// Longest export condition, in bytes.
pub const MAX_CONDITION_BYTES: usize = 64;

/// Why a bundle was refused. The message names the field and says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The body is not JSON, or has a field of the wrong type, or an unknown field.
    #[error("bundle is not valid: {0}")]
    Json(String),
    /// A module has no known type key (or more than one).
    #[error("bundle field `modules[{module:?}]`: unknown module type {found}; expected one of js, esModule, cjs, commonJsModule, ts, text, data, json, wasm")]
    UnknownModuleType {
        /// The module's name.
        module: String,
        /// The keys it had.
        found: String,
    },
    /// A field has a value the server does not accept.
    #[error("bundle field `{field}`: {reason}")]
    Invalid {
        /// Where, as a path (`modules["a.js"]`, `bindings.KV.namespace`).
        field: String,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One module of a bundle, by kind.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Module {
    /// An ES module's source.
    EsModule(String),
    /// A CommonJS module's source.
    CommonJs(String),
    /// A text module (its default export is the string).
    Text(String),
    /// A data module (its default export is an `ArrayBuffer`).
    Data(Vec<u8>),
    /// A JSON module (its default export is the parsed value).
    Json(Value),
    /// A WebAssembly module's bytes.
    Wasm(Vec<u8>),
    /// A TypeScript module's source (`.ts`, `.mts`, `.cts`): a deploy builds it into an ES or
    /// CommonJS module; it never reaches an isolate.
    TypeScript(String),
}

impl Module {
    /// True for ES, CommonJS and TypeScript modules (the kinds a main module may be).
    pub fn is_script(&self) -> bool {
        matches!(
            self,
            Module::EsModule(_) | Module::CommonJs(_) | Module::TypeScript(_)
        )
    }

    /// The text of a script module (TypeScript included).
    pub fn source_text(&self) -> Option<&str> {
        match self {
            Module::EsModule(s) | Module::CommonJs(s) | Module::TypeScript(s) => Some(s),
            _ => None,
        }
    }

    /// Parses one module as the bundle's `modules` section writes it: a bare string (typed by
    /// the name's extension) or an object with exactly one type key. The one parser of
    /// modules: the deploy manifest and the Worker Loader's `WorkerCode` both use it.
    pub fn from_json(name: &str, value: Value) -> Result<Module, ManifestError> {
        parse_module(name, value)
    }

    /// The source of a script module.
    pub fn source(&self) -> Option<&str> {
        match self {
            Module::EsModule(s) | Module::CommonJs(s) => Some(s),
            _ => None,
        }
    }

    /// The canonical JSON form (an object with one type key).
    pub fn to_json(&self) -> Value {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        match self {
            Module::EsModule(s) => json!({ "js": s }),
            Module::CommonJs(s) => json!({ "cjs": s }),
            Module::Text(s) => json!({ "text": s }),
            Module::Data(b) => json!({ "data": b64(b) }),
            Module::Json(v) => json!({ "json": v }),
            Module::Wasm(b) => json!({ "wasm": b64(b) }),
            Module::TypeScript(s) => json!({ "ts": s }),
        }
    }
}

/// One entry of the `bindings` section, as declared (the server turns it into a capability
/// when the function is loaded).
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    /// A plain JSON value.
    Var(Value),
    /// Another function, by id; optionally a named entrypoint of it.
    Service {
        /// The function id.
        service: String,
        /// A named entrypoint (`export class Name extends WorkerEntrypoint`), or the default.
        entrypoint: Option<String>,
    },
    /// A KV namespace (Workers KV semantics).
    Kv {
        /// The namespace name.
        namespace: String,
        /// What the namespace may hold through this binding (within the server's cap).
        quota: BindingQuota,
    },
    /// A blob bucket (R2 semantics).
    Blob {
        /// The bucket name.
        bucket: String,
        /// What the bucket may hold through this binding (within the server's cap).
        quota: BindingQuota,
    },
    /// The Worker Loader itself (load more code dynamically).
    Loader,
}

impl Binding {
    fn to_json(&self) -> Value {
        match self {
            Binding::Var(v) => json!({ "type": "var", "value": v }),
            Binding::Service {
                service,
                entrypoint,
            } => {
                let mut o = json!({ "type": "service", "service": service });
                if let Some(e) = entrypoint {
                    o["entrypoint"] = json!(e);
                }
                o
            }
            Binding::Kv { namespace, quota } => {
                let mut o = json!({ "type": "kv", "namespace": namespace });
                if !quota.is_empty() {
                    o["quota"] = quota.to_json();
                }
                o
            }
            Binding::Blob { bucket, quota } => {
                let mut o = json!({ "type": "blob", "bucket": bucket });
                if !quota.is_empty() {
                    o["quota"] = quota.to_json();
                }
                o
            }
            Binding::Loader => json!({ "type": "loader" }),
        }
    }

    /// The binding's kind as written in the manifest (`var`, `service`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Binding::Var(_) => "var",
            Binding::Service { .. } => "service",
            Binding::Kv { .. } => "kv",
            Binding::Blob { .. } => "blob",
            Binding::Loader => "loader",
        }
    }
}

/// A binding's own quota (`"quota": {"maxBytes": …, "maxKeys": …}`): each limit it sets
/// lowers the server's (`serve --storage-quota-bytes/--storage-quota-keys`), never raises it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindingQuota {
    /// Most bytes (keys, values and metadata).
    pub max_bytes: Option<u64>,
    /// Most keys.
    pub max_keys: Option<u64>,
}

impl BindingQuota {
    /// The quota the store enforces: the server's cap, lowered by what this binding asks.
    pub fn within(&self, cap: store::Quota) -> store::Quota {
        store::Quota {
            max_bytes: self
                .max_bytes
                .map_or(cap.max_bytes, |b| b.min(cap.max_bytes)),
            max_keys: self.max_keys.map_or(cap.max_keys, |k| k.min(cap.max_keys)),
        }
    }

    fn is_empty(&self) -> bool {
        self.max_bytes.is_none() && self.max_keys.is_none()
    }

    fn to_json(self) -> Value {
        let mut o = Map::new();
        if let Some(b) = self.max_bytes {
            o.insert("maxBytes".into(), json!(b));
        }
        if let Some(k) = self.max_keys {
            o.insert("maxKeys".into(), json!(k));
        }
        Value::Object(o)
    }

    fn parse(o: &mut Map<String, Value>, field: &str) -> Result<BindingQuota, ManifestError> {
        let field = format!("{field}.quota");
        let mut q = match o.remove("quota") {
            None | Some(Value::Null) => return Ok(BindingQuota::default()),
            Some(Value::Object(q)) => q,
            Some(_) => return Err(invalid(field, "must be an object {maxBytes?, maxKeys?}")),
        };
        let mut number = |key: &str| match q.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| invalid(format!("{field}.{key}"), "must be a positive integer")),
        };
        let quota = BindingQuota {
            max_bytes: number("maxBytes")?,
            max_keys: number("maxKeys")?,
        };
        no_extra_fields(&q, &field, "maxBytes and maxKeys")?;
        Ok(quota)
    }
}

/// Resource limits for the function's isolate (enforced by the host).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// CPU time per call, in milliseconds.
    pub cpu_ms: Option<u64>,
    /// Memory of the isolate, in MiB.
    pub memory_mb: Option<u64>,
}

impl Limits {
    /// Refuses limits above `max` (a server's `--max-cpu-ms` / `--max-memory-mb`), naming the
    /// field and the maximum.
    pub fn check_within(&self, max: &MaxLimits) -> Result<(), ManifestError> {
        if let Some(c) = self.cpu_ms.filter(|c| *c > max.cpu_ms) {
            return Err(invalid(
                "limits.cpuMs",
                format!(
                    "{c} is above this server's maximum of {} (serve --max-cpu-ms)",
                    max.cpu_ms
                ),
            ));
        }
        if let Some(m) = self.memory_mb.filter(|m| *m > max.memory_mb) {
            return Err(invalid(
                "limits.memoryMb",
                format!(
                    "{m} is above this server's maximum of {} (serve --max-memory-mb)",
                    max.memory_mb
                ),
            ));
        }
        Ok(())
    }
}

/// The largest limits a bundle may declare on a server (`serve --max-cpu-ms`,
/// `--max-memory-mb`). A deploy above them is refused (400); a stored bundle above them (the
/// server was restarted with a lower maximum) runs clamped to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxLimits {
    /// CPU time per invocation, in milliseconds. Default 30,000.
    pub cpu_ms: u64,
    /// Memory of an isolate, in MiB. Default 512.
    pub memory_mb: u64,
}

impl Default for MaxLimits {
    fn default() -> Self {
        MaxLimits {
            cpu_ms: 30_000,
            memory_mb: 512,
        }
    }
}

/// A validated bundle: everything the host needs to load a function.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// workerd's `compatibilityDate` (`YYYY-MM-DD`).
    pub compatibility_date: Option<String>,
    /// workerd's `compatibilityFlags`.
    pub compatibility_flags: Vec<String>,
    /// The name of the module whose exports are the function's handlers.
    pub main_module: String,
    /// Every module by name, in the order given.
    pub modules: IndexMap<String, Module>,
    /// `WorkerCode.env`: plain JSON values put on `env` as they are.
    pub env: Map<String, Value>,
    /// The bindings the server resolves into capabilities on `env`.
    pub bindings: IndexMap<String, Binding>,
    /// Resource limits.
    pub limits: Limits,
    /// The modules as deployed, when building them changed anything (TypeScript stripped,
    /// imports rewritten, package files left out); `modules` is what runs.
    pub sources: Option<IndexMap<String, Module>>,
    /// The export conditions packages were resolved with, when not the defaults.
    pub conditions: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBundle {
    #[serde(default)]
    compatibility_date: Option<String>,
    #[serde(default)]
    compatibility_flags: Vec<String>,
    main_module: Option<String>,
    #[serde(default)]
    modules: Map<String, Value>,
    #[serde(default)]
    env: Map<String, Value>,
    #[serde(default)]
    bindings: Map<String, Value>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    sources: Option<Map<String, Value>>,
    #[serde(default)]
    conditions: Option<Vec<String>>,
}

impl Bundle {
    /// Parses and validates a bundle.
    pub fn from_json(bytes: &[u8]) -> Result<Bundle, ManifestError> {
        let raw: RawBundle =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        Self::from_raw(raw)
    }

    /// Validates a bundle already parsed as JSON.
    pub fn from_value(value: Value) -> Result<Bundle, ManifestError> {
        let raw: RawBundle =
            serde_json::from_value(value).map_err(|e| ManifestError::Json(e.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawBundle) -> Result<Bundle, ManifestError> {
        if let Some(date) = &raw.compatibility_date {
            validate_date(date)?;
        }
        for (i, flag) in raw.compatibility_flags.iter().enumerate() {
            if flag.is_empty() || flag.len() > 128 {
                return Err(invalid(
                    format!("compatibilityFlags[{i}]"),
                    "must be a non-empty string of at most 128 bytes",
                ));
            }
        }
        if raw.modules.is_empty() {
            return Err(invalid("modules", "must name at least one module"));
        }
        let mut modules = IndexMap::new();
        for (name, value) in raw.modules {
            validate_module_name(&name)?;
            let module = parse_module(&name, value)?;
            modules.insert(name, module);
        }
        let main_module = raw
            .main_module
            .ok_or_else(|| invalid("mainModule", "is required"))?;
        match modules.get(&main_module) {
            None => {
                return Err(invalid(
                    "mainModule",
                    format!("{main_module:?} is not one of the modules"),
                ))
            }
            Some(m) if !m.is_script() => {
                return Err(invalid(
                    "mainModule",
                    format!("{main_module:?} must be an ES module or a CommonJS module"),
                ))
            }
            Some(_) => {}
        }
        for name in raw.env.keys() {
            validate_binding_name("env", name)?;
        }
        let mut bindings = IndexMap::new();
        for (name, value) in raw.bindings {
            validate_binding_name("bindings", &name)?;
            if raw.env.contains_key(&name) {
                return Err(invalid(
                    format!("bindings.{name}"),
                    "is also defined in `env`; a name may be defined once",
                ));
            }
            let binding = parse_binding(&name, value)?;
            bindings.insert(name, binding);
        }
        validate_limits(&raw.limits)?;
        if let Some(c) = &raw.conditions {
            validate_conditions(c)?;
        }
        let sources = match raw.sources {
            None => None,
            Some(src) => {
                let mut out = IndexMap::new();
                for (name, value) in src {
                    validate_module_name(&name)?;
                    let module = parse_module(&name, value)?;
                    out.insert(name, module);
                }
                Some(out)
            }
        };
        Ok(Bundle {
            compatibility_date: raw.compatibility_date,
            compatibility_flags: raw.compatibility_flags,
            main_module,
            modules,
            env: raw.env,
            bindings,
            limits: raw.limits,
            sources,
            conditions: raw.conditions,
        })
    }

    /// The canonical JSON form (what the server stores and serves back).
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        if let Some(d) = &self.compatibility_date {
            o.insert("compatibilityDate".into(), json!(d));
        }
        if !self.compatibility_flags.is_empty() {
            o.insert("compatibilityFlags".into(), json!(self.compatibility_flags));
        }
        o.insert("mainModule".into(), json!(self.main_module));
        o.insert(
            "modules".into(),
            Value::Object(
                self.modules
                    .iter()
                    .map(|(k, m)| (k.clone(), m.to_json()))
                    .collect(),
            ),
        );
        if !self.env.is_empty() {
            o.insert("env".into(), Value::Object(self.env.clone()));
        }
        if !self.bindings.is_empty() {
            o.insert(
                "bindings".into(),
                Value::Object(
                    self.bindings
                        .iter()
                        .map(|(k, b)| (k.clone(), b.to_json()))
                        .collect(),
                ),
            );
        }
        let mut limits = Map::new();
        if let Some(c) = self.limits.cpu_ms {
            limits.insert("cpuMs".into(), json!(c));
        }
        if let Some(m) = self.limits.memory_mb {
            limits.insert("memoryMb".into(), json!(m));
        }
        if !limits.is_empty() {
            o.insert("limits".into(), Value::Object(limits));
        }
        if let Some(c) = &self.conditions {
            o.insert("conditions".into(), json!(c));
        }
        if let Some(sources) = &self.sources {
            o.insert(
                "sources".into(),
                Value::Object(
                    sources
                        .iter()
                        .map(|(k, m)| (k.clone(), m.to_json()))
                        .collect(),
                ),
            );
        }
        Value::Object(o)
    }

    /// The main module (validation guarantees it exists and is a script).
    pub fn main(&self) -> &Module {
        &self.modules[&self.main_module]
    }

    /// The value of a var: a `bindings` var or an `env` entry.
    pub fn var(&self, name: &str) -> Option<&Value> {
        match self.bindings.get(name) {
            Some(Binding::Var(v)) => Some(v),
            _ => self.env.get(name),
        }
    }
}

/// Checks export conditions: at most [`MAX_CONDITIONS`], each 1 to [`MAX_CONDITION_BYTES`]
/// bytes of `A-Z a-z 0-9 . _ -`.
pub fn validate_conditions(conditions: &[String]) -> Result<(), ManifestError> {
    if conditions.len() > MAX_CONDITIONS {
        return Err(invalid(
            "conditions",
            format!(
                "{} conditions is more than the limit of {MAX_CONDITIONS}",
                conditions.len()
            ),
        ));
    }
    for (i, c) in conditions.iter().enumerate() {
        let ok = !c.is_empty()
            && c.len() <= MAX_CONDITION_BYTES
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(invalid(
                format!("conditions[{i}]"),
                format!("{c:?} must be 1 to {MAX_CONDITION_BYTES} characters of A-Z a-z 0-9 . _ -"),
            ));
        }
    }
    Ok(())
}

fn validate_date(date: &str) -> Result<(), ManifestError> {
    let b = date.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "compatibilityDate",
            format!("{date:?} must be a date written YYYY-MM-DD"),
        ))
    }
}

fn validate_module_name(name: &str) -> Result<(), ManifestError> {
    let field = || format!("modules[{name:?}]");
    if name.is_empty() || name.len() > MAX_MODULE_NAME_BYTES {
        return Err(invalid(
            field(),
            format!("a module name must be 1 to {MAX_MODULE_NAME_BYTES} bytes"),
        ));
    }
    if name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(invalid(
            field(),
            "a module name must be a relative path without empty, `.` or `..` segments",
        ));
    }
    Ok(())
}

fn decode_b64(field: &str, s: &str) -> Result<Vec<u8>, ManifestError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| invalid(field, format!("must be base64: {e}")))
}

fn parse_module(name: &str, value: Value) -> Result<Module, ManifestError> {
    let field = format!("modules[{name:?}]");
    match value {
        Value::String(src) => {
            let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
            match ext {
                "js" | "mjs" => Ok(Module::EsModule(src)),
                "cjs" => Ok(Module::CommonJs(src)),
                "ts" | "mts" | "cts" => Ok(Module::TypeScript(src)),
                "txt" => Ok(Module::Text(src)),
                "json" => serde_json::from_str(&src)
                    .map(Module::Json)
                    .map_err(|e| invalid(field, format!("is not valid JSON: {e}"))),
                _ => Err(invalid(
                    field,
                    "a bare string module must be named .js, .mjs, .cjs, .ts, .mts, .cts, .json or .txt; \
                     use an object such as {\"text\": …} or {\"wasm\": base64} otherwise",
                )),
            }
        }
        Value::Object(o) => {
            if o.len() != 1 {
                return Err(ManifestError::UnknownModuleType {
                    module: name.to_owned(),
                    found: format!("{:?}", o.keys().collect::<Vec<_>>()),
                });
            }
            let (kind, v) = o.into_iter().next().unwrap_or_default();
            let as_str = |v: Value| match v {
                Value::String(s) => Ok(s),
                _ => Err(invalid(format!("{field}.{kind}"), "must be a string")),
            };
            let kind_field = format!("{field}.{kind}");
            match kind.as_str() {
                "js" | "esModule" => Ok(Module::EsModule(as_str(v)?)),
                "cjs" | "commonJsModule" => Ok(Module::CommonJs(as_str(v)?)),
                "text" => Ok(Module::Text(as_str(v)?)),
                "ts" | "typescript" => Ok(Module::TypeScript(as_str(v)?)),
                "data" => Ok(Module::Data(decode_b64(&kind_field, &as_str(v)?)?)),
                "wasm" => Ok(Module::Wasm(decode_b64(&kind_field, &as_str(v)?)?)),
                "json" => Ok(Module::Json(v)),
                other => Err(ManifestError::UnknownModuleType {
                    module: name.to_owned(),
                    found: format!("{other:?}"),
                }),
            }
        }
        _ => Err(invalid(field, "must be a string (the source) or an object")),
    }
}

fn validate_binding_name(section: &str, name: &str) -> Result<(), ManifestError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !first_ok || !rest_ok || name.len() > MAX_BINDING_NAME_BYTES {
        return Err(invalid(
            format!("{section}.{name}"),
            format!(
                "a name must be a JavaScript identifier ([A-Za-z_$][A-Za-z0-9_$]*) of at most \
                 {MAX_BINDING_NAME_BYTES} bytes"
            ),
        ));
    }
    Ok(())
}

fn string_field(
    o: &mut Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Option<String>, ManifestError> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{field}.{key}"), "must be a string")),
    }
}

fn no_extra_fields(
    o: &Map<String, Value>,
    field: &str,
    allowed: &str,
) -> Result<(), ManifestError> {
    match o.keys().next() {
        None => Ok(()),
        Some(k) => Err(invalid(
            format!("{field}.{k}"),
            format!("unknown field; this binding type allows {allowed}"),
        )),
    }
}

fn required(v: Option<String>, field: &str, key: &str) -> Result<String, ManifestError> {
    match v {
        Some(s) if !s.is_empty() && s.len() <= 255 => Ok(s),
        Some(_) => Err(invalid(format!("{field}.{key}"), "must be 1 to 255 bytes")),
        None => Err(invalid(format!("{field}.{key}"), "is required")),
    }
}

fn parse_binding(name: &str, value: Value) -> Result<Binding, ManifestError> {
    let field = format!("bindings.{name}");
    let mut o = match value {
        Value::Object(o) if matches!(o.get("type"), Some(Value::String(_))) => o,
        other => return Ok(Binding::Var(other)),
    };
    let kind = string_field(&mut o, &field, "type")?.unwrap_or_default();
    match kind.as_str() {
        "var" => {
            let value = o
                .remove("value")
                .ok_or_else(|| invalid(format!("{field}.value"), "is required"))?;
            no_extra_fields(&o, &field, "type and value")?;
            Ok(Binding::Var(value))
        }
        "service" => {
            let service = required(string_field(&mut o, &field, "service")?, &field, "service")?;
            store::validate_function_id(&service)
                .map_err(|e| invalid(format!("{field}.service"), e.to_string()))?;
            let entrypoint = string_field(&mut o, &field, "entrypoint")?;
            if let Some(e) = &entrypoint {
                validate_binding_name(&format!("{field}.entrypoint"), e)?;
            }
            no_extra_fields(&o, &field, "type, service and entrypoint")?;
            Ok(Binding::Service {
                service,
                entrypoint,
            })
        }
        "kv" => {
            let namespace = required(
                string_field(&mut o, &field, "namespace")?,
                &field,
                "namespace",
            )?;
            let quota = BindingQuota::parse(&mut o, &field)?;
            no_extra_fields(&o, &field, "type, namespace and quota")?;
            Ok(Binding::Kv { namespace, quota })
        }
        "blob" => {
            let bucket = required(string_field(&mut o, &field, "bucket")?, &field, "bucket")?;
            let quota = BindingQuota::parse(&mut o, &field)?;
            no_extra_fields(&o, &field, "type, bucket and quota")?;
            Ok(Binding::Blob { bucket, quota })
        }
        "loader" => {
            no_extra_fields(&o, &field, "only type")?;
            Ok(Binding::Loader)
        }
        other => Err(invalid(
            format!("{field}.type"),
            format!(
                "unknown binding type {other:?}; expected service, kv, blob, loader or var \
                 (wrap an object var that has a `type` field as {{\"type\":\"var\",\"value\":…}})"
            ),
        )),
    }
}

fn validate_limits(limits: &Limits) -> Result<(), ManifestError> {
    if let Some(c) = limits.cpu_ms {
        if c == 0 || c > MAX_CPU_MS {
            return Err(invalid(
                "limits.cpuMs",
                format!("must be between 1 and {MAX_CPU_MS}"),
            ));
        }
    }
    if let Some(m) = limits.memory_mb {
        if m == 0 || m > MAX_MEMORY_MB {
            return Err(invalid(
                "limits.memoryMb",
                format!("must be between 1 and {MAX_MEMORY_MB}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Bundle, ManifestError> {
        Bundle::from_json(v.to_string().as_bytes())
    }

    #[test]
    fn full_bundle_round_trips_through_canonical_json() {
        let b = parse(json!({
            "compatibilityDate": "2025-06-01",
            "mainModule": "index.js",
            "modules": {
                "index.js": "export default {}",
                "lib.cjs": "module.exports = 1",
                "a.txt": "hi",
                "c.json": "{\"x\":1}",
                "d.bin": {"data": "AAEC"},
                "w.wasm": {"wasm": "AGFzbQEAAAA="},
                "e.js": {"esModule": "export const x = 1"}
            },
            "env": {"A": 1},
            "bindings": {
                "V": "1.0",
                "S": {"type": "service", "service": "other"},
                "KV": {"type": "kv", "namespace": "ns"},
                "B": {"type": "blob", "bucket": "b"},
                "L": {"type": "loader"},
                "O": {"type": "var", "value": {"type": "x"}},
                "P": {"plain": true}
            },
            "limits": {"cpuMs": 10},
            "conditions": ["custom", "worker"]
        }))
        .expect("valid");
        assert_eq!(
            b.conditions.as_deref(),
            Some(&["custom".to_owned(), "worker".to_owned()][..])
        );
        assert_eq!(
            b.modules["lib.cjs"],
            Module::CommonJs("module.exports = 1".into())
        );
        assert_eq!(b.modules["c.json"], Module::Json(json!({"x": 1})));
        assert_eq!(b.modules["d.bin"], Module::Data(vec![0, 1, 2]));
        assert_eq!(b.bindings["P"], Binding::Var(json!({"plain": true})));
        assert_eq!(b.var("V"), Some(&json!("1.0")));
        assert_eq!(b.var("A"), Some(&json!(1)));
        let again = Bundle::from_value(b.to_json()).expect("canonical form parses");
        assert_eq!(again, b);
    }

    #[test]
    fn conditions_are_bounded_in_count_length_and_characters() {
        let with = |c: Value| {
            parse(json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "conditions": c}))
        };
        assert!(with(json!([])).is_ok_and(|b| b.conditions == Some(vec![])));
        assert!(with(json!(["a.b_c-D9"])).is_ok());
        let too_many: Vec<String> = (0..=MAX_CONDITIONS).map(|i| format!("c{i}")).collect();
        for (bad, field) in [
            (json!(too_many), "`conditions`"),
            (json!(["ok", ""]), "`conditions[1]`"),
            (
                json!(["x".repeat(MAX_CONDITION_BYTES + 1)]),
                "`conditions[0]`",
            ),
            (json!(["has space"]), "`conditions[0]`"),
            (json!(["a/b"]), "`conditions[0]`"),
            (json!(["é"]), "`conditions[0]`"),
        ] {
            let err = with(bad.clone()).expect_err("refused");
            assert!(err.to_string().contains(field), "{bad}: {err}");
        }
        assert!(matches!(with(json!("custom")), Err(ManifestError::Json(_))));
    }

    #[test]
    fn malformed_bundles_are_refused_naming_the_field() {
        let cases = [
            (json!({"modules": {"a.js": "x"}}), "mainModule"),
            (
                json!({"mainModule": "b.js", "modules": {"a.js": "x"}}),
                "not one of the modules",
            ),
            (
                json!({"mainModule": "a.txt", "modules": {"a.txt": "x"}}),
                "ES module",
            ),
            (
                json!({"mainModule": "a.js", "modules": {}}),
                "at least one module",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": 5}}),
                "modules[\"a.js\"]",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": {"py": "x"}}}),
                "unknown module type",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x", "../b.js": "y"}}),
                "relative path",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x", "b.wasm": "y"}}),
                "bare string",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x", "b": {"data": "!!"}}}),
                "base64",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "bindings": {"K": {"type": "kvv"}}}),
                "unknown binding type",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "bindings": {"K": {"type": "kv"}}}),
                "bindings.K.namespace",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "bindings": {"K": {"type": "kv", "namespace": "n", "x": 1}}}),
                "bindings.K.x",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "bindings": {"S": {"type": "service", "service": "_admin"}}}),
                "bindings.S.service",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "bindings": {"1x": 1}}),
                "identifier",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "env": {"A": 1}, "bindings": {"A": 2}}),
                "defined once",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "limits": {"cpuMs": 0}}),
                "limits.cpuMs",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "limits": {"cpu": 1}}),
                "unknown field",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "compatibilityDate": "June"}),
                "YYYY-MM-DD",
            ),
            (
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "extra": 1}),
                "unknown field `extra`",
            ),
        ];
        for (bundle, needle) in cases {
            let err = parse(bundle.clone()).expect_err(&bundle.to_string());
            assert!(
                err.to_string().contains(needle),
                "{bundle}: {err} should mention {needle:?}"
            );
        }
        assert!(matches!(
            Bundle::from_json(b"{not json"),
            Err(ManifestError::Json(_))
        ));
    }
}
