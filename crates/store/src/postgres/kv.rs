//! [`KvStore`] on PostgreSQL.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::usage::{read_usage, UsageTx};
use super::{pg_error, prefix_end, to_i64, to_string, PgShared};
use crate::cursor;
use crate::error::StoreError;
use crate::kv::{
    is_expired, list_limit, validate_key, validate_namespace, validate_put, KvEntry, KvKey,
    KvListOptions, KvListResult, KvPutOptions, KvStore,
};
use crate::quota::{entry_bytes, entry_len, Quota, QuotaScope, Usage};

/// The usage row KV namespaces count in.
const SCOPE: QuotaScope = QuotaScope::KvNamespace;

/// Most expired keys one `list` call deletes on its way past them (as on redb).
const LIST_SWEEP_MAX: usize = 1000;

/// One entry's record: the same JSON the redb backend stores.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KvRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
}

fn record_of(bytes: &[u8]) -> Result<KvRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(format!("kv record: {e}")))
}

/// The KV store of a [`super::PgBackend`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgKvStore {
    shared: Arc<PgShared>,
}

impl PgKvStore {
    pub(super) fn new(shared: Arc<PgShared>) -> Self {
        PgKvStore { shared }
    }

    /// Deletes those of `keys` that are still expired at `now_secs` (a put may have replaced
    /// one since it was read), taking them off the namespace's usage.
    async fn sweep(
        &self,
        namespace: &str,
        keys: Vec<Vec<u8>>,
        now_secs: u64,
    ) -> Result<u64, StoreError> {
        let now = to_i64(now_secs, "time")?;
        let mut client = self.shared.client().await?;
        let mut usage = UsageTx::begin(&mut client, SCOPE, namespace).await?;
        let rows = usage
            .tx()
            .query(
                "DELETE FROM kv_entries \
                 WHERE namespace = $1 AND key = ANY($2) AND expiration <= $3 \
                 RETURNING octet_length(key), octet_length(value), octet_length(record)",
                &[&namespace.as_bytes(), &keys, &now],
            )
            .await
            .map_err(pg_error)?;
        remove_rows(&mut usage, &rows);
        usage.commit().await?;
        Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
    }
}

/// Counts the deleted entries in `rows` (key, value and record lengths) off `usage`.
fn remove_rows(usage: &mut UsageTx<'_, '_>, rows: &[tokio_postgres::Row]) {
    for row in rows {
        usage.remove(size_of_row(row));
    }
}

/// The bytes an entry counts for, from its three `octet_length` columns (key, value, record).
fn size_of_row(row: &tokio_postgres::Row) -> u64 {
    let len = |i: usize| usize::try_from(row.get::<_, i32>(i)).unwrap_or(0);
    entry_len(len(0), len(1), len(2))
}

#[async_trait::async_trait]
impl KvStore for PgKvStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<KvEntry>, StoreError> {
        validate_namespace(namespace)?;
        validate_key(key)?;
        let now = self.shared.clock.now_secs();
        let row = {
            let client = self.shared.client().await?;
            client
                .query_opt(
                    "SELECT value, record FROM kv_entries WHERE namespace = $1 AND key = $2",
                    &[&namespace.as_bytes(), &key.as_bytes()],
                )
                .await
                .map_err(pg_error)?
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let record = record_of(row.get(1))?;
        if is_expired(record.expiration, now) {
            self.sweep(namespace, vec![key.as_bytes().to_vec()], now)
                .await?;
            return Ok(None);
        }
        Ok(Some(KvEntry {
            value: row.get(0),
            metadata: record.metadata,
            expiration: record.expiration,
        }))
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        options: KvPutOptions,
        quota: Quota,
    ) -> Result<(), StoreError> {
        validate_namespace(namespace)?;
        validate_key(key)?;
        let expiration = validate_put(&value, &options, self.shared.clock.now_secs())?;
        let record = serde_json::to_vec(&KvRecord {
            expiration,
            metadata: options.metadata,
        })
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let expiration = expiration.map(|e| to_i64(e, "expiration")).transpose()?;
        let mut client = self.shared.client().await?;
        let mut usage = UsageTx::begin(&mut client, SCOPE, namespace).await?;
        let old = usage
            .tx()
            .query_opt(
                "SELECT octet_length(key), octet_length(value), octet_length(record) \
                 FROM kv_entries WHERE namespace = $1 AND key = $2",
                &[&namespace.as_bytes(), &key.as_bytes()],
            )
            .await
            .map_err(pg_error)?
            .map(|row| size_of_row(&row));
        // Refused: the transaction is rolled back when dropped, so nothing is written.
        usage.replace(old, entry_bytes(key, value.len(), record.len()), quota)?;
        usage
            .tx()
            .execute(
                "INSERT INTO kv_entries (namespace, key, value, record, expiration) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (namespace, key) DO UPDATE \
             SET value = $3, record = $4, expiration = $5",
                &[
                    &namespace.as_bytes(),
                    &key.as_bytes(),
                    &value,
                    &record,
                    &expiration,
                ],
            )
            .await
            .map_err(pg_error)?;
        usage.commit().await
    }

    async fn usage(&self, namespace: &str) -> Result<Usage, StoreError> {
        validate_namespace(namespace)?;
        read_usage(&self.shared, SCOPE, namespace).await
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        validate_namespace(namespace)?;
        validate_key(key)?;
        let mut client = self.shared.client().await?;
        let mut usage = UsageTx::begin(&mut client, SCOPE, namespace).await?;
        let rows = usage
            .tx()
            .query(
                "DELETE FROM kv_entries WHERE namespace = $1 AND key = $2 \
                 RETURNING octet_length(key), octet_length(value), octet_length(record)",
                &[&namespace.as_bytes(), &key.as_bytes()],
            )
            .await
            .map_err(pg_error)?;
        remove_rows(&mut usage, &rows);
        usage.commit().await
    }

    async fn list(
        &self,
        namespace: &str,
        options: KvListOptions,
    ) -> Result<KvListResult, StoreError> {
        validate_namespace(namespace)?;
        let limit = list_limit(options.limit)?;
        let prefix = options.prefix.unwrap_or_default();
        let mut start = cursor::start_key(&prefix, options.cursor.as_deref())?.into_bytes();
        let end = prefix_end(&prefix);
        let now = self.shared.clock.now_secs();
        let batch = i64::try_from(limit + 1).unwrap_or(i64::MAX);

        let mut keys = Vec::new();
        let mut expired = Vec::new();
        let mut next = None;
        // Scan in key order as redb does: skip (and note) expired entries, stop at the key
        // after a full page. Batches of `limit + 1` rows; another batch only when expired
        // rows took room in this one.
        'scan: loop {
            let rows = {
                let client = self.shared.client().await?;
                client
                    .query(
                        "SELECT key, record FROM kv_entries \
                         WHERE namespace = $1 AND key >= $2 AND ($3::bytea IS NULL OR key < $3) \
                         ORDER BY key LIMIT $4",
                        &[&namespace.as_bytes(), &start, &end, &batch],
                    )
                    .await
                    .map_err(pg_error)?
            };
            let exhausted = rows.len() < usize::try_from(batch).unwrap_or(usize::MAX);
            for row in &rows {
                let name: Vec<u8> = row.get(0);
                let record = record_of(row.get(1))?;
                if is_expired(record.expiration, now) {
                    if expired.len() < LIST_SWEEP_MAX {
                        expired.push(name);
                    }
                    continue;
                }
                let name = to_string(name, "kv key")?;
                if keys.len() == limit {
                    next = Some(cursor::encode(&name));
                    break 'scan;
                }
                keys.push(KvKey {
                    name,
                    expiration: record.expiration,
                    metadata: record.metadata,
                });
            }
            match rows.last() {
                Some(last) if !exhausted => {
                    // Resume just after the last key: the key with a NUL byte appended.
                    start = last.get::<_, Vec<u8>>(0);
                    start.push(0);
                }
                _ => break,
            }
        }
        if !expired.is_empty() {
            self.sweep(namespace, expired, now).await?;
        }
        Ok(KvListResult {
            keys,
            list_complete: next.is_none(),
            cursor: next,
        })
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = self.shared.clock.now_secs();
        let now_i64 = to_i64(now, "time")?;
        let namespaces: Vec<Vec<u8>> = {
            let client = self.shared.client().await?;
            client
                .query(
                    "SELECT DISTINCT namespace FROM kv_entries WHERE expiration <= $1",
                    &[&now_i64],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|row| row.get(0))
                .collect()
        };
        let mut purged = 0u64;
        for namespace in namespaces {
            let namespace = to_string(namespace, "kv namespace")?;
            let mut client = self.shared.client().await?;
            let mut usage = UsageTx::begin(&mut client, SCOPE, &namespace).await?;
            let rows = usage
                .tx()
                .query(
                    "DELETE FROM kv_entries WHERE namespace = $1 AND expiration <= $2 \
                     RETURNING octet_length(key), octet_length(value), octet_length(record)",
                    &[&namespace.as_bytes(), &now_i64],
                )
                .await
                .map_err(pg_error)?;
            remove_rows(&mut usage, &rows);
            usage.commit().await?;
            purged = purged.saturating_add(u64::try_from(rows.len()).unwrap_or(u64::MAX));
        }
        super::PgBlobStore::new(Arc::clone(&self.shared))
            .sweep_abandoned_uploads()
            .await?;
        Ok(purged)
    }
}
