//! Who may still call into an isolate: the eviction gate of one isolate, and the
//! [`CallBudget`] a group of isolates (the children one function loaded) shares.
//!
//! Every call that enters an isolate from outside (a method or property of any capability
//! into it, and `fetch`) passes the gate before anything is posted to its thread:
//!
//! - once the isolate is evicted ([`Isolate::evict`](crate::Isolate::evict)) every new call is
//!   rejected with an [`EVICTED_ERROR`]; calls already running finish (each is bounded by the
//!   CPU limit), and when the last of them is done the isolate is torn down on its thread, so
//!   its timers stop and its heap is freed even while stubs into it are still held;
//! - an isolate built with a [`CallBudget`] counts each call against it until the call
//!   settles; a call that would go over the budget is rejected at once with a
//!   [`TOO_MANY_CALLS_ERROR`] (it does not wait, so a call that needs another call into the same
//!   group can never deadlock on the budget).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use capnweb::RpcError;

use crate::state::Shared;

/// The name of the error a call into an evicted isolate is rejected with.
pub const EVICTED_ERROR: &str = "IsolateEvictedError";

/// The name of the error a call is rejected with when its group has too many calls in flight.
pub const TOO_MANY_CALLS_ERROR: &str = "TooManyCallsError";

/// An `IsolateEvictedError` for isolate `id`.
pub fn evicted_error(id: &str) -> RpcError {
    RpcError::new(
        EVICTED_ERROR,
        format!(
            "isolate '{id}' was evicted (its parent was redeployed, rolled back or deleted, or it \
             was the least recently used of its parent's children); get it again from the loader"
        ),
    )
}

/// How many calls a group of isolates may have in flight at once. Shared (`Arc`) by the
/// isolates of the group and by whoever else counts against it (the loader counts loads).
#[derive(Debug)]
pub struct CallBudget {
    group: String,
    max: usize,
    in_flight: AtomicUsize,
}

impl CallBudget {
    /// A budget of `max` calls in flight for the isolates of `group` (a name for errors).
    pub fn new(group: impl Into<String>, max: usize) -> Arc<CallBudget> {
        Arc::new(CallBudget {
            group: group.into(),
            max,
            in_flight: AtomicUsize::new(0),
        })
    }

    /// The most calls in flight at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// How many calls are in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Counts one call until the pass is dropped, or `None` when `max` are in flight.
    pub fn try_enter(self: &Arc<Self>) -> Option<CallPass> {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| CallPass {
                budget: self.clone(),
            })
    }

    /// The `TooManyCallsError` a call over this budget is rejected with.
    pub fn exceeded_error(&self) -> RpcError {
        RpcError::new(
            TOO_MANY_CALLS_ERROR,
            format!(
                "too many calls in flight into the code '{}' loaded: at most {} at once",
                self.group, self.max
            ),
        )
    }
}

/// One call counted against a [`CallBudget`], until dropped.
#[derive(Debug)]
pub struct CallPass {
    budget: Arc<CallBudget>,
}

impl Drop for CallPass {
    fn drop(&mut self) {
        self.budget.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The clock that orders uses of isolates: each call that passes a gate takes a tick.
static CLOCK: AtomicU64 = AtomicU64::new(1);

/// A fresh tick of the clock [`Isolate::last_used`](crate::Isolate::last_used) reads: later
/// ticks are larger. A cache stamps its own uses with it to compare them with an isolate's.
pub fn use_tick() -> u64 {
    CLOCK.fetch_add(1, Ordering::Relaxed)
}

/// The gate of one isolate (a field of its [`Shared`] handle).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    evicted: AtomicBool,
    stopped: AtomicBool,
    /// Calls that passed the gate and have not settled.
    calls: AtomicUsize,
    /// The tick of the last call that passed (0: none yet).
    last_used: AtomicU64,
    budget: OnceLock<Arc<CallBudget>>,
}

impl Gate {
    /// Counts this isolate's calls against `budget` from now on (set once, at creation).
    pub(crate) fn set_budget(&self, budget: Arc<CallBudget>) {
        let _ = self.budget.set(budget);
    }

    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::SeqCst)
    }

    pub(crate) fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// A call that passed the gate of an isolate; it counts until dropped.
pub(crate) struct Entered {
    shared: Arc<Shared>,
    _pass: Option<CallPass>,
}

impl std::fmt::Debug for Entered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entered")
            .field("isolate", &self.shared.id)
            .finish()
    }
}

/// Lets one call into the isolate of `shared`, or says why not.
pub(crate) fn enter(shared: &Arc<Shared>) -> Result<Entered, RpcError> {
    let gate = &shared.gate;
    if gate.is_evicted() {
        return Err(evicted_error(&shared.id));
    }
    let pass = match gate.budget.get() {
        Some(budget) => Some(budget.try_enter().ok_or_else(|| budget.exceeded_error())?),
        None => None,
    };
    gate.calls.fetch_add(1, Ordering::SeqCst);
    gate.last_used.store(use_tick(), Ordering::Relaxed);
    let entered = Entered {
        shared: shared.clone(),
        _pass: pass,
    };
    // Evicted between the check and the count: the drop stops the isolate if this was last.
    if gate.is_evicted() {
        drop(entered);
        return Err(evicted_error(&shared.id));
    }
    Ok(entered)
}

impl Drop for Entered {
    fn drop(&mut self) {
        let gate = &self.shared.gate;
        if gate.calls.fetch_sub(1, Ordering::SeqCst) == 1 && gate.is_evicted() {
            stop(&self.shared);
        }
    }
}

/// Evicts the isolate of `shared`: new calls are refused from now on, and the isolate is torn
/// down once no call is running in it.
pub(crate) fn evict(shared: &Arc<Shared>) {
    let gate = &shared.gate;
    gate.evicted.store(true, Ordering::SeqCst);
    if gate.calls.load(Ordering::SeqCst) == 0 {
        stop(shared);
    }
}

/// Tears the isolate down on its thread (once): its pending timers and background work end,
/// its heap is freed. Stubs into it stay valid objects whose calls the gate refuses.
fn stop(shared: &Arc<Shared>) {
    if shared.gate.stopped.swap(true, Ordering::SeqCst) {
        return;
    }
    let key = shared.key;
    let _ = shared.send_job(Box::new(move |ts| ts.discard(key, None)));
}
