//! The `usage` rows on PostgreSQL (one per KV namespace and per blob bucket) and
//! [`UsageTx`], the one way KV and blob writes change them: a transaction that locks the
//! row first, checks growth against the quota and writes the row back when it commits.

use deadpool_postgres::{Object, Transaction};

use super::{pg_error, to_i64, to_u64, PgShared};
use crate::error::StoreError;
use crate::quota::{Quota, QuotaScope, Usage};

/// The `scope` column of a container's usage row.
fn scope_column(scope: QuotaScope) -> &'static str {
    match scope {
        QuotaScope::KvNamespace => "kv",
        QuotaScope::BlobBucket => "blob",
    }
}

/// A write transaction holding the `usage` row lock of one namespace or bucket, and that
/// row as this transaction's changes leave it.
///
/// Every KV and blob write takes this lock first, so writers to one namespace are
/// serialized and take their other locks in the same order, and a quota is checked against
/// usage no other node can change before the commit. Dropped without [`UsageTx::commit`],
/// the transaction rolls back: nothing it wrote, usage included, is kept.
pub(super) struct UsageTx<'c, 'n> {
    tx: Transaction<'c>,
    scope: QuotaScope,
    name: &'n str,
    locked: Usage,
    usage: Usage,
}

impl<'c, 'n> UsageTx<'c, 'n> {
    /// Opens a transaction on `client` and locks the usage row of `name` (creating it) for
    /// the rest of it.
    pub(super) async fn begin(
        client: &'c mut Object,
        scope: QuotaScope,
        name: &'n str,
    ) -> Result<Self, StoreError> {
        let tx = client.transaction().await.map_err(pg_error)?;
        let row = tx
            .query_one(
                "INSERT INTO usage (scope, name, bytes, keys) VALUES ($1, $2, 0, 0) \
                 ON CONFLICT (scope, name) DO UPDATE SET bytes = usage.bytes \
                 RETURNING bytes, keys",
                &[&scope_column(scope), &name.as_bytes()],
            )
            .await
            .map_err(pg_error)?;
        let locked = usage_of_row(&row)?;
        Ok(UsageTx {
            tx,
            scope,
            name,
            locked,
            usage: locked,
        })
    }

    /// The transaction, for the statements that change the entries.
    pub(super) fn tx(&self) -> &Transaction<'c> {
        &self.tx
    }

    /// Counts replacing an entry of `old` bytes (`None`: absent) with one of `new` bytes,
    /// if `quota` lets usage grow that far. Refused ([`StoreError::QuotaExceeded`]): nothing
    /// is counted, and the caller drops the transaction so nothing is written.
    pub(super) fn replace(
        &mut self,
        old: Option<u64>,
        new: u64,
        quota: Quota,
    ) -> Result<(), StoreError> {
        let next = self.usage.replace(old, Some(new));
        self.usage.admit(next, quota, self.scope, self.name)?;
        self.usage = next;
        Ok(())
    }

    /// Counts an entry of `bytes` as deleted.
    pub(super) fn remove(&mut self, bytes: u64) {
        self.usage = self.usage.replace(Some(bytes), None);
    }

    /// Writes the usage row back if this transaction changed it, and commits.
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        if self.usage != self.locked {
            self.tx
                .execute(
                    "UPDATE usage SET bytes = $3, keys = $4 WHERE scope = $1 AND name = $2",
                    &[
                        &scope_column(self.scope),
                        &self.name.as_bytes(),
                        &to_i64(self.usage.bytes, "usage bytes")?,
                        &to_i64(self.usage.keys, "usage keys")?,
                    ],
                )
                .await
                .map_err(pg_error)?;
        }
        self.tx.commit().await.map_err(pg_error)
    }
}

/// The usage row of one namespace or bucket, without locking it.
pub(super) async fn read_usage(
    shared: &PgShared,
    scope: QuotaScope,
    name: &str,
) -> Result<Usage, StoreError> {
    let client = shared.client().await?;
    let row = client
        .query_opt(
            "SELECT bytes, keys FROM usage WHERE scope = $1 AND name = $2",
            &[&scope_column(scope), &name.as_bytes()],
        )
        .await
        .map_err(pg_error)?;
    match row {
        None => Ok(Usage::default()),
        Some(row) => usage_of_row(&row),
    }
}

/// A `(bytes, keys)` row as [`Usage`].
fn usage_of_row(row: &tokio_postgres::Row) -> Result<Usage, StoreError> {
    Ok(Usage {
        bytes: to_u64(row.get(0), "usage bytes")?,
        keys: to_u64(row.get(1), "usage keys")?,
    })
}
