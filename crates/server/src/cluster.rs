//! Keeping a node in step with the others on a shared store.
//!
//! [`follow`] listens for code changes announced by the store (PostgreSQL `NOTIFY`, sent by
//! the transaction of every deploy, rollback and delete on any node) and refreshes the
//! registry for each, so within moments of a change every node serves the new live version
//! and has dropped the old one's isolates. Notifications can be missed (the listener's
//! connection dropped, or the database restarted), so the node also reconciles everything
//! it caches with the store every [`RECONCILE_EVERY`] and at once whenever the listener
//! (re)connects.

use std::sync::Weak;
use std::time::Duration;

use store::postgres::CodeEvent;
use tokio::sync::{mpsc, watch};

use crate::registry::Registry;

/// How often a node compares its cached functions with the store anyway.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// Applies `events` (and a reconcile every [`RECONCILE_EVERY`]) to `registry` until
/// `shutdown` turns true or the registry is gone.
pub async fn follow(
    registry: Weak<Registry>,
    mut events: mpsc::Receiver<CodeEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let work = tokio::select! {
            event = events.recv() => match event {
                Some(event) => Some(event),
                None => return,
            },
            _ = tick.tick() => None,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let result = match work {
            Some(CodeEvent::Changed(id)) => registry.refresh(&id).await.map(|()| 0),
            Some(CodeEvent::Resync) => {
                tracing::info!("listening for code changes; reconciling");
                registry.reconcile().await
            }
            Some(_) => Ok(0),
            None => registry.reconcile().await,
        };
        match result {
            Ok(0) => {}
            Ok(changed) => tracing::info!(changed, "reconciled functions changed elsewhere"),
            Err(e) => tracing::warn!("cannot sync with the shared store: {e}"),
        }
    }
}
