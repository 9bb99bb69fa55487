//! The Prometheus text exporter behind `/_metrics`. The metric names and the bounds on their
//! labels belong to the `telemetry` crate, which every crate records through:
//!
//! | name | kind | labels | recorded by |
//! |---|---|---|---|
//! | `functions_invocations_total` | counter | `function`, `method` | isolate: every call into JavaScript (RPC method or `fetch` event, from any surface, binding or loader child) |
//! | `functions_invocation_errors_total` | counter | `function`, `method` | isolate: invocations rejected (thrown, or a limit broken) |
//! | `functions_invocation_duration_seconds` | histogram | `function` | isolate |
//! | `functions_cold_starts_total` | counter | `function` | loader: isolates built |
//! | `functions_cold_start_duration_seconds` | histogram | `function` | loader |
//! | `functions_load_errors_total` | counter | `function` | loader |
//! | `functions_evictions_total` | counter | none | loader |
//! | `functions_resident_isolates` | gauge | `function` | host: live versions resident |
//! | `functions_memory_bytes` | gauge | `function` | host: their memory |
//! | `functions_deploys_total` | counter | `function` | admin API |
//!
//! Bounds (see the `telemetry` crate): `function` is a deployed function id (versions
//! dropped, loader children under their parent, one-shot `LOADER.load()` isolates as
//! `anonymous`, at most 10,000 values); `method` at most 64 values per function, the rest
//! `other`. So `/_metrics` grows with deployed functions, never with what callers send: at
//! most about 150 series per function (2 counters × 65 methods, a 17-series histogram, a few
//! gauges).
//!
//! Memory: histogram samples wait in the recorder until its upkeep folds them into buckets.
//! Upkeep runs every [`UPKEEP_EVERY`] on a thread of its own (and at every render), so
//! whether or not anyone scrapes, the recorder holds at most that long's samples (about 8
//! bytes each) on top of its fixed series.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often the recorder folds pending histogram samples into buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(1);

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global recorder, with its upkeep thread
/// (once; later calls are no-ops). Returns false if another recorder was installed first.
pub fn install() -> bool {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            let upkeep = handle.clone();
            let started = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(e) = started {
                tracing::error!("cannot start the metrics upkeep thread: {e}");
            }
            Some(handle)
        })
        .is_some()
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(h)) => {
            h.run_upkeep();
            h.render()
        }
        _ => String::new(),
    }
}

/// Sets how many isolates of `function` are resident and how much memory they hold.
pub fn set_resident(function: &str, isolates: usize, memory_bytes: u64) {
    telemetry::set_resident(function, isolates, memory_bytes);
}

/// Records a deploy.
pub fn record_deploy(function: &str) {
    telemetry::record_deploy(function);
}
