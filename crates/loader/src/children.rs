//! [`Children`]: the code one parent (a function version) loads through its `env.LOADER`,
//! counted and capped per parent, and never given more than the parent has.
//!
//! - **Limits.** A child runs with what its `WorkerCode.limits` asks for, clamped to the
//!   parent's limits; one that asks for nothing gets the parent's. Asking for more is not an
//!   error (the child silently gets the parent's).
//! - **Resident children.** `get(id, …)` and `load(code)` children count together, at most
//!   [`ChildrenConfig::max_resident`](crate::ChildrenConfig::max_resident); past it the least
//!   recently used is evicted (used: got from the loader, or called through any stub the
//!   parent holds).
//! - **Memory.** The resident children together use at most the parent's memory limit
//!   (`limits.memoryMb`, as measured after each child's load and before each call into a
//!   child); past it the least recently used loaded children are evicted (never the one
//!   being loaded or called, never one with WebSockets open). So a function's children cannot
//!   hold more than the function itself may, however many it loads.
//! - **Calls in flight.** Every call into any of the children (through any stub, however it
//!   was obtained) and every load counts against one budget of
//!   [`ChildrenConfig::max_in_flight`](crate::ChildrenConfig::max_in_flight); one more is
//!   rejected at once with a `TooManyCallsError` (it does not wait: a child calling a sibling
//!   cannot deadlock on the budget).
//! - **Eviction.** An evicted child's isolate refuses every new call with an
//!   `IsolateEvictedError` ([`isolate::Isolate::evict`]); calls already running finish, then it
//!   is torn down. A `get` stub loads its id again on its next call (a cold start, like
//!   workerd's loader); a `load` stub cannot, and fails with the same error from then on.
//! - **Close.** [`Children::close`] (the parent was redeployed, rolled back or deleted) evicts
//!   every child and turns every stub of this parent, and the parent's `env.LOADER` itself,
//!   into ones that fail with `IsolateEvictedError`: old bindings stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::FutureExt;
use isolate::{CallBudget, Isolate, Limits};

use crate::code::WorkerCode;
use crate::error::LoaderError;
use crate::loader::{GetCode, LoadFuture, Loader};
use crate::stub::{Source, WorkerStub};

/// Which child: a `get` id, or the n-th `load`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ChildKey {
    Named(String),
    OneShot(u64),
}

struct Child {
    /// Tells this load apart from a later one under the same key.
    serial: u64,
    /// When the cache last saw it used ([`isolate::use_tick`]); a call through a held stub
    /// moves the isolate's own [`Isolate::last_used`] instead, which eviction also reads.
    touched: u64,
    fut: LoadFuture,
    /// A `load` child's code, to load it again if the budget refused its load or it broke a
    /// limit (a `get` child asks its `getCode` again instead).
    code: Option<WorkerCode>,
}

impl Child {
    /// The later of the cache's last sight of it and the last call into its isolate.
    fn last_used(&self) -> u64 {
        match self.fut.peek() {
            Some(Ok(iso)) => self.touched.max(iso.last_used()),
            _ => self.touched,
        }
    }
}

/// Where a load gets its code.
enum CodeFrom {
    Given(Box<WorkerCode>),
    GetCode(GetCode),
}

struct State {
    closed: bool,
    cache: HashMap<ChildKey, Child>,
    next_serial: u64,
}

struct Inner {
    name: String,
    limits: Limits,
    max_resident: usize,
    budget: Arc<CallBudget>,
    state: Mutex<State>,
}

/// The children of one parent. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Children {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Children {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Children")
            .field("parent", &self.inner.name)
            .field("limits", &self.inner.limits)
            .field("resident", &self.resident())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Children {
    pub(crate) fn new(loader: &Loader, name: String, limits: Limits) -> Self {
        let config = loader.inner.config.children;
        let budget = CallBudget::new(name.clone(), config.max_in_flight.max(1));
        Children {
            inner: Arc::new(Inner {
                name,
                limits,
                max_resident: config.max_resident.max(1),
                budget,
                state: Mutex::new(State {
                    closed: false,
                    cache: HashMap::new(),
                    next_serial: 1,
                }),
            }),
        }
    }

    /// The parent's name (children are `"<name>/<id>"`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The most any child gets (the parent's limits).
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// How many children are resident (loaded or loading).
    pub fn resident(&self) -> usize {
        self.lock().cache.len()
    }

    /// How many calls and loads are in flight into the children now.
    pub fn in_flight(&self) -> usize {
        self.inner.budget.in_flight()
    }

    /// Whether [`Children::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The `env.LOADER` binding of the parent: `get(id, getCode)` and `load(code)`.
    pub fn binding(&self) -> capnweb::Stub {
        capnweb::Stub::new(crate::binding::LoaderBinding::new(self.clone()))
    }

    /// Child `id`, at once: `get_code` runs when it is not resident (first use, and again after
    /// it was evicted as least recently used or broke a limit).
    pub fn get<F, Fut, E>(&self, id: impl Into<String>, get_code: F) -> WorkerStub
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<WorkerCode, E>> + Send + 'static,
        E: std::fmt::Display + 'static,
    {
        let get_code: GetCode = Arc::new(move || {
            let fut = get_code();
            async move { fut.await.map_err(|e| e.to_string()) }.boxed()
        });
        WorkerStub::new(Source::Child {
            children: self.clone(),
            key: ChildKey::Named(id.into()),
            get_code: Some(get_code),
        })
    }

    /// A one-shot child from `code`: loaded on first use, resident (and counted) until it is
    /// evicted, never loaded again.
    pub fn load(&self, code: WorkerCode) -> WorkerStub {
        let mut state = self.lock();
        let serial = state.next_serial;
        state.next_serial += 1;
        let key = ChildKey::OneShot(serial);
        if !state.closed {
            let fut =
                self.load_future(key.clone(), serial, CodeFrom::Given(Box::new(code.clone())));
            let child = Child {
                serial,
                touched: isolate::use_tick(),
                fut,
                code: Some(code),
            };
            self.insert(&mut state, key.clone(), child);
        }
        drop(state);
        WorkerStub::new(Source::Child {
            children: self.clone(),
            key,
            get_code: None,
        })
    }

    /// Evicts child `id` (a `get` id). Returns whether it was resident.
    pub fn evict(&self, id: &str) -> bool {
        let child = self.lock().cache.remove(&ChildKey::Named(id.to_owned()));
        child.map(evict_child).is_some()
    }

    /// Evicts every child and refuses every new load and call through this parent's stubs
    /// and binding (with `IsolateEvictedError`); calls already running finish. Returns how many
    /// children were resident. Cannot be undone.
    pub fn close(&self) -> usize {
        let mut state = self.lock();
        state.closed = true;
        let mut n = 0;
        for (_, child) in state.cache.drain() {
            evict_child(child);
            n += 1;
        }
        n
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn isolate_id(&self, key: &ChildKey) -> String {
        match key {
            ChildKey::Named(id) if self.inner.name.is_empty() => id.clone(),
            ChildKey::Named(id) => format!("{}/{id}", self.inner.name),
            ChildKey::OneShot(_) => crate::loader::anonymous_id(),
        }
    }

    fn evicted(&self, key: &ChildKey) -> LoaderError {
        LoaderError::Evicted {
            id: match key {
                ChildKey::Named(id) if self.inner.name.is_empty() => id.clone(),
                ChildKey::Named(id) => format!("{}/{id}", self.inner.name),
                ChildKey::OneShot(n) => format!("{}/load #{n}", self.inner.name),
            },
        }
    }

    /// The load of child `key`: the resident one, or (for a `get` child that is not
    /// resident, failed or broke a limit) a new one.
    pub(crate) fn resolve(
        &self,
        key: &ChildKey,
        get_code: Option<&GetCode>,
    ) -> Result<LoadFuture, LoaderError> {
        let mut state = self.lock();
        if state.closed {
            return Err(self.evicted(key));
        }
        let mut kept_code = None;
        if let Some(child) = state.cache.get_mut(key) {
            child.touched = isolate::use_tick();
            let stale = match child.fut.peek() {
                Some(Ok(iso)) => iso.is_broken() || iso.is_evicted(),
                Some(Err(LoaderError::TooManyCalls { .. })) => true,
                // A `get` child's failed load is not cached; a `load` child's code stays bad.
                Some(Err(_)) => get_code.is_some(),
                None => false,
            };
            if !stale {
                let fut = child.fut.clone();
                let own = match fut.peek() {
                    Some(Ok(iso)) => iso.memory_usage(),
                    _ => 0,
                };
                self.enforce_memory(&mut state, key, own);
                return Ok(fut);
            }
            if let Some(mut child) = state.cache.remove(key) {
                kept_code = child.code.take();
                evict_child(child);
            }
        }
        let from = match (get_code, &kept_code) {
            (Some(get_code), _) => CodeFrom::GetCode(get_code.clone()),
            (None, Some(code)) => CodeFrom::Given(Box::new(code.clone())),
            // A `load` child that was evicted is gone for good.
            (None, None) => return Err(self.evicted(key)),
        };
        let serial = state.next_serial;
        state.next_serial += 1;
        let fut = self.load_future(key.clone(), serial, from);
        let child = Child {
            serial,
            touched: isolate::use_tick(),
            fut: fut.clone(),
            code: kept_code,
        };
        self.insert(&mut state, key.clone(), child);
        Ok(fut)
    }

    /// Inserts a child (`key`), evicting the least recently used past the cap (never the one
    /// just inserted). "Used" counts calls through stubs the parent holds
    /// ([`Isolate::last_used`]) as well as gets: the victim is the child whose last use of
    /// either kind is oldest. A scan, but only when a load goes over the cap.
    fn insert(&self, state: &mut State, key: ChildKey, child: Child) {
        if let Some(old) = state.cache.insert(key.clone(), child) {
            evict_child(old);
        }
        while state.cache.len() > self.inner.max_resident
            && evict_least_recent(state, &key, |_| true)
        {}
    }

    /// The memory the resident children use together, as last measured.
    pub fn memory_usage(&self) -> usize {
        memory_of(&self.lock(), None)
    }

    /// Evicts the least recently used loaded children (never `keep`, which uses `kept`
    /// bytes, never one with WebSockets open) while the children together use more than the
    /// parent's memory limit. (`keep` is passed in because its load may not have completed
    /// yet as far as the cache can see.)
    fn enforce_memory(&self, state: &mut State, keep: &ChildKey, kept: usize) {
        let cap = self.inner.limits.memory_bytes;
        let loaded_and_unpinned =
            |c: &Child| matches!(c.fut.peek(), Some(Ok(_))) && !crate::loader::pinned(&c.fut);
        while memory_of(state, Some(keep)).saturating_add(kept) > cap
            && evict_least_recent(state, keep, loaded_and_unpinned)
        {}
    }

    /// Loads child `key` (load number `serial`), counted against the budget while it runs.
    /// The load runs as a task of its own once first awaited, so a caller that stops waiting
    /// neither stalls it nor keeps its place in the budget; until then it holds only a weak
    /// reference to the children (no cycle through the cache).
    fn load_future(&self, key: ChildKey, serial: u64, from: CodeFrom) -> LoadFuture {
        let weak = Arc::downgrade(&self.inner);
        let evicted = self.evicted(&key);
        let id = self.isolate_id(&key);
        async move {
            let Some(inner) = weak.upgrade() else {
                return Err(evicted);
            };
            let this = Children { inner };
            let task = tokio::spawn(this.run_load(key, serial, from, id.clone()));
            task.await.unwrap_or_else(|e| {
                Err(LoaderError::Load {
                    id,
                    error: isolate::LoadError::Runtime(format!("the load task failed: {e}")),
                })
            })
        }
        .boxed()
        .shared()
    }

    /// The load itself: a place in the budget, the code, the isolate (with at most the
    /// parent's limits); an isolate whose entry was evicted meanwhile is evicted at once.
    async fn run_load(
        self,
        key: ChildKey,
        serial: u64,
        from: CodeFrom,
        id: String,
    ) -> Result<Isolate, LoaderError> {
        let Some(_pass) = self.inner.budget.try_enter() else {
            // Not cached as a failure: the next use tries again (see `resolve`).
            return Err(LoaderError::TooManyCalls {
                parent: self.inner.name.clone(),
                max: self.inner.budget.max(),
            });
        };
        let code = match from {
            CodeFrom::Given(code) => Ok(*code),
            CodeFrom::GetCode(get_code) => get_code().await,
        };
        let limits = match &code {
            Ok(c) => crate::limits::within(
                crate::limits::requested(&c.limits, self.inner.limits),
                &self.inner.limits,
            ),
            Err(_) => self.inner.limits,
        };
        let budget = Some(self.inner.budget.clone());
        match crate::loader::build(&id, code, limits, budget).await {
            Ok(iso) if self.still_resident(&key, serial) => {
                self.enforce_memory(&mut self.lock(), &key, iso.memory_usage());
                Ok(iso)
            }
            Ok(iso) => {
                // Evicted (or the parent closed) while it loaded.
                iso.evict();
                Err(self.evicted(&key))
            }
            Err(e) => {
                if matches!(key, ChildKey::Named(_)) {
                    self.forget(&key, serial);
                }
                Err(e)
            }
        }
    }

    fn still_resident(&self, key: &ChildKey, serial: u64) -> bool {
        let state = self.lock();
        !state.closed && state.cache.get(key).is_some_and(|c| c.serial == serial)
    }

    /// Drops load `serial` of `key` from the cache if it is still there (failures are not
    /// cached).
    fn forget(&self, key: &ChildKey, serial: u64) {
        let mut state = self.lock();
        if state.cache.get(key).is_some_and(|c| c.serial == serial) {
            state.cache.remove(key);
        }
    }
}

/// Evicts a child's isolate if it has one; a load still running evicts its isolate itself
/// when it finds its entry gone.
/// The memory of the loaded children in `state`, but for `except`.
fn memory_of(state: &State, except: Option<&ChildKey>) -> usize {
    state
        .cache
        .iter()
        .filter(|(k, _)| Some(*k) != except)
        .filter_map(|(_, c)| match c.fut.peek() {
            Some(Ok(iso)) => Some(iso.memory_usage()),
            _ => None,
        })
        .sum()
}

/// Evicts the least recently used child that `may_go` lets go, never `keep`. "Used" counts
/// calls through stubs the parent holds ([`Isolate::last_used`]) as well as gets. Returns
/// whether there was one.
fn evict_least_recent(state: &mut State, keep: &ChildKey, may_go: impl Fn(&Child) -> bool) -> bool {
    let victim = state
        .cache
        .iter()
        .filter(|(k, c)| *k != keep && may_go(c))
        .min_by_key(|(_, c)| c.last_used())
        .map(|(k, _)| k.clone());
    let Some(old) = victim.and_then(|k| state.cache.remove(&k)) else {
        return false;
    };
    evict_child(old);
    crate::metrics::evicted();
    true
}

fn evict_child(child: Child) {
    if let Some(Ok(iso)) = child.fut.peek() {
        Isolate::evict(iso);
    }
}
