//! Per-function, per-method call metrics (the `metrics` facade; the server installs an
//! exporter).

use std::time::Instant;

/// Calls into JavaScript, by function and method.
pub const INVOCATIONS: &str = "functions_invocations_total";
/// Calls that were rejected, by function and method.
pub const ERRORS: &str = "functions_invocation_errors_total";
/// Call latency in seconds, by function and method.
pub const LATENCY: &str = "functions_invocation_duration_seconds";

pub(crate) fn record_call(function: &str, method: &str, start: Instant, failed: bool) {
    let labels = [
        ("function", function.to_owned()),
        ("method", method.to_owned()),
    ];
    metrics::counter!(INVOCATIONS, &labels).increment(1);
    if failed {
        metrics::counter!(ERRORS, &labels).increment(1);
    }
    metrics::histogram!(LATENCY, &labels).record(start.elapsed().as_secs_f64());
}
