//! [`Slot`]: one isolate's mailbox and home. Jobs posted to an isolate wait here in order; the
//! isolate itself (its [`Unit`]) lives here between jobs. When the first job arrives the slot
//! joins the pool's run queue; a JavaScript thread takes the unit out, runs the jobs one at a
//! time, in the order they were posted, and puts the unit back. Only one thread holds the unit
//! at a time (the slot is in the run queue or on a thread at most once: `scheduled`), which is
//! what keeps a function's calls in order (e-order) and its JavaScript single-threaded. After
//! [`TURN`] with jobs still waiting, the slot goes to the back of the run queue so that one busy
//! isolate does not starve the others queued behind it.
//!
//! A panic in a job is caught here: the isolate is marked broken with an internal error, its
//! waiting calls fail with that error, it is torn down, and the thread is replaced.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::pool::{pool, Worker};
use crate::state::Unit;

/// A unit of work for an isolate. It gets the isolate's unit (`None` before it is built and
/// after it was discarded; a job that finds `None` just drops, closing any reply it holds).
pub(crate) type Job = Box<dyn FnOnce(&mut Option<Unit>) + Send>;

/// How long a thread keeps running one isolate's jobs while others wait.
const TURN: Duration = Duration::from_millis(2);

/// What a thread's turn on a slot ended with.
pub(crate) enum Turn {
    /// The jobs ran (the slot is idle, or queued again).
    Done,
    /// A job panicked: the isolate was discarded and the thread must be replaced.
    Panicked,
}

/// One isolate's mailbox and home.
pub(crate) struct Slot {
    id: String,
    inner: Mutex<Inner>,
}

struct Inner {
    jobs: VecDeque<Job>,
    /// The isolate, while no thread holds it.
    unit: Option<Unit>,
    /// In the run queue or on a thread.
    scheduled: bool,
}

impl Slot {
    pub(crate) fn new(id: String) -> Arc<Slot> {
        Arc::new(Slot {
            id,
            inner: Mutex::new(Inner {
                jobs: VecDeque::new(),
                unit: None,
                scheduled: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job`; jobs run in the order they were posted.
    pub(crate) fn post(self: &Arc<Self>, job: Job) {
        let mut inner = self.lock();
        inner.jobs.push_back(job);
        if !inner.scheduled {
            inner.scheduled = true;
            drop(inner);
            pool().ready(self.clone());
        }
    }

    /// Runs this slot's jobs on the calling JavaScript thread until none is left, or its turn
    /// is over and it was queued again.
    pub(crate) fn run_turn(self: &Arc<Self>, worker: &Worker) -> Turn {
        let mut unit = self.lock().unit.take();
        let start = Instant::now();
        loop {
            let job = {
                let mut inner = self.lock();
                match inner.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        inner.unit = unit;
                        inner.scheduled = false;
                        return Turn::Done;
                    }
                }
            };
            worker.job_started();
            let ran = catch_unwind(AssertUnwindSafe(|| job(&mut unit)));
            worker.job_ended();
            if let Err(payload) = ran {
                self.after_panic(unit.take(), payload.as_ref());
                self.give_back(None);
                return Turn::Panicked;
            }
            if start.elapsed() >= TURN {
                self.give_back(unit.take());
                return Turn::Done;
            }
        }
    }

    /// Puts `unit` back, and queues the slot again if jobs are waiting (else it is idle).
    fn give_back(self: &Arc<Self>, unit: Option<Unit>) {
        let mut inner = self.lock();
        inner.unit = unit;
        if inner.jobs.is_empty() {
            inner.scheduled = false;
        } else {
            drop(inner);
            pool().ready(self.clone());
        }
    }

    /// Fails the isolate's calls with an internal error and tears it down. The unit may be in
    /// any state a panic left it in, but it is memory-safe to drop (a panic in Rust unwinds
    /// only Rust frames: rquickjs catches panics at every callback from C and resumes them
    /// once back in Rust); if tearing it down panics again, what is left is leaked.
    fn after_panic(&self, unit: Option<Unit>, payload: &(dyn std::any::Any + Send)) {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        tracing::error!(isolate = %self.id, "a job panicked on a JavaScript thread: {what}; discarding the isolate and replacing the thread");
        let Some(unit) = unit else {
            return;
        };
        let torn_down = catch_unwind(AssertUnwindSafe(|| unit.discard_after_panic()));
        if torn_down.is_err() {
            tracing::error!(isolate = %self.id, "tearing the isolate down panicked too; leaking it");
        }
    }
}

/// Builds a blank isolate for the pool's spares (a panic or an error is logged, not fatal).
pub(crate) fn build_spare() -> Option<Unit> {
    match catch_unwind(Unit::blank) {
        Ok(Ok(unit)) => Some(unit),
        Ok(Err(e)) => {
            tracing::error!("cannot build a blank isolate: {e}");
            None
        }
        Err(_) => {
            tracing::error!("building a blank isolate panicked");
            None
        }
    }
}
