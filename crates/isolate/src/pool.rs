//! The JavaScript threads: a small fixed pool of OS threads, each owning the QuickJS runtimes
//! created on it. Every isolate is pinned to one thread and reached only through jobs sent over
//! that thread's channel, so JavaScript never runs on tokio's I/O threads and a busy isolate
//! holds up only its own thread, and only until its CPU limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use std::sync::mpsc;
use std::time::Duration;

use crate::state::ThreadState;

/// A unit of work for a JavaScript thread.
pub(crate) type Job = Box<dyn FnOnce(&mut ThreadState) + Send>;

pub(crate) struct Pool {
    threads: Vec<mpsc::Sender<Job>>,
    next: AtomicUsize,
}

static POOL: OnceLock<Pool> = OnceLock::new();
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many JavaScript threads the process uses (default: the number of CPUs, at least 2).
/// Takes effect only before the first isolate is created; returns whether it did.
pub fn set_js_threads(n: usize) -> bool {
    if POOL.get().is_some() {
        return false;
    }
    THREADS.store(n.max(1), Ordering::SeqCst);
    true
}

/// How many JavaScript threads there are (starting them if needed).
pub fn js_threads() -> usize {
    pool().threads.len()
}

pub(crate) fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let n = match THREADS.load(Ordering::SeqCst) {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            n => n,
        };
        let threads = (0..n)
            .filter_map(|i| {
                let (tx, rx) = mpsc::channel();
                std::thread::Builder::new()
                    .name(format!("js-{i}"))
                    .stack_size(16 * 1024 * 1024)
                    .spawn(move || thread_main(rx))
                    .map_err(|e| tracing::error!("cannot start JavaScript thread {i}: {e}"))
                    .ok()
                    .map(|_| tx)
            })
            .collect();
        Pool {
            threads,
            next: AtomicUsize::new(0),
        }
    })
}

impl Pool {
    /// The next thread, round robin: its index and its channel.
    pub(crate) fn pick(&self) -> Option<(usize, mpsc::Sender<Job>)> {
        if self.threads.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        Some((i, self.threads[i].clone()))
    }
}

/// How long a thread must have been idle before it builds a blank isolate for the next load
/// (so building one does not delay a job that follows right after another).
const IDLE_BEFORE_SPARE: Duration = Duration::from_micros(200);

fn thread_main(rx: mpsc::Receiver<Job>) {
    if let Err(e) = crate::bytecode::warm_up() {
        tracing::error!("the built-in JavaScript does not compile: {e}");
    }
    let mut state = ThreadState::default();
    loop {
        let job = if state.has_spare() {
            rx.recv().ok()
        } else {
            match rx.recv_timeout(IDLE_BEFORE_SPARE) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    state.fill_spare();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            }
        };
        let Some(job) = job else { break };
        job(&mut state);
    }
}
