//! Metrics: names, labels and the Prometheus text exporter behind `/_metrics`.
//!
//! Recorded through the `metrics` facade, so the host (and later the loader) records with the
//! same names from its own crate:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `functions_invocations_total` | counter | `function`, `method`, `surface` (`fetch`, `rpc_http`, `rpc_session`) |
//! | `functions_errors_total` | counter | `function`, `method`, `surface` |
//! | `functions_latency_seconds` | histogram | `function`, `method` |
//! | `functions_cold_starts_total` | counter | `function` |
//! | `functions_resident_isolates` | gauge | `function` |
//! | `functions_memory_bytes` | gauge | `function` |
//! | `functions_deploys_total` | counter | `function` |
//!
//! Method names come from callers, so the `method` label is bounded: a name that is not a
//! short identifier, or that would exceed [`MAX_METHOD_LABELS`] distinct (function, method)
//! pairs in this process, is recorded as `other`. An attacker cannot grow the exporter's
//! memory without bound by calling made-up methods.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Most distinct (function, method) label pairs kept; the rest are `other`.
pub const MAX_METHOD_LABELS: usize = 2000;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static METHODS: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the Prometheus recorder as the process's global recorder (once; later calls
/// are no-ops). Returns false if another recorder was installed first.
pub fn install() -> bool {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // Histogram samples pile up until upkeep folds them into their buckets, which
            // `render` does; a server nobody scrapes would otherwise grow by every call's
            // sample forever (the capnweb session soak, bench/sessions, found ~38 bytes a call).
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start the metrics upkeep thread: {e}");
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

fn method_label(function: &str, method: &str) -> String {
    let ok = !method.is_empty()
        && method.len() <= 64
        && method
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !ok {
        return "other".into();
    }
    let set = METHODS.get_or_init(|| Mutex::new(HashSet::new()));
    let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
    let key = (function.to_owned(), method.to_owned());
    if set.contains(&key) || set.len() < MAX_METHOD_LABELS {
        set.insert(key);
        method.to_owned()
    } else {
        "other".into()
    }
}

/// The handles of one (function, surface, method label).
struct CallHandles {
    invocations: metrics::Counter,
    errors: metrics::Counter,
    latency: metrics::Histogram,
}

/// Function → surface → method (as called) → handles. Only methods whose label is the method
/// itself are kept, so this holds at most what the exporter holds.
type HandleCache = HashMap<String, HashMap<&'static str, HashMap<String, Arc<CallHandles>>>>;
static HANDLES: OnceLock<Mutex<HandleCache>> = OnceLock::new();

fn cached(function: &str, method: &str, surface: &'static str) -> Option<Arc<CallHandles>> {
    let cache = HANDLES.get_or_init(Mutex::default);
    let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache.get(function)?.get(surface)?.get(method).cloned()
}

/// Records one finished call. The handles of a (function, method, surface) seen before are
/// reused (once the exporter is installed), so a call allocates no labels.
pub fn record_call(function: &str, method: &str, surface: &'static str, ok: bool, took: Duration) {
    let installed = matches!(HANDLE.get(), Some(Some(_)));
    let handles = match installed
        .then(|| cached(function, method, surface))
        .flatten()
    {
        Some(h) => h,
        None => {
            let label = method_label(function, method);
            let h = Arc::new(call_handles(function, &label, surface));
            if installed && label == method {
                let cache = HANDLES.get_or_init(Mutex::default);
                cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(function.to_owned())
                    .or_default()
                    .entry(surface)
                    .or_default()
                    .insert(method.to_owned(), h.clone());
            }
            h
        }
    };
    handles.invocations.increment(1);
    if !ok {
        handles.errors.increment(1);
    }
    handles.latency.record(took.as_secs_f64());
}

fn call_handles(function: &str, method: &str, surface: &'static str) -> CallHandles {
    let labels = [
        ("function", function.to_owned()),
        ("method", method.to_owned()),
        ("surface", surface.to_owned()),
    ];
    CallHandles {
        invocations: metrics::counter!("functions_invocations_total", &labels),
        errors: metrics::counter!("functions_errors_total", &labels),
        latency: metrics::histogram!(
            "functions_latency_seconds",
            "function" => function.to_owned(),
            "method" => method.to_owned()
        ),
    }
}

/// Records that a host loaded a function's code afresh (a cold start).
pub fn record_cold_start(function: &str) {
    metrics::counter!("functions_cold_starts_total", "function" => function.to_owned())
        .increment(1);
}

/// Sets how many isolates of `function` are resident and how much memory they hold.
pub fn set_resident(function: &str, isolates: usize, memory_bytes: u64) {
    metrics::gauge!("functions_resident_isolates", "function" => function.to_owned())
        .set(isolates as f64);
    metrics::gauge!("functions_memory_bytes", "function" => function.to_owned())
        .set(memory_bytes as f64);
}

/// Records a deploy.
pub fn record_deploy(function: &str) {
    metrics::counter!("functions_deploys_total", "function" => function.to_owned()).increment(1);
}
