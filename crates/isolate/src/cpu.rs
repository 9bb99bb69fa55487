//! The clock the CPU limit is measured with: CPU time of the thread running the slice
//! (`CLOCK_THREAD_CPUTIME_ID`), not wall-clock time. There may be more JavaScript threads than
//! cores (`pool.rs` starts more when every thread is busy), and then the OS shares the cores
//! between them: a wall-clock deadline would charge a function for the time other threads ran.
//! Work done elsewhere on a slice's behalf while its thread waits (a synchronous
//! `new WebAssembly.Module` compiled on the compile threads) is added with
//! [`CpuClock::charge`].

use std::cell::Cell;
use std::time::Duration;

/// The CPU time of the running slice's clock: the calling thread's CPU time plus what was
/// charged for work done elsewhere. Only differences between two readings on the same thread
/// (within one slice) mean anything.
#[derive(Default)]
pub(crate) struct CpuClock {
    charged: Cell<Duration>,
}

impl CpuClock {
    pub(crate) fn now(&self) -> Duration {
        thread_cpu().saturating_add(self.charged.get())
    }

    /// Adds `spent`, CPU time used elsewhere on behalf of the running slice.
    pub(crate) fn charge(&self, spent: Duration) {
        self.charged.set(self.charged.get().saturating_add(spent));
    }
}

/// The CPU time the calling thread has used.
#[cfg(unix)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on every
    // Unix we build for, and the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Elsewhere, wall-clock time (since the first reading).
#[cfg(not(unix))]
fn thread_cpu() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_counts_this_threads_work_and_what_is_charged() {
        let clock = CpuClock::default();
        let a = clock.now();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let b = clock.now();
        assert!(b > a, "a busy thread's CPU time grows");
        clock.charge(Duration::from_secs(5));
        assert!(clock.now() >= b + Duration::from_secs(5));
    }
}
