//! Storage for Functions: the code of deployed functions, Workers-KV-style
//! key-value data and R2-style blobs.
//!
//! Three traits say what the rest of the system may ask of storage:
//! [`CodeStore`] (numbered, immutable versions of each function's bundle, one
//! of them live), [`KvStore`] (namespaced keys with metadata and expiry) and
//! [`BlobStore`] (bucketed objects with HTTP and custom metadata, bodies as
//! streams). A [`Store`] holds one of each behind an `Arc`; it is cheap to clone
//! and `Send + Sync`.
//!
//! Two backends implement them with the same semantics, proven by one test suite
//! (`tests/all`) run against both:
//!
//! - **embedded** (the default): one [redb](https://www.redb.org) file, no server
//!   to install ([`Store::open`]), or a database in memory for tests
//!   ([`Store::in_memory`]);
//! - **PostgreSQL** ([`Store::connect_postgres`]), for several nodes over one shared
//!   database: a connection pool, embedded schema migrations applied at connect, a
//!   notification on every code change, and TLS as libpq's URL parameters ask (`sslmode`,
//!   default `prefer`; `sslrootcert`, `sslcert`, `sslkey`; rustls) (see [`postgres`]).
//!
//! ```
//! use store::{KvPutOptions, Quota, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), store::StoreError> {
//! let store = Store::in_memory()?;
//!
//! let v1 = store.code().deploy("hello", br#"{"main":"index.js"}"#.to_vec(), Some("first")).await?;
//! let v2 = store.code().deploy("hello", br#"{"main":"v2.js"}"#.to_vec(), None).await?;
//! assert_eq!(store.code().live("hello").await?.map(|c| c.version), Some(v2));
//! assert_eq!(store.code().rollback("hello").await?, v1);
//!
//! let kv = store.kv();
//! kv.put("SESSIONS", "user:1", b"alice".to_vec(), KvPutOptions::default(), Quota::default()).await?;
//! let entry = kv.get("SESSIONS", "user:1").await?;
//! assert_eq!(entry.map(|e| e.value), Some(b"alice".to_vec()));
//! # Ok(())
//! # }
//! ```
//!
//! # Why the traits are async
//!
//! Every method is `async` (through `async-trait`, so the traits stay object safe). The
//! callers are async already (the HTTP server and the capnweb bindings), PostgreSQL is
//! network I/O that should not hold a blocking thread per query, and a blob body is a
//! stream whose chunks are read from the database as the consumer pulls them: an async
//! stream composes with the HTTP body and capnweb's `ReadableStream` where a blocking
//! reader could not. The redb backend keeps its synchronous, fsyncing transactions and
//! runs each on tokio's blocking pool (`spawn_blocking`), so callers need a tokio runtime.
//!
//! # Durability and concurrency
//!
//! Each mutating call commits its own transaction before returning, so a
//! change that returned `Ok` survives a crash or SIGKILL of the process (and, on
//! PostgreSQL, of any node). On redb, reads never block and writes to one file are
//! serialized; on PostgreSQL, writes to one KV namespace or bucket are serialized by a
//! lock on its usage row, and writes to different ones run in parallel.
//!
//! # Untrusted input
//!
//! Ids, keys, values and metadata come from admin requests and from function
//! code. Every call checks them against documented limits
//! ([`FUNCTION_ID_MAX_LEN`], the `KV_*` and `BLOB_*` constants) before
//! touching storage and fails with a [`StoreError`] that names the rule; no
//! input makes a call panic. [`Quota`]s bound what one namespace or bucket holds
//! in total, checked inside the write transaction.
//!
//! # What it does not do (yet)
//!
//! - libpq's default TLS files (`~/.postgresql/root.crt`, `postgresql.crt`), the `PGSSL*`
//!   variables, `sslcrl` and encrypted client keys: name the files in the URL.
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
pub mod postgres;
pub mod private;
mod quota;
pub mod redb_backend;

use std::path::Path;
use std::sync::Arc;

pub use blob::{
    body_from_bytes, read_body, BlobBody, BlobListOptions, BlobListResult, BlobMeta, BlobObject,
    BlobPutOptions, BlobStore, HttpMetadata, BLOB_CHUNK_BYTES, BLOB_LIST_DEFAULT_LIMIT,
    BLOB_LIST_MAX_LIMIT, BLOB_MAX_BODY_BYTES, BLOB_MAX_BUCKET_BYTES,
    BLOB_MAX_CUSTOM_METADATA_BYTES, BLOB_MAX_DELETE_KEYS, BLOB_MAX_HTTP_METADATA_BYTES,
    BLOB_MAX_KEY_BYTES,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use code::{
    validate_function_id, CodeStore, CodeVersion, FunctionInfo, VersionInfo, CODE_MAX_BUNDLE_BYTES,
    CODE_MAX_NOTE_BYTES, FUNCTION_ID_MAX_LEN,
};
pub use error::{CertificateProblem, StoreError, TlsFailure};
pub use kv::{
    KvEntry, KvKey, KvListOptions, KvListResult, KvPutOptions, KvStore, KV_LIST_DEFAULT_LIMIT,
    KV_LIST_MAX_LIMIT, KV_MAX_EXPIRATION, KV_MAX_KEY_BYTES, KV_MAX_METADATA_BYTES,
    KV_MAX_NAMESPACE_BYTES, KV_MAX_VALUE_BYTES, KV_MIN_TTL_SECS,
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
    postgres: Option<postgres::PgBackend>,
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

    /// Connects to the PostgreSQL database at `url` with the default pool settings and the
    /// system clock, applying schema migrations (see [`postgres::PgBackend::connect`]).
    pub async fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        Self::connect_postgres_with(url, postgres::PgOptions::default(), Arc::new(SystemClock))
            .await
    }

    /// [`Store::connect_postgres`] with chosen pool settings and clock.
    pub async fn connect_postgres_with(
        url: &str,
        options: postgres::PgOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let backend = postgres::PgBackend::connect(url, options, clock).await?;
        Ok(Store {
            code: Arc::new(backend.code()),
            kv: Arc::new(backend.kv()),
            blob: Arc::new(backend.blob()),
            postgres: Some(backend),
        })
    }

    /// A store made of any three implementations (another backend, or test
    /// doubles).
    pub fn from_parts(
        code: Arc<dyn CodeStore>,
        kv: Arc<dyn KvStore>,
        blob: Arc<dyn BlobStore>,
    ) -> Self {
        Store {
            code,
            kv,
            blob,
            postgres: None,
        }
    }

    fn from_redb(backend: &RedbBackend) -> Self {
        Store {
            code: Arc::new(backend.code()),
            kv: Arc::new(backend.kv()),
            blob: Arc::new(backend.blob()),
            postgres: None,
        }
    }

    /// The PostgreSQL backend, when this store is one (shared by several nodes).
    pub fn postgres(&self) -> Option<&postgres::PgBackend> {
        self.postgres.as_ref()
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
