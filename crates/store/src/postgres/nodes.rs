//! The node registry: each node of a cluster upserts a row about itself every few seconds
//! (`heartbeat`), and anyone can list the nodes heard from recently (`nodes`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{pg_error, to_i64, to_u64, PgBackend};
use crate::error::StoreError;

/// Rows older than this are deleted by the next heartbeat of any node.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// What a node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Unique per process start.
    pub id: String,
    /// Where it serves (the address it listens on, or the one it advertises).
    pub address: String,
    /// The software version it runs.
    pub version: String,
    /// When it started, unix ms.
    pub started_at: u64,
    /// When it last reported, unix ms (set by [`PgBackend::heartbeat`]).
    pub heartbeat_at: u64,
    /// Isolates it holds loaded.
    pub resident_isolates: u64,
    /// Requests it is serving now.
    pub in_flight: u64,
}

impl PgBackend {
    /// Records `node` as alive now (its `heartbeat_at` is set to the store's clock), and
    /// forgets nodes not heard from for an hour.
    pub async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError> {
        let now = self.shared.clock.now_ms();
        let forget = now.saturating_sub(u64::try_from(FORGET_AFTER.as_millis()).unwrap_or(0));
        let client = self.shared.client().await?;
        client
            .execute(
                "INSERT INTO nodes (id, address, version, started_at, heartbeat_at, \
                     resident_isolates, in_flight) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET address = $2, version = $3, started_at = $4, \
                     heartbeat_at = $5, resident_isolates = $6, in_flight = $7",
                &[
                    &node.id,
                    &node.address,
                    &node.version,
                    &to_i64(node.started_at, "started_at")?,
                    &to_i64(now, "time")?,
                    &to_i64(node.resident_isolates, "resident isolates")?,
                    &to_i64(node.in_flight, "in flight")?,
                ],
            )
            .await
            .map_err(pg_error)?;
        client
            .execute(
                "DELETE FROM nodes WHERE heartbeat_at < $1",
                &[&to_i64(forget, "time")?],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// The nodes that reported within `max_age`, ordered by address.
    pub async fn nodes(&self, max_age: Duration) -> Result<Vec<NodeRecord>, StoreError> {
        let since = self
            .shared
            .clock
            .now_ms()
            .saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
        let client = self.shared.client().await?;
        let rows = client
            .query(
                "SELECT id, address, version, started_at, heartbeat_at, resident_isolates, \
                     in_flight FROM nodes WHERE heartbeat_at >= $1 ORDER BY address, id",
                &[&to_i64(since, "time")?],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                Ok(NodeRecord {
                    id: r.get(0),
                    address: r.get(1),
                    version: r.get(2),
                    started_at: to_u64(r.get(3), "started_at")?,
                    heartbeat_at: to_u64(r.get(4), "heartbeat_at")?,
                    resident_isolates: to_u64(r.get(5), "resident isolates")?,
                    in_flight: to_u64(r.get(6), "in flight")?,
                })
            })
            .collect()
    }

    /// Removes `id` from the registry (a node shutting down cleanly).
    pub async fn leave(&self, id: &str) -> Result<(), StoreError> {
        let client = self.shared.client().await?;
        client
            .execute("DELETE FROM nodes WHERE id = $1", &[&id])
            .await
            .map_err(pg_error)?;
        Ok(())
    }
}
