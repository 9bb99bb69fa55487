//! [`Loader`]: functions by id, each loaded once into an isolate and kept in an LRU cache
//! under a count and memory budget. Concurrent gets of one id share one load; failures are
//! not cached; broken isolates (a limit exceeded) are rebuilt on next use.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use capnweb::Stub;
use futures::future::{BoxFuture, FutureExt, Shared};
use indexmap::IndexMap;
use isolate::{Isolate, Limits};

use crate::code::WorkerCode;
use crate::error::LoaderError;
use crate::stub::{Source, WorkerStub};

/// A load in progress or done.
pub(crate) type LoadFuture = Shared<BoxFuture<'static, Result<Isolate, LoaderError>>>;

/// Produces a function's code when it is not resident.
pub(crate) type GetCode =
    Arc<dyn Fn() -> BoxFuture<'static, Result<WorkerCode, String>> + Send + Sync>;

/// Cache sizing and default limits.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Most isolates kept resident. Default 1000.
    pub max_isolates: usize,
    /// Most JavaScript heap (summed over resident isolates) before the least recently used
    /// are evicted. Default 2 GiB.
    pub memory_budget: usize,
    /// Limits for functions whose code sets none.
    pub default_limits: Limits,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            max_isolates: 1000,
            memory_budget: 2 * 1024 * 1024 * 1024,
            default_limits: Limits::default(),
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

    /// A one-shot function from `code`: not cached, not shared.
    pub fn load(&self, code: WorkerCode) -> WorkerStub {
        let id = format!(
            "anonymous-{}",
            NEXT_ANON.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let limits = self.inner.config.default_limits;
        let fut = async move { build(&id, Ok(code), limits).await }
            .boxed()
            .shared();
        WorkerStub::new(Source::OneShot(fut))
    }

    /// The `env.LOADER` binding: a capability whose `get(id, getCode)` and `load(code)` return
    /// worker stubs (`getRpcTarget()`, `getEntrypoint(name?)`, `fetch(request)`).
    pub fn binding(&self) -> Stub {
        Stub::new(crate::binding::LoaderBinding::new(self.clone()))
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
        let limits = self.inner.config.default_limits;
        let code = get_code.clone();
        let fid = id.to_owned();
        let loader = self.clone();
        let fut = async move {
            let code = code().await;
            let result = build(&fid, code, limits).await;
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
            cache.shift_remove_index(0);
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
            let Some(victim) = cache.keys().find(|k| k.as_str() != keep).cloned() else {
                break;
            };
            cache.shift_remove(&victim);
            crate::metrics::evicted();
        }
    }
}

static NEXT_ANON: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

async fn build(
    id: &str,
    code: Result<WorkerCode, String>,
    limits: Limits,
) -> Result<Isolate, LoaderError> {
    let start = Instant::now();
    let result = async {
        let code = code.map_err(|message| LoaderError::GetCode {
            id: id.to_owned(),
            message,
        })?;
        Isolate::new(code.to_isolate_config(id, limits))
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
