//! What the loader records, through the one owner of metric names (the `telemetry` crate):
//! cold starts (with their duration), failed loads and evictions, labelled by function (a
//! child under its parent, one-shot isolates as `anonymous`). Calls are recorded by the
//! isolate crate; resident isolates per function by the host that names versions.

use std::time::Duration;

pub(crate) fn cold_start(id: &str, took: Duration) {
    telemetry::record_cold_start(id, took);
}

pub(crate) fn load_error(id: &str) {
    telemetry::record_load_error(id);
}

pub(crate) fn evicted() {
    telemetry::record_eviction();
}
