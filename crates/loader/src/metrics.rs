//! Loader metrics (the `metrics` facade). Per-call metrics are recorded by the isolate crate
//! (see [`isolate::metrics`]).

/// Isolates built because the function was not resident, by function.
pub const COLD_STARTS: &str = "functions_cold_starts_total";
/// Time to build an isolate and evaluate its modules, by function.
pub const COLD_START_SECONDS: &str = "functions_cold_start_duration_seconds";
/// Loads that failed, by function.
pub const LOAD_ERRORS: &str = "functions_load_errors_total";
/// Isolates resident in the cache.
pub const RESIDENT_ISOLATES: &str = "functions_resident_isolates";
/// Isolates evicted from the cache.
pub const EVICTIONS: &str = "functions_evictions_total";

pub(crate) fn cold_start(function: &str, seconds: f64) {
    let labels = [("function", function.to_owned())];
    metrics::counter!(COLD_STARTS, &labels).increment(1);
    metrics::histogram!(COLD_START_SECONDS, &labels).record(seconds);
}

pub(crate) fn load_error(function: &str) {
    metrics::counter!(LOAD_ERRORS, "function" => function.to_owned()).increment(1);
}

pub(crate) fn resident(n: usize) {
    metrics::gauge!(RESIDENT_ISOLATES).set(n as f64);
}

pub(crate) fn evicted() {
    metrics::counter!(EVICTIONS).increment(1);
}
