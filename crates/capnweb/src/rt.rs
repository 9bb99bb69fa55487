//! Where capnweb runs its background work: the caller's tokio runtime when there is one,
//! otherwise a small runtime of our own (so stubs work from any thread, e.g. a JS isolate's).

use std::future::Future;
use std::sync::OnceLock;

static FALLBACK: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// A handle to the runtime that capnweb spawns on from this thread.
pub fn handle() -> tokio::runtime::Handle {
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        return h;
    }
    FALLBACK
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("capnweb-rt")
                .enable_all()
                .build()
                .expect("capnweb: cannot start its fallback tokio runtime")
        })
        .handle()
        .clone()
}

/// Spawns a task on [`handle`].
pub(crate) fn spawn<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    drop(handle().spawn(fut));
}
