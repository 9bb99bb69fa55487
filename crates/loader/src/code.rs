//! [`WorkerCode`]: what a function is made of, with workerd's field names, parsed from JSON
//! or from a capnweb value (what JavaScript passes to `env.LOADER.get(id, () => code)`), and
//! validated with clear errors.

use base64::Engine as _;
use capnweb::{Object, Stub, Value};
use indexmap::IndexMap;
use isolate::{IsolateConfig, Limits, ModuleSource};

/// Why a `WorkerCode` is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// The code is not an object.
    #[error("worker code must be an object")]
    NotAnObject,
    /// `mainModule` is missing.
    #[error("worker code has no mainModule")]
    MissingMainModule,
    /// `modules` is missing or empty.
    #[error("worker code has no modules")]
    NoModules,
    /// `mainModule` names a module that is not in `modules`.
    #[error("mainModule '{0}' is not in modules")]
    MainModuleNotFound(String),
    /// A module has no known type key.
    #[error("module '{module}' has an unknown module type (expected one of js, esModule, cjs, commonJsModule, text, data, json, wasm; got {found})")]
    UnknownModuleType {
        /// The module's name.
        module: String,
        /// The keys it had.
        found: String,
    },
    /// A module's content has the wrong type.
    #[error("module '{module}': {reason}")]
    InvalidModule {
        /// The module's name.
        module: String,
        /// What is wrong.
        reason: String,
    },
    /// Another field has the wrong type.
    #[error("worker code field '{field}': {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Per-function limits in `WorkerCode` (`limits: { cpuMs, memoryMb }`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerLimits {
    /// CPU time per invocation, in milliseconds.
    pub cpu_ms: Option<u64>,
    /// JavaScript heap, in MiB.
    pub memory_mb: Option<u64>,
}

/// The code of one function, as workerd's Worker Loader takes it.
#[derive(Debug, Clone)]
pub struct WorkerCode {
    /// `compatibilityDate` (recorded; no behaviour depends on it yet).
    pub compatibility_date: Option<String>,
    /// `compatibilityFlags` (recorded; no behaviour depends on them yet).
    pub compatibility_flags: Vec<String>,
    /// `mainModule`: the module whose exports are the entrypoints.
    pub main_module: String,
    /// `modules`: name → module.
    pub modules: IndexMap<String, ModuleSource>,
    /// `env`: vars (plain values) and bindings (stubs).
    pub env: Object,
    /// `globalOutbound`: what the global `fetch()` calls; `None` means no network.
    pub global_outbound: Option<Stub>,
    /// `limits`.
    pub limits: WorkerLimits,
}

impl WorkerCode {
    /// Code made of one ES module, `index.js`.
    pub fn single(source: impl Into<String>) -> Self {
        let mut modules = IndexMap::new();
        modules.insert("index.js".to_owned(), ModuleSource::EsModule(source.into()));
        WorkerCode {
            compatibility_date: None,
            compatibility_flags: Vec::new(),
            main_module: "index.js".into(),
            modules,
            env: Object::new(),
            global_outbound: None,
            limits: WorkerLimits::default(),
        }
    }

    /// Adds an env entry (a var or a binding stub).
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Parses code from JSON.
    pub fn from_json(json: &serde_json::Value) -> Result<Self, CodeError> {
        Self::from_value(&Value::from_json(json))
    }

    /// Parses code from a capnweb value (stubs allowed in `env` and `globalOutbound`).
    pub fn from_value(v: &Value) -> Result<Self, CodeError> {
        let obj = v.as_object().ok_or(CodeError::NotAnObject)?;
        let main_module = match obj.get("mainModule") {
            None | Some(Value::Undefined | Value::Null) => {
                return Err(CodeError::MissingMainModule)
            }
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => {
                return Err(CodeError::InvalidField {
                    field: "mainModule",
                    reason: "must be a non-empty string".into(),
                })
            }
        };
        let modules_obj = match obj.get("modules") {
            Some(Value::Object(m)) if !m.is_empty() => m,
            None | Some(Value::Undefined | Value::Null) => return Err(CodeError::NoModules),
            Some(Value::Object(_)) => return Err(CodeError::NoModules),
            Some(_) => {
                return Err(CodeError::InvalidField {
                    field: "modules",
                    reason: "must be an object of name → module".into(),
                })
            }
        };
        let mut modules = IndexMap::new();
        for (name, m) in modules_obj {
            modules.insert(name.clone(), parse_module(name, m)?);
        }
        let norm = |s: &str| {
            s.trim_start_matches("./")
                .trim_start_matches('/')
                .to_owned()
        };
        if !modules.keys().any(|k| norm(k) == norm(&main_module)) {
            return Err(CodeError::MainModuleNotFound(main_module));
        }
        let compatibility_date = match obj.get("compatibilityDate") {
            None | Some(Value::Undefined | Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(CodeError::InvalidField {
                    field: "compatibilityDate",
                    reason: "must be a string".into(),
                })
            }
        };
        let compatibility_flags = match obj.get("compatibilityFlags") {
            None | Some(Value::Undefined | Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|f| {
                    f.as_str()
                        .map(str::to_owned)
                        .ok_or(CodeError::InvalidField {
                            field: "compatibilityFlags",
                            reason: "must be an array of strings".into(),
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(CodeError::InvalidField {
                    field: "compatibilityFlags",
                    reason: "must be an array of strings".into(),
                })
            }
        };
        let env = match obj.get("env") {
            None | Some(Value::Undefined | Value::Null) => Object::new(),
            Some(Value::Object(e)) => e.clone(),
            Some(_) => {
                return Err(CodeError::InvalidField {
                    field: "env",
                    reason: "must be an object".into(),
                })
            }
        };
        let global_outbound = match obj.get("globalOutbound") {
            None | Some(Value::Undefined | Value::Null) => None,
            Some(Value::Stub(s)) => Some(s.clone()),
            Some(Value::Promise(p)) => Some(p.to_stub()),
            Some(_) => {
                return Err(CodeError::InvalidField {
                    field: "globalOutbound",
                    reason: "must be a service binding (a stub with a fetch method) or null".into(),
                })
            }
        };
        let limits = match obj.get("limits") {
            None | Some(Value::Undefined | Value::Null) => WorkerLimits::default(),
            Some(Value::Object(l)) => WorkerLimits {
                cpu_ms: positive(l.get("cpuMs"), "limits")?,
                memory_mb: positive(l.get("memoryMb"), "limits")?,
            },
            Some(_) => {
                return Err(CodeError::InvalidField {
                    field: "limits",
                    reason: "must be an object { cpuMs, memoryMb }".into(),
                })
            }
        };
        Ok(WorkerCode {
            compatibility_date,
            compatibility_flags,
            main_module,
            modules,
            env,
            global_outbound,
            limits,
        })
    }

    /// The JSON form (without stubs: bindings in `env` become `null`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let modules: serde_json::Map<String, serde_json::Value> = self
            .modules
            .iter()
            .map(|(name, m)| {
                let v = match m {
                    ModuleSource::EsModule(s) => json!({ "esModule": s }),
                    ModuleSource::CommonJs(s) => json!({ "commonJsModule": s }),
                    ModuleSource::Text(s) => json!({ "text": s }),
                    ModuleSource::Json(s) => json!({ "json": serde_json::from_str::<serde_json::Value>(s).unwrap_or(serde_json::Value::Null) }),
                    ModuleSource::Data(b) => json!({ "data": base64::engine::general_purpose::STANDARD.encode(b) }),
                    ModuleSource::Wasm(b) => json!({ "wasm": base64::engine::general_purpose::STANDARD.encode(b) }),
                    _ => serde_json::Value::Null,
                };
                (name.clone(), v)
            })
            .collect();
        let mut out = json!({
            "mainModule": self.main_module,
            "modules": modules,
            "env": Value::Object(self.env.clone()).to_json(),
        });
        if let Some(d) = &self.compatibility_date {
            out["compatibilityDate"] = json!(d);
        }
        if !self.compatibility_flags.is_empty() {
            out["compatibilityFlags"] = json!(self.compatibility_flags);
        }
        if self.limits != WorkerLimits::default() {
            out["limits"] =
                json!({ "cpuMs": self.limits.cpu_ms, "memoryMb": self.limits.memory_mb });
        }
        out
    }

    /// The isolate configuration for function `id`, with `defaults` for unset limits.
    /// The loader clamps these limits before it builds anything (see [`crate::Loader::limits_for`]).
    pub fn to_isolate_config(&self, id: &str, defaults: Limits) -> IsolateConfig {
        let limits = crate::limits::requested(&self.limits, defaults);
        IsolateConfig {
            id: id.to_owned(),
            modules: self
                .modules
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            main_module: self.main_module.clone(),
            env: Value::Object(self.env.clone()),
            global_outbound: self.global_outbound.clone(),
            limits,
            call_budget: None,
        }
    }
}

impl serde::Serialize for WorkerCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for WorkerCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(d)?;
        WorkerCode::from_json(&json).map_err(serde::de::Error::custom)
    }
}

fn positive(v: Option<&Value>, field: &'static str) -> Result<Option<u64>, CodeError> {
    match v {
        None | Some(Value::Undefined | Value::Null) => Ok(None),
        Some(Value::Number(n)) if *n >= 1.0 && n.fract() == 0.0 => Ok(Some(*n as u64)),
        Some(_) => Err(CodeError::InvalidField {
            field,
            reason: "cpuMs and memoryMb must be positive integers".into(),
        }),
    }
}

fn bytes(module: &str, kind: &str, v: &Value) -> Result<Vec<u8>, CodeError> {
    let bad = |reason: String| CodeError::InvalidModule {
        module: module.to_owned(),
        reason,
    };
    match v {
        Value::Bytes(b) => Ok(b.data.clone()),
        Value::String(s) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| bad(format!("{kind} must be bytes or a base64 string: {e}"))),
        Value::Array(a) => a
            .iter()
            .map(|x| match x.as_f64() {
                Some(n) if (0.0..=255.0).contains(&n) && n.fract() == 0.0 => Ok(n as u8),
                _ => Err(bad(format!("{kind} must be an array of bytes"))),
            })
            .collect(),
        _ => Err(bad(format!("{kind} must be bytes or a base64 string"))),
    }
}

fn parse_module(name: &str, m: &Value) -> Result<ModuleSource, CodeError> {
    let invalid = |reason: String| CodeError::InvalidModule {
        module: name.to_owned(),
        reason,
    };
    // Bytes (a JS `Uint8Array`/`ArrayBuffer`) have no JSON form: data and wasm modules given
    // as bytes are taken as they are; everything else goes through the one module parser.
    if let Value::Object(o) = m {
        let present: Vec<(&String, &Value)> = o.iter().filter(|(_, v)| !v.is_undefined()).collect();
        if let [(kind, v)] = present.as_slice() {
            match (kind.as_str(), v) {
                ("data", Value::Bytes(_) | Value::Array(_)) => {
                    return Ok(ModuleSource::Data(bytes(name, kind, v)?))
                }
                ("wasm", Value::Bytes(_) | Value::Array(_)) => {
                    return Ok(ModuleSource::Wasm(bytes(name, kind, v)?))
                }
                _ => {}
            }
        } else {
            return Err(CodeError::UnknownModuleType {
                module: name.to_owned(),
                found: format!("{:?}", o.keys().collect::<Vec<_>>()),
            });
        }
    }
    let module = bundle::Module::from_json(name, m.to_json()).map_err(|e| match e {
        bundle::ManifestError::UnknownModuleType { module, found } => {
            CodeError::UnknownModuleType { module, found }
        }
        bundle::ManifestError::Invalid { reason, .. } => invalid(reason),
        other => invalid(other.to_string()),
    })?;
    module_source(name, module)
}

/// The isolate's form of a bundle module. TypeScript is refused: it is built at deploy, and
/// code loaded through `env.LOADER` is JavaScript (as in workerd).
pub fn module_source(name: &str, module: bundle::Module) -> Result<ModuleSource, CodeError> {
    Ok(match module {
        bundle::Module::EsModule(s) => ModuleSource::EsModule(s),
        bundle::Module::CommonJs(s) => ModuleSource::CommonJs(s),
        bundle::Module::Text(s) => ModuleSource::Text(s),
        bundle::Module::Data(b) => ModuleSource::Data(b),
        bundle::Module::Json(v) => ModuleSource::Json(v.to_string()),
        bundle::Module::Wasm(b) => ModuleSource::Wasm(b),
        bundle::Module::TypeScript(_) => {
            return Err(CodeError::InvalidModule {
                module: name.to_owned(),
                reason: "TypeScript is built when a function is deployed; code loaded through \
                         env.LOADER must be JavaScript"
                    .into(),
            })
        }
        _ => {
            return Err(CodeError::InvalidModule {
                module: name.to_owned(),
                reason: "unsupported module type".into(),
            })
        }
    })
}
