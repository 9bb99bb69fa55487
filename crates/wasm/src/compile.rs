//! Compiling WebAssembly off the JavaScript threads: a small, fixed pool of compile threads
//! (at most [`set_compile_threads`], default: the number of CPUs, at most 4) that every
//! compilation goes through, and the cap on a module's size ([`set_max_module_bytes`], default
//! [`DEFAULT_MAX_MODULE_BYTES`]).
//!
//! Against a hostile function: a module past the cap is refused before any work is done
//! (`RangeError`); no more than the pool's threads compile at once, however many isolates ask,
//! so compiling cannot take more cores than that; and the JavaScript threads never run the
//! compiler. `WebAssembly.compile`/`instantiate` hand the bytes to the pool and return to the
//! event loop (the isolate answers other calls meanwhile); the synchronous
//! `new WebAssembly.Module(bytes)` must return the module, so its thread waits for the pool.
//! What a compilation costs is charged by the embedder (see `crates/isolate`).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::Module;

use crate::error::WasmError;

/// The default cap on a module's size in bytes (32 MiB).
pub const DEFAULT_MAX_MODULE_BYTES: usize = 32 * 1024 * 1024;

static MAX_MODULE_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_MODULE_BYTES);
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the largest module, in bytes, that may be compiled or validated (0: the default).
pub fn set_max_module_bytes(n: usize) {
    let n = if n == 0 { DEFAULT_MAX_MODULE_BYTES } else { n };
    MAX_MODULE_BYTES.store(n, Ordering::Relaxed);
}

/// The largest module, in bytes, that may be compiled or validated.
pub fn max_module_bytes() -> usize {
    MAX_MODULE_BYTES.load(Ordering::Relaxed)
}

/// Sets how many threads compile WebAssembly (default: the number of CPUs, at most 4). Takes
/// effect only before the first compilation; returns whether it did.
pub fn set_compile_threads(n: usize) -> bool {
    if POOL.get().is_some() {
        return false;
    }
    THREADS.store(n.max(1), Ordering::SeqCst);
    true
}

/// A compiled module, ready to be instantiated in any isolate.
#[derive(Clone)]
pub struct CompiledModule(pub(crate) Module);

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModule").finish_non_exhaustive()
    }
}

/// Refuses a module of `len` bytes past the cap.
pub(crate) fn check_size(len: usize) -> Result<(), WasmError> {
    let max = max_module_bytes();
    if len > max {
        return Err(WasmError::Limit(format!(
            "WebAssembly module of {len} bytes is larger than the limit of {max} bytes"
        )));
    }
    Ok(())
}

type Task = Box<dyn FnOnce() + Send>;

struct Pool {
    queue: Mutex<VecDeque<Task>>,
    ready: Condvar,
}

static POOL: OnceLock<Pool> = OnceLock::new();

fn pool() -> &'static Pool {
    let mut started = false;
    let pool = POOL.get_or_init(|| {
        started = true;
        Pool {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }
    });
    if started {
        let n = match THREADS.load(Ordering::SeqCst) {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4),
            n => n,
        };
        for i in 0..n {
            if let Err(e) = std::thread::Builder::new()
                .name(format!("wasm-compile-{i}"))
                .spawn(move || pool.work())
            {
                tracing::error!("cannot start a WebAssembly compile thread: {e}");
            }
        }
    }
    pool
}

impl Pool {
    fn submit(&self, task: Task) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(task);
        self.ready.notify_one();
    }

    fn work(&self) {
        loop {
            let task = {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(task) = queue.pop_front() {
                        break task;
                    }
                    queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            task();
        }
    }
}

/// Compiles `bytes` on one of the compile threads (or takes the module compiled before from the
/// same bytes) and calls `done` there with the result and how long the compilation ran (not
/// counting the wait for a free compile thread). A module past the cap is refused at once,
/// on the calling thread.
pub fn compile_in_background(
    bytes: Vec<u8>,
    done: impl FnOnce(Result<CompiledModule, WasmError>, Duration) + Send + 'static,
) {
    if let Err(e) = check_size(bytes.len()) {
        done(Err(e), Duration::ZERO);
        return;
    }
    pool().submit(Box::new(move || {
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| crate::engine::compile_here(&bytes)))
            .unwrap_or_else(|_| Err(WasmError::Engine("the compiler panicked".into())));
        done(result.map(CompiledModule), start.elapsed());
    }));
}

/// Compiles `bytes` (binary format only, never text) on a compile thread while the calling
/// thread waits, or returns the module compiled before from the same bytes. A module past the
/// cap is a `WasmError::Limit`.
pub fn compile(bytes: &[u8]) -> Result<Module, WasmError> {
    compile_timed(bytes).0
}

/// [`compile`], and how long the compile thread worked on it.
pub(crate) fn compile_timed(bytes: &[u8]) -> (Result<Module, WasmError>, Duration) {
    if let Err(e) = check_size(bytes.len()) {
        return (Err(e), Duration::ZERO);
    }
    match crate::engine::cached(bytes) {
        Ok(Some(module)) => return (Ok(module), Duration::ZERO),
        Ok(None) => {}
        Err(e) => return (Err(e), Duration::ZERO),
    }
    let (tx, rx) = mpsc::channel();
    compile_in_background(bytes.to_vec(), move |result, took| {
        let _ = tx.send((result, took));
    });
    match rx.recv() {
        Ok((result, took)) => (result.map(|m| m.0), took),
        Err(_) => (
            Err(WasmError::Engine("the compile thread stopped".into())),
            Duration::ZERO,
        ),
    }
}
