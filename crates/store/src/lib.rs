//! Storage for Functions: the code of deployed functions, Workers-KV-style
//! key-value data and R2-style blobs.
//!
//! Three traits say what the rest of the system may ask of storage:
//! [`CodeStore`] (numbered, immutable versions of each function's bundle, one
//! of them live), [`KvStore`] (namespaced keys with metadata and expiry) and
//! [`BlobStore`] (bucketed objects with HTTP and custom metadata). A [`Store`]
//! holds one of each behind an `Arc`; it is cheap to clone and `Send + Sync`.
//!
//! The default backend is embedded: one [redb](https://www.redb.org) file, no
//! server to install ([`Store::open`]), or a database in memory for tests
//! ([`Store::in_memory`]).
//!
//! ```
//! use store::{KvPutOptions, Quota, Store};
//!
//! # fn main() -> Result<(), store::StoreError> {
//! let store = Store::in_memory()?;
//!
//! let v1 = store.code().deploy("hello", br#"{"main":"index.js"}"#, Some("first"))?;
//! let v2 = store.code().deploy("hello", br#"{"main":"v2.js"}"#, None)?;
//! assert_eq!(store.code().live("hello")?.map(|c| c.version), Some(v2));
//! assert_eq!(store.code().rollback("hello")?, v1);
//!
//! store.kv().put("SESSIONS", "user:1", b"alice", KvPutOptions::default(), Quota::default())?;
//! let entry = store.kv().get("SESSIONS", "user:1")?;
//! assert_eq!(entry.map(|e| e.value), Some(b"alice".to_vec()));
//! # Ok(())
//! # }
//! ```
//!
//! # Calling from async code
//!
//! Every method is synchronous and may block on disk I/O (a write waits for
//! an fsync). From async code call it inside `tokio::task::spawn_blocking`,
//! moving a clone of the [`Store`] (or of the `Arc` that [`Store::code`]
//! returns) into the closure.
//!
//! # Durability and concurrency
//!
//! Each mutating call commits its own transaction before returning, so a
//! change that returned `Ok` survives a crash or SIGKILL of the process. Reads
//! never block; writes to one database are serialized.
//!
//! # Untrusted input
//!
//! Ids, keys, values and metadata come from admin requests and from function
//! code. Every call checks them against documented limits
//! ([`FUNCTION_ID_MAX_LEN`], the `KV_*` and `BLOB_*` constants) before
//! touching storage and fails with a [`StoreError`] that names the rule; no
//! input makes a call panic. The limits bound each call; quotas across calls
//! (total bytes per namespace, writes per second) belong to the caller.
//!
//! # What it does not do (yet)
//!
//! - **A shared database for many nodes.** The traits are written so that one
//!   can be added without changing callers: a `postgres` (or similar) module
//!   implementing the three traits over a connection pool, with the same
//!   tables as the redb backend (`code_functions`, `code_versions`, ...;
//!   `bytea` columns for bundles, values and bodies, or an object store for
//!   large bodies), `deploy` as one SQL transaction that bumps a per-id
//!   counter row with `SELECT ... FOR UPDATE`, KV expiry as an indexed column,
//!   and a [`Store::from_parts`] constructor call. Nodes that cache code
//!   would also need change notification (e.g. `LISTEN/NOTIFY`) or a short
//!   TTL on [`CodeStore::live_version`] checks.
//! - Range or conditional reads of blobs, multipart uploads, KV `getWithMetadata`
//!   caching semantics (`cacheTtl`): everything here is read-your-writes.
//! - Pruning old code versions: they accumulate until the function is deleted.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![deny(unused_must_use)]

mod blob;
mod clock;
mod code;
mod cursor;
mod error;
mod kv;
pub mod private;
mod quota;
pub mod redb_backend;

use std::path::Path;
use std::sync::Arc;

pub use blob::{
    BlobListOptions, BlobListResult, BlobMeta, BlobPutOptions, BlobStore, HttpMetadata,
    BLOB_LIST_DEFAULT_LIMIT, BLOB_LIST_MAX_LIMIT, BLOB_MAX_BODY_BYTES, BLOB_MAX_BUCKET_BYTES,
    BLOB_MAX_CUSTOM_METADATA_BYTES, BLOB_MAX_DELETE_KEYS, BLOB_MAX_HTTP_METADATA_BYTES,
    BLOB_MAX_KEY_BYTES,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use code::{
    validate_function_id, CodeStore, CodeVersion, FunctionInfo, VersionInfo, CODE_MAX_BUNDLE_BYTES,
    CODE_MAX_NOTE_BYTES, FUNCTION_ID_MAX_LEN,
};
pub use error::StoreError;
pub use kv::{
    KvEntry, KvKey, KvListOptions, KvListResult, KvPutOptions, KvStore, KV_LIST_DEFAULT_LIMIT,
    KV_LIST_MAX_LIMIT, KV_MAX_KEY_BYTES, KV_MAX_METADATA_BYTES, KV_MAX_NAMESPACE_BYTES,
    KV_MAX_VALUE_BYTES, KV_MIN_TTL_SECS,
};
pub use quota::{Quota, QuotaResource, QuotaScope, Usage, DEFAULT_QUOTA_BYTES, DEFAULT_QUOTA_KEYS};

use redb_backend::RedbBackend;

/// The handle the rest of the system holds: one code store, one KV store and
/// one blob store, all on the same backend. Cheap to clone; clones share it.
#[derive(Clone, Debug)]
pub struct Store {
    code: Arc<dyn CodeStore>,
    kv: Arc<dyn KvStore>,
    blob: Arc<dyn BlobStore>,
}

impl Store {
    /// Opens (creating if missing, with parent directories) the redb file at
    /// `path`.
    ///
    /// One file can be open once at a time: a second open fails with
    /// [`StoreError::AlreadyOpen`]; clone the first `Store` instead.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_clock(path, Arc::new(SystemClock))
    }

    /// [`Store::open`] with a chosen clock (tests pass a [`ManualClock`]).
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        Ok(Self::from_redb(&RedbBackend::open(path.as_ref(), clock)?))
    }

    /// A store in memory, gone when the last clone is dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::in_memory_with_clock(Arc::new(SystemClock))
    }

    /// [`Store::in_memory`] with a chosen clock.
    pub fn in_memory_with_clock(clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Ok(Self::from_redb(&RedbBackend::in_memory(clock)?))
    }

    /// A store made of any three implementations (another backend, or test
    /// doubles).
    pub fn from_parts(
        code: Arc<dyn CodeStore>,
        kv: Arc<dyn KvStore>,
        blob: Arc<dyn BlobStore>,
    ) -> Self {
        Store { code, kv, blob }
    }

    fn from_redb(backend: &RedbBackend) -> Self {
        Store {
            code: Arc::new(backend.code()),
            kv: Arc::new(backend.kv()),
            blob: Arc::new(backend.blob()),
        }
    }

    /// The code store. Call methods through it directly, or clone the `Arc`
    /// to hand it on.
    pub fn code(&self) -> &Arc<dyn CodeStore> {
        &self.code
    }

    /// The KV store.
    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    /// The blob store.
    pub fn blob(&self) -> &Arc<dyn BlobStore> {
        &self.blob
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handles_are_send_sync_and_clone() {
        assert_send_sync_clone::<Store>();
        assert_send_sync_clone::<Arc<dyn CodeStore>>();
        assert_send_sync_clone::<Arc<dyn KvStore>>();
        assert_send_sync_clone::<Arc<dyn BlobStore>>();
        assert_send_sync_clone::<redb_backend::RedbCodeStore>();
        assert_send_sync_clone::<ManualClock>();
    }
}
