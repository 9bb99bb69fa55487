//! What lives on a JavaScript thread: the isolates pinned to it ([`ThreadState`]), and the
//! thread-safe handle ([`Shared`]) through which any thread posts work to one of them. It
//! wires each isolate's runtime and WebAssembly to the limits of `limits.rs`, the one place
//! that enforces the CPU and memory limits.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rquickjs::{Context, Ctx, Runtime};
use std::sync::mpsc;

use crate::config::IsolateConfig;
use crate::error::{resource_limit_error, LoadError};
use crate::host::Host;
use crate::limits::{Budget, LimitedAllocator, Stop, WasmLimits};
use crate::pool::Job;

/// The thread-safe side of one isolate: its id, its thread's channel and its health. Held by
/// the [`Isolate`](crate::Isolate) and by every capability that points into it; when the last
/// reference goes, the isolate is torn down on its thread.
pub(crate) struct Shared {
    pub(crate) key: u64,
    pub(crate) id: String,
    pub(crate) thread: usize,
    /// How long a caller waits for an invocation to answer (`Limits::wall_time`).
    pub(crate) wall_time: std::time::Duration,
    tx: mpsc::Sender<Job>,
    next_id: AtomicU64,
    broken: Mutex<Option<String>>,
    memory: AtomicUsize,
    /// Host tasks alive that wait to fire one of the isolate's timers.
    pub(crate) timer_tasks: Arc<AtomicUsize>,
    /// Capability slots released by their holders whose release job has not run yet (so that
    /// work queued ahead of it already sees them gone).
    released: Mutex<HashSet<u64>>,
    fetch_metrics: std::sync::OnceLock<Arc<telemetry::CallMetrics>>,
    /// Whether new calls may enter (see `gate.rs`).
    pub(crate) gate: crate::gate::Gate,
}

impl Shared {
    pub(crate) fn new(
        key: u64,
        id: String,
        thread: usize,
        wall_time: std::time::Duration,
        tx: mpsc::Sender<Job>,
    ) -> Self {
        Shared {
            key,
            id,
            thread,
            wall_time,
            tx,
            next_id: AtomicU64::new(1),
            broken: Mutex::new(None),
            memory: AtomicUsize::new(0),
            timer_tasks: Arc::default(),
            released: Mutex::default(),
            fetch_metrics: std::sync::OnceLock::new(),
            gate: crate::gate::Gate::default(),
        }
    }

    /// A fresh id for a registry slot (objects, calls, promises), unique in this isolate.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `f` on the isolate's thread, inside its context, then runs the microtasks it
    /// queued. Jobs run in the order they were posted. If the isolate is gone, `f` is dropped
    /// (so any reply channel it holds closes).
    pub(crate) fn post<F>(&self, f: F)
    where
        F: for<'js> FnOnce(&Ctx<'js>, &Rc<Host>) + Send + 'static,
    {
        let key = self.key;
        let _ = self
            .tx
            .send(Box::new(move |ts: &mut ThreadState| ts.run(key, f)));
    }

    pub(crate) fn send_job(&self, job: Job) -> bool {
        self.tx.send(job).is_ok()
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

    /// Why the isolate was discarded, if it was.
    pub(crate) fn broken(&self) -> Option<String> {
        self.broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_broken(&self, reason: String) {
        *self.broken.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// The JavaScript heap in use, as last measured.
    pub(crate) fn memory(&self) -> usize {
        self.memory.load(Ordering::Relaxed)
    }

    /// The metric handles of this isolate's fetch calls (made on the first call).
    pub(crate) fn fetch_metrics(&self) -> &telemetry::CallMetrics {
        self.fetch_metrics
            .get_or_init(|| telemetry::call_metrics(&self.id, "fetch"))
    }

    /// The error a call sees when the isolate is gone.
    pub(crate) fn gone_error(&self) -> capnweb::RpcError {
        match self.broken() {
            Some(reason) => resource_limit_error(reason),
            None => capnweb::RpcError::error(format!("isolate '{}' was shut down", self.id)),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let key = self.key;
        let _ = self
            .tx
            .send(Box::new(move |ts: &mut ThreadState| ts.discard(key, None)));
    }
}

/// One QuickJS runtime and context, owned by its thread.
struct IsolateState {
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
    /// Held here (as well as by the host) only for its place in the drop order.
    _wasm: Rc<wasm::Wasm>,
}

/// How often a busy isolate's heap is measured at most: `JS_ComputeMemoryUsage` walks the whole
/// heap (tens of µs), too much to do on every call.
const MEASURE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The isolates of one JavaScript thread, and a blank one built ahead of time so that the
/// next isolate skips building its runtime, context and web APIs.
#[derive(Default)]
pub(crate) struct ThreadState {
    isolates: HashMap<u64, IsolateState>,
    spare: Option<IsolateState>,
}

impl ThreadState {
    /// Whether a blank isolate is ready.
    pub(crate) fn has_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// Builds the blank isolate, if there is none (called when the thread is idle).
    pub(crate) fn fill_spare(&mut self) {
        if self.spare.is_none() {
            match blank() {
                Ok(st) => self.spare = Some(st),
                Err(e) => tracing::error!("cannot build a blank isolate: {e}"),
            }
        }
    }

    /// Builds an isolate on this thread and evaluates its main module. Returns whether the
    /// default export has an `rpc` class.
    pub(crate) fn create(
        &mut self,
        shared: &Arc<Shared>,
        config: IsolateConfig,
    ) -> Result<bool, LoadError> {
        let st = match self.spare.take() {
            Some(st) => st,
            None => blank()?,
        };
        // The limit is enforced by the allocator (not `JS_SetMemoryLimit`), so a refused
        // allocation is always seen, whatever QuickJS then throws (often `null`).
        st.budget.limit.set(config.limits.memory_bytes);
        st.rt.set_max_stack_size(config.limits.max_stack_bytes);
        crate::modules::install_loader(&st.rt, &config.modules);
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
        self.isolates.insert(shared.key, st);
        Ok(has_rpc)
    }

    /// Runs one job on isolate `key` under its CPU deadline, drains its microtasks, and
    /// discards the isolate if a limit broke.
    pub(crate) fn run<F>(&mut self, key: u64, f: F)
    where
        F: for<'js> FnOnce(&Ctx<'js>, &Rc<Host>),
    {
        let Some(st) = self.isolates.get_mut(&key) else {
            return;
        };
        let host = st.host.clone();
        host.begin_slice();
        st.ctx.with(|ctx| {
            f(&ctx, &host);
            while host.limit_broken().is_none() && ctx.execute_pending_job() {}
            if host.limit_broken().is_none() {
                host.reap(&ctx);
            }
        });
        host.end_slice();
        if let Some(reason) = host.limit_broken() {
            tracing::warn!(isolate = %host.id(), "{reason}; discarding the isolate");
            self.discard(key, Some(reason));
            return;
        }
        let now = Instant::now();
        if st
            .measured
            .is_none_or(|t| now.duration_since(t) >= MEASURE_EVERY)
        {
            st.measured = Some(now);
            if let Some(shared) = host.shared() {
                shared.memory.store(st.memory_used(), Ordering::Relaxed);
            }
        }
    }

    /// Tears isolate `key` down. With a `reason` (a broken limit), every call still waiting on
    /// it is rejected with a `ResourceLimitError` carrying that reason.
    pub(crate) fn discard(&mut self, key: u64, reason: Option<String>) {
        let Some(st) = self.isolates.remove(&key) else {
            return;
        };
        if let (Some(reason), Some(shared)) = (&reason, st.host.shared()) {
            shared.set_broken(reason.clone());
        }
        let host = st.host.clone();
        st.ctx.with(|ctx| {
            host.fail_pending(reason.as_deref());
            host.clear(&ctx);
        });
        drop(host);
        drop(st);
    }
}

/// A blank isolate: a runtime with the interrupt handler, a context with the web APIs and the
/// bridge installed, and a host not yet given to any function.
fn blank() -> Result<IsolateState, LoadError> {
    let budget = Rc::new(Budget::default());
    let rt = Runtime::new_with_alloc(LimitedAllocator {
        budget: budget.clone(),
    })
    .map_err(|e| LoadError::Runtime(e.to_string()))?;
    let stop = Rc::new(Stop {
        deadline: Rc::new(Cell::new(None)),
        interrupted: Rc::new(Cell::new(false)),
        oom: budget.refused.clone(),
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
        if r.is_err() {
            host.clear(&ctx);
        }
        r
    });
    host.end_slice();
    prepared?;
    Ok(IsolateState {
        host,
        ctx,
        rt,
        budget,
        measured: None,
        _wasm: wasm,
    })
}

impl IsolateState {
    /// The heap in use plus the WebAssembly memory and tables held.
    fn memory_used(&self) -> usize {
        heap_used(&self.rt).saturating_add(self.budget.wasm.get())
    }
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
