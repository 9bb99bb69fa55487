//! [`BlobStore`] on redb.

use std::sync::Arc;

use futures::StreamExt;
use redb::{ReadableDatabase, ReadableTable};

use super::{
    blocking, from_json, read_usage, to_json, write_usage, Shared, BLOB_CHUNKS, BLOB_META,
    BLOB_UPLOADS, META, USAGE, USAGE_BLOB,
};
use crate::blob::{
    chunk_count, chunk_stream, list_limit, validate_bucket, validate_key, validate_put, BlobBody,
    BlobListOptions, BlobListResult, BlobMeta, BlobObject, BlobPutOptions, BlobRecord, BlobStore,
    Chunker, BLOB_MAX_DELETE_KEYS,
};
use crate::cursor;
use crate::error::StoreError;
use crate::quota::{entry_bytes, Quota, QuotaScope, Usage};

/// An object's record and its first chunk (`None` for an empty body).
type RecordAndFirstChunk = (BlobRecord, Option<Vec<u8>>);

/// The blob store of a [`super::RedbBackend`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RedbBlobStore {
    shared: Arc<Shared>,
}

impl RedbBlobStore {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        RedbBlobStore { shared }
    }
}

impl RedbBlobStore {
    /// Starts an upload: a new version number, recorded as pending until it finishes.
    fn begin_upload_blocking(&self) -> Result<u64, StoreError> {
        let mut txn = self.shared.db.begin_write()?;
        // Not yet durable: an upload lost in a crash was never acknowledged.
        txn.set_durability(redb::Durability::None)?;
        let version = {
            let mut meta = txn.open_table(META)?;
            let version = meta
                .get("blob_version")?
                .map(|v| v.value())
                .unwrap_or(0)
                .wrapping_add(1);
            meta.insert("blob_version", version)?;
            txn.open_table(BLOB_UPLOADS)?
                .insert(version, self.shared.clock.now_ms())?;
            version
        };
        txn.commit()?;
        Ok(version)
    }

    fn write_chunk_blocking(&self, version: u64, seq: u32, data: &[u8]) -> Result<(), StoreError> {
        let mut txn = self.shared.db.begin_write()?;
        txn.set_durability(redb::Durability::None)?;
        txn.open_table(BLOB_CHUNKS)?.insert((version, seq), data)?;
        txn.commit()?;
        Ok(())
    }

    /// Makes upload `version` the object under `key` if the bucket stays within `quota`, and
    /// deletes the chunks of the object it replaces; one durable transaction.
    fn finish_upload_blocking(
        &self,
        bucket: &str,
        key: &str,
        version: u64,
        record: &BlobRecord,
        quota: Quota,
    ) -> Result<(), StoreError> {
        let txn = self.shared.db.begin_write()?;
        {
            if txn.open_table(BLOB_UPLOADS)?.remove(version)?.is_none() {
                return Err(StoreError::corrupt(format!(
                    "blob upload {version:016x} vanished before it finished"
                )));
            }
            let mut metas = txn.open_table(BLOB_META)?;
            let mut chunks = txn.open_table(BLOB_CHUNKS)?;
            let mut usage = txn.open_table(USAGE)?;
            let row = to_json(record)?;
            let old = match metas.get((bucket, key))? {
                None => None,
                Some(m) => {
                    let old: BlobRecord = from_json(m.value(), "blob record")?;
                    Some((entry_bytes(key, old.size_usize(), m.value().len()), old))
                }
            };
            let now = read_usage(&usage, USAGE_BLOB, bucket)?;
            let next = now.replace(
                old.as_ref().map(|(bytes, _)| *bytes),
                Some(entry_bytes(key, record.size_usize(), row.len())),
            );
            // Refused: the transaction is dropped, so nothing is written.
            now.admit(next, quota, QuotaScope::BlobBucket, bucket)?;
            metas.insert((bucket, key), row.as_slice())?;
            if let Some((_, old)) = old {
                let old = old.chunk_version()?;
                chunks.retain_in((old, 0)..=(old, u32::MAX), |_, _| false)?;
            }
            write_usage(&mut usage, USAGE_BLOB, bucket, next)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Deletes an unfinished upload's chunks.
    fn abandon_upload_blocking(&self, version: u64) -> Result<(), StoreError> {
        let txn = self.shared.db.begin_write()?;
        txn.open_table(BLOB_UPLOADS)?.remove(version)?;
        txn.open_table(BLOB_CHUNKS)?
            .retain_in((version, 0)..=(version, u32::MAX), |_, _| false)?;
        txn.commit()?;
        Ok(())
    }

    /// The object's record and its first chunk, read in one transaction.
    fn get_blocking(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<RecordAndFirstChunk>, StoreError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let txn = self.shared.db.begin_read()?;
        let metas = txn.open_table(BLOB_META)?;
        let record: BlobRecord = match metas.get((bucket, key))? {
            None => return Ok(None),
            Some(guard) => from_json(guard.value(), "blob record")?,
        };
        let first = if record.size == 0 {
            None
        } else {
            let chunks = txn.open_table(BLOB_CHUNKS)?;
            let first = chunks
                .get((record.chunk_version()?, 0))?
                .ok_or_else(|| StoreError::corrupt("blob body is missing"))?
                .value()
                .to_vec();
            Some(first)
        };
        Ok(Some((record, first)))
    }

    fn read_chunk_blocking(&self, version: u64, seq: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.shared.db.begin_read()?;
        let chunks = txn.open_table(BLOB_CHUNKS)?;
        Ok(chunks.get((version, seq))?.map(|g| g.value().to_vec()))
    }

    fn usage_blocking(&self, bucket: &str) -> Result<Usage, StoreError> {
        validate_bucket(bucket)?;
        let txn = self.shared.db.begin_read()?;
        let usage = txn.open_table(USAGE)?;
        read_usage(&usage, USAGE_BLOB, bucket)
    }

    fn head_blocking(&self, bucket: &str, key: &str) -> Result<Option<BlobMeta>, StoreError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let txn = self.shared.db.begin_read()?;
        let metas = txn.open_table(BLOB_META)?;
        match metas.get((bucket, key))? {
            None => Ok(None),
            Some(guard) => {
                let record: BlobRecord = from_json(guard.value(), "blob record")?;
                Ok(Some(record.into_meta(key)))
            }
        }
    }

    fn delete_blocking(&self, bucket: &str, keys: &[&str]) -> Result<usize, StoreError> {
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
        let txn = self.shared.db.begin_write()?;
        let removed = {
            let mut metas = txn.open_table(BLOB_META)?;
            let mut chunks = txn.open_table(BLOB_CHUNKS)?;
            let mut usage = txn.open_table(USAGE)?;
            let mut now = read_usage(&usage, USAGE_BLOB, bucket)?;
            let mut removed = 0;
            for key in keys {
                let Some(row) = metas.remove((bucket, *key))? else {
                    continue;
                };
                let record: BlobRecord = from_json(row.value(), "blob record")?;
                let row_len = row.value().len();
                drop(row);
                let version = record.chunk_version()?;
                chunks.retain_in((version, 0)..=(version, u32::MAX), |_, _| false)?;
                removed += 1;
                now = now.replace(Some(entry_bytes(key, record.size_usize(), row_len)), None);
            }
            write_usage(&mut usage, USAGE_BLOB, bucket, now)?;
            removed
        };
        txn.commit()?;
        Ok(removed)
    }

    fn list_blocking(
        &self,
        bucket: &str,
        options: BlobListOptions,
    ) -> Result<BlobListResult, StoreError> {
        validate_bucket(bucket)?;
        let limit = list_limit(options.limit)?;
        let prefix = options.prefix.unwrap_or_default();
        let delimiter = options.delimiter.filter(|d| !d.is_empty());
        let mut start = cursor::start_key(&prefix, options.cursor.as_deref())?;

        let txn = self.shared.db.begin_read()?;
        let metas = txn.open_table(BLOB_META)?;
        let mut objects = Vec::new();
        let mut delimited_prefixes = Vec::new();
        let mut next = None;

        // Each pass scans from `start` until the page is full, the keys leave
        // the bucket or prefix, or a delimited prefix is emitted; then the next
        // pass starts after every key under that prefix.
        'pages: loop {
            let mut skip_to = None;
            for entry in metas.range((bucket, start.as_str())..)? {
                let (k, v) = entry?;
                let (entry_bucket, key) = k.value();
                if entry_bucket != bucket || !key.starts_with(prefix.as_str()) {
                    break 'pages;
                }
                let rolled_up = delimiter.as_deref().and_then(|d| {
                    key[prefix.len()..]
                        .find(d)
                        .map(|at| &key[..prefix.len() + at + d.len()])
                });
                if objects.len() + delimited_prefixes.len() == limit {
                    next = Some(cursor::encode(key));
                    break 'pages;
                }
                match rolled_up {
                    Some(common) => {
                        delimited_prefixes.push(common.to_owned());
                        skip_to = Some(cursor::prefix_successor(common));
                        break;
                    }
                    None => {
                        let record: BlobRecord = from_json(v.value(), "blob record")?;
                        objects.push(record.into_meta(key));
                    }
                }
            }
            match skip_to {
                // A delimited prefix was emitted: resume after all its keys.
                Some(Some(after)) => start = after,
                // It has no successor, so nothing can follow it; or the range ran out.
                Some(None) | None => break,
            }
        }
        Ok(BlobListResult {
            objects,
            truncated: next.is_some(),
            cursor: next,
            delimited_prefixes,
        })
    }
}

#[async_trait::async_trait]
impl BlobStore for RedbBlobStore {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        mut body: BlobBody,
        options: BlobPutOptions,
        quota: Quota,
    ) -> Result<BlobMeta, StoreError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        validate_put(&options)?;
        let this = self.clone();
        let version = blocking(move || this.begin_upload_blocking()).await?;
        let result = async {
            let mut chunker = Chunker::default();
            let mut seq = 0u32;
            let mut write = |data: Vec<u8>| {
                let this = self.clone();
                let at = seq;
                seq = seq.saturating_add(1);
                blocking(move || this.write_chunk_blocking(version, at, &data))
            };
            while let Some(piece) = body.next().await {
                for chunk in chunker.push(&piece?)? {
                    write(chunk).await?;
                }
            }
            let (last, size, etag) = chunker.finish();
            if let Some(last) = last {
                write(last).await?;
            }
            let record = BlobRecord {
                size,
                etag,
                uploaded: self.shared.clock.now_ms(),
                http_metadata: options.http_metadata,
                custom_metadata: options.custom_metadata,
                version: format!("{version:016x}"),
            };
            let (this, bucket, key, rec) = (
                self.clone(),
                bucket.to_owned(),
                key.to_owned(),
                record.clone(),
            );
            blocking(move || this.finish_upload_blocking(&bucket, &key, version, &rec, quota))
                .await?;
            Ok(record)
        }
        .await;
        match result {
            Ok(record) => Ok(record.into_meta(key)),
            Err(e) => {
                // A failed cleanup only leaves invisible chunks, swept at the next open.
                let this = self.clone();
                let _ = blocking(move || this.abandon_upload_blocking(version)).await;
                Err(e)
            }
        }
    }

    async fn usage(&self, bucket: &str) -> Result<Usage, StoreError> {
        let (this, bucket) = (self.clone(), bucket.to_owned());
        blocking(move || this.usage_blocking(&bucket)).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<BlobObject>, StoreError> {
        let (this, b, k) = (self.clone(), bucket.to_owned(), key.to_owned());
        let Some((record, first)) = blocking(move || this.get_blocking(&b, &k)).await? else {
            return Ok(None);
        };
        let version = record.chunk_version()?;
        let this = self.clone();
        let body = chunk_stream(key, first, chunk_count(record.size), move |seq| {
            let this = this.clone();
            blocking(move || this.read_chunk_blocking(version, seq))
        });
        Ok(Some(BlobObject {
            meta: record.into_meta(key),
            body,
        }))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<BlobMeta>, StoreError> {
        let (this, bucket, key) = (self.clone(), bucket.to_owned(), key.to_owned());
        blocking(move || this.head_blocking(&bucket, &key)).await
    }

    async fn delete(&self, bucket: &str, keys: &[&str]) -> Result<usize, StoreError> {
        let this = self.clone();
        let bucket = bucket.to_owned();
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        blocking(move || {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            this.delete_blocking(&bucket, &refs)
        })
        .await
    }

    async fn list(
        &self,
        bucket: &str,
        options: BlobListOptions,
    ) -> Result<BlobListResult, StoreError> {
        let (this, bucket) = (self.clone(), bucket.to_owned());
        blocking(move || this.list_blocking(&bucket, options)).await
    }
}
