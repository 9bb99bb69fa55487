//! [`Loader`]: functions by id, each loaded once into an isolate and kept in an LRU cache
//! under a count and memory budget. Concurrent gets of one id share one load; failures are
//! not cached; broken isolates (a limit exceeded) are rebuilt on next use. Limits asked for
//! are clamped to [`LoaderConfig::max_limits`]; what a function loads itself is its
//! [`Children`] (`children.rs`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use capnweb::Stub;
use futures::future::{BoxFuture, FutureExt, Shared};
use indexmap::IndexMap;
use isolate::{Isolate, Limits};

use crate::children::Children;
use crate::code::{WorkerCode, WorkerLimits};
use crate::error::LoaderError;
use crate::stub::{Source, WorkerStub};

/// A load in progress or done.
pub(crate) type LoadFuture = Shared<BoxFuture<'static, Result<Isolate, LoaderError>>>;

/// Produces a function's code when it is not resident.
pub(crate) type GetCode =
    Arc<dyn Fn() -> BoxFuture<'static, Result<WorkerCode, String>> + Send + Sync>;

/// Cache sizing, default and maximum limits, and what one parent's children may use.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Most isolates kept resident (functions loaded with [`Loader::get`]; children are
    /// counted per parent, see [`LoaderConfig::children`]). Default 1000.
    pub max_isolates: usize,
    /// Most JavaScript heap (summed over resident isolates) before the least recently used
    /// are evicted. Default 2 GiB.
    pub memory_budget: usize,
    /// Limits for functions whose code sets none (clamped to `max_limits`).
    pub default_limits: Limits,
    /// The most any code gets: CPU time, memory and stack asked for above these are silently
    /// clamped to them. Default 30 s of CPU per invocation, 512 MiB, the default stack.
    pub max_limits: Limits,
    /// What the children of one parent (code it loads through its `env.LOADER`) may use.
    pub children: ChildrenConfig,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            max_isolates: 1000,
            memory_budget: 2 * 1024 * 1024 * 1024,
            default_limits: Limits::default(),
            max_limits: Limits {
                cpu_time: std::time::Duration::from_millis(30_000),
                memory_bytes: 512 * 1024 * 1024,
                ..Limits::default()
            },
            children: ChildrenConfig::default(),
        }
    }
}

/// Caps on the children of one parent ([`Children`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildrenConfig {
    /// Most children resident at once (`get` and `load` alike); past it the least recently
    /// used is evicted. Default 1000.
    pub max_resident: usize,
    /// Most calls (and loads) in flight into the children at once; one more is rejected at
    /// once with a `TooManyCallsError`. Default 32.
    pub max_in_flight: usize,
}

impl Default for ChildrenConfig {
    fn default() -> Self {
        ChildrenConfig {
            max_resident: 1000,
            max_in_flight: 32,
        }
    }
}

pub(crate) struct LoaderInner {
    pub(crate) config: LoaderConfig,
    cache: Mutex<IndexMap<String, LoadFuture>>,
}

/// The Worker Loader. Cheap to clone (shared cache).
#[derive(Clone)]
pub struct Loader {
    pub(crate) inner: Arc<LoaderInner>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("config", &self.inner.config)
            .field("resident", &self.resident())
            .finish()
    }
}

impl Default for Loader {
    fn default() -> Self {
        Loader::new(LoaderConfig::default())
    }
}

impl Loader {
    /// A loader with an empty cache.
    pub fn new(config: LoaderConfig) -> Self {
        Loader {
            inner: Arc::new(LoaderInner {
                config,
                cache: Mutex::new(IndexMap::new()),
            }),
        }
    }

    /// The function `id`, at once. `get_code` runs only if `id` is not resident (on first
    /// use, and again after an eviction, a failed load or a broken isolate); a failure reaches
    /// the first call made through the stub.
    pub fn get<F, Fut, E>(&self, id: impl Into<String>, get_code: F) -> WorkerStub
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<WorkerCode, E>> + Send + 'static,
        E: std::fmt::Display + 'static,
    {
        let get_code: GetCode = Arc::new(move || {
            let fut = get_code();
            async move { fut.await.map_err(|e| e.to_string()) }.boxed()
        });
        WorkerStub::new(Source::Cached {
            loader: self.clone(),
            id: id.into(),
            get_code,
        })
    }

    /// A one-shot function from `code`: not cached, not shared, not counted (the host's own
    /// use, such as test-loading a deploy; code that a function loads goes through its
    /// [`Children`], which count it).
    pub fn load(&self, code: WorkerCode) -> WorkerStub {
        let id = anonymous_id();
        let limits = self.limits_for(&code.limits);
        let fut = async move { build(&id, Ok(code), limits, None).await }
            .boxed()
            .shared();
        WorkerStub::new(Source::OneShot(fut))
    }

    /// The limits code asking for `requested` runs with: what it asks for, else the default,
    /// clamped to [`LoaderConfig::max_limits`].
    pub fn limits_for(&self, requested: &WorkerLimits) -> Limits {
        let config = &self.inner.config;
        let defaults = crate::limits::within(config.default_limits, &config.max_limits);
        crate::limits::within(
            crate::limits::requested(requested, defaults),
            &config.max_limits,
        )
    }

    /// The children of parent `name` (a function version), which runs with `limits`: the code
    /// it loads is cached under `"<name>/<id>"`, runs with at most `limits`, and is counted
    /// and capped as [`LoaderConfig::children`] says. Hand [`Children::binding`] to the parent
    /// as its `env.LOADER`; call [`Children::close`] when the parent is retired.
    pub fn children(&self, name: impl Into<String>, limits: Limits) -> Children {
        Children::new(self, name.into(), limits)
    }

    /// An `env.LOADER` binding of its own (a fresh [`Children`] with no name, running with the
    /// loader's maximum limits): its `get(id, getCode)` and `load(code)` return worker stubs
    /// (`getRpcTarget()`, `getEntrypoint(name?)`, `fetch(request)`).
    pub fn binding(&self) -> Stub {
        self.children("", self.inner.config.max_limits).binding()
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.inner.config
    }

    /// How many isolates are resident.
    pub fn resident(&self) -> usize {
        self.lock().len()
    }

    /// Evicts function `id` (its next use is a cold start). Returns whether it was resident.
    pub fn evict(&self, id: &str) -> bool {
        let removed = self.lock().shift_remove(id).is_some();
        removed
    }

    /// Evicts every resident function (at shutdown, so the bindings their env holds are
    /// released). Returns how many were resident.
    pub fn clear(&self) -> usize {
        let old = std::mem::take(&mut *self.lock());
        let n = old.len();
        drop(old);
        n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexMap<String, LoadFuture>> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The load of `id`: the resident one, or a new one.
    pub(crate) fn resolve(&self, id: &str, get_code: &GetCode) -> LoadFuture {
        let mut cache = self.lock();
        if let Some(fut) = cache.shift_remove(id) {
            let stale = match fut.peek() {
                Some(Ok(iso)) => iso.is_broken(),
                Some(Err(_)) => true,
                None => false,
            };
            if !stale {
                cache.insert(id.to_owned(), fut.clone());
                return fut;
            }
        }
        let code = get_code.clone();
        let fid = id.to_owned();
        let loader = self.clone();
        let fut = async move {
            let code = code().await;
            let limits = match &code {
                Ok(c) => loader.limits_for(&c.limits),
                Err(_) => loader.inner.config.default_limits,
            };
            let result = build(&fid, code, limits, None).await;
            match &result {
                Ok(_) => loader.enforce_budget(&fid),
                Err(_) => {
                    let mut cache = loader.lock();
                    if cache
                        .get(&fid)
                        .is_some_and(|f| matches!(f.peek(), Some(Err(_)) | None))
                    {
                        cache.shift_remove(&fid);
                    }
                }
            }
            result
        }
        .boxed()
        .shared();
        cache.insert(id.to_owned(), fut.clone());
        let max = self.inner.config.max_isolates.max(1);
        while cache.len() > max {
            let Some(victim) = cache
                .iter()
                .find(|(k, f)| k.as_str() != id && !pinned(f))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.shift_remove(&victim);
            crate::metrics::evicted();
        }
        drop(cache);
        fut
    }

    /// Evicts least recently used isolates while the resident heap is over budget (never the
    /// one just loaded).
    fn enforce_budget(&self, keep: &str) {
        let mut cache = self.lock();
        loop {
            let total: usize = cache
                .values()
                .filter_map(|f| match f.peek() {
                    Some(Ok(iso)) => Some(iso.memory_usage()),
                    _ => None,
                })
                .sum();
            if total <= self.inner.config.memory_budget {
                break;
            }
            let Some(victim) = cache
                .iter()
                .find(|(k, f)| k.as_str() != keep && !pinned(f))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.shift_remove(&victim);
            crate::metrics::evicted();
        }
    }
}

/// Whether a loaded isolate stays in the cache whatever its age: it has WebSockets open (a
/// new connection must reach the same isolate as the open ones, so that a chat room does not
/// split). Sockets are bounded by the server's session caps.
pub(crate) fn pinned(f: &LoadFuture) -> bool {
    matches!(f.peek(), Some(Ok(iso)) if iso.open_sockets() > 0 && !iso.is_broken())
}

static NEXT_ANON: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh `anonymous-N` id for code loaded with `load`.
pub(crate) fn anonymous_id() -> String {
    format!(
        "anonymous-{}",
        NEXT_ANON.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Builds an isolate for `id` from `code` with exactly `limits`, counting its calls against
/// `budget` if there is one.
pub(crate) async fn build(
    id: &str,
    code: Result<WorkerCode, String>,
    limits: Limits,
    budget: Option<Arc<isolate::CallBudget>>,
) -> Result<Isolate, LoaderError> {
    let start = Instant::now();
    let result = async {
        let code = code.map_err(|message| LoaderError::GetCode {
            id: id.to_owned(),
            message,
        })?;
        let mut config = code.to_isolate_config(id, limits);
        config.limits = limits;
        config.call_budget = budget;
        Isolate::new(config)
            .await
            .map_err(|error| LoaderError::Load {
                id: id.to_owned(),
                error,
            })
    }
    .await;
    match &result {
        Ok(_) => crate::metrics::cold_start(id, start.elapsed()),
        Err(e) => {
            tracing::warn!(function = id, "load failed: {e}");
            crate::metrics::load_error(id);
        }
    }
    result
}
