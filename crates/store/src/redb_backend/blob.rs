//! [`BlobStore`] on redb.

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::{
    from_json, read_usage, to_json, write_usage, Shared, BLOB_BODIES, BLOB_META, META, USAGE,
    USAGE_BLOB,
};
use crate::blob::{
    etag, list_limit, validate_bucket, validate_key, validate_put, BlobListOptions, BlobListResult,
    BlobMeta, BlobPutOptions, BlobStore, HttpMetadata, BLOB_MAX_DELETE_KEYS,
};
use crate::cursor;
use crate::error::StoreError;
use crate::quota::{entry_bytes, Quota, QuotaScope, Usage};

/// One object's row in `blob_meta` (the key is the table key).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BlobRecord {
    size: u64,
    etag: String,
    uploaded: u64,
    #[serde(default)]
    http_metadata: HttpMetadata,
    #[serde(default)]
    custom_metadata: BTreeMap<String, String>,
    version: String,
}

impl BlobRecord {
    fn into_meta(self, key: &str) -> BlobMeta {
        BlobMeta {
            key: key.to_owned(),
            size: self.size,
            etag: self.etag,
            uploaded: self.uploaded,
            http_metadata: self.http_metadata,
            custom_metadata: self.custom_metadata,
            version: self.version,
        }
    }
}

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

impl BlobStore for RedbBlobStore {
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        options: BlobPutOptions,
        quota: Quota,
    ) -> Result<BlobMeta, StoreError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        validate_put(body, &options)?;
        let etag = etag(body);
        let uploaded = self.shared.clock.now_ms();
        let txn = self.shared.db.begin_write()?;
        let record = {
            let mut meta_table = txn.open_table(META)?;
            let counter = meta_table
                .get("blob_version")?
                .map(|v| v.value())
                .unwrap_or(0)
                .wrapping_add(1);
            meta_table.insert("blob_version", counter)?;
            let record = BlobRecord {
                size: u64::try_from(body.len()).unwrap_or(u64::MAX),
                etag,
                uploaded,
                http_metadata: options.http_metadata,
                custom_metadata: options.custom_metadata,
                version: format!("{counter:016x}"),
            };
            let mut metas = txn.open_table(BLOB_META)?;
            let mut bodies = txn.open_table(BLOB_BODIES)?;
            let mut usage = txn.open_table(USAGE)?;
            let row = to_json(&record)?;
            let old = match metas.get((bucket, key))? {
                None => None,
                Some(m) => {
                    let body_len = bodies.get((bucket, key))?.map_or(0, |g| g.value().len());
                    Some(entry_bytes(key, body_len, m.value().len()))
                }
            };
            let now = read_usage(&usage, USAGE_BLOB, bucket)?;
            let next = now.replace(old, Some(entry_bytes(key, body.len(), row.len())));
            // Refused: the transaction is dropped, so nothing is written.
            now.admit(next, quota, QuotaScope::BlobBucket, bucket)?;
            metas.insert((bucket, key), row.as_slice())?;
            bodies.insert((bucket, key), body)?;
            write_usage(&mut usage, USAGE_BLOB, bucket, next)?;
            record
        };
        txn.commit()?;
        Ok(record.into_meta(key))
    }

    fn get(&self, bucket: &str, key: &str) -> Result<Option<(BlobMeta, Vec<u8>)>, StoreError> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let txn = self.shared.db.begin_read()?;
        let metas = txn.open_table(BLOB_META)?;
        let record: BlobRecord = match metas.get((bucket, key))? {
            None => return Ok(None),
            Some(guard) => from_json(guard.value(), "blob record")?,
        };
        let bodies = txn.open_table(BLOB_BODIES)?;
        let body = bodies
            .get((bucket, key))?
            .ok_or_else(|| StoreError::corrupt("blob body is missing"))?
            .value()
            .to_vec();
        Ok(Some((record.into_meta(key), body)))
    }

    fn usage(&self, bucket: &str) -> Result<Usage, StoreError> {
        validate_bucket(bucket)?;
        let txn = self.shared.db.begin_read()?;
        let usage = txn.open_table(USAGE)?;
        read_usage(&usage, USAGE_BLOB, bucket)
    }

    fn head(&self, bucket: &str, key: &str) -> Result<Option<BlobMeta>, StoreError> {
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

    fn delete(&self, bucket: &str, keys: &[&str]) -> Result<usize, StoreError> {
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
            let mut bodies = txn.open_table(BLOB_BODIES)?;
            let mut usage = txn.open_table(USAGE)?;
            let mut now = read_usage(&usage, USAGE_BLOB, bucket)?;
            let mut removed = 0;
            for key in keys {
                let row_len = metas.remove((bucket, *key))?.map(|g| g.value().len());
                let body_len = bodies
                    .remove((bucket, *key))?
                    .map_or(0, |g| g.value().len());
                if let Some(row_len) = row_len {
                    removed += 1;
                    now = now.replace(Some(entry_bytes(key, body_len, row_len)), None);
                }
            }
            write_usage(&mut usage, USAGE_BLOB, bucket, now)?;
            removed
        };
        txn.commit()?;
        Ok(removed)
    }

    fn list(&self, bucket: &str, options: BlobListOptions) -> Result<BlobListResult, StoreError> {
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
