//! [`KvStore`] on redb.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    blocking, from_json, read_usage, to_json, write_usage, Shared, KV_META, KV_VALUES, USAGE,
    USAGE_KV,
};
use crate::cursor;
use crate::error::StoreError;
use crate::kv::{
    is_expired, list_limit, validate_key, validate_namespace, validate_put, KvEntry, KvKey,
    KvListOptions, KvListResult, KvPutOptions, KvStore,
};
use crate::quota::{entry_bytes, Quota, QuotaScope, Usage};

type MetaTable<'t> = redb::Table<'t, (&'static str, &'static str), &'static [u8]>;

/// The bytes the entry under `key` counts for, if there is one.
fn stored_size(
    meta: &MetaTable<'_>,
    values: &MetaTable<'_>,
    namespace: &str,
    key: &str,
) -> Result<Option<u64>, StoreError> {
    let Some(record) = meta.get((namespace, key))? else {
        return Ok(None);
    };
    let value_len = values.get((namespace, key))?.map_or(0, |g| g.value().len());
    Ok(Some(entry_bytes(key, value_len, record.value().len())))
}

/// Removes the entry under `key` (if any) and takes it off the namespace's usage.
fn remove_entry(
    meta: &mut MetaTable<'_>,
    values: &mut MetaTable<'_>,
    usage: &mut redb::Table<'_, (&'static str, &'static str), (u64, u64)>,
    namespace: &str,
    key: &str,
) -> Result<(), StoreError> {
    let Some(old) = stored_size(meta, values, namespace, key)? else {
        return Ok(());
    };
    meta.remove((namespace, key))?;
    values.remove((namespace, key))?;
    let now = read_usage(usage, USAGE_KV, namespace)?;
    write_usage(usage, USAGE_KV, namespace, now.replace(Some(old), None))
}

/// Most expired keys one `list` call deletes on its way past them.
const LIST_SWEEP_MAX: usize = 1000;

/// One entry's row in `kv_meta`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KvRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
}

/// The KV store of a [`super::RedbBackend`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RedbKvStore {
    shared: Arc<Shared>,
}

impl RedbKvStore {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        RedbKvStore { shared }
    }

    /// Deletes those of `keys` that are still expired at `now_secs` (a put
    /// may have replaced one since it was read).
    fn sweep(&self, namespace: &str, keys: &[String], now_secs: u64) -> Result<(), StoreError> {
        let txn = self.shared.db.begin_write()?;
        {
            let mut meta = txn.open_table(KV_META)?;
            let mut values = txn.open_table(KV_VALUES)?;
            let mut usage = txn.open_table(USAGE)?;
            for key in keys {
                let expired = match meta.get((namespace, key.as_str()))? {
                    None => false,
                    Some(guard) => {
                        let record: KvRecord = from_json(guard.value(), "kv record")?;
                        is_expired(record.expiration, now_secs)
                    }
                };
                if expired {
                    remove_entry(&mut meta, &mut values, &mut usage, namespace, key)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl RedbKvStore {
    fn get_blocking(&self, namespace: &str, key: &str) -> Result<Option<KvEntry>, StoreError> {
        validate_namespace(namespace)?;
        validate_key(key)?;
        let now = self.shared.clock.now_secs();
        let entry = {
            let txn = self.shared.db.begin_read()?;
            let meta = txn.open_table(KV_META)?;
            let record: KvRecord = match meta.get((namespace, key))? {
                None => return Ok(None),
                Some(guard) => from_json(guard.value(), "kv record")?,
            };
            if is_expired(record.expiration, now) {
                None
            } else {
                let values = txn.open_table(KV_VALUES)?;
                let value = values
                    .get((namespace, key))?
                    .ok_or_else(|| StoreError::corrupt("kv value is missing"))?
                    .value()
                    .to_vec();
                Some(KvEntry {
                    value,
                    metadata: record.metadata,
                    expiration: record.expiration,
                })
            }
        };
        if entry.is_none() {
            self.sweep(namespace, &[key.to_owned()], now)?;
        }
        Ok(entry)
    }

    fn put_blocking(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        options: KvPutOptions,
        quota: Quota,
    ) -> Result<(), StoreError> {
        validate_namespace(namespace)?;
        validate_key(key)?;
        let expiration = validate_put(value, &options, self.shared.clock.now_secs())?;
        let record = to_json(&KvRecord {
            expiration,
            metadata: options.metadata,
        })?;
        let txn = self.shared.db.begin_write()?;
        {
            let mut meta = txn.open_table(KV_META)?;
            let mut values = txn.open_table(KV_VALUES)?;
            let mut usage = txn.open_table(USAGE)?;
            let old = stored_size(&meta, &values, namespace, key)?;
            let now = read_usage(&usage, USAGE_KV, namespace)?;
            let next = now.replace(old, Some(entry_bytes(key, value.len(), record.len())));
            // Refused: the transaction is dropped, so nothing is written.
            now.admit(next, quota, QuotaScope::KvNamespace, namespace)?;
            meta.insert((namespace, key), record.as_slice())?;
            values.insert((namespace, key), value)?;
            write_usage(&mut usage, USAGE_KV, namespace, next)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn usage_blocking(&self, namespace: &str) -> Result<Usage, StoreError> {
        validate_namespace(namespace)?;
        let txn = self.shared.db.begin_read()?;
        let usage = txn.open_table(USAGE)?;
        read_usage(&usage, USAGE_KV, namespace)
    }

    fn delete_blocking(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        validate_namespace(namespace)?;
        validate_key(key)?;
        let txn = self.shared.db.begin_write()?;
        {
            let mut meta = txn.open_table(KV_META)?;
            let mut values = txn.open_table(KV_VALUES)?;
            let mut usage = txn.open_table(USAGE)?;
            remove_entry(&mut meta, &mut values, &mut usage, namespace, key)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn list_blocking(
        &self,
        namespace: &str,
        options: KvListOptions,
    ) -> Result<KvListResult, StoreError> {
        validate_namespace(namespace)?;
        let limit = list_limit(options.limit)?;
        let prefix = options.prefix.unwrap_or_default();
        let start = cursor::start_key(&prefix, options.cursor.as_deref())?;
        let now = self.shared.clock.now_secs();

        let mut keys = Vec::new();
        let mut expired = Vec::new();
        let mut next = None;
        {
            let txn = self.shared.db.begin_read()?;
            let meta = txn.open_table(KV_META)?;
            for entry in meta.range((namespace, start.as_str())..)? {
                let (k, v) = entry?;
                let (entry_namespace, name) = k.value();
                if entry_namespace != namespace || !name.starts_with(prefix.as_str()) {
                    break;
                }
                let record: KvRecord = from_json(v.value(), "kv record")?;
                if is_expired(record.expiration, now) {
                    if expired.len() < LIST_SWEEP_MAX {
                        expired.push(name.to_owned());
                    }
                    continue;
                }
                if keys.len() == limit {
                    next = Some(cursor::encode(name));
                    break;
                }
                keys.push(KvKey {
                    name: name.to_owned(),
                    expiration: record.expiration,
                    metadata: record.metadata,
                });
            }
        }
        if !expired.is_empty() {
            self.sweep(namespace, &expired, now)?;
        }
        Ok(KvListResult {
            keys,
            list_complete: next.is_none(),
            cursor: next,
        })
    }

    fn purge_expired_blocking(&self) -> Result<u64, StoreError> {
        let now = self.shared.clock.now_secs();
        let txn = self.shared.db.begin_write()?;
        let purged = {
            let mut meta = txn.open_table(KV_META)?;
            let mut values = txn.open_table(KV_VALUES)?;
            let mut doomed = Vec::new();
            for entry in meta.iter()? {
                let (k, v) = entry?;
                let record: KvRecord = from_json(v.value(), "kv record")?;
                if is_expired(record.expiration, now) {
                    let (namespace, key) = k.value();
                    doomed.push((namespace.to_owned(), key.to_owned()));
                }
            }
            let mut usage = txn.open_table(USAGE)?;
            for (namespace, key) in &doomed {
                remove_entry(&mut meta, &mut values, &mut usage, namespace, key)?;
            }
            u64::try_from(doomed.len()).unwrap_or(u64::MAX)
        };
        txn.commit()?;
        Ok(purged)
    }
}

#[async_trait::async_trait]
impl KvStore for RedbKvStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<KvEntry>, StoreError> {
        let (this, namespace, key) = (self.clone(), namespace.to_owned(), key.to_owned());
        blocking(move || this.get_blocking(&namespace, &key)).await
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        options: KvPutOptions,
        quota: Quota,
    ) -> Result<(), StoreError> {
        let (this, namespace, key) = (self.clone(), namespace.to_owned(), key.to_owned());
        blocking(move || this.put_blocking(&namespace, &key, &value, options, quota)).await
    }

    async fn usage(&self, namespace: &str) -> Result<Usage, StoreError> {
        let (this, namespace) = (self.clone(), namespace.to_owned());
        blocking(move || this.usage_blocking(&namespace)).await
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let (this, namespace, key) = (self.clone(), namespace.to_owned(), key.to_owned());
        blocking(move || this.delete_blocking(&namespace, &key)).await
    }

    async fn list(
        &self,
        namespace: &str,
        options: KvListOptions,
    ) -> Result<KvListResult, StoreError> {
        let (this, namespace) = (self.clone(), namespace.to_owned());
        blocking(move || this.list_blocking(&namespace, options)).await
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let this = self.clone();
        blocking(move || this.purge_expired_blocking()).await
    }
}
