//! Key-value storage with Cloudflare Workers KV semantics.
//!
//! Data lives in namespaces (one per KV binding). Keys are UTF-8 strings,
//! values are bytes with optional JSON metadata and an optional expiration.
//! Expired entries are invisible to every read and are deleted lazily (on the
//! next `get` of that key, when a `list` passes over them, or by
//! [`KvStore::purge_expired`]).
//!
//! # Limits
//!
//! The limits are Workers KV's, checked before anything is written, so a
//! function cannot store more per call than the constants below whatever it
//! passes. They bound one entry; the [`Quota`] passed to
//! [`KvStore::put`] bounds the namespace (see `quota.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{excerpt, StoreError};
use crate::quota::{Quota, Usage};

/// Longest key, in UTF-8 bytes.
pub const KV_MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes (25 MiB).
pub const KV_MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// Largest metadata, in bytes of its JSON serialization.
pub const KV_MAX_METADATA_BYTES: usize = 1024;
/// Shortest `expiration_ttl`, and the least time ahead of now an absolute
/// `expiration` may be, in seconds.
pub const KV_MIN_TTL_SECS: u64 = 60;
/// Keys per `list` page when no limit is given.
pub const KV_LIST_DEFAULT_LIMIT: usize = 1000;
/// Largest `list` limit.
pub const KV_LIST_MAX_LIMIT: usize = 1000;
/// Longest namespace name, in bytes.
pub const KV_MAX_NAMESPACE_BYTES: usize = 255;

/// A stored value with its metadata.
#[derive(Clone, PartialEq)]
pub struct KvEntry {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The metadata stored with it.
    pub metadata: Option<Value>,
    /// When it expires, unix seconds.
    pub expiration: Option<u64>,
}

impl fmt::Debug for KvEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvEntry")
            .field("value_len", &self.value.len())
            .field("metadata", &self.metadata)
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// Options of [`KvStore::put`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KvPutOptions {
    /// Absolute expiry, unix seconds; at least [`KV_MIN_TTL_SECS`] from now.
    pub expiration: Option<u64>,
    /// Expiry relative to now, seconds; at least [`KV_MIN_TTL_SECS`].
    /// Takes precedence over `expiration` when both are set (as in Workers KV).
    pub expiration_ttl: Option<u64>,
    /// Arbitrary JSON, at most [`KV_MAX_METADATA_BYTES`] serialized.
    pub metadata: Option<Value>,
}

/// Options of [`KvStore::list`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvListOptions {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// The `cursor` of the previous page.
    pub cursor: Option<String>,
    /// Keys per page: 1 to [`KV_LIST_MAX_LIMIT`], default [`KV_LIST_DEFAULT_LIMIT`].
    pub limit: Option<usize>,
}

/// One key in a [`KvListResult`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvKey {
    /// The key.
    pub name: String,
    /// When it expires, unix seconds.
    pub expiration: Option<u64>,
    /// Its metadata.
    pub metadata: Option<Value>,
}

/// One page of [`KvStore::list`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvListResult {
    /// Keys in ascending byte order.
    pub keys: Vec<KvKey>,
    /// True when there are no more keys after this page.
    pub list_complete: bool,
    /// Pass as [`KvListOptions::cursor`] for the next page; `None` when complete.
    pub cursor: Option<String>,
}

/// Key-value storage.
///
/// Every method validates its namespace and key first (see the `KV_*`
/// constants) and fails with a [`StoreError`] naming the rule broken. Every
/// mutating method commits before it returns.
#[async_trait::async_trait]
pub trait KvStore: Send + Sync + fmt::Debug {
    /// The entry under `key`, or `None` if absent or expired.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<KvEntry>, StoreError>;

    /// Stores `value` under `key`, replacing any previous entry, if the namespace stays
    /// within `quota` (else [`StoreError::QuotaExceeded`] and nothing is written).
    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        options: KvPutOptions,
        quota: Quota,
    ) -> Result<(), StoreError>;

    /// What the namespace holds (expired entries not yet swept included).
    async fn usage(&self, namespace: &str) -> Result<Usage, StoreError>;

    /// Removes `key`. Deleting an absent key is not an error.
    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError>;

    /// One page of keys in ascending byte order, without values.
    ///
    /// Paging with the returned cursor until `list_complete` visits every key
    /// that existed for the whole listing exactly once.
    async fn list(
        &self,
        namespace: &str,
        options: KvListOptions,
    ) -> Result<KvListResult, StoreError>;

    /// Deletes every expired entry in every namespace; returns how many. (The
    /// PostgreSQL backend also sweeps here the chunks of blob uploads that a crashed node
    /// left unfinished.)
    async fn purge_expired(&self) -> Result<u64, StoreError>;
}

/// Checks a namespace name: non-empty, at most [`KV_MAX_NAMESPACE_BYTES`].
pub(crate) fn validate_namespace(namespace: &str) -> Result<(), StoreError> {
    let reason = if namespace.is_empty() {
        "must not be empty"
    } else if namespace.len() > KV_MAX_NAMESPACE_BYTES {
        "must be at most 255 bytes"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidNamespace {
        namespace: excerpt(namespace),
        reason,
    })
}

/// Checks a key as Workers KV does: non-empty, not `.` or `..`, at most
/// [`KV_MAX_KEY_BYTES`].
pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        "key names must not be empty".to_owned()
    } else if key == "." || key == ".." {
        "key names must not be `.` or `..`".to_owned()
    } else if key.len() > KV_MAX_KEY_BYTES {
        format!(
            "key of {} bytes exceeds the limit of {KV_MAX_KEY_BYTES} bytes",
            key.len()
        )
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidKey {
        key: excerpt(key),
        reason,
    })
}

/// Checks a put and works out its absolute expiration (unix seconds).
pub(crate) fn validate_put(
    value: &[u8],
    options: &KvPutOptions,
    now_secs: u64,
) -> Result<Option<u64>, StoreError> {
    if value.len() > KV_MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge {
            what: "value",
            size: value.len(),
            limit: KV_MAX_VALUE_BYTES,
        });
    }
    if let Some(metadata) = &options.metadata {
        let size = serde_json::to_vec(metadata)
            .map_err(|e| StoreError::Backend(Box::new(e)))?
            .len();
        if size > KV_MAX_METADATA_BYTES {
            return Err(StoreError::TooLarge {
                what: "metadata",
                size,
                limit: KV_MAX_METADATA_BYTES,
            });
        }
    }
    if let Some(ttl) = options.expiration_ttl {
        if ttl < KV_MIN_TTL_SECS {
            return Err(StoreError::InvalidExpirationTtl {
                ttl,
                reason: "expiration TTL must be at least 60 seconds",
            });
        }
        let expiration = now_secs
            .checked_add(ttl)
            .ok_or(StoreError::InvalidExpirationTtl {
                ttl,
                reason: "expiration TTL is too large",
            })?;
        return check_bound(expiration).map(Some);
    }
    if let Some(expiration) = options.expiration {
        if expiration <= now_secs {
            return Err(StoreError::InvalidExpiration {
                expiration,
                reason: "must be greater than the current number of seconds since the unix epoch",
            });
        }
        if expiration < now_secs.saturating_add(KV_MIN_TTL_SECS) {
            return Err(StoreError::InvalidExpiration {
                expiration,
                reason: "expiration times must be at least 60 seconds in the future",
            });
        }
        return check_bound(expiration).map(Some);
    }
    Ok(None)
}

/// The latest expiration either backend can store: 2^63 - 1 seconds (PostgreSQL's `bigint`).
pub const KV_MAX_EXPIRATION: u64 = i64::MAX as u64;

fn check_bound(expiration: u64) -> Result<u64, StoreError> {
    if expiration > KV_MAX_EXPIRATION {
        return Err(StoreError::InvalidExpiration {
            expiration,
            reason: "must be at most 2^63 - 1 seconds since the unix epoch",
        });
    }
    Ok(expiration)
}

/// The page size a list call asked for, checked.
pub(crate) fn list_limit(limit: Option<usize>) -> Result<usize, StoreError> {
    match limit {
        None => Ok(KV_LIST_DEFAULT_LIMIT),
        Some(limit) if (1..=KV_LIST_MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(StoreError::InvalidListLimit {
            limit,
            max: KV_LIST_MAX_LIMIT,
        }),
    }
}

/// Whether an entry with this expiration is expired at `now_secs`.
pub(crate) fn is_expired(expiration: Option<u64>, now_secs: u64) -> bool {
    expiration.is_some_and(|at| at <= now_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_takes_precedence_over_absolute_expiration() {
        let options = KvPutOptions {
            expiration: Some(1),
            expiration_ttl: Some(120),
            metadata: None,
        };
        assert_eq!(validate_put(b"v", &options, 1000).ok(), Some(Some(1120)));
    }

    #[test]
    fn expiration_exactly_60_seconds_ahead_is_accepted() {
        let options = KvPutOptions {
            expiration: Some(1060),
            ..KvPutOptions::default()
        };
        assert_eq!(validate_put(b"v", &options, 1000).ok(), Some(Some(1060)));
    }

    #[test]
    fn entry_is_expired_from_its_expiration_second_on() {
        assert!(!is_expired(None, u64::MAX));
        assert!(!is_expired(Some(100), 99));
        assert!(is_expired(Some(100), 100));
    }
}
