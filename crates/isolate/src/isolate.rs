//! [`Isolate`]: the thread-safe handle on one JavaScript sandbox, and what the loader and
//! server do with it (entrypoints, the RPC target, fetch).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use capnweb::{RequestValue, ResponseValue, RpcError, Stub, Value};

use crate::config::{IsolateConfig, ModuleSource};
use crate::error::LoadError;
use crate::modules::normalize;
use crate::state::{Shared, Unit};
use crate::target::{JsTarget, TargetRef};

/// One JavaScript sandbox: a QuickJS runtime and context with its own heap, run on whichever
/// JavaScript thread is free, one job at a time. Cheap to clone; the sandbox lives while any
/// clone, or any capability into it, does.
#[derive(Clone)]
pub struct Isolate {
    shared: Arc<Shared>,
    surface: crate::host::Surface,
}

impl std::fmt::Debug for Isolate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isolate")
            .field("id", &self.shared.id)
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
        let shared = Arc::new(Shared::new(config.id.clone(), config.limits.wall_time));
        if let Some(budget) = &config.call_budget {
            shared.gate.set_budget(budget.clone());
        }
        let start = Instant::now();
        let precompiled = precompile(&config).await;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let s = shared.clone();
        shared.post_job(Box::new(move |unit| {
            match Unit::create(&s, config, precompiled) {
                Ok((created, has_rpc)) => {
                    *unit = Some(created);
                    let _ = reply.send(Ok(has_rpc));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
            drop(s);
        }));
        let has_rpc = answer.await.map_err(|_| {
            LoadError::Runtime("internal error: the isolate could not be built".into())
        })??;
        tracing::debug!(isolate = %shared.id, elapsed = ?start.elapsed(), "isolate loaded");
        Ok(Isolate {
            shared,
            surface: has_rpc,
        })
    }

    /// The function id.
    pub fn id(&self) -> &str {
        &self.shared.id
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
        self.surface.rpc
    }

    /// Whether the default export has a `fetch` handler (a method of the object, or of the
    /// class's prototype), as it was when the main module loaded.
    pub fn has_fetch_handler(&self) -> bool {
        self.surface.fetch
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
            request: None,
        })
    }

    /// Whether the default export has an `authenticate` hook.
    pub fn has_authenticate(&self) -> bool {
        self.surface.authenticate
    }

    /// The main capability of one RPC session opened by `request` (the WebSocket upgrade or
    /// HTTP batch request, without its body). With an `authenticate(request, env, ctx)` hook on
    /// the default export, what it returns: the caller's main capability, or a `Response` to
    /// send instead of serving RPC; if it throws, the error. Without one, the RPC target
    /// ([`Isolate::rpc_target`]) whose `ctx.request` is `request`.
    pub async fn rpc_session(&self, request: RequestValue) -> Result<RpcSession, RpcError> {
        if !self.surface.authenticate {
            return Ok(RpcSession::Main(self.stub(TargetRef::Rpc {
                slot: self.shared.next_id(),
                request: Some(Arc::new(request)),
            })));
        }
        let entered = crate::gate::enter(&self.shared)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let value = Value::Request(Box::new(request));
        let trace = capnweb::trace::current();
        let id = self.shared.next_id();
        self.shared
            .post(move |ctx, host| host.authenticate(ctx, id, value, tx, trace));
        let result = crate::wall::answer(self.shared.clone(), id, rx).await;
        drop(entered);
        match result? {
            Value::Response(r) => Ok(RpcSession::Refused(*r)),
            Value::Stub(s) => Ok(RpcSession::Main(s)),
            Value::Promise(p) => Ok(RpcSession::Main(p.to_stub())),
            _ => Err(RpcError::type_error(
                "authenticate() must return the caller's main capability or a Response",
            )),
        }
    }

    /// Calls the fetch handler: `default.fetch(request, env, ctx)`, or `fetch(request)` on a
    /// default `WorkerEntrypoint` class.
    pub async fn fetch(&self, request: RequestValue) -> Result<ResponseValue, RpcError> {
        let (result, _, _) = self.fetch_inner(request, false).await?;
        result
    }

    /// Calls the fetch handler of a request that may become a WebSocket: when the handler
    /// answers `new Response(null, { status: 101, webSocket: client })`, the server's end of
    /// that socket comes with the response, for the caller to bridge to the real connection.
    pub async fn fetch_socket(
        &self,
        request: RequestValue,
    ) -> Result<(ResponseValue, Option<crate::Socket>), RpcError> {
        let (result, id, entered) = self.fetch_inner(request, true).await?;
        let parts = self.shared.take_upgrade(id);
        let response = result?;
        Ok((
            response,
            parts.map(|p| crate::socket::Socket::new(self.shared.clone(), p, entered)),
        ))
    }

    /// How many WebSockets the function accepted are open now.
    pub fn open_sockets(&self) -> usize {
        self.shared.open_sockets()
    }

    async fn fetch_inner(
        &self,
        request: RequestValue,
        allow_socket: bool,
    ) -> Result<(Result<ResponseValue, RpcError>, u64, crate::gate::Entered), RpcError> {
        let entered = crate::gate::enter(&self.shared)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let value = Value::Request(Box::new(request));
        let trace = capnweb::trace::current();
        let id = self.shared.next_id();
        self.shared
            .post(move |ctx, host| host.fetch(ctx, id, value, tx, trace, allow_socket));
        let start = Instant::now();
        let result = crate::wall::answer(self.shared.clone(), id, rx).await;
        self.shared
            .fetch_metrics()
            .record(start.elapsed(), result.is_err());
        let response = match result {
            Ok(Value::Response(r)) => Ok(*r),
            Ok(_) => Err(RpcError::type_error(
                "the fetch() handler did not return a Response",
            )),
            Err(e) => Err(e),
        };
        Ok((response, id, entered))
    }
}

/// How an RPC session opens (see [`Isolate::rpc_session`]).
#[derive(Debug)]
pub enum RpcSession {
    /// Serve RPC with this main capability.
    Main(Stub),
    /// The function refused the caller: send this response instead (401 with
    /// `WWW-Authenticate`, a redirect…).
    Refused(ResponseValue),
}

/// Compiles the module map's `.wasm` modules on the `wasm` crate's compile threads, so that
/// loading takes them ready-made instead of compiling on a JavaScript thread. A module that
/// does not compile (or is past the size cap) is left out: loading compiles it again and
/// reports the error, naming the module, as it always has.
async fn precompile(config: &IsolateConfig) -> Vec<(Vec<u8>, wasm::CompiledModule)> {
    let mut out = Vec::new();
    for (_, source) in &config.modules {
        let ModuleSource::Wasm(bytes) = source else {
            continue;
        };
        if bytes.len() > wasm::max_module_bytes() {
            continue;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        wasm::compile_in_background(bytes.clone(), move |result, _| {
            let _ = tx.send(result);
        });
        if let Ok(Ok(module)) = rx.await {
            out.push((bytes.clone(), module));
        }
    }
    out
}
