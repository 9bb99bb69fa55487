//! How the limits code runs with are worked out: what its `WorkerCode` asks for over a
//! default, then clamped to a ceiling (the loader's maximum for a function, the parent's own
//! limits for a child). Asking for more than the ceiling is not an error: the code silently
//! gets the ceiling, as workerd's loader gives dynamically loaded code no more than its host.

use std::time::Duration;

use isolate::Limits;

use crate::code::WorkerLimits;

/// `defaults` with what `requested` sets in their place.
pub(crate) fn requested(requested: &WorkerLimits, defaults: Limits) -> Limits {
    let mut limits = defaults;
    if let Some(ms) = requested.cpu_ms {
        limits.cpu_time = Duration::from_millis(ms);
    }
    if let Some(mb) = requested.memory_mb {
        limits.memory_bytes = usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    }
    limits
}

/// `limits`, each at most the `ceiling`'s (other fields are kept as they are).
pub(crate) fn within(limits: Limits, ceiling: &Limits) -> Limits {
    let mut out = limits;
    out.memory_bytes = limits.memory_bytes.min(ceiling.memory_bytes);
    out.cpu_time = limits.cpu_time.min(ceiling.cpu_time);
    out.max_stack_bytes = limits.max_stack_bytes.min(ceiling.max_stack_bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_for_more_than_the_ceiling_gets_the_ceiling_and_less_is_kept() {
        let ceiling = Limits {
            cpu_time: Duration::from_millis(1500),
            memory_bytes: 64 << 20,
            ..Limits::default()
        };
        let greedy = WorkerLimits {
            cpu_ms: Some(1_000_000_000),
            memory_mb: Some(1 << 40),
        };
        let got = within(requested(&greedy, ceiling), &ceiling);
        assert_eq!(got.cpu_time, Duration::from_millis(1500));
        assert_eq!(got.memory_bytes, 64 << 20);
        let modest = WorkerLimits {
            cpu_ms: Some(10),
            memory_mb: Some(8),
        };
        let got = within(requested(&modest, ceiling), &ceiling);
        assert_eq!(got.cpu_time, Duration::from_millis(10));
        assert_eq!(got.memory_bytes, 8 << 20);
        let silent = within(requested(&WorkerLimits::default(), ceiling), &ceiling);
        assert_eq!(silent, ceiling);
    }
}
