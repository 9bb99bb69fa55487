//! Behaviour tests of the embedded store, one binary made of modules.

mod blob;
mod code;
mod kv;
mod persistence;
mod quota;

use std::sync::Arc;

use store::{ManualClock, Store};

/// 2026-01-01T00:00:00Z in unix milliseconds.
const T0_MS: u64 = 1_767_225_600_000;

/// An in-memory store on a clock that only moves when the test says so.
fn store_with_clock() -> (Store, ManualClock) {
    let clock = ManualClock::new(T0_MS);
    let store =
        Store::in_memory_with_clock(Arc::new(clock.clone())).expect("in-memory store opens");
    (store, clock)
}
