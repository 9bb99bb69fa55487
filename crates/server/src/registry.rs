//! [`Registry`]: which version of each function is live, on top of the code store.
//!
//! Deploys are atomic: a bundle is parsed, validated and test-loaded by the host before the
//! store commits it as the new live version; then the in-memory live table is swapped. A call
//! takes one `Arc<Function>` and keeps it to the end, so callers see the old version or the
//! new one, never a mix. Admin changes are serialized by one lock (they are rare); calls never
//! wait on it.
//!
//! The live table is this process's cache of the store. With a single node (the embedded
//! store) it is always right. On a shared store another node may change a function: then
//! [`Registry::refresh`] (on a notification) or [`Registry::reconcile`] (periodically, and
//! after the listener reconnects) drops the stale entry and retires its isolates, and the
//! next call loads the new live version (see `cluster.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use store::{FunctionInfo, Store, StoreError, VersionInfo};

use crate::bindings;
use crate::host::{Function, FunctionHost, HostError};
use crate::manifest::{Binding, Bundle, ManifestError};

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The store refused or failed (bad id, not found, no previous version, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bundle is malformed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The deployed sources do not build (TypeScript syntax, an import that does not resolve).
    #[error("build failed: {0}")]
    Build(#[from] bundle::BuildError),
    /// The host refused the code when test-loading it.
    #[error("code check failed: {0}")]
    Check(HostError),
    /// A stored bundle no longer parses (written by an incompatible version).
    #[error("stored bundle of {id:?} version {version} is unreadable: {reason}")]
    Corrupt {
        /// The function.
        id: String,
        /// The version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// A blocking store task panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
}

/// The live functions of this server.
pub struct Registry {
    store: Store,
    host: Arc<dyn FunctionHost>,
    live: RwLock<HashMap<String, Arc<Function>>>,
    /// Bumped by every admin change, so a lazy load that raced with one is not cached.
    generation: AtomicU64,
    admin: tokio::sync::Mutex<()>,
    me: Weak<Registry>,
    /// The most a KV namespace or bucket may hold through any binding.
    quota: store::Quota,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("store", &self.store)
            .finish()
    }
}

impl Registry {
    /// A registry over `store`, running code on `host`, with the default storage quota.
    pub fn new(store: Store, host: Arc<dyn FunctionHost>) -> Arc<Registry> {
        Registry::with_quota(store, host, store::Quota::default())
    }

    /// A registry whose KV and blob bindings get at most `quota` per namespace or bucket.
    pub fn with_quota(
        store: Store,
        host: Arc<dyn FunctionHost>,
        quota: store::Quota,
    ) -> Arc<Registry> {
        Arc::new_cyclic(|me| Registry {
            store,
            host,
            quota,
            live: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            admin: tokio::sync::Mutex::new(()),
            me: me.clone(),
        })
    }

    /// The host.
    pub fn host(&self) -> &Arc<dyn FunctionHost> {
        &self.host
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn cached(&self, id: &str) -> Option<Arc<Function>> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn set_cached(&self, id: &str, f: Option<Arc<Function>>) {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        match f {
            Some(f) => live.insert(id.to_owned(), f),
            None => live.remove(id),
        };
    }

    fn make_function(&self, id: &str, version: u64, bundle: Arc<Bundle>) -> Arc<Function> {
        let loader = bundle
            .bindings
            .values()
            .any(|b| matches!(b, crate::manifest::Binding::Loader))
            .then(|| self.host.loader_binding(id, version, &bundle))
            .flatten();
        let env = bindings::build_env(&bundle, &self.store, self.me.clone(), loader, self.quota);
        Arc::new(Function {
            id: id.to_owned(),
            version,
            bundle,
            env,
        })
    }

    async fn load_live(&self, id: &str) -> Result<Option<Arc<Function>>, RegistryError> {
        let Some(cv) = self.store.code().live(id).await? else {
            return Ok(None);
        };
        let bundle = Bundle::from_json(&cv.bundle).map_err(|e| RegistryError::Corrupt {
            id: id.to_owned(),
            version: cv.version,
            reason: e.to_string(),
        })?;
        Ok(Some(self.make_function(id, cv.version, Arc::new(bundle))))
    }

    /// The live version of `id`, or `None` if it is not deployed (or `id` is not a valid id).
    pub async fn live(&self, id: &str) -> Result<Option<Arc<Function>>, RegistryError> {
        if store::validate_function_id(id).is_err() {
            return Ok(None);
        }
        if let Some(f) = self.cached(id) {
            return Ok(Some(f));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let loaded = self.load_live(id).await?;
        if let Some(f) = &loaded {
            let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
            if self.generation.load(Ordering::SeqCst) == generation {
                live.entry(id.to_owned()).or_insert_with(|| f.clone());
            }
        }
        Ok(loaded)
    }

    /// Validates (limits above the host's [`FunctionHost::max_limits`] are refused),
    /// test-loads and stores `bundle` as the new live version of `id`; returns it. On any
    /// error nothing changes.
    pub async fn deploy(
        &self,
        id: &str,
        bundle: Bundle,
        note: Option<String>,
    ) -> Result<u64, RegistryError> {
        store::validate_function_id(id)?;
        bundle.limits.check_within(&self.host.max_limits())?;
        // What was deployed is sources: build them into what runs (the sources are kept
        // beside it when they differ). A build is CPU work: off the async threads.
        // The bundle's `conditions` (from `--conditions`, or function.json) pick packages' exports.
        let bundle = tokio::task::spawn_blocking(move || {
            bundle::build(
                &bundle,
                &bundle::memory_fs(&bundle),
                &bundle::BuildOptions::for_bundle(&bundle),
            )
        })
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))??;
        let bundle = Arc::new(bundle);
        self.host
            .check(id, bundle.clone())
            .await
            .map_err(RegistryError::Check)?;
        let bytes = serde_json::to_vec(&bundle.to_json())
            .map_err(|e| RegistryError::Task(e.to_string()))?;
        let _guard = self.admin.lock().await;
        let version = self.store.code().deploy(id, bytes, note.as_deref()).await?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.set_cached(id, Some(self.make_function(id, version, bundle)));
        self.host.retire(id, Some(version));
        tracing::info!(function = id, version, "deployed");
        Ok(version)
    }

    /// Makes the previous version live again; returns it.
    pub async fn rollback(&self, id: &str) -> Result<u64, RegistryError> {
        store::validate_function_id(id)?;
        let _guard = self.admin.lock().await;
        let version = self.store.code().rollback(id).await?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        let loaded = self.load_live(id).await?;
        self.set_cached(id, loaded);
        self.host.retire(id, Some(version));
        tracing::info!(function = id, version, "rolled back");
        Ok(version)
    }

    /// Removes `id` and all its versions; returns whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool, RegistryError> {
        store::validate_function_id(id)?;
        let _guard = self.admin.lock().await;
        let existed = self.store.code().delete(id).await?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.set_cached(id, None);
        self.host.retire(id, None);
        tracing::info!(function = id, existed, "deleted");
        Ok(existed)
    }

    /// Summaries of every deployed function.
    pub async fn list(&self) -> Result<Vec<FunctionInfo>, RegistryError> {
        Ok(self.store.code().list().await?)
    }

    /// One function's summary and versions, or `None`.
    pub async fn info(
        &self,
        id: &str,
    ) -> Result<Option<(FunctionInfo, Vec<VersionInfo>)>, RegistryError> {
        store::validate_function_id(id)?;
        let code = self.store.code();
        let Some(info) = code.info(id).await? else {
            return Ok(None);
        };
        Ok(Some((info, code.versions(id).await?)))
    }

    /// The storage a function's live version is bound to: each KV and blob binding with its
    /// namespace or bucket, what it holds now and the quota it writes under.
    pub async fn storage(&self, id: &str) -> Result<Vec<serde_json::Value>, RegistryError> {
        let Some(f) = self.live(id).await? else {
            return Ok(Vec::new());
        };
        let cap = self.quota;
        let mut out = Vec::new();
        for (name, binding) in &f.bundle.bindings {
            let (kind, container, quota, usage) = match binding {
                Binding::Kv { namespace, quota } => (
                    "kv",
                    namespace,
                    quota.within(cap),
                    self.store.kv().usage(namespace).await?,
                ),
                Binding::Blob { bucket, quota } => (
                    "blob",
                    bucket,
                    quota.within(cap),
                    self.store.blob().usage(bucket).await?,
                ),
                _ => continue,
            };
            out.push(serde_json::json!({
                "binding": name,
                "type": kind,
                "name": container,
                "bytes": usage.bytes,
                "keys": usage.keys,
                "maxBytes": quota.max_bytes,
                "maxKeys": quota.max_keys,
            }));
        }
        Ok(out)
    }

    /// Brings `id` in line with the store after a change made elsewhere (another node's
    /// deploy, rollback or delete): a cached version that is no longer live is dropped, and
    /// the host retires every version but the live one. The next call loads the live version.
    pub async fn refresh(&self, id: &str) -> Result<(), RegistryError> {
        if store::validate_function_id(id).is_err() {
            return Ok(());
        }
        // Any lazy load that raced with the change must not be cached.
        self.generation.fetch_add(1, Ordering::SeqCst);
        let live = self.store.code().live_version(id).await?;
        let _guard = self.admin.lock().await;
        let cached = self.cached(id).map(|f| f.version);
        if cached.is_some() && cached != live {
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.set_cached(id, None);
            tracing::info!(function = id, ?cached, ?live, "changed on another node");
        }
        self.host.retire(id, live);
        Ok(())
    }

    /// Compares every cached function with the store and [`refresh`](Registry::refresh)es
    /// those that changed; returns how many did. Run periodically and whenever change
    /// notifications may have been missed.
    pub async fn reconcile(&self) -> Result<usize, RegistryError> {
        let live: HashMap<String, u64> = self
            .store
            .code()
            .list()
            .await?
            .into_iter()
            .map(|f| (f.id, f.live_version))
            .collect();
        let cached: Vec<(String, u64)> = self
            .live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, f)| (id.clone(), f.version))
            .collect();
        let mut changed = 0;
        for (id, version) in cached {
            if live.get(&id) != Some(&version) {
                self.refresh(&id).await?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Drops every cached function (and with them their binding stubs): used at shutdown.
    pub fn clear(&self) {
        self.live.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
