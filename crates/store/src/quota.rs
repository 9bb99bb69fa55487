//! Quotas: what one KV namespace or one blob bucket may hold in total, and what it holds now.
//!
//! The per-entry limits of `kv.rs` and `blob.rs` bound one call; a [`Quota`] bounds the sum,
//! so one function cannot fill the disk a few megabytes at a time. Backends keep a usage row
//! per namespace and bucket, updated in the same transaction as the data, and check a write
//! against the quota inside that transaction: two concurrent writers never both slip under.
//!
//! What counts: for each entry, its key bytes plus its value (or body) bytes plus the bytes of
//! its stored metadata record. A write that would grow the total past `max_bytes`, or add a
//! key past `max_keys`, fails with [`StoreError::QuotaExceeded`](crate::StoreError) and writes
//! nothing. A write that shrinks usage (or replaces an entry with a smaller one) always
//! succeeds, so a namespace over a lowered quota can still be cleaned up. Expired KV entries
//! count until they are swept.

use serde::{Deserialize, Serialize};

/// Default quota bytes per namespace or bucket: 1 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;
/// Default quota keys per namespace or bucket.
pub const DEFAULT_QUOTA_KEYS: u64 = 1_000_000;

/// The most one namespace or bucket may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Total bytes (keys, values or bodies, and metadata).
    pub max_bytes: u64,
    /// Number of keys.
    pub max_keys: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            max_bytes: DEFAULT_QUOTA_BYTES,
            max_keys: DEFAULT_QUOTA_KEYS,
        }
    }
}

impl Quota {
    /// The smaller of each limit: a binding never gets more than the server allows.
    pub fn min(self, other: Quota) -> Quota {
        Quota {
            max_bytes: self.max_bytes.min(other.max_bytes),
            max_keys: self.max_keys.min(other.max_keys),
        }
    }
}

/// What one namespace or bucket holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Total bytes, counted as [`Quota::max_bytes`] counts them.
    pub bytes: u64,
    /// Number of keys.
    pub keys: u64,
}

/// Which kind of container a quota applies to (for errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaScope {
    /// A KV namespace.
    KvNamespace,
    /// A blob bucket.
    BlobBucket,
}

impl std::fmt::Display for QuotaScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuotaScope::KvNamespace => "KV namespace",
            QuotaScope::BlobBucket => "bucket",
        })
    }
}

/// Which limit of a [`Quota`] a write would break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaResource {
    /// [`Quota::max_bytes`].
    Bytes,
    /// [`Quota::max_keys`].
    Keys,
}

impl std::fmt::Display for QuotaResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuotaResource::Bytes => "bytes",
            QuotaResource::Keys => "keys",
        })
    }
}

impl Usage {
    /// Usage after replacing an entry of `old` bytes (`None`: absent) with one of `new`
    /// bytes (`None`: deleted).
    pub(crate) fn replace(self, old: Option<u64>, new: Option<u64>) -> Usage {
        let bytes = self
            .bytes
            .saturating_sub(old.unwrap_or(0))
            .saturating_add(new.unwrap_or(0));
        let keys = match (old.is_some(), new.is_some()) {
            (false, true) => self.keys.saturating_add(1),
            (true, false) => self.keys.saturating_sub(1),
            _ => self.keys,
        };
        Usage { bytes, keys }
    }

    /// Checks moving from `self` to `next` against `quota`: growth past a limit is refused.
    pub(crate) fn admit(
        self,
        next: Usage,
        quota: Quota,
        scope: QuotaScope,
        name: &str,
    ) -> Result<(), crate::StoreError> {
        let refuse = |resource, used, limit| crate::StoreError::QuotaExceeded {
            scope,
            name: crate::error::excerpt(name),
            resource,
            used,
            limit,
        };
        if next.bytes > self.bytes && next.bytes > quota.max_bytes {
            return Err(refuse(QuotaResource::Bytes, next.bytes, quota.max_bytes));
        }
        if next.keys > self.keys && next.keys > quota.max_keys {
            return Err(refuse(QuotaResource::Keys, next.keys, quota.max_keys));
        }
        Ok(())
    }
}

/// Bytes one stored entry counts for.
pub(crate) fn entry_bytes(key: &str, value_len: usize, record_len: usize) -> u64 {
    entry_len(key.len(), value_len, record_len)
}

/// Bytes one stored entry counts for, from the three lengths.
pub(crate) fn entry_len(key_len: usize, value_len: usize, record_len: usize) -> u64 {
    let total = key_len.saturating_add(value_len).saturating_add(record_len);
    u64::try_from(total).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_a_limit_is_refused_and_shrinking_is_not() {
        let quota = Quota {
            max_bytes: 100,
            max_keys: 2,
        };
        let now = Usage { bytes: 90, keys: 2 };
        let bigger = now.replace(Some(10), Some(30));
        assert!(now
            .admit(bigger, quota, QuotaScope::KvNamespace, "ns")
            .is_err());
        let smaller = now.replace(Some(10), Some(5));
        assert!(now
            .admit(smaller, quota, QuotaScope::KvNamespace, "ns")
            .is_ok());
        let third = now.replace(None, Some(1));
        assert!(matches!(
            now.admit(third, quota, QuotaScope::KvNamespace, "ns"),
            Err(crate::StoreError::QuotaExceeded {
                resource: QuotaResource::Keys,
                ..
            })
        ));
        // Over a lowered quota, a delete still goes through.
        let over = Usage {
            bytes: 500,
            keys: 9,
        };
        let deleted = over.replace(Some(50), None);
        assert!(over
            .admit(deleted, quota, QuotaScope::BlobBucket, "b")
            .is_ok());
    }
}
