//! Byte accounting: the [`Budget`] shared by every session, each session's [`Account`] within
//! it, the [`Charge`] that holds bytes until they are released, and [`Admission`], which
//! counts open sessions per key (function, client address).
//!
//! A charge is taken when bytes start being held for a peer (a pipe chunk arrives, a frame is
//! queued) and released when its guard is dropped (the chunk is read, the frame is written), so
//! the counts cannot drift whatever path the bytes take.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::limits::LimitExceeded;

/// A byte budget shared by many sessions (clones share one count).
#[derive(Clone)]
pub struct Budget {
    inner: Arc<BudgetInner>,
}

struct BudgetInner {
    limit: usize,
    used: AtomicUsize,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.limit())
            .field("used", &self.used())
            .finish()
    }
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget {
            inner: Arc::new(BudgetInner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` until the returned guard is dropped; `None` when that would go past
    /// the budget (for example an HTTP batch body the server cannot afford now).
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        self.add(bytes, false).then(|| Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    /// Adds `bytes`; unless `force`, refuses (and adds nothing) past the limit.
    fn add(&self, bytes: usize, force: bool) -> bool {
        let prev = self.inner.used.fetch_add(bytes, Ordering::Relaxed);
        if !force && prev.saturating_add(bytes) > self.inner.limit {
            self.inner.used.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn sub(&self, bytes: usize) {
        self.inner.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Bytes reserved in a [`Budget`] until this is dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Budget,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.sub(self.bytes);
    }
}

/// One session's bytes: its own limit, inside the shared budget. Bytes queued for the peer
/// (outgoing) are also counted apart, so the read loop can stop reading from a peer that does
/// not read its answers.
pub(crate) struct Account {
    limit: usize,
    used: AtomicUsize,
    outgoing: AtomicUsize,
    budget: Budget,
    /// Woken whenever outgoing bytes are released.
    drained: Notify,
}

impl Account {
    pub(crate) fn new(limit: usize, budget: Budget) -> Arc<Account> {
        Arc::new(Account {
            limit,
            used: AtomicUsize::new(0),
            outgoing: AtomicUsize::new(0),
            budget,
            drained: Notify::new(),
        })
    }

    /// The session's limit, in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes of frames queued for the peer now.
    pub(crate) fn outgoing(&self) -> usize {
        self.outgoing.load(Ordering::Relaxed)
    }

    /// Charges `bytes` of `what`, or says which limit that would exceed (and charges nothing).
    pub(crate) fn try_charge(
        self: &Arc<Self>,
        bytes: usize,
        what: &'static str,
    ) -> Result<Charge, LimitExceeded> {
        let prev = self.used.fetch_add(bytes, Ordering::Relaxed);
        if prev.saturating_add(bytes) > self.limit {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return Err(LimitExceeded::SessionBuffer {
                max: self.limit,
                what,
                bytes,
                used: prev,
            });
        }
        if !self.budget.add(bytes, false) {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return Err(LimitExceeded::Budget {
                max: self.budget.limit(),
                what,
                bytes,
            });
        }
        Ok(Charge {
            account: Some(self.clone()),
            bytes,
            outgoing: false,
        })
    }

    /// Charges an outgoing frame of `bytes`. It is always charged (the frame is already made);
    /// the error says which limit the session is now past.
    pub(crate) fn charge_outgoing(
        self: &Arc<Self>,
        bytes: usize,
    ) -> (Charge, Option<LimitExceeded>) {
        let prev = self.used.fetch_add(bytes, Ordering::Relaxed);
        self.outgoing.fetch_add(bytes, Ordering::Relaxed);
        let within_budget =
            self.budget.add(bytes, true) && self.budget.used() <= self.budget.limit();
        let over = if prev.saturating_add(bytes) > self.limit {
            Some(LimitExceeded::SessionBuffer {
                max: self.limit,
                what: "a message queued for a peer that is not reading",
                bytes,
                used: prev,
            })
        } else if !within_budget {
            Some(LimitExceeded::Budget {
                max: self.budget.limit(),
                what: "a message queued for the peer",
                bytes,
            })
        } else {
            None
        };
        (
            Charge {
                account: Some(self.clone()),
                bytes,
                outgoing: true,
            },
            over,
        )
    }

    /// Waits until the outgoing bytes are at most `level`.
    pub(crate) async fn outgoing_below(&self, level: usize) {
        loop {
            let notified = self.drained.notified();
            if self.outgoing() <= level {
                return;
            }
            notified.await;
        }
    }

    fn release(&self, bytes: usize, outgoing: bool) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
        self.budget.sub(bytes);
        if outgoing {
            self.outgoing.fetch_sub(bytes, Ordering::Relaxed);
            self.drained.notify_waiters();
        }
    }
}

/// Bytes charged to a session until this is dropped. A charge with no account (data that
/// belongs to no session) holds nothing.
pub(crate) struct Charge {
    account: Option<Arc<Account>>,
    bytes: usize,
    outgoing: bool,
}

impl Charge {
    /// A charge of nothing.
    pub(crate) fn none() -> Charge {
        Charge {
            account: None,
            bytes: 0,
            outgoing: false,
        }
    }

    /// Takes over `other`'s bytes (both must belong to the same account, or `self` to none).
    pub(crate) fn absorb(&mut self, mut other: Charge) {
        if other.account.is_none() || other.outgoing {
            return;
        }
        if self.account.is_none() {
            std::mem::swap(self, &mut other);
            return;
        }
        let same = match (&self.account, &other.account) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if same {
            self.bytes += std::mem::take(&mut other.bytes);
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(a) = &self.account {
            a.release(self.bytes, self.outgoing);
        }
    }
}

/// Counts open sessions per key (a function id, a client address) against a cap per key.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// Which cap refused a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many sessions for {key} (at most {max} at once); try again later")]
pub struct AdmissionRefused {
    /// The key that is full.
    pub key: String,
    /// Its cap.
    pub max: usize,
}

impl Admission {
    /// A new, empty count.
    pub fn new() -> Admission {
        Admission::default()
    }

    /// Admits one session under every `(key, cap)` pair, or none of them: the ticket holds
    /// the places until it is dropped.
    pub fn try_admit(&self, keys: &[(String, usize)]) -> Result<AdmissionTicket, AdmissionRefused> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (key, max) in keys {
            if counts.get(key).copied().unwrap_or(0) >= *max {
                return Err(AdmissionRefused {
                    key: key.clone(),
                    max: *max,
                });
            }
        }
        for (key, _) in keys {
            *counts.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(AdmissionTicket {
            admission: self.clone(),
            keys: keys.iter().map(|(k, _)| k.clone()).collect(),
        })
    }

    /// Sessions open under `key` now.
    pub fn count(&self, key: &str) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(key).copied().unwrap_or(0)
    }
}

/// One admitted session's places; dropping it frees them.
#[derive(Debug)]
pub struct AdmissionTicket {
    admission: Admission,
    keys: Vec<String>,
}

impl Drop for AdmissionTicket {
    fn drop(&mut self) {
        let mut counts = self
            .admission
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for key in &self.keys {
            if let Some(n) = counts.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_released_on_drop_and_refused_past_either_limit() {
        let budget = Budget::new(100);
        let a = Account::new(60, budget.clone());
        let b = Account::new(60, budget.clone());
        let c1 = a.try_charge(50, "x").ok();
        assert!(matches!(
            a.try_charge(20, "y"),
            Err(LimitExceeded::SessionBuffer { .. })
        ));
        let c2 = b.try_charge(50, "x").ok();
        // Within b's own limit, but past the shared budget.
        assert!(matches!(
            b.try_charge(5, "z"),
            Err(LimitExceeded::Budget { .. })
        ));
        assert!(matches!(
            Account::new(60, budget.clone()).try_charge(1, "w"),
            Err(LimitExceeded::Budget { .. })
        ));
        assert_eq!(budget.used(), 100);
        drop((c1, c2));
        assert_eq!(budget.used(), 0);
        assert_eq!(a.used(), 0);
    }

    #[test]
    fn admission_counts_every_key_and_frees_on_drop() {
        let adm = Admission::new();
        let keys = |a: &str| vec![("fn:f".to_owned(), 3), (format!("addr:{a}"), 2)];
        let t1 = adm.try_admit(&keys("1")).ok();
        let t2 = adm.try_admit(&keys("1")).ok();
        assert!(t1.is_some() && t2.is_some());
        assert_eq!(
            adm.try_admit(&keys("1")).err().map(|e| e.key),
            Some("addr:1".into())
        );
        let t3 = adm.try_admit(&keys("2")).ok();
        assert!(t3.is_some());
        assert_eq!(
            adm.try_admit(&keys("3")).err().map(|e| e.key),
            Some("fn:f".into())
        );
        drop(t1);
        assert!(adm.try_admit(&keys("1")).is_ok());
        assert_eq!(adm.count("fn:f"), 2);
    }
}
