//! Every metric Functions records, named once, and the one gate every label value from
//! outside passes through.
//!
//! The isolate crate records invocations, the loader cold starts and resident isolates, the
//! server deploys: each calls this crate, so a metric name has one owner and one label set,
//! and no two crates count the same event. The exporter (Prometheus text on `/_metrics`)
//! stays in the server.
//!
//! ```
//! let calls = telemetry::call_metrics("math@3", "add");
//! calls.record(std::time::Duration::from_micros(40), false);
//! assert_eq!(telemetry::function_label("math@3"), "math");
//! assert_eq!(telemetry::function_label("math/child-7"), "math");
//! ```
//!
//! Against a hostile caller or function, label values are bounded: `function` comes from an
//! isolate id, which the server builds from a deployed function id (an admin decision),
//! with the version dropped and a loader child folded into its parent; one-shot isolates
//! (`LOADER.load()`) share the value `anonymous`; past [`MAX_FUNCTIONS`] values the rest are
//! `other`. `method` is kept only when it is a short identifier and among the first
//! [`MAX_METHODS_PER_FUNCTION`] of its function; the rest are `other`. So made-up method
//! names, loader children and one-shot isolates cannot grow `/_metrics` or the recorder.
//!
//! What it deliberately does not do: install a recorder or render anything.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Calls into a function's JavaScript (RPC methods and `fetch` events), by `function`,
/// `method`.
pub const INVOCATIONS: &str = "functions_invocations_total";
/// Invocations that were rejected (threw, or broke a limit), by `function`, `method`.
pub const ERRORS: &str = "functions_invocation_errors_total";
/// Invocation latency in seconds, by `function` only: a histogram is 17 series, too many to
/// multiply by methods.
pub const LATENCY: &str = "functions_invocation_duration_seconds";
/// Isolates built because the code was not resident, by `function`.
pub const COLD_STARTS: &str = "functions_cold_starts_total";
/// Time to build an isolate and evaluate its modules, by `function`.
pub const COLD_START_SECONDS: &str = "functions_cold_start_duration_seconds";
/// Loads that failed, by `function`.
pub const LOAD_ERRORS: &str = "functions_load_errors_total";
/// Isolates resident in the loader's cache, by `function` (children under their parent).
pub const RESIDENT_ISOLATES: &str = "functions_resident_isolates";
/// Memory held by a function's resident isolates, by `function`.
pub const MEMORY_BYTES: &str = "functions_memory_bytes";
/// Isolates evicted from the loader's cache (no labels).
pub const EVICTIONS: &str = "functions_evictions_total";
/// Deploys, by `function`.
pub const DEPLOYS: &str = "functions_deploys_total";

/// Most `method` values one function gets; the rest are `other`.
pub const MAX_METHODS_PER_FUNCTION: usize = 64;
/// Most `function` values; the rest are `other`.
pub const MAX_FUNCTIONS: usize = 10_000;
/// The label value of everything past a bound.
pub const OTHER: &str = "other";
/// The `function` value of one-shot isolates (`LOADER.load()`).
pub const ANONYMOUS: &str = "anonymous";
/// The prefix of one-shot isolate ids (the loader makes them).
pub const ANONYMOUS_PREFIX: &str = "anonymous-";

/// The `function` value of an isolate id: `<id>@<version>` → `<id>`, `<parent>/<child>` →
/// `<parent>` (children count under the function that loaded them), `anonymous-<n>` →
/// `anonymous`. Ids are built by the server and loader from function ids, which never hold
/// `@` or `/`.
pub fn function_label(isolate_id: &str) -> &str {
    if isolate_id.starts_with(ANONYMOUS_PREFIX) {
        return ANONYMOUS;
    }
    let end = isolate_id.find(['@', '/']).unwrap_or(isolate_id.len());
    &isolate_id[..end]
}

fn is_identifier(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= 64
        && method
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
}

/// The label values seen so far: function → its methods.
#[derive(Default)]
struct Seen {
    functions: HashMap<String, Vec<String>>,
}

impl Seen {
    /// The (function, method) label values for a call, admitting new ones within the bounds.
    fn labels(&mut self, function: &str, method: &str) -> (String, String) {
        let function = if self.functions.contains_key(function) {
            function
        } else if self.functions.len() < MAX_FUNCTIONS {
            self.functions.insert(function.to_owned(), Vec::new());
            function
        } else {
            OTHER
        };
        let methods = self.functions.entry(function.to_owned()).or_default();
        let method = if !is_identifier(method) {
            OTHER
        } else if methods.iter().any(|m| m == method) {
            method
        } else if methods.len() < MAX_METHODS_PER_FUNCTION {
            methods.push(method.to_owned());
            method
        } else {
            OTHER
        };
        (function.to_owned(), method.to_owned())
    }
}

/// The metric handles of one (function, method) label pair.
#[derive(Debug)]
pub struct CallMetrics {
    invocations: metrics::Counter,
    errors: metrics::Counter,
    latency: metrics::Histogram,
}

impl CallMetrics {
    /// Records one finished invocation.
    pub fn record(&self, took: Duration, failed: bool) {
        self.invocations.increment(1);
        if failed {
            self.errors.increment(1);
        }
        self.latency.record(took.as_secs_f64());
    }
}

/// Label values and handles made so far, keyed by (isolate function label, method as called)
/// for the calls whose labels are their own (bounded as the labels are).
struct Registry {
    seen: Seen,
    handles: HashMap<(String, String), Arc<CallMetrics>>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            seen: Seen::default(),
            handles: HashMap::new(),
        })
    })
}

/// The handles for calls of `method` on the isolate `isolate_id`, with bounded labels. Keep
/// them to record the same pair again without a lookup. Handles bind to the recorder
/// installed when they are first made, so install the recorder before the first call.
pub fn call_metrics(isolate_id: &str, method: &str) -> Arc<CallMetrics> {
    let function = function_label(isolate_id);
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    let (f, m) = reg.seen.labels(function, method);
    let key = (f, m);
    if let Some(h) = reg.handles.get(&key) {
        return h.clone();
    }
    let labels = [("function", key.0.clone()), ("method", key.1.clone())];
    let h = Arc::new(CallMetrics {
        invocations: metrics::counter!(INVOCATIONS, &labels),
        errors: metrics::counter!(ERRORS, &labels),
        latency: metrics::histogram!(LATENCY, "function" => key.0.clone()),
    });
    reg.handles.insert(key, h.clone());
    h
}

/// Records one finished invocation of `method` on isolate `isolate_id`.
pub fn record_call(isolate_id: &str, method: &str, took: Duration, failed: bool) {
    call_metrics(isolate_id, method).record(took, failed);
}

/// Records a cold start (an isolate built and its modules evaluated) of isolate `isolate_id`.
pub fn record_cold_start(isolate_id: &str, took: Duration) {
    let labels = [("function", function_label(isolate_id).to_owned())];
    metrics::counter!(COLD_STARTS, &labels).increment(1);
    metrics::histogram!(COLD_START_SECONDS, &labels).record(took.as_secs_f64());
}

/// Records a failed load of isolate `isolate_id`.
pub fn record_load_error(isolate_id: &str) {
    metrics::counter!(LOAD_ERRORS, "function" => function_label(isolate_id).to_owned())
        .increment(1);
}

/// Records an eviction from the loader's cache.
pub fn record_eviction() {
    metrics::counter!(EVICTIONS).increment(1);
}

/// Sets how many isolates of `function` (a function label) are resident and the memory they
/// hold.
pub fn set_resident(function: &str, isolates: usize, memory_bytes: u64) {
    let labels = [("function", function.to_owned())];
    metrics::gauge!(RESIDENT_ISOLATES, &labels).set(isolates as f64);
    metrics::gauge!(MEMORY_BYTES, &labels).set(memory_bytes as f64);
}

/// Records a deploy of function `function` (an id, from the admin API).
pub fn record_deploy(function: &str) {
    metrics::counter!(DEPLOYS, "function" => function.to_owned()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_labels_drop_versions_and_fold_children_and_one_shots() {
        assert_eq!(function_label("math@12"), "math");
        assert_eq!(function_label("math"), "math");
        assert_eq!(function_label("front/user-code-9"), "front");
        assert_eq!(function_label("anonymous-4711"), ANONYMOUS);
    }

    #[test]
    fn methods_past_the_bound_or_not_identifiers_are_other() {
        let mut seen = Seen::default();
        for i in 0..MAX_METHODS_PER_FUNCTION {
            let (_, m) = seen.labels("f", &format!("m{i}"));
            assert_eq!(m, format!("m{i}"));
        }
        assert_eq!(seen.labels("f", "oneTooMany").1, OTHER);
        assert_eq!(
            seen.labels("f", "m3").1,
            "m3",
            "a known method keeps its label"
        );
        assert_eq!(
            seen.labels("g", "oneTooMany").1,
            "oneTooMany",
            "per function"
        );
        assert_eq!(seen.labels("g", "has space").1, OTHER);
        assert_eq!(seen.labels("g", &"x".repeat(65)).1, OTHER);
    }

    #[test]
    fn functions_past_the_bound_are_other() {
        let mut seen = Seen::default();
        for i in 0..MAX_FUNCTIONS {
            seen.labels(&format!("f{i}"), "m");
        }
        assert_eq!(seen.labels("late", "m").0, OTHER);
        assert_eq!(seen.labels("f7", "m").0, "f7");
    }
}
