//! What an isolate is made of: the thread-safe handle ([`Shared`]) through which any thread
//! posts work to it, and the [`Unit`] the work runs on — its QuickJS runtime and context, its
//! host and its WebAssembly — which moves between the JavaScript threads as one piece (see
//! `slot.rs` and `pool.rs`). It wires each isolate's runtime and WebAssembly to the limits of
//! `limits.rs`, the one place that enforces the CPU and memory limits.
//!
//! # Why a whole unit moves between threads (and not `Send` runtimes)
//!
//! An isolate is a graph of `Rc`s and `Cell`s: the host, its `Weak` handed to every native
//! function stored inside the runtime, the memory budget shared by the allocator, the interrupt
//! handler and the WebAssembly store, and rquickjs's own `Rc<RefCell<RawRuntime>>`. None of it
//! is `Send`, and none of it needs to be: what must never happen is two threads touching the
//! same refcount or cell at once. So the unit moves as one piece, behind the slot's mutex, and
//! is touched by one thread at a time. rquickjs's `parallel` feature was the alternative: it
//! makes `Runtime` and `Context` `Send` with a mutex, but it does not make our graph `Send`
//! (rquickjs itself does not ask `Send` of the closures it stores, relying on the same
//! argument), so every `Rc` of the host and limits would still need this reasoning or a move
//! to `Arc` and atomics on hot paths; and it calls `JS_UpdateStackTop` on every Rust→JS call,
//! which resets the stack limit at each nested call from a native (a function that recurses
//! through natives would get a fresh `max_stack_bytes` each time). Here the stack top is set
//! once, at the start of each job, on the thread that runs it.

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rquickjs::{Context, Ctx, Exception, Function, Runtime};

use crate::config::IsolateConfig;
use crate::error::{internal_error, resource_limit_error, LoadError};
use crate::host::Host;
use crate::limits::{Budget, LimitedAllocator, Stop, WasmLimits};
use crate::slot::{Job, Slot};

/// Why an isolate was discarded.
#[derive(Debug, Clone)]
enum Broken {
    /// It broke a resource limit.
    Limit(String),
    /// A job panicked on its JavaScript thread.
    Internal(String),
}

/// The thread-safe side of one isolate: its id, its slot (mailbox and home) and its health.
/// Held by the [`Isolate`](crate::Isolate) and by every capability that points into it; when
/// the last reference goes, the isolate is torn down on a JavaScript thread.
pub(crate) struct Shared {
    pub(crate) id: String,
    /// How long a caller waits for an invocation to answer (`Limits::wall_time`).
    pub(crate) wall_time: std::time::Duration,
    slot: Arc<Slot>,
    next_id: AtomicU64,
    broken: Mutex<Option<Broken>>,
    memory: AtomicUsize,
    /// Host tasks alive that wait to fire one of the isolate's timers.
    pub(crate) timer_tasks: Arc<AtomicUsize>,
    /// Capability slots released by their holders whose release job has not run yet (so that
    /// work queued ahead of it already sees them gone).
    released: Mutex<HashSet<u64>>,
    fetch_metrics: std::sync::OnceLock<Arc<telemetry::CallMetrics>>,
    /// Whether new calls may enter (see `gate.rs`).
    pub(crate) gate: crate::gate::Gate,
    /// WebSockets attached by fetch invocations, by invocation id, until the caller takes them.
    upgrades: Mutex<std::collections::HashMap<u64, crate::socket::SocketParts>>,
    /// WebSockets open now.
    open_sockets: AtomicUsize,
    /// Bytes queued on its WebSockets either way (received and not yet handled, sent and not
    /// yet handed to the connection): counted in its memory.
    pub(crate) socket_bytes: Arc<AtomicUsize>,
}

impl Shared {
    pub(crate) fn new(id: String, wall_time: std::time::Duration) -> Self {
        Shared {
            slot: Slot::new(id.clone()),
            id,
            wall_time,
            next_id: AtomicU64::new(1),
            broken: Mutex::new(None),
            memory: AtomicUsize::new(0),
            timer_tasks: Arc::default(),
            released: Mutex::default(),
            fetch_metrics: std::sync::OnceLock::new(),
            gate: crate::gate::Gate::default(),
            upgrades: Mutex::default(),
            open_sockets: AtomicUsize::new(0),
            socket_bytes: Arc::default(),
        }
    }

    /// A fresh id for a registry slot (objects, calls, promises), unique in this isolate.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `f` on a JavaScript thread, inside the isolate's context, then runs the microtasks
    /// it queued. Jobs run one at a time, in the order they were posted. If the isolate is
    /// gone, `f` is dropped (so any reply channel it holds closes).
    pub(crate) fn post<F>(&self, f: F)
    where
        F: for<'js> FnOnce(&Ctx<'js>, &Rc<Host>) + Send + 'static,
    {
        self.slot.post(Box::new(move |unit: &mut Option<Unit>| {
            let Some(u) = unit.as_mut() else { return };
            if let Some(reason) = u.run(f) {
                if let Some(u) = unit.take() {
                    u.discard(Some(reason));
                }
            }
        }));
    }

    /// Posts a job that gets the isolate's unit itself (to build it).
    pub(crate) fn post_job(&self, job: Job) {
        self.slot.post(job);
    }

    /// Notes that the capability in slot `slot` was released (from any thread).
    pub(crate) fn note_released(&self, slot: u64) {
        self.released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slot);
    }

    /// Whether the capability in slot `slot` was released and its release job has not run.
    pub(crate) fn is_released(&self, slot: u64) -> bool {
        self.released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&slot)
    }

    /// Forgets a released slot (its release job ran).
    pub(crate) fn forget_released(&self, slot: u64) {
        self.released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&slot);
    }

    fn broken_state(&self) -> Option<Broken> {
        self.broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Why the isolate was discarded (a broken limit, or an internal error), if it was.
    pub(crate) fn broken(&self) -> Option<String> {
        self.broken_state().map(|b| match b {
            Broken::Limit(r) | Broken::Internal(r) => r,
        })
    }

    /// Marks the isolate as discarded for breaking a limit (the first reason sticks).
    pub(crate) fn set_broken(&self, reason: String) {
        let mut b = self.broken.lock().unwrap_or_else(|e| e.into_inner());
        if b.is_none() {
            *b = Some(Broken::Limit(reason));
        }
    }

    /// Marks the isolate as discarded after a panic (this reason wins over any other).
    pub(crate) fn set_internal(&self, reason: String) {
        *self.broken.lock().unwrap_or_else(|e| e.into_inner()) = Some(Broken::Internal(reason));
    }

    /// Keeps the socket fetch invocation `invocation` attached, for its caller to take.
    pub(crate) fn add_upgrade(&self, invocation: u64, parts: crate::socket::SocketParts) {
        self.open_sockets.fetch_add(1, Ordering::SeqCst);
        self.upgrades
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(invocation, parts);
    }

    /// Takes the socket fetch invocation `invocation` attached, if any.
    pub(crate) fn take_upgrade(&self, invocation: u64) -> Option<crate::socket::SocketParts> {
        self.upgrades
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&invocation)
    }

    /// A socket closed.
    pub(crate) fn socket_closed(&self) {
        let _ = self
            .open_sockets
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// How many WebSockets are open.
    pub(crate) fn open_sockets(&self) -> usize {
        self.open_sockets.load(Ordering::SeqCst)
    }

    /// The memory in use, as last measured: the JavaScript heap (and WebAssembly), plus the
    /// bytes queued on its WebSockets.
    pub(crate) fn memory(&self) -> usize {
        self.memory
            .load(Ordering::Relaxed)
            .saturating_add(self.socket_bytes.load(Ordering::Relaxed))
    }

    /// The metric handles of this isolate's fetch calls (made on the first call).
    pub(crate) fn fetch_metrics(&self) -> &telemetry::CallMetrics {
        self.fetch_metrics
            .get_or_init(|| telemetry::call_metrics(&self.id, "fetch"))
    }

    /// The error a call sees when the isolate is gone.
    pub(crate) fn gone_error(&self) -> capnweb::RpcError {
        match self.broken_state() {
            Some(Broken::Limit(reason)) => resource_limit_error(reason),
            Some(Broken::Internal(reason)) => internal_error(reason),
            None => capnweb::RpcError::error(format!("isolate '{}' was shut down", self.id)),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.slot.post(Box::new(|unit: &mut Option<Unit>| {
            if let Some(u) = unit.take() {
                u.discard(None);
            }
        }));
    }
}

/// One isolate's QuickJS runtime and context, its host and its WebAssembly: everything that
/// is not thread-safe, moved between JavaScript threads as one piece.
pub(crate) struct Unit {
    // Field order matters: the host's persistent values are cleared first (see `discard`),
    // then the context, then the runtime, and the WebAssembly store last, so that linear
    // memory outlives every ArrayBuffer over it.
    host: Rc<Host>,
    ctx: Context,
    rt: Runtime,
    /// The memory limit and what the heap and WebAssembly use of it.
    budget: Rc<Budget>,
    /// When the heap was last measured (`None`: not since the isolate was created).
    measured: Option<Instant>,
    /// The isolate's WebAssembly (also held by the host; kept here for the drop order).
    wasm: Rc<wasm::Wasm>,
}

// SAFETY: a `Unit` is a closed graph: every `Rc`, `Weak`, `Cell` and `RefCell` reachable from it
// (the host and its registries, the natives' `Weak<Host>`s stored inside the runtime, the
// budget shared with the allocator and the WebAssembly embedder, the interrupt handler's
// `Stop`, rquickjs's `Rc<RefCell<RawRuntime>>` and the `Persistent`s' raw runtime pointers, the
// wasmtime store and its data) is reachable only from inside the same unit, so moving the
// whole unit moves every owner of those refcounts and cells together, and no other thread can
// touch them. That holds because:
// - nothing leaves a unit except through APIs that require `Send` (tokio tasks, channels, the
//   capnweb `Stub`s and `RpcTarget`s, `Arc<Shared>`), which the compiler checks: no `Rc` or
//   `Weak` of a unit can be stored outside it that way;
// - no thread-local holds anything of a unit: this crate and `wasm` have no `thread_local!`;
//   rquickjs 0.14 has none; capnweb's trace thread-local holds a `TraceId` (plain data) and is
//   reset at the start and end of every slice; wasmtime's thread-locals are set only while a
//   wasm call is on the stack, and a job never returns with one in progress;
// - the unit is used by one thread at a time: it lives in its `Slot` behind a mutex (or in the
//   pool's spares behind the pool's mutex) and a thread takes it out, runs jobs, and puts it
//   back, so each hand-off is ordered by a mutex release and acquire;
// - the one thread-affine value inside QuickJS, the stack top its stack-overflow check measures
//   from, is reset with `JS_UpdateStackTop` at the start of every job, on the thread that runs
//   it (`Unit::on_this_thread`); QuickJS keeps no other per-thread state, and between jobs no
//   JavaScript or wasm frame is live (`current_stack_frame` is empty);
// - wasmtime documents `Store<T>` as `Send` when `T` is: the store has no thread affinity of its
//   own, and its data (`Rc`s of this unit) is covered by the points above.
unsafe impl Send for Unit {}

/// How often a busy isolate's heap is measured at most: `JS_ComputeMemoryUsage` walks the whole
/// heap (tens of µs), too much to do on every call.
const MEASURE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl Unit {
    /// A blank isolate: a runtime with the interrupt handler, a context with the web APIs and
    /// the bridge installed, and a host not yet given to any function.
    pub(crate) fn blank() -> Result<Unit, LoadError> {
        let budget = Rc::new(Budget::default());
        let rt = Runtime::new_with_alloc(LimitedAllocator {
            budget: budget.clone(),
        })
        .map_err(|e| LoadError::Runtime(e.to_string()))?;
        let stop = Rc::new(Stop {
            deadline: Rc::new(Cell::new(None)),
            interrupted: Rc::new(Cell::new(false)),
            oom: budget.refused.clone(),
            cpu: Rc::default(),
        });
        {
            let stop = stop.clone();
            rt.set_interrupt_handler(Some(Box::new(move || stop.now())));
        }
        let wasm = wasm::Wasm::new(Rc::new(WasmLimits {
            budget: budget.clone(),
            stop: stop.clone(),
        }));
        let ctx = Context::full(&rt).map_err(|e| LoadError::Runtime(e.to_string()))?;
        let host = Rc::new(Host::new(&stop, wasm.clone()));
        host.begin_slice();
        let prepared = ctx.with(|ctx| {
            let r = host.prepare(&ctx);
            #[cfg(feature = "test-panic")]
            let r = r.and_then(|()| {
                crate::test_panic::install(&ctx, Rc::downgrade(&host))
                    .map_err(|e| LoadError::Runtime(host.describe_error(&ctx, e)))
            });
            if r.is_err() {
                host.clear(&ctx);
            }
            r
        });
        host.end_slice();
        prepared?;
        Ok(Unit {
            host,
            ctx,
            rt,
            budget,
            measured: None,
            wasm,
        })
    }

    /// Makes the runtime measure its stack from here, on the calling thread: called at the
    /// start of every job, since the unit may have run on another thread before.
    fn on_this_thread(&self) {
        let ctx = self.ctx.as_raw();
        // SAFETY: the runtime is alive (we own it) and no JavaScript is running on it (this is
        // the start of a job, and only the thread holding the unit can run it). The call only
        // records the current stack pointer as the runtime's stack top.
        unsafe {
            rquickjs::qjs::JS_UpdateStackTop(rquickjs::qjs::JS_GetRuntime(ctx.as_ptr()));
        }
    }

    /// Builds an isolate for `shared` (from a spare built ahead of time, if one is ready) and
    /// evaluates its main module. Returns the isolate and whether the default export has an
    /// `rpc` class. `precompiled` are the module map's `.wasm` modules, compiled off the
    /// JavaScript threads.
    pub(crate) fn create(
        shared: &Arc<Shared>,
        config: IsolateConfig,
        precompiled: Vec<(Vec<u8>, wasm::CompiledModule)>,
    ) -> Result<(Unit, crate::host::Surface), LoadError> {
        let st = match crate::pool::pool().take_spare() {
            Some(st) => st,
            None => Unit::blank()?,
        };
        st.on_this_thread();
        // The limit is enforced by the allocator (not `JS_SetMemoryLimit`), so a refused
        // allocation is always seen, whatever QuickJS then throws (often `null`).
        st.budget.limit.set(config.limits.memory_bytes);
        st.rt.set_max_stack_size(config.limits.max_stack_bytes);
        crate::modules::install_loader(&st.rt, &config.modules);
        for (bytes, module) in precompiled {
            st.wasm.preload(bytes, module);
        }
        st.host.claim(shared, config.limits);
        st.host.begin_slice();
        let result = st.ctx.with(|ctx| {
            let r = st.host.start(&ctx, &config);
            if r.is_err() {
                st.host.clear(&ctx);
            }
            r
        });
        st.host.end_slice();
        let has_rpc = result?;
        shared.memory.store(st.memory_used(), Ordering::Relaxed);
        Ok((st, has_rpc))
    }

    /// Runs one job under the isolate's CPU deadline and drains its microtasks. Returns why
    /// the isolate must be discarded, if a limit broke.
    fn run<F>(&mut self, f: F) -> Option<String>
    where
        F: for<'js> FnOnce(&Ctx<'js>, &Rc<Host>),
    {
        self.on_this_thread();
        let host = self.host.clone();
        host.begin_slice();
        self.ctx.with(|ctx| {
            f(&ctx, &host);
            while host.limit_broken().is_none() && ctx.execute_pending_job() {}
            if host.take_panicked() {
                resume_panic(&ctx);
            }
            if host.limit_broken().is_none() {
                host.reap(&ctx);
            }
        });
        host.end_slice();
        if let Some(reason) = host.limit_broken() {
            tracing::warn!(isolate = %host.id(), "{reason}; discarding the isolate");
            return Some(reason);
        }
        let now = Instant::now();
        if self
            .measured
            .is_none_or(|t| now.duration_since(t) >= MEASURE_EVERY)
        {
            self.measured = Some(now);
            if let Some(shared) = host.shared() {
                shared.memory.store(self.memory_used(), Ordering::Relaxed);
            }
        }
        None
    }

    /// Tears the isolate down. With a `reason` (a broken limit), every call still waiting on
    /// it is rejected with a `ResourceLimitError` carrying that reason.
    pub(crate) fn discard(self, reason: Option<String>) {
        self.on_this_thread();
        if let (Some(reason), Some(shared)) = (&reason, self.host.shared()) {
            shared.set_broken(reason.clone());
        }
        let host = self.host.clone();
        match &reason {
            Some(r) => host.close_sockets(1011, r),
            None => host.close_sockets(1001, &format!("isolate '{}' was shut down", host.id())),
        }
        self.ctx.with(|ctx| {
            host.fail_pending(reason.as_deref());
            host.clear(&ctx);
        });
        drop(host);
        drop(self);
    }

    /// Tears the isolate down after a job panicked: it is marked broken with an internal
    /// error, which every call still waiting on it gets.
    pub(crate) fn discard_after_panic(self) {
        let reason = format!("internal error; isolate '{}' was discarded", self.host.id());
        if let Some(shared) = self.host.shared() {
            shared.set_internal(reason.clone());
        }
        self.host.close_sockets(1011, &reason);
        self.host.fail_pending_with(&internal_error(reason));
        self.on_this_thread();
        let host = self.host.clone();
        self.ctx.with(|ctx| host.clear(&ctx));
        drop(host);
        drop(self);
    }

    /// The heap in use plus the WebAssembly memory and tables held.
    fn memory_used(&self) -> usize {
        heap_used(&self.rt).saturating_add(self.budget.wasm.get())
    }
}

/// Resumes the panic of a native function that JavaScript caught as an exception. rquickjs
/// keeps such a panic and resumes it when the next exception reaches Rust: this makes one reach
/// Rust here, outside any native, so that the job panics and `slot.rs` discards the isolate.
fn resume_panic(ctx: &Ctx<'_>) -> ! {
    let throw = Function::new(ctx.clone(), |ctx: Ctx<'_>| -> rquickjs::Result<()> {
        Err(Exception::throw_internal(&ctx, "resuming a panic"))
    });
    if let Ok(f) = throw {
        let _ = f.call::<_, ()>(());
        let _ = ctx.catch();
    }
    panic!("a native function panicked and JavaScript caught it");
}

fn heap_used(rt: &Runtime) -> usize {
    usize::try_from(rt.memory_usage().memory_used_size).unwrap_or(0)
}

/// One live task counted in a shared counter, for as long as this value lives (moved into the
/// task, it is dropped when the task ends or is aborted).
pub(crate) struct TaskCount(Arc<AtomicUsize>);

impl TaskCount {
    pub(crate) fn enter(count: &Arc<AtomicUsize>) -> TaskCount {
        count.fetch_add(1, Ordering::Relaxed);
        TaskCount(count.clone())
    }
}

impl Drop for TaskCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
