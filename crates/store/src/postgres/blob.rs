//! [`BlobStore`] on PostgreSQL: metadata in `blob_objects`, bodies in 1 MiB `blob_chunks`
//! rows under the object's version.

use std::sync::Arc;

use futures::StreamExt;

use super::usage::{read_usage, UsageTx};
use super::{pg_error, prefix_end, to_i64, to_string, to_u64, PgShared};
use crate::blob::{
    chunk_count, chunk_stream, list_limit, validate_bucket, validate_key, validate_put, BlobBody,
    BlobListOptions, BlobListResult, BlobMeta, BlobObject, BlobPutOptions, BlobRecord, BlobStore,
    Chunker, BLOB_MAX_DELETE_KEYS,
};
use crate::cursor;
use crate::error::StoreError;
use crate::quota::{entry_bytes, entry_len, Quota, QuotaScope, Usage};

/// The usage row buckets count in.
const SCOPE: QuotaScope = QuotaScope::BlobBucket;

/// An upload unfinished this long (ms) belongs to a node that died: its chunks are swept.
const ABANDONED_UPLOAD_MS: u64 = 60 * 60 * 1000;

fn record_of(bytes: &[u8]) -> Result<BlobRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(format!("blob record: {e}")))
}

/// An object's version and the bytes it counts for, from the columns `version,
/// octet_length(key), size, octet_length(record)`.
fn object_of_row(row: &tokio_postgres::Row) -> Result<(i64, u64), StoreError> {
    let len = |i: usize| usize::try_from(row.get::<_, i32>(i)).unwrap_or(0);
    let body = usize::try_from(to_u64(row.get(2), "blob size")?).unwrap_or(usize::MAX);
    Ok((row.get(0), entry_len(len(1), body, len(3))))
}

/// The blob store of a [`super::PgBackend`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgBlobStore {
    shared: Arc<PgShared>,
}

impl PgBlobStore {
    pub(super) fn new(shared: Arc<PgShared>) -> Self {
        PgBlobStore { shared }
    }

    /// Deletes the chunks of uploads started more than an hour ago and never finished.
    pub(super) async fn sweep_abandoned_uploads(&self) -> Result<(), StoreError> {
        let cutoff = to_i64(
            self.shared
                .clock
                .now_ms()
                .saturating_sub(ABANDONED_UPLOAD_MS),
            "time",
        )?;
        let mut client = self.shared.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let versions: Vec<i64> = tx
            .query(
                "DELETE FROM blob_uploads WHERE started_at < $1 RETURNING version",
                &[&cutoff],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !versions.is_empty() {
            tx.execute(
                "DELETE FROM blob_chunks WHERE version = ANY($1)",
                &[&versions],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn begin_upload(&self) -> Result<i64, StoreError> {
        let now = to_i64(self.shared.clock.now_ms(), "time")?;
        let client = self.shared.client().await?;
        Ok(client
            .query_one(
                "INSERT INTO blob_uploads (version, started_at) \
                 VALUES (nextval('blob_versions'), $1) RETURNING version",
                &[&now],
            )
            .await
            .map_err(pg_error)?
            .get(0))
    }

    async fn write_chunk(&self, version: i64, seq: i32, data: Vec<u8>) -> Result<(), StoreError> {
        let client = self.shared.client().await?;
        client
            .execute(
                "INSERT INTO blob_chunks (version, seq, data) VALUES ($1, $2, $3)",
                &[&version, &seq, &data],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// Makes upload `version` the object under `key` if the bucket stays within `quota`, and
    /// deletes the chunks of the object it replaces; one transaction.
    async fn finish_upload(
        &self,
        bucket: &str,
        key: &str,
        version: i64,
        record: &BlobRecord,
        quota: Quota,
    ) -> Result<(), StoreError> {
        let row = serde_json::to_vec(record).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let size = to_i64(record.size, "blob size")?;
        let mut client = self.shared.client().await?;
        let mut usage = UsageTx::begin(&mut client, SCOPE, bucket).await?;
        let pending = usage
            .tx()
            .execute("DELETE FROM blob_uploads WHERE version = $1", &[&version])
            .await
            .map_err(pg_error)?;
        if pending != 1 {
            return Err(StoreError::Unavailable(
                "the upload took so long that it was swept as abandoned".to_owned(),
            ));
        }
        let old = usage
            .tx()
            .query_opt(
                "SELECT version, octet_length(key), size, octet_length(record) \
                 FROM blob_objects WHERE bucket = $1 AND key = $2",
                &[&bucket.as_bytes(), &key.as_bytes()],
            )
            .await
            .map_err(pg_error)?
            .map(|r| object_of_row(&r))
            .transpose()?;
        // Refused: the transaction is rolled back when dropped; the caller deletes the chunks.
        usage.replace(
            old.map(|(_, bytes)| bytes),
            entry_bytes(key, record.size_usize(), row.len()),
            quota,
        )?;
        usage
            .tx()
            .execute(
                "INSERT INTO blob_objects (bucket, key, version, size, record) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (bucket, key) DO UPDATE SET version = $3, size = $4, record = $5",
                &[&bucket.as_bytes(), &key.as_bytes(), &version, &size, &row],
            )
            .await
            .map_err(pg_error)?;
        if let Some((old_version, _)) = old {
            usage
                .tx()
                .execute(
                    "DELETE FROM blob_chunks WHERE version = $1",
                    &[&old_version],
                )
                .await
                .map_err(pg_error)?;
        }
        usage.commit().await
    }

    /// Deletes an unfinished upload's chunks.
    async fn abandon_upload(&self, version: i64) -> Result<(), StoreError> {
        let mut client = self.shared.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("DELETE FROM blob_uploads WHERE version = $1", &[&version])
            .await
            .map_err(pg_error)?;
        tx.execute("DELETE FROM blob_chunks WHERE version = $1", &[&version])
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }

    async fn read_chunk(&self, version: i64, seq: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let seq = i32::try_from(seq).map_err(|_| StoreError::corrupt("chunk number"))?;
        let client = self.shared.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM blob_chunks WHERE version = $1 AND seq = $2",
                &[&version, &seq],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn stream_in(
        &self,
        version: i64,
        mut body: BlobBody,
        options: BlobPutOptions,
    ) -> Result<BlobRecord, StoreError> {
        let mut chunker = Chunker::default();
        let mut seq = 0i32;
        while let Some(piece) = body.next().await {
            for chunk in chunker.push(&piece?)? {
                self.write_chunk(version, seq, chunk).await?;
                seq = seq.saturating_add(1);
            }
        }
        let (last, size, etag) = chunker.finish();
        if let Some(last) = last {
            self.write_chunk(version, seq, last).await?;
        }
        Ok(BlobRecord {
            size,
            etag,
            uploaded: self.shared.clock.now_ms(),
            http_metadata: options.http_metadata,
            custom_metadata: options.custom_metadata,
            version: format!("{:016x}", to_u64(version, "blob version")?),
        })
    }
}

#[async_trait::async_trait]
impl BlobStore for PgBlobStore {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: BlobBody,
        options: BlobPutOptions,
        quota: Quota,
    ) -> Result<BlobMeta, StoreError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        validate_put(&options)?;
        let version = self.begin_upload().await?;
        let result = async {
            let record = self.stream_in(version, body, options).await?;
            self.finish_upload(bucket, key, version, &record, quota)
                .await?;
            Ok(record)
        }
        .await;
        match result {
            Ok(record) => Ok(record.into_meta(key)),
            Err(e) => {
                // A failed clean-up leaves invisible chunks, swept within the hour.
                let _ = self.abandon_upload(version).await;
                Err(e)
            }
        }
    }

    async fn usage(&self, bucket: &str) -> Result<Usage, StoreError> {
        validate_bucket(bucket)?;
        read_usage(&self.shared, SCOPE, bucket).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<BlobObject>, StoreError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let row = {
            let client = self.shared.client().await?;
            // The metadata and the first chunk in one statement: an object of one chunk is
            // read atomically.
            client
                .query_opt(
                    "SELECT o.version, o.record, c.data FROM blob_objects o \
                     LEFT JOIN blob_chunks c ON c.version = o.version AND c.seq = 0 \
                     WHERE o.bucket = $1 AND o.key = $2",
                    &[&bucket.as_bytes(), &key.as_bytes()],
                )
                .await
                .map_err(pg_error)?
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let version: i64 = row.get(0);
        let record = record_of(row.get(1))?;
        let first: Option<Vec<u8>> = row.get(2);
        if record.size > 0 && first.is_none() {
            return Err(StoreError::corrupt("blob body is missing"));
        }
        let this = self.clone();
        let body = chunk_stream(key, first, chunk_count(record.size), move |seq| {
            let this = this.clone();
            async move { this.read_chunk(version, seq).await }
        });
        Ok(Some(BlobObject {
            meta: record.into_meta(key),
            body,
        }))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<BlobMeta>, StoreError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let client = self.shared.client().await?;
        let row = client
            .query_opt(
                "SELECT record FROM blob_objects WHERE bucket = $1 AND key = $2",
                &[&bucket.as_bytes(), &key.as_bytes()],
            )
            .await
            .map_err(pg_error)?;
        row.map(|r| record_of(r.get(0)).map(|rec| rec.into_meta(key)))
            .transpose()
    }

    async fn delete(&self, bucket: &str, keys: &[&str]) -> Result<usize, StoreError> {
        validate_bucket(bucket)?;
        if keys.len() > BLOB_MAX_DELETE_KEYS {
            return Err(StoreError::TooManyKeys {
                count: keys.len(),
                limit: BLOB_MAX_DELETE_KEYS,
            });
        }
        for key in keys {
            validate_key(key)?;
        }
        if keys.is_empty() {
            return Ok(0);
        }
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let mut client = self.shared.client().await?;
        let mut usage = UsageTx::begin(&mut client, SCOPE, bucket).await?;
        let rows = usage
            .tx()
            .query(
                "DELETE FROM blob_objects WHERE bucket = $1 AND key = ANY($2) \
                 RETURNING version, octet_length(key), size, octet_length(record)",
                &[&bucket.as_bytes(), &keys],
            )
            .await
            .map_err(pg_error)?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in &rows {
            let (version, bytes) = object_of_row(row)?;
            versions.push(version);
            usage.remove(bytes);
        }
        if !versions.is_empty() {
            usage
                .tx()
                .execute(
                    "DELETE FROM blob_chunks WHERE version = ANY($1)",
                    &[&versions],
                )
                .await
                .map_err(pg_error)?;
        }
        usage.commit().await?;
        Ok(rows.len())
    }

    async fn list(
        &self,
        bucket: &str,
        options: BlobListOptions,
    ) -> Result<BlobListResult, StoreError> {
        validate_bucket(bucket)?;
        let limit = list_limit(options.limit)?;
        let prefix = options.prefix.unwrap_or_default();
        let delimiter = options.delimiter.filter(|d| !d.is_empty());
        let mut start = cursor::start_key(&prefix, options.cursor.as_deref())?.into_bytes();
        let end = prefix_end(&prefix);
        let batch = i64::try_from(limit + 1).unwrap_or(i64::MAX);

        let mut objects = Vec::new();
        let mut delimited_prefixes = Vec::new();
        let mut next = None;
        // As on redb: scan in key order until the page is full; a delimited prefix is
        // emitted once and the scan resumes after every key under it.
        'scan: loop {
            let rows = {
                let client = self.shared.client().await?;
                client
                    .query(
                        "SELECT key, record FROM blob_objects \
                         WHERE bucket = $1 AND key >= $2 AND ($3::bytea IS NULL OR key < $3) \
                         ORDER BY key LIMIT $4",
                        &[&bucket.as_bytes(), &start, &end, &batch],
                    )
                    .await
                    .map_err(pg_error)?
            };
            let exhausted = rows.len() < usize::try_from(batch).unwrap_or(usize::MAX);
            let mut resume = None;
            for row in &rows {
                let key = to_string(row.get(0), "blob key")?;
                let rolled_up = delimiter.as_deref().and_then(|d| {
                    key[prefix.len()..]
                        .find(d)
                        .map(|at| key[..prefix.len() + at + d.len()].to_owned())
                });
                if objects.len() + delimited_prefixes.len() == limit {
                    next = Some(cursor::encode(&key));
                    break 'scan;
                }
                match rolled_up {
                    Some(common) => {
                        let after = cursor::prefix_successor(&common);
                        delimited_prefixes.push(common);
                        match after {
                            Some(after) => resume = Some(after.into_bytes()),
                            // Nothing can follow a prefix without a successor.
                            None => break 'scan,
                        }
                        break;
                    }
                    None => objects.push(record_of(row.get(1))?.into_meta(&key)),
                }
            }
            start = match (resume, rows.last()) {
                (Some(after), _) => after,
                (None, Some(last)) if !exhausted => {
                    let mut after: Vec<u8> = last.get(0);
                    after.push(0);
                    after
                }
                _ => break,
            };
        }
        Ok(BlobListResult {
            objects,
            truncated: next.is_some(),
            cursor: next,
            delimited_prefixes,
        })
    }
}
