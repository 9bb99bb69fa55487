//! [`LoaderHost`]: the [`FunctionHost`] that runs function code on the Worker Loader
//! ([`loader::Loader`]), one QuickJS isolate per function version. This is what the binary
//! runs.
//!
//! - **check** test-loads the bundle as a one-shot isolate (`Loader::load`): a syntax error,
//!   a missing module or a module that throws while evaluating refuses the deploy with the
//!   isolate's message (which names the module).
//! - **fetch** / **rpc_target** use `loader.get("<id>@<version>", …)`: a version is loaded
//!   once, on first use, and shared by every call; a redeploy is a new cache key (a new
//!   isolate) and [`FunctionHost::retire`] evicts the versions that are no longer live.
//! - The bundle becomes a [`WorkerCode`]: its modules, the `env` the registry built (vars,
//!   KV/blob/service stubs, and the `loader` binding from [`LoaderHost::loader_binding`]),
//!   and its limits (`cpuMs` → the isolate's CPU-time limit, `memoryMb` → its heap limit).
//! - The RPC target is an instance of `default.rpc` when the default export has one (the
//!   seed's convention), else the default entrypoint (workerd's).
//! - `X-RPC-Method` on a function with no RPC surface for that method (no `default.rpc`,
//!   and the default entrypoint has no such member: a plain `export default { fetch }`) goes
//!   to its fetch handler, which may read the header itself (the seed's loader front end).
//!
//! Code a function loads through `env.LOADER` (its children, [`loader::Children`]) belongs to
//! the function version that loaded it: cached under `"<caller>/<id>"` (one function can never
//! reach another function's dynamically loaded code by guessing its id), run with at most that
//! version's limits, counted and capped per version, and evicted when the version is retired
//! (a deploy, rollback or delete), so children holding an old version's bindings stop.
//!
//! Limits: a bundle's `limits` over the loader's defaults, clamped to the loader's maximum
//! ([`LoaderConfig::max_limits`], `serve --max-cpu-ms` / `--max-memory-mb`), which
//! [`FunctionHost::max_limits`] reports so the registry refuses deploys above it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use capnweb::{Object, RpcError, Stub, Value};
use indexmap::IndexMap;
use loader::{Children, Loader, LoaderConfig, LoaderError, WorkerCode, WorkerLimits};

use crate::host::{Function, FunctionHost, HostError, HostFuture};
use crate::manifest::{Binding, Bundle, MaxLimits};

/// The Worker Loader's host. Cheap to share behind an `Arc`.
pub struct LoaderHost {
    loader: Loader,
    /// Per function: the versions this host has handed to the loader, with their last
    /// measured heap size.
    versions: Arc<Mutex<HashMap<String, HashMap<u64, u64>>>>,
    /// Per function and version: the code that version loaded through its `env.LOADER`.
    children: Mutex<HashMap<String, HashMap<u64, Children>>>,
}

impl std::fmt::Debug for LoaderHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoaderHost")
            .field("loader", &self.loader)
            .finish()
    }
}

impl Default for LoaderHost {
    fn default() -> Self {
        LoaderHost::new()
    }
}

/// The loader cache key of one function version (`@` is never part of a function id).
pub fn cache_key(id: &str, version: u64) -> String {
    format!("{id}@{version}")
}

impl LoaderHost {
    /// A host on a new loader with the default cache sizing and limits.
    pub fn new() -> LoaderHost {
        LoaderHost::with_loader(Loader::default())
    }

    /// A host on a new loader with `config`.
    pub fn with_config(config: LoaderConfig) -> LoaderHost {
        LoaderHost::with_loader(Loader::new(config))
    }

    /// A host on `loader` (shared with whoever else holds it).
    pub fn with_loader(loader: Loader) -> LoaderHost {
        LoaderHost {
            loader,
            versions: Arc::default(),
            children: Mutex::default(),
        }
    }

    /// The children of version `version` of `id` (what it loaded through `env.LOADER`), if it
    /// has a loader binding and is not retired.
    pub fn children_of(&self, id: &str, version: u64) -> Option<Children> {
        self.children_lock().get(id)?.get(&version).cloned()
    }

    fn children_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Children>>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The loader.
    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// Closes the children of every version of `id` but `live_version`: they hold that
    /// version's bindings, so they stop with it.
    fn retire_children(&self, id: &str, live_version: Option<u64>) {
        let retired: Vec<Children> = {
            let mut map = self.children_lock();
            let Some(vs) = map.get_mut(id) else {
                return;
            };
            let retired = vs
                .iter()
                .filter(|(v, _)| Some(**v) != live_version)
                .map(|(_, c)| c.clone())
                .collect();
            vs.retain(|v, _| Some(*v) == live_version);
            if vs.is_empty() {
                map.remove(id);
            }
            retired
        };
        for children in retired {
            let n = children.close();
            tracing::debug!(
                function = id,
                evicted = n,
                "children of a retired version closed"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, u64>>> {
        self.versions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker stub of one function version (loaded on first use).
    fn stub(&self, function: &Arc<Function>) -> loader::WorkerStub {
        self.lock()
            .entry(function.id.clone())
            .or_default()
            .entry(function.version)
            .or_insert(0);
        let f = function.clone();
        self.loader
            .get(cache_key(&function.id, function.version), move || {
                let f = f.clone();
                async move { Ok::<_, String>(worker_code(&f.bundle, f.env.clone())) }
            })
    }

    /// The isolate of one function version, loading it if needed.
    fn isolate(
        &self,
        function: &Arc<Function>,
    ) -> impl std::future::Future<Output = Result<isolate::Isolate, HostError>> + Send + 'static
    {
        let stub = self.stub(function);
        let versions = self.versions.clone();
        let id = function.id.clone();
        let version = function.version;
        async move {
            let iso = stub.isolate().await.map_err(|e| load_error(&e))?;
            let mut map = versions.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(vs) = map.get_mut(&id) {
                // The gauges depend only on this map, so they change only when it does
                // (here, or where versions are added and retired).
                let now = iso.memory_usage() as u64;
                if let Some(mem) = vs.get_mut(&version).filter(|m| **m != now) {
                    *mem = now;
                    crate::metrics::set_resident(&id, vs.len(), vs.values().sum());
                }
            }
            Ok(iso)
        }
    }
}

/// A bundle as the Worker Loader's code, with `env` as the code sees it.
pub fn worker_code(bundle: &Bundle, env: Object) -> WorkerCode {
    let mut modules = IndexMap::new();
    for (name, module) in &bundle.modules {
        // A deployed bundle is built: it has no TypeScript left (see `bundle::build`).
        if let Ok(source) = loader::module_source(name, module.clone()) {
            modules.insert(name.clone(), source);
        }
    }
    WorkerCode {
        compatibility_date: bundle.compatibility_date.clone(),
        compatibility_flags: bundle.compatibility_flags.clone(),
        main_module: bundle.main_module.clone(),
        modules,
        env,
        global_outbound: None,
        limits: WorkerLimits {
            cpu_ms: bundle.limits.cpu_ms,
            memory_mb: bundle.limits.memory_mb,
        },
    }
}

/// The `env` used to test-load a bundle: its vars only (module evaluation never sees `env`;
/// handlers do, and they do not run at check time).
fn check_env(bundle: &Bundle) -> Object {
    let mut env = Object::new();
    for (name, value) in &bundle.env {
        env.insert(name.clone(), Value::from_json(value));
    }
    for (name, binding) in &bundle.bindings {
        if let Binding::Var(v) = binding {
            env.insert(name.clone(), Value::from_json(v));
        }
    }
    env
}

/// Why a version could not be loaded, as a host error.
fn load_error(e: &LoaderError) -> HostError {
    match e {
        LoaderError::Load { error, .. } => match error {
            isolate::LoadError::ResourceLimit(m) => HostError::LimitExceeded(m.clone()),
            isolate::LoadError::Runtime(m) => HostError::Unavailable(m.clone()),
            other => HostError::InvalidCode(other.to_string()),
        },
        LoaderError::Code { error, .. } => HostError::InvalidCode(error.to_string()),
        other => HostError::Internal(other.to_string()),
    }
}

/// A rejected call as a host error: a broken limit, or what the code threw. (A missing fetch
/// handler is known before the call: [`isolate::Isolate::has_fetch_handler`].)
fn call_error(e: RpcError) -> HostError {
    if e.name() == isolate::RESOURCE_LIMIT_ERROR {
        return HostError::LimitExceeded(e.message());
    }
    HostError::Thrown(e)
}

impl FunctionHost for LoaderHost {
    fn check(&self, id: &str, bundle: Arc<Bundle>) -> HostFuture<()> {
        let code = worker_code(&bundle, check_env(&bundle));
        let loader = self.loader.clone();
        let id = id.to_owned();
        Box::pin(async move {
            match loader.load(code).isolate().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::info!(function = %id, error = %e, "deploy refused: code does not load");
                    Err(match e {
                        LoaderError::Load { error, .. } => match error {
                            isolate::LoadError::Runtime(m) => HostError::Unavailable(m),
                            other => HostError::InvalidCode(other.to_string()),
                        },
                        other => load_error(&other),
                    })
                }
            }
        })
    }

    fn fetch(
        &self,
        function: Arc<Function>,
        request: capnweb::RequestValue,
    ) -> HostFuture<capnweb::ResponseValue> {
        let iso = self.isolate(&function);
        Box::pin(async move {
            let iso = iso.await?;
            if !iso.has_fetch_handler() {
                return Err(HostError::NoHandler("fetch".into()));
            }
            iso.fetch(request).await.map_err(call_error)
        })
    }

    fn fetch_socket(
        &self,
        function: Arc<Function>,
        request: capnweb::RequestValue,
    ) -> HostFuture<(capnweb::ResponseValue, Option<isolate::Socket>)> {
        let iso = self.isolate(&function);
        Box::pin(async move {
            let iso = iso.await?;
            if !iso.has_fetch_handler() {
                return Err(HostError::NoHandler("fetch".into()));
            }
            iso.fetch_socket(request).await.map_err(call_error)
        })
    }

    fn rpc_session(
        &self,
        function: Arc<Function>,
        request: capnweb::RequestValue,
    ) -> HostFuture<isolate::RpcSession> {
        let iso = self.isolate(&function);
        Box::pin(async move {
            let iso = iso.await?;
            iso.rpc_session(request).await.map_err(call_error)
        })
    }

    fn rpc_target(&self, function: Arc<Function>, entrypoint: Option<String>) -> HostFuture<Stub> {
        let iso = self.isolate(&function);
        Box::pin(async move {
            let iso = iso.await?;
            Ok(match entrypoint {
                Some(name) => iso.entrypoint(Some(&name)),
                None => iso.rpc_target(),
            })
        })
    }

    fn rpc_header_goes_to_fetch(
        &self,
        function: Arc<Function>,
        method: String,
    ) -> HostFuture<bool> {
        let iso = self.isolate(&function);
        Box::pin(async move {
            let iso = iso.await?;
            if iso.has_rpc_surface() {
                return Ok(false);
            }
            // Probe the default entrypoint for the member (no method runs).
            match iso.entrypoint(None).get(&method).await {
                Ok(Value::Undefined) => Ok(true),
                Ok(_) | Err(_) => Ok(false),
            }
        })
    }

    fn resident_isolates(&self) -> usize {
        self.loader.resident()
    }

    fn retire(&self, id: &str, live_version: Option<u64>) {
        let stale: Vec<u64> = {
            let mut map = self.lock();
            match map.get_mut(id) {
                None => Vec::new(),
                Some(vs) => {
                    let stale = vs
                        .keys()
                        .copied()
                        .filter(|v| Some(*v) != live_version)
                        .collect();
                    vs.retain(|v, _| Some(*v) == live_version);
                    crate::metrics::set_resident(id, vs.len(), vs.values().sum());
                    if vs.is_empty() {
                        map.remove(id);
                    }
                    stale
                }
            }
        };
        for v in stale {
            self.loader.evict(&cache_key(id, v));
        }
        self.retire_children(id, live_version);
    }

    fn loader_binding(&self, id: &str, version: u64, bundle: &Bundle) -> Option<Stub> {
        let limits = self.loader.limits_for(&WorkerLimits {
            cpu_ms: bundle.limits.cpu_ms,
            memory_mb: bundle.limits.memory_mb,
        });
        let children = self
            .children_lock()
            .entry(id.to_owned())
            .or_default()
            .entry(version)
            .or_insert_with(|| self.loader.children(id, limits))
            .clone();
        Some(children.binding())
    }

    fn max_limits(&self) -> MaxLimits {
        let max = self.loader.config().max_limits;
        MaxLimits {
            cpu_ms: u64::try_from(max.cpu_time.as_millis()).unwrap_or(u64::MAX),
            memory_mb: (max.memory_bytes / (1024 * 1024)) as u64,
        }
    }

    fn shutdown(&self) {
        self.lock().clear();
        let all: Vec<Children> = self
            .children_lock()
            .drain()
            .flat_map(|(_, vs)| vs.into_values())
            .collect();
        for children in all {
            children.close();
        }
        self.loader.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(src: &str) -> Arc<Bundle> {
        let json = serde_json::json!({ "mainModule": "index.js", "modules": { "index.js": src } });
        Arc::new(Bundle::from_value(json).expect("bundle"))
    }

    #[tokio::test]
    async fn check_refuses_a_syntax_error_naming_the_module() {
        let host = LoaderHost::new();
        let err = host
            .check("bad", bundle("export default { fetch( { }"))
            .await
            .expect_err("syntax error must be refused");
        let HostError::InvalidCode(msg) = &err else {
            panic!("expected InvalidCode, got {err:?}");
        };
        assert!(msg.contains("index.js"), "{msg}");
        assert!(host
            .check(
                "ok",
                bundle("export default { fetch() { return new Response('x') } }")
            )
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn check_refuses_a_missing_import() {
        let host = LoaderHost::new();
        let err = host
            .check(
                "bad",
                bundle("import x from './nope.js'; export default { x };"),
            )
            .await
            .expect_err("missing module must be refused");
        assert!(
            matches!(&err, HostError::InvalidCode(m) if m.contains("nope.js")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn retire_evicts_old_versions() {
        let host = LoaderHost::new();
        let b = bundle("export default { fetch() { return new Response('v') } }");
        for version in [1, 2] {
            let f = Arc::new(Function {
                id: "f".into(),
                version,
                bundle: b.clone(),
                env: Object::new(),
            });
            host.rpc_target(f, None).await.expect("loads");
        }
        assert_eq!(host.loader().resident(), 2);
        host.retire("f", Some(2));
        assert_eq!(host.loader().resident(), 1);
        host.retire("f", None);
        assert_eq!(host.loader().resident(), 0);
    }
}
