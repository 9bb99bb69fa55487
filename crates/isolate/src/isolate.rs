//! [`Isolate`]: the thread-safe handle on one JavaScript sandbox, and what the loader and
//! server do with it (entrypoints, the RPC target, fetch).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use capnweb::{RequestValue, ResponseValue, RpcError, Stub, Value};

use crate::config::IsolateConfig;
use crate::error::LoadError;
use crate::modules::normalize;
use crate::state::Shared;
use crate::target::{JsTarget, TargetRef};

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// One JavaScript sandbox: a QuickJS runtime and context with its own heap, pinned to one of
/// the JavaScript threads. Cheap to clone; the sandbox lives while any clone, or any
/// capability into it, does.
#[derive(Clone)]
pub struct Isolate {
    shared: Arc<Shared>,
    has_rpc: bool,
}

impl std::fmt::Debug for Isolate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isolate")
            .field("id", &self.shared.id)
            .field("thread", &self.shared.thread)
            .finish()
    }
}

impl Isolate {
    /// Builds an isolate and evaluates its main module (and what it imports).
    pub async fn new(config: IsolateConfig) -> Result<Isolate, LoadError> {
        let main = normalize(&config.main_module);
        if !config.modules.iter().any(|(n, _)| normalize(n) == main) {
            return Err(LoadError::MainModuleMissing(config.main_module.clone()));
        }
        let mut config = config;
        config.main_module = main;
        let (thread, tx) = crate::pool::pool()
            .pick()
            .ok_or_else(|| LoadError::Runtime("no JavaScript thread is running".into()))?;
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared::new(
            key,
            config.id.clone(),
            thread,
            config.limits.wall_time,
            tx,
        ));
        if let Some(budget) = &config.call_budget {
            shared.gate.set_budget(budget.clone());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let s = shared.clone();
        let start = Instant::now();
        let sent = shared.send_job(Box::new(move |ts| {
            let _ = reply.send(ts.create(&s, config));
            drop(s);
        }));
        if !sent {
            return Err(LoadError::Runtime(
                "the JavaScript thread has stopped".into(),
            ));
        }
        let has_rpc = answer
            .await
            .map_err(|_| LoadError::Runtime("the JavaScript thread has stopped".into()))??;
        tracing::debug!(isolate = %shared.id, thread, elapsed = ?start.elapsed(), "isolate loaded");
        Ok(Isolate { shared, has_rpc })
    }

    /// The function id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Which JavaScript thread runs this isolate.
    pub fn thread(&self) -> usize {
        self.shared.thread
    }

    /// Whether the isolate was discarded because it broke a limit. A broken isolate rejects
    /// every call; build a new one.
    pub fn is_broken(&self) -> bool {
        self.shared.broken().is_some()
    }

    /// Evicts the isolate: every new call into it (through any stub, however it was obtained)
    /// is rejected with an `IsolateEvictedError` ([`crate::EVICTED_ERROR`]); calls already
    /// running finish, and once none is left the isolate is torn down on its thread (its
    /// timers and background work end, its heap is freed). Cannot be undone.
    pub fn evict(&self) {
        crate::gate::evict(&self.shared);
    }

    /// When a call last entered the isolate, as a tick of [`crate::use_tick`]'s clock (0:
    /// never). Counts calls through every stub, however obtained, so a cache can tell an
    /// isolate used through a held stub from an idle one.
    pub fn last_used(&self) -> u64 {
        self.shared.gate.last_used()
    }

    /// Whether [`Isolate::evict`] was called.
    pub fn is_evicted(&self) -> bool {
        self.shared.gate.is_evicted()
    }

    /// The memory in use, in bytes, as last measured: the JavaScript heap plus the
    /// WebAssembly linear memories and tables it holds.
    pub fn memory_usage(&self) -> usize {
        self.shared.memory()
    }

    /// How many host tasks are alive to fire this isolate's timers: one per pending
    /// `setTimeout` / `setInterval`, gone once the timer fired, was cleared or was cancelled.
    pub fn timer_tasks(&self) -> usize {
        self.shared.timer_tasks.load(Ordering::Relaxed)
    }

    /// Whether the default export has an `rpc` class (the seed's convention).
    pub fn has_rpc_surface(&self) -> bool {
        self.has_rpc
    }

    fn stub(&self, tref: TargetRef) -> Stub {
        Stub::from_arc(Arc::new(JsTarget::new(self.shared.clone(), tref)))
    }

    /// An entrypoint: the default export (`None`) or a named export. A class (such as a
    /// `WorkerEntrypoint`) is instantiated with `(ctx, env)` on the first call; each stub
    /// returned here gets its own instance.
    pub fn entrypoint(&self, name: Option<&str>) -> Stub {
        self.stub(TargetRef::Entrypoint {
            name: name.map(str::to_owned),
            slot: self.shared.next_id(),
        })
    }

    /// The RPC target: `new default.rpc(ctx, env)` when the default export has `rpc`,
    /// otherwise the default entrypoint. Instantiated on the first call, once per stub.
    pub fn rpc_target(&self) -> Stub {
        self.stub(TargetRef::Rpc {
            slot: self.shared.next_id(),
        })
    }

    /// Calls the fetch handler: `default.fetch(request, env, ctx)`, or `fetch(request)` on a
    /// default `WorkerEntrypoint` class.
    pub async fn fetch(&self, request: RequestValue) -> Result<ResponseValue, RpcError> {
        let entered = crate::gate::enter(&self.shared)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let value = Value::Request(Box::new(request));
        let trace = capnweb::trace::current();
        let id = self.shared.next_id();
        self.shared
            .post(move |ctx, host| host.fetch(ctx, id, value, tx, trace));
        let start = Instant::now();
        let result = crate::wall::answer(self.shared.clone(), id, rx).await;
        drop(entered);
        self.shared
            .fetch_metrics()
            .record(start.elapsed(), result.is_err());
        match result? {
            Value::Response(r) => Ok(*r),
            _ => Err(RpcError::type_error(
                "the fetch() handler did not return a Response",
            )),
        }
    }
}
