//! Background work, owned and bounded: every invocation of an isolate (a fetch, an RPC call),
//! the CPU it used, and the work it left waiting — timers, promises waiting on a capnweb
//! result, response streams being fed, `ctx.waitUntil` promises — so that what an invocation
//! leaves behind runs on its CPU budget and ends with it, as on Workers.
//!
//! An invocation ends (its timers are cancelled, its waiting promises are dropped and never
//! settle) once it answered and nothing keeps it: a response body it still feeds, a
//! `ctx.waitUntil` promise still pending within [`Limits::wait_until`] of the answer, or, for a
//! call made on a capability (an RPC session's main capability, a stub passed out), that
//! capability still being held while the call has work waiting. An invocation that does not
//! answer within [`Limits::wall_time`] is failed and ended at once.
//!
//! Against a malicious function: nothing it schedules runs outside an invocation (timers and
//! waits on capnweb results are refused in global scope), so all of it is charged to some
//! invocation's `cpu_time`; it cannot hold more than [`Limits::max_timers`] timers, and a
//! cleared or cancelled timer frees its host task at once.
//!
//! [`Limits::wait_until`]: crate::Limits::wait_until
//! [`Limits::wall_time`]: crate::Limits::wall_time
//! [`Limits::max_timers`]: crate::Limits::max_timers

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capnweb::trace::TraceId;
use rquickjs::{Persistent, Value as JsValue};
use tokio::task::AbortHandle;

use crate::state::{Shared, TaskCount};

type Saved = Persistent<JsValue<'static>>;

/// One invocation: what it used and what it left waiting.
struct Invocation {
    /// When it started (its wall-clock limit counts from here).
    started: Instant,
    /// CPU time used so far, summed over every slice of JavaScript that ran for it.
    used: Duration,
    /// The trace it continues, current while JavaScript runs for it.
    trace: Option<TraceId>,
    /// The slot of the capability the call was made on (`None`: a fetch).
    scope: Option<u64>,
    /// When its answer was sent (or its caller went away).
    answered: Option<Instant>,
    /// Its pending timers (JavaScript timer ids).
    timers: HashSet<u64>,
    /// Its promises waiting on a capnweb result (pull ids).
    pulls: HashSet<u64>,
    /// The streams it feeds from JavaScript (sender ids).
    streams: HashSet<u64>,
    /// `ctx.waitUntil` promises not yet settled.
    waiting: usize,
    /// Set when `ctx.waitUntil` work ran out its time after the answer.
    wait_over: bool,
    /// The task that ends `ctx.waitUntil`'s time (started with the answer).
    bound: Option<AbortHandle>,
}

impl Invocation {
    fn new(trace: Option<TraceId>, scope: Option<u64>) -> Self {
        Invocation {
            started: Instant::now(),
            used: Duration::ZERO,
            trace,
            scope,
            answered: None,
            timers: HashSet::new(),
            pulls: HashSet::new(),
            streams: HashSet::new(),
            waiting: 0,
            wait_over: false,
            bound: None,
        }
    }

    /// Whether the invocation must go on, given whether the capability it was called on is
    /// still held, whether `ctx.waitUntil`'s time is over, and whether a timer or result of
    /// it is about to run (taken from its sets already, it still counts as waiting work).
    fn kept(&self, scope_held: bool, wait_over: bool, running: bool) -> bool {
        let waits = running || !self.timers.is_empty() || !self.pulls.is_empty();
        self.answered.is_none()
            || !self.streams.is_empty()
            || (self.waiting > 0 && !wait_over)
            || (waits && scope_held)
    }
}

/// Whether an invocation's background work may run now (see [`Background::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It may.
    Run,
    /// It has not answered within the wall-clock limit: it fails and ends.
    WallClock,
    /// It answered and nothing keeps it any more: it ends.
    Over,
}

/// A pending timer: which invocation armed it, and the host task that will fire it.
struct Timer {
    owner: u64,
    /// Tells this arming from a later one of the same interval.
    seq: u64,
    task: AbortHandle,
}

/// A JavaScript promise waiting on a capnweb result: how to settle it, the invocation that
/// waits, and the host task that waits for the result.
pub(crate) struct Pull {
    pub(crate) resolve: Saved,
    pub(crate) reject: Saved,
    pub(crate) owner: u64,
    task: Option<AbortHandle>,
}

/// What ending invocations left for the host to undo: JavaScript timer entries to drop, and
/// streams to cut off.
#[derive(Default)]
pub(crate) struct Ended {
    pub(crate) timers: Vec<u64>,
    pub(crate) streams: Vec<u64>,
}

impl Ended {
    /// Just timer `timer` (taken to fire, but not to run).
    pub(crate) fn timer(timer: u64) -> Self {
        Ended {
            timers: vec![timer],
            streams: Vec::new(),
        }
    }
}

/// Why a timer could not be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TimerError {
    /// No invocation is running (module evaluation, a dispose handler).
    #[error("Disallowed operation called within global scope: setTimeout() and setInterval() work only while handling a request (inside a handler)")]
    GlobalScope,
    /// The isolate has as many pending timers as it may.
    #[error("too many pending timers: an isolate may have at most {0}")]
    TooMany(usize),
}

/// The invocations of one isolate and the background work each owns. Lives on the isolate's
/// thread.
#[derive(Default)]
pub(crate) struct Background {
    invocations: RefCell<HashMap<u64, Invocation>>,
    /// Invocations by the capability slot they were called on.
    by_scope: RefCell<HashMap<u64, HashSet<u64>>>,
    timers: RefCell<HashMap<u64, Timer>>,
    pulls: RefCell<HashMap<u64, Pull>>,
    /// Invocations whose state changed since the last [`Background::reap`].
    dirty: RefCell<HashSet<u64>>,
}

impl Background {
    /// Starts invocation `id`, made on the capability in slot `scope` (if any).
    pub(crate) fn begin(&self, id: u64, trace: Option<TraceId>, scope: Option<u64>) {
        self.invocations
            .borrow_mut()
            .insert(id, Invocation::new(trace, scope));
        if let Some(slot) = scope {
            self.by_scope
                .borrow_mut()
                .entry(slot)
                .or_default()
                .insert(id);
        }
    }

    /// Whether invocation `id` is still going.
    pub(crate) fn is_live(&self, id: u64) -> bool {
        self.invocations.borrow().contains_key(&id)
    }

    /// CPU time invocation `id` used so far (`None`: no such invocation).
    pub(crate) fn used(&self, id: u64) -> Option<Duration> {
        self.invocations.borrow().get(&id).map(|i| i.used)
    }

    /// Charges `elapsed` to invocation `id`; returns its total.
    pub(crate) fn charge(&self, id: u64, elapsed: Duration) -> Option<Duration> {
        let mut invs = self.invocations.borrow_mut();
        let inv = invs.get_mut(&id)?;
        inv.used += elapsed;
        Some(inv.used)
    }

    pub(crate) fn trace(&self, id: u64) -> Option<TraceId> {
        self.invocations.borrow().get(&id).and_then(|i| i.trace)
    }

    fn touch(&self, id: u64) {
        self.dirty.borrow_mut().insert(id);
    }

    /// Notes that invocation `id` answered (or that its caller went away).
    pub(crate) fn answered(&self, id: u64) {
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&id) {
            inv.answered.get_or_insert_with(Instant::now);
            self.touch(id);
        }
    }

    /// Notes that the capability in slot `slot` was released: what calls on it left running
    /// may end.
    pub(crate) fn scope_released(&self, slot: u64) {
        let ids = self.by_scope.borrow_mut().remove(&slot);
        for id in ids.into_iter().flatten() {
            self.touch(id);
        }
    }

    /// Arms timer `timer` for invocation `owner` (`None`: none is running): a host task that
    /// fires it on the isolate after `delay`.
    pub(crate) fn add_timer(
        &self,
        shared: &Arc<Shared>,
        owner: Option<u64>,
        timer: u64,
        delay: Duration,
        max: usize,
    ) -> Result<(), TimerError> {
        let owner = owner
            .filter(|id| self.is_live(*id))
            .ok_or(TimerError::GlobalScope)?;
        if self.timers.borrow().len() >= max {
            return Err(TimerError::TooMany(max));
        }
        let seq = shared.next_id();
        let counter = TaskCount::enter(&shared.timer_tasks);
        let weak = Arc::downgrade(shared);
        let task = capnweb::rt::handle().spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(shared) = weak.upgrade() {
                // Counted until the timer has fired (an interval is re-armed by then).
                shared.post(move |ctx, host| {
                    host.fire_timer(ctx, timer, seq);
                    drop(counter);
                });
            }
        });
        let old = self.timers.borrow_mut().insert(
            timer,
            Timer {
                owner,
                seq,
                task: task.abort_handle(),
            },
        );
        if let Some(old) = old {
            old.task.abort();
        }
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&owner) {
            inv.timers.insert(timer);
        }
        Ok(())
    }

    /// Forgets timer `timer` and stops its host task.
    pub(crate) fn clear_timer(&self, timer: u64) {
        if let Some(t) = self.timers.borrow_mut().remove(&timer) {
            t.task.abort();
            self.forget_timer(t.owner, timer);
        }
    }

    /// Takes timer `timer` to fire it, if this arming (`seq`) is still pending; returns the
    /// invocation it runs for.
    pub(crate) fn take_fired(&self, timer: u64, seq: u64) -> Option<u64> {
        let mut timers = self.timers.borrow_mut();
        if timers.get(&timer).is_none_or(|t| t.seq != seq) {
            return None;
        }
        let t = timers.remove(&timer)?;
        drop(timers);
        self.forget_timer(t.owner, timer);
        Some(t.owner)
    }

    fn forget_timer(&self, owner: u64, timer: u64) {
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&owner) {
            inv.timers.remove(&timer);
        }
        self.touch(owner);
    }

    /// Registers promise `id`, waiting on a capnweb result for invocation `owner`.
    pub(crate) fn add_pull(&self, id: u64, owner: u64, resolve: Saved, reject: Saved) {
        self.pulls.borrow_mut().insert(
            id,
            Pull {
                resolve,
                reject,
                owner,
                task: None,
            },
        );
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&owner) {
            inv.pulls.insert(id);
        }
    }

    /// Notes the host task that waits for pull `id`'s result (stopped if the pull ends first).
    pub(crate) fn set_pull_task(&self, id: u64, task: AbortHandle) {
        match self.pulls.borrow_mut().get_mut(&id) {
            Some(p) => p.task = Some(task),
            None => task.abort(),
        }
    }

    /// Takes pull `id` to settle it.
    pub(crate) fn take_pull(&self, id: u64) -> Option<Pull> {
        let pull = self.pulls.borrow_mut().remove(&id)?;
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&pull.owner) {
            inv.pulls.remove(&id);
        }
        self.touch(pull.owner);
        Some(pull)
    }

    /// Notes that invocation `owner` feeds stream `sid`.
    pub(crate) fn add_stream(&self, owner: u64, sid: u64) {
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&owner) {
            inv.streams.insert(sid);
        }
    }

    /// Notes that stream `sid`, fed by invocation `owner`, ended.
    pub(crate) fn end_stream(&self, owner: u64, sid: u64) {
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&owner) {
            inv.streams.remove(&sid);
            self.touch(owner);
        }
    }

    /// A `ctx.waitUntil` promise of invocation `id` is pending; returns whether `id` is live.
    pub(crate) fn wait(&self, id: u64) -> bool {
        match self.invocations.borrow_mut().get_mut(&id) {
            Some(inv) => {
                inv.waiting += 1;
                true
            }
            None => false,
        }
    }

    /// A `ctx.waitUntil` promise of invocation `id` settled.
    pub(crate) fn waited(&self, id: u64) {
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&id) {
            inv.waiting = inv.waiting.saturating_sub(1);
            self.touch(id);
        }
    }

    /// `ctx.waitUntil`'s time after invocation `id` answered is over.
    pub(crate) fn wait_over(&self, id: u64) {
        if let Some(inv) = self.invocations.borrow_mut().get_mut(&id) {
            inv.wait_over = true;
            inv.bound = None;
            self.touch(id);
        }
    }

    /// Ends every invocation that changed and is no longer kept, and starts `ctx.waitUntil`'s
    /// time for those that answered with waitUntil work pending. `scope_held` tells whether a
    /// capability slot is still held; `start_bound` starts the task that will end an
    /// invocation's `ctx.waitUntil` time.
    pub(crate) fn reap(
        &self,
        scope_held: impl Fn(u64) -> bool,
        start_bound: impl Fn(u64) -> Option<AbortHandle>,
    ) -> Ended {
        let dirty: Vec<u64> = self.dirty.borrow_mut().drain().collect();
        let mut ended = Ended::default();
        for id in dirty {
            let (kept, needs_bound) = {
                let invs = self.invocations.borrow();
                let Some(inv) = invs.get(&id) else { continue };
                let held = inv.scope.is_some_and(&scope_held);
                let needs_bound = inv.answered.is_some()
                    && inv.waiting > 0
                    && !inv.wait_over
                    && inv.bound.is_none();
                (inv.kept(held, inv.wait_over, false), needs_bound)
            };
            if !kept {
                self.end(id, &mut ended);
            } else if needs_bound {
                let bound = start_bound(id);
                if let Some(inv) = self.invocations.borrow_mut().get_mut(&id) {
                    inv.bound = bound;
                }
            }
        }
        ended
    }

    /// Whether invocation `id`'s background work may run now: checked as each timer or
    /// awaited result is about to run for it, so that an invocation whose time is up stops at once even
    /// when the job that would have ended it is still queued behind its own work.
    pub(crate) fn verdict(
        &self,
        id: u64,
        wait_until: Duration,
        wall_time: Duration,
        scope_held: impl Fn(u64) -> bool,
    ) -> Verdict {
        let invs = self.invocations.borrow();
        let Some(inv) = invs.get(&id) else {
            return Verdict::Over;
        };
        let now = Instant::now();
        match inv.answered {
            None if now >= inv.started + wall_time => Verdict::WallClock,
            None => Verdict::Run,
            Some(at) => {
                let wait_over = inv.wait_over || now >= at + wait_until;
                if inv.kept(inv.scope.is_some_and(scope_held), wait_over, true) {
                    Verdict::Run
                } else {
                    Verdict::Over
                }
            }
        }
    }

    /// Ends invocation `id` whatever keeps it (its wall-clock limit passed): its timers are
    /// cancelled, its waiting promises dropped, its streams cut off.
    pub(crate) fn end_now(&self, id: u64) -> Ended {
        let mut ended = Ended::default();
        self.end(id, &mut ended);
        ended
    }

    fn end(&self, id: u64, ended: &mut Ended) {
        let Some(inv) = self.invocations.borrow_mut().remove(&id) else {
            return;
        };
        if let Some(slot) = inv.scope {
            let mut scopes = self.by_scope.borrow_mut();
            if let Some(ids) = scopes.get_mut(&slot) {
                ids.remove(&id);
                if ids.is_empty() {
                    scopes.remove(&slot);
                }
            }
        }
        if let Some(bound) = inv.bound {
            bound.abort();
        }
        {
            let mut timers = self.timers.borrow_mut();
            for timer in inv.timers {
                if let Some(t) = timers.remove(&timer) {
                    t.task.abort();
                    ended.timers.push(timer);
                }
            }
        }
        let dropped: Vec<Pull> = {
            let mut pulls = self.pulls.borrow_mut();
            inv.pulls.iter().filter_map(|p| pulls.remove(p)).collect()
        };
        for pull in dropped {
            if let Some(task) = pull.task {
                task.abort();
            }
        }
        ended.streams.extend(inv.streams);
    }

    /// Stops every host task and forgets everything (the isolate is being discarded). Must
    /// run inside the isolate's context (it drops JavaScript values).
    pub(crate) fn clear(&self) {
        for (_, t) in self.timers.borrow_mut().drain() {
            t.task.abort();
        }
        for (_, p) in self.pulls.borrow_mut().drain() {
            if let Some(task) = p.task {
                task.abort();
            }
        }
        for (_, inv) in self.invocations.borrow_mut().drain() {
            if let Some(bound) = inv.bound {
                bound.abort();
            }
        }
        self.by_scope.borrow_mut().clear();
        self.dirty.borrow_mut().clear();
    }
}
