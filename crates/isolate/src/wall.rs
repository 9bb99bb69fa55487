//! The caller's side of an invocation: waiting for its answer for at most the wall-clock limit
//! ([`Limits::wall_time`](crate::Limits::wall_time)), and telling the isolate when the caller
//! gave up (the invocation is failed and ended, whatever it left running) or went away (the
//! invocation counts as answered: only `ctx.waitUntil` or a held capability keep its work).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use capnweb::{RpcError, Value};
use tokio::sync::oneshot;

use crate::error::resource_limit_error;
use crate::state::Shared;

/// The error an invocation that did not answer in time ends with.
pub(crate) fn wall_clock_error(limit: Duration) -> RpcError {
    resource_limit_error(format!(
        "wall-clock time limit of {} ms exceeded",
        limit.as_millis()
    ))
}

/// Tells the isolate that the caller of invocation `id` went away, unless disarmed.
struct Abandon {
    shared: Arc<Shared>,
    id: u64,
    armed: bool,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if self.armed {
            let id = self.id;
            self.shared.post(move |_, host| host.abandon(id));
        }
    }
}

/// Waits for the answer of invocation `id` on `rx`, for at most the isolate's wall-clock
/// limit. The isolate hears that the caller went away if the returned future is dropped
/// before the answer, even unpolled.
pub(crate) fn answer(
    shared: Arc<Shared>,
    id: u64,
    rx: oneshot::Receiver<Result<Value, RpcError>>,
) -> impl Future<Output = Result<Value, RpcError>> + Send + 'static {
    let abandon = Abandon {
        shared: shared.clone(),
        id,
        armed: true,
    };
    async move {
        // Moved in whole (not just the field it sets), so it lives as long as the future.
        let mut abandon = abandon;
        let limit = shared.wall_time;
        let result = tokio::time::timeout(limit, rx).await;
        abandon.armed = false;
        match result {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(shared.gone_error()),
            Err(_) => {
                shared.post(move |ctx, host| host.expire(ctx, id));
                Err(wall_clock_error(limit))
            }
        }
    }
}
