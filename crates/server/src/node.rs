//! This node: who it is, what it is doing, and (on a shared store) its heartbeat into the
//! node registry.
//!
//! Every [`HEARTBEAT_EVERY`] a node on a shared store upserts its row (address, version,
//! uptime, resident isolates, requests in flight); `GET /_admin/nodes` and `functions nodes`
//! list the nodes heard from within [`LIVE_WITHIN`]. On the embedded store the node lists
//! only itself. A node that shuts down cleanly removes its row; one that dies drops out of
//! the list after [`LIVE_WITHIN`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use store::postgres::NodeRecord;
use store::{Clock, SystemClock};

use crate::host::FunctionHost;

/// How often a node reports.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A node heard from within this long is live (three missed heartbeats and it is not).
pub const LIVE_WITHIN: Duration = Duration::from_secs(15);

/// Requests being served by this process.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

/// Middleware: counts the requests in flight.
pub async fn count_in_flight(req: Request, next: Next) -> Response {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        }
    }
    IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    let _guard = Guard;
    next.run(req).await
}

/// This node's identity.
pub struct Node {
    id: String,
    address: String,
    started_at: u64,
    host: Arc<dyn FunctionHost>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node serving at `address`, with a fresh random id.
    pub fn new(address: String, host: Arc<dyn FunctionHost>) -> Arc<Node> {
        Arc::new(Node {
            id: crate::token::random_hex(8),
            address,
            started_at: SystemClock.now_ms(),
            host,
        })
    }

    /// Its id (unique per process start).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What it reports now.
    pub fn record(&self) -> NodeRecord {
        NodeRecord {
            id: self.id.clone(),
            address: self.address.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self.started_at,
            heartbeat_at: SystemClock.now_ms(),
            resident_isolates: u64::try_from(self.host.resident_isolates()).unwrap_or(u64::MAX),
            in_flight: IN_FLIGHT.load(Ordering::Relaxed),
        }
    }
}

/// Reports `node` to the registry every [`HEARTBEAT_EVERY`] until `shutdown`, then removes it.
pub async fn heartbeat(
    node: Arc<Node>,
    pg: store::postgres::PgBackend,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            _ = tick.tick() => false,
            stopped = shutdown.wait_for(|stop| *stop) => {
                drop(stopped);
                true
            }
        };
        if stop {
            break;
        }
        if let Err(e) = pg.heartbeat(&node.record()).await {
            tracing::warn!("cannot report to the node registry: {e}");
        }
    }
    if let Err(e) = pg.leave(node.id()).await {
        tracing::debug!("cannot leave the node registry: {e}");
    }
}
