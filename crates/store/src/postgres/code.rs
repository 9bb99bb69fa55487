//! [`CodeStore`] on PostgreSQL.

use std::sync::Arc;

use super::{pg_error, to_i64, to_u64, PgShared};
use crate::code::{
    validate_deploy, validate_function_id, CodeStore, CodeVersion, FunctionInfo, VersionInfo,
};
use crate::error::StoreError;

/// The code store of a [`super::PgBackend`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgCodeStore {
    shared: Arc<PgShared>,
}

const FUNCTION_COLUMNS: &str = "id, live, versions, latest, created_at, updated_at";

fn info_of(row: &tokio_postgres::Row) -> Result<FunctionInfo, StoreError> {
    Ok(FunctionInfo {
        id: row.get(0),
        live_version: to_u64(row.get(1), "live version")?,
        versions: to_u64(row.get(2), "version count")?,
        latest_version: to_u64(row.get(3), "latest version")?,
        created_at: to_u64(row.get(4), "created_at")?,
        updated_at: to_u64(row.get(5), "updated_at")?,
    })
}

fn version_of(row: &tokio_postgres::Row) -> Result<CodeVersion, StoreError> {
    Ok(CodeVersion {
        version: to_u64(row.get(0), "version")?,
        created_at: to_u64(row.get(1), "created_at")?,
        note: row.get(2),
        bundle: row.get(3),
    })
}

impl PgCodeStore {
    pub(super) fn new(shared: Arc<PgShared>) -> Self {
        PgCodeStore { shared }
    }

    /// Locks the function's row, lets `choose` pick the version to make live from its live
    /// version, makes it live and announces the change; one transaction.
    async fn switch_live(
        &self,
        id: &str,
        choose: impl for<'t> FnOnce(
                &'t deadpool_postgres::Transaction<'_>,
                i64,
            ) -> futures::future::BoxFuture<'t, Result<i64, StoreError>>
            + Send,
    ) -> Result<u64, StoreError> {
        validate_function_id(id)?;
        let now = to_i64(self.shared.clock.now_ms(), "time")?;
        let mut client = self.shared.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let live: i64 = tx
            .query_opt(
                "SELECT live FROM code_functions WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(pg_error)?
            .ok_or_else(|| StoreError::FunctionNotFound { id: id.to_owned() })?
            .get(0);
        let chosen = choose(&tx, live).await?;
        tx.execute(
            "UPDATE code_functions SET live = $2, updated_at = $3 WHERE id = $1",
            &[&id, &chosen, &now],
        )
        .await
        .map_err(pg_error)?;
        notify(&tx, &self.shared.channel, id).await?;
        tx.commit().await.map_err(pg_error)?;
        to_u64(chosen, "version")
    }
}

/// Announces a change of `id` on the code channel; delivered when the transaction commits.
async fn notify(
    tx: &deadpool_postgres::Transaction<'_>,
    channel: &str,
    id: &str,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&channel, &id])
        .await
        .map_err(pg_error)?;
    Ok(())
}

#[async_trait::async_trait]
impl CodeStore for PgCodeStore {
    async fn deploy(
        &self,
        id: &str,
        bundle: Vec<u8>,
        note: Option<&str>,
    ) -> Result<u64, StoreError> {
        validate_function_id(id)?;
        validate_deploy(&bundle, note)?;
        let now = to_i64(self.shared.clock.now_ms(), "time")?;
        let size = i64::try_from(bundle.len()).unwrap_or(i64::MAX);
        let mut client = self.shared.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // The counter row is the per-id lock: concurrent deploys of one id queue here.
        let version: i64 = tx
            .query_one(
                "INSERT INTO code_counters (id, last_version) VALUES ($1, 1) \
                 ON CONFLICT (id) DO UPDATE SET last_version = code_counters.last_version + 1 \
                 RETURNING last_version",
                &[&id],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        tx.execute(
            "INSERT INTO code_versions (id, version, created_at, note, size, bundle) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&id, &version, &now, &note, &size, &bundle],
        )
        .await
        .map_err(pg_error)?;
        tx.execute(
            "INSERT INTO code_functions (id, live, latest, versions, created_at, updated_at) \
             VALUES ($1, $2, $2, 1, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET live = $2, latest = $2, \
                 versions = code_functions.versions + 1, updated_at = $3",
            &[&id, &version, &now],
        )
        .await
        .map_err(pg_error)?;
        notify(&tx, &self.shared.channel, id).await?;
        tx.commit().await.map_err(pg_error)?;
        to_u64(version, "version")
    }

    async fn live(&self, id: &str) -> Result<Option<CodeVersion>, StoreError> {
        validate_function_id(id)?;
        let client = self.shared.client().await?;
        let row = client
            .query_opt(
                "SELECT v.version, v.created_at, v.note, v.bundle \
                 FROM code_functions f JOIN code_versions v ON v.id = f.id AND v.version = f.live \
                 WHERE f.id = $1",
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(version_of).transpose()
    }

    async fn live_version(&self, id: &str) -> Result<Option<u64>, StoreError> {
        validate_function_id(id)?;
        let client = self.shared.client().await?;
        let row = client
            .query_opt("SELECT live FROM code_functions WHERE id = $1", &[&id])
            .await
            .map_err(pg_error)?;
        row.map(|r| to_u64(r.get(0), "live version")).transpose()
    }

    async fn get_version(&self, id: &str, version: u64) -> Result<Option<CodeVersion>, StoreError> {
        validate_function_id(id)?;
        let Ok(version) = i64::try_from(version) else {
            return Ok(None);
        };
        let client = self.shared.client().await?;
        let row = client
            .query_opt(
                "SELECT version, created_at, note, bundle FROM code_versions \
                 WHERE id = $1 AND version = $2",
                &[&id, &version],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(version_of).transpose()
    }

    async fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError> {
        validate_function_id(id)?;
        let client = self.shared.client().await?;
        let rows = client
            .query(
                "SELECT v.version, v.created_at, v.note, v.size, v.version = f.live \
                 FROM code_versions v JOIN code_functions f ON f.id = v.id \
                 WHERE v.id = $1 ORDER BY v.version",
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                Ok(VersionInfo {
                    version: to_u64(row.get(0), "version")?,
                    created_at: to_u64(row.get(1), "created_at")?,
                    note: row.get(2),
                    size: to_u64(row.get(3), "size")?,
                    live: row.get(4),
                })
            })
            .collect()
    }

    async fn info(&self, id: &str) -> Result<Option<FunctionInfo>, StoreError> {
        validate_function_id(id)?;
        let client = self.shared.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {FUNCTION_COLUMNS} FROM code_functions WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        row.as_ref().map(info_of).transpose()
    }

    async fn list(&self) -> Result<Vec<FunctionInfo>, StoreError> {
        let client = self.shared.client().await?;
        let rows = client
            .query(
                &format!("SELECT {FUNCTION_COLUMNS} FROM code_functions ORDER BY id"),
                &[],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(info_of).collect()
    }

    async fn rollback(&self, id: &str) -> Result<u64, StoreError> {
        let owned = id.to_owned();
        self.switch_live(id, move |tx, live| {
            Box::pin(async move {
                let previous: Option<i64> = tx
                    .query_one(
                        "SELECT max(version) FROM code_versions WHERE id = $1 AND version < $2",
                        &[&owned, &live],
                    )
                    .await
                    .map_err(pg_error)?
                    .get(0);
                previous.ok_or(StoreError::NoPreviousVersion {
                    id: owned.clone(),
                    live_version: to_u64(live, "live version")?,
                })
            })
        })
        .await
    }

    async fn set_live(&self, id: &str, version: u64) -> Result<(), StoreError> {
        let owned = id.to_owned();
        let missing = move |id: String| StoreError::VersionNotFound { id, version };
        let Ok(wanted) = i64::try_from(version) else {
            validate_function_id(id)?;
            return Err(missing(owned));
        };
        self.switch_live(id, move |tx, _| {
            Box::pin(async move {
                let exists = tx
                    .query_opt(
                        "SELECT 1 FROM code_versions WHERE id = $1 AND version = $2",
                        &[&owned, &wanted],
                    )
                    .await
                    .map_err(pg_error)?
                    .is_some();
                if exists {
                    Ok(wanted)
                } else {
                    Err(missing(owned.clone()))
                }
            })
        })
        .await
        .map(|_| ())
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        validate_function_id(id)?;
        let mut client = self.shared.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let existed = tx
            .execute("DELETE FROM code_functions WHERE id = $1", &[&id])
            .await
            .map_err(pg_error)?
            > 0;
        tx.execute("DELETE FROM code_versions WHERE id = $1", &[&id])
            .await
            .map_err(pg_error)?;
        if existed {
            notify(&tx, &self.shared.channel, id).await?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(existed)
    }
}
