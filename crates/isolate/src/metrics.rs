//! Per-function, per-method call metrics (the `metrics` facade; the server installs an
//! exporter).

use std::time::Instant;

/// Calls into JavaScript, by function and method.
pub const INVOCATIONS: &str = "functions_invocations_total";
/// Calls that were rejected, by function and method.
pub const ERRORS: &str = "functions_invocation_errors_total";
/// Call latency in seconds, by function and method.
pub const LATENCY: &str = "functions_invocation_duration_seconds";

/// The metric handles of one (function, method), for callers that record the same pair again
/// and again (an isolate's fetch handler), so a call skips the label allocations and the
/// registry lookups. Handles bind to the recorder installed when they are made.
pub(crate) struct CallMetrics {
    invocations: metrics::Counter,
    errors: metrics::Counter,
    latency: metrics::Histogram,
}

impl CallMetrics {
    pub(crate) fn new(function: &str, method: &str) -> CallMetrics {
        let labels = [
            ("function", function.to_owned()),
            ("method", method.to_owned()),
        ];
        CallMetrics {
            invocations: metrics::counter!(INVOCATIONS, &labels),
            errors: metrics::counter!(ERRORS, &labels),
            latency: metrics::histogram!(LATENCY, &labels),
        }
    }

    pub(crate) fn record(&self, start: Instant, failed: bool) {
        self.invocations.increment(1);
        if failed {
            self.errors.increment(1);
        }
        self.latency.record(start.elapsed().as_secs_f64());
    }
}

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
