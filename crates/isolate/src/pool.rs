//! The JavaScript threads: OS threads (never tokio's) that run isolates' jobs. Isolates are not
//! pinned to a thread: an isolate with work waiting goes into one run queue, and any free
//! thread takes it and runs its jobs (see `slot.rs`). QuickJS cannot pause running JavaScript,
//! so fairness comes from having a free thread: when every thread has been stuck in one job
//! for [`STALL`] while other isolates wait, another thread is started, up to the cap
//! ([`set_max_js_threads`]). Threads started that way stop again after [`IDLE_EXIT`] without
//! work. A spinning isolate therefore holds one thread, and only until its CPU limit.
//!
//! Against a hostile function: it cannot keep a thread longer than its CPU limit, and it can
//! delay other isolates only by keeping every one of the `max` threads busy at once — which
//! takes `max` spinning invocations (each bounded by its own CPU limit). Threads past the CPU
//! count share the cores through the OS scheduler.
//!
//! Idle threads also build blank isolates ahead of time (up to one per base thread), so that
//! loading a function skips building its runtime, context and web APIs.
//!
//! A panic in a job is caught (`slot.rs`); the thread that ran it then hands its place to a
//! fresh thread and ends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::slot::{Slot, Turn};
use crate::state::Unit;

/// How long every thread must have been stuck in one job, with isolates waiting, before
/// another thread is started.
pub const STALL: Duration = Duration::from_millis(5);

/// How long a thread started on demand (past the base count) waits for work before it ends.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

/// The default cap on JavaScript threads.
pub const DEFAULT_MAX_JS_THREADS: usize = 64;

/// How long a thread must have been idle before it builds a blank isolate for the next load
/// (so building one does not delay a job that follows right after another).
const IDLE_BEFORE_SPARE: Duration = Duration::from_micros(200);

/// Native stack of a JavaScript thread (QuickJS's own limit, `Limits::max_stack_bytes`, is
/// checked well inside it).
const STACK_SIZE: usize = 16 * 1024 * 1024;

static POOL: OnceLock<Pool> = OnceLock::new();
static BASE: AtomicUsize = AtomicUsize::new(0);
static MAX: AtomicUsize = AtomicUsize::new(0);

/// Sets how many JavaScript threads always run (default: the number of CPUs, at least 2).
/// Takes effect only before the first isolate is created; returns whether it did.
pub fn set_js_threads(n: usize) -> bool {
    if POOL.get().is_some() {
        return false;
    }
    BASE.store(n.max(1), Ordering::SeqCst);
    true
}

/// Sets how many JavaScript threads may run at most, counting those started on demand
/// (default [`DEFAULT_MAX_JS_THREADS`]; never less than the base count). Takes effect only
/// before the first isolate is created; returns whether it did.
pub fn set_max_js_threads(n: usize) -> bool {
    if POOL.get().is_some() {
        return false;
    }
    MAX.store(n.max(1), Ordering::SeqCst);
    true
}

/// How many JavaScript threads are running now (starting the pool if needed).
pub fn js_threads() -> usize {
    pool().lock().workers.len()
}

/// One JavaScript thread, as the pool sees it.
pub(crate) struct Worker {
    /// When its running job started, in ns since `epoch`, plus one (0: not in a job).
    busy_since: AtomicU64,
    epoch: Instant,
    /// Whether it was started on demand (and may end when idle).
    extra: bool,
}

impl Worker {
    pub(crate) fn job_started(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_since
            .store(now.saturating_add(1), Ordering::Release);
    }

    pub(crate) fn job_ended(&self) {
        self.busy_since.store(0, Ordering::Release);
    }

    /// Whether it has been in one job for at least `STALL` at `now`.
    fn stalled(&self, now: u64) -> bool {
        let since = self.busy_since.load(Ordering::Acquire);
        since != 0 && now.saturating_sub(since - 1) >= STALL.as_nanos() as u64
    }
}

pub(crate) struct Pool {
    state: Mutex<State>,
    /// Threads wait here for work.
    work: Condvar,
    /// The supervisor waits here for work that no idle thread can take.
    watch: Condvar,
    base: usize,
    max: usize,
    epoch: Instant,
}

struct State {
    /// Isolates with jobs waiting, in the order they became ready.
    ready: VecDeque<Arc<Slot>>,
    workers: Vec<Arc<Worker>>,
    /// Threads waiting for work.
    idle: usize,
    /// Blank isolates built ahead of time, and how many are being built.
    spares: Vec<Unit>,
    building: usize,
    next_name: usize,
}

pub(crate) fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let base = match BASE.load(Ordering::SeqCst) {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            n => n,
        };
        let max = match MAX.load(Ordering::SeqCst) {
            0 => DEFAULT_MAX_JS_THREADS,
            n => n,
        }
        .max(base);
        let pool = Pool {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                workers: Vec::new(),
                idle: 0,
                spares: Vec::new(),
                building: 0,
                next_name: 0,
            }),
            work: Condvar::new(),
            watch: Condvar::new(),
            base,
            max,
            epoch: Instant::now(),
        };
        if let Err(e) = crate::bytecode::warm_up() {
            tracing::error!("the built-in JavaScript does not compile: {e}");
        }
        pool
    });
    let pool = POOL.get().expect("initialised above");
    pool.start();
    pool
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Starts the base threads and the supervisor, once.
    fn start(&'static self) {
        static STARTED: OnceLock<()> = OnceLock::new();
        STARTED.get_or_init(|| {
            {
                let mut st = self.lock();
                for _ in 0..self.base {
                    self.spawn_worker(&mut st, false);
                }
            }
            if let Err(e) = std::thread::Builder::new()
                .name("js-supervisor".into())
                .spawn(move || self.supervise())
            {
                tracing::error!("cannot start the JavaScript thread supervisor: {e}");
            }
        });
    }

    /// Puts an isolate with jobs waiting in the run queue.
    pub(crate) fn ready(&self, slot: Arc<Slot>) {
        let mut st = self.lock();
        st.ready.push_back(slot);
        if st.idle > 0 {
            self.work.notify_one();
        } else {
            self.watch.notify_one();
        }
    }

    /// A blank isolate built ahead of time, if one is ready.
    pub(crate) fn take_spare(&self) -> Option<Unit> {
        self.lock().spares.pop()
    }

    fn spawn_worker(&'static self, st: &mut State, extra: bool) -> bool {
        let worker = Arc::new(Worker {
            busy_since: AtomicU64::new(0),
            epoch: self.epoch,
            extra,
        });
        let name = format!("js-{}", st.next_name);
        st.next_name += 1;
        let me = worker.clone();
        match std::thread::Builder::new()
            .name(name)
            .stack_size(STACK_SIZE)
            .spawn(move || self.work_loop(&me))
        {
            Ok(_) => {
                st.workers.push(worker);
                true
            }
            Err(e) => {
                tracing::error!("cannot start a JavaScript thread: {e}");
                false
            }
        }
    }

    fn remove_worker(st: &mut State, me: &Arc<Worker>) {
        st.workers.retain(|w| !Arc::ptr_eq(w, me));
    }

    /// A JavaScript thread: takes isolates with work from the run queue and runs their jobs.
    fn work_loop(&'static self, me: &Arc<Worker>) {
        loop {
            let Some(slot) = self.next_slot(me) else {
                return;
            };
            match slot.run_turn(me) {
                Turn::Done => {}
                Turn::Panicked => {
                    // This thread's stack unwound cleanly, but its thread-local state (if a
                    // library keeps any) may not have: a fresh thread takes its place.
                    let mut st = self.lock();
                    Self::remove_worker(&mut st, me);
                    self.spawn_worker(&mut st, me.extra);
                    return;
                }
            }
        }
    }

    /// Waits for an isolate with work (building a spare while idle). `None`: this thread was
    /// started on demand and had nothing to do for `IDLE_EXIT`.
    fn next_slot(&self, me: &Arc<Worker>) -> Option<Arc<Slot>> {
        let mut st = self.lock();
        let mut idle_since = Instant::now();
        loop {
            if let Some(slot) = st.ready.pop_front() {
                return Some(slot);
            }
            let wants_spare = !me.extra && st.spares.len() + st.building < self.base;
            let wait = if wants_spare {
                IDLE_BEFORE_SPARE
            } else if me.extra {
                IDLE_EXIT.saturating_sub(idle_since.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            st.idle += 1;
            let (guard, timeout) = self
                .work
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            if !st.ready.is_empty() {
                continue;
            }
            if !timeout.timed_out() {
                continue;
            }
            if wants_spare && st.spares.len() + st.building < self.base {
                st.building += 1;
                drop(st);
                let spare = crate::slot::build_spare();
                st = self.lock();
                st.building -= 1;
                if let Some(spare) = spare {
                    st.spares.push(spare);
                }
                idle_since = Instant::now();
            } else if me.extra && idle_since.elapsed() >= IDLE_EXIT {
                Self::remove_worker(&mut st, me);
                return None;
            }
        }
    }

    /// Starts another thread whenever isolates wait, no thread is idle, and every thread has
    /// been stuck in one job for `STALL`; keeps the base count running.
    fn supervise(&'static self) {
        let mut st = self.lock();
        loop {
            if st.workers.len() < self.base {
                self.spawn_worker(&mut st, false);
            }
            if st.ready.is_empty() || st.idle > 0 {
                st = self.watch.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let now = self.nanos();
            let stalled = st.workers.iter().all(|w| w.stalled(now));
            if stalled && st.workers.len() < self.max {
                tracing::debug!(
                    threads = st.workers.len() + 1,
                    "every JavaScript thread is busy: starting another"
                );
                self.spawn_worker(&mut st, true);
            }
            st = self
                .watch
                .wait_timeout(st, STALL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
