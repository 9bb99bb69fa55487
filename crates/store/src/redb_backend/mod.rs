//! The embedded backend: one redb file (or an in-memory redb) holding all
//! three stores.
//!
//! Every mutating call runs in its own write transaction committed with
//! redb's default `Durability::Immediate` (fsync before returning), so data
//! survives a crash or SIGKILL of the process once the call returns. Readers
//! run in read transactions and never block writers or each other; redb
//! serializes writers, so concurrent writes from many threads queue.
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | u64 (`schema_version`, `blob_version`) |
//! | `code_functions` | id | JSON `FunctionRecord` |
//! | `code_versions` | (id, version) | JSON `VersionRecord` |
//! | `code_bundles` | (id, version) | bundle bytes |
//! | `code_counters` | id | last version issued (kept after delete) |
//! | `kv_meta` | (namespace, key) | JSON `KvRecord` (expiration, metadata) |
//! | `kv_values` | (namespace, key) | value bytes |
//! | `blob_meta` | (bucket, key) | JSON `BlobRecord` (its hex `version` names its chunks) |
//! | `blob_chunks` | (version, n) | bytes `n × 1 MiB ..` of that version's body |
//! | `blob_uploads` | version | start time (ms) of a put whose body is still streaming in |
//! | `usage` | ("kv" or "blob", namespace or bucket) | (bytes, keys), see `quota.rs` |
//!
//! Metadata and bytes are in separate tables so that listings never read
//! values or bodies. The `usage` row of a namespace or bucket changes in the
//! same transaction as its data, so it is always exact.

mod blob;
mod code;
mod kv;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::quota::{entry_bytes, Usage};

pub use blob::RedbBlobStore;
pub use code::RedbCodeStore;
pub use kv::RedbKvStore;

/// The schema version this build writes and understands.
/// Version 2 added the `usage` table (rebuilt from the data when a version 1 file opens).
/// Version 3 stores blob bodies in 1 MiB chunks (`blob_bodies` is split into `blob_chunks`).
const SCHEMA_VERSION: u64 = 3;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const CODE_FUNCTIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("code_functions");
const CODE_VERSIONS: TableDefinition<'_, (&str, u64), &[u8]> =
    TableDefinition::new("code_versions");
const CODE_BUNDLES: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("code_bundles");
const CODE_COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("code_counters");
const KV_META: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("kv_meta");
const KV_VALUES: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("kv_values");
const BLOB_META: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("blob_meta");
/// Schema 1 and 2 only: whole bodies, split into `blob_chunks` when such a file opens.
const BLOB_BODIES: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("blob_bodies");
const BLOB_CHUNKS: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("blob_chunks");
const BLOB_UPLOADS: TableDefinition<'_, u64, u64> = TableDefinition::new("blob_uploads");
const USAGE: TableDefinition<'_, (&str, &str), (u64, u64)> = TableDefinition::new("usage");
/// `usage` row scopes.
const USAGE_KV: &str = "kv";
const USAGE_BLOB: &str = "blob";

/// What the three stores share: the database and the clock.
struct Shared {
    db: Database,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("db", &self.db)
            .field("clock", &self.clock)
            .finish()
    }
}

/// An open redb database. Hand out its stores with [`RedbBackend::code`],
/// [`RedbBackend::kv`] and [`RedbBackend::blob`]; usually through
/// [`crate::Store`].
#[derive(Clone, Debug)]
pub struct RedbBackend {
    shared: Arc<Shared>,
}

impl RedbBackend {
    /// Opens the database file at `path`, creating it (and its parent
    /// directories) if missing.
    ///
    /// The data is private to the user running the process: missing
    /// directories are created with mode 0700 and the file with mode 0600 (on
    /// Unix), from the start rather than narrowed afterwards, so no crash can
    /// leave them readable by others; an existing file is narrowed to 0600.
    ///
    /// Fails with [`StoreError::AlreadyOpen`] if the file is open already,
    /// in this process or another.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::private::create_dir_all(parent)?;
        }
        crate::private::create_file(path)?;
        let db = Database::create(path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
                path: path.to_owned(),
            },
            other => StoreError::from(other),
        })?;
        Self::init(db, clock)
    }

    /// A database that lives in memory and disappears when the last handle
    /// is dropped.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, clock)
    }

    /// Creates every table (so read transactions never meet a missing one)
    /// and checks or records the schema version.
    fn init(db: Database, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::UnsupportedSchema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(SCHEMA_VERSION) => {}
                Some(found) => {
                    if found < 2 {
                        rebuild_usage(&txn)?;
                    }
                    split_bodies_into_chunks(&txn)?;
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
            txn.open_table(CODE_FUNCTIONS)?;
            txn.open_table(CODE_VERSIONS)?;
            txn.open_table(CODE_BUNDLES)?;
            txn.open_table(CODE_COUNTERS)?;
            txn.open_table(KV_META)?;
            txn.open_table(KV_VALUES)?;
            txn.open_table(BLOB_META)?;
            txn.open_table(BLOB_CHUNKS)?;
            txn.open_table(USAGE)?;
            abandon_uploads(&txn)?;
        }
        txn.commit()?;
        Ok(RedbBackend {
            shared: Arc::new(Shared { db, clock }),
        })
    }

    /// The code store on this database.
    pub fn code(&self) -> RedbCodeStore {
        RedbCodeStore::new(Arc::clone(&self.shared))
    }

    /// The KV store on this database.
    pub fn kv(&self) -> RedbKvStore {
        RedbKvStore::new(Arc::clone(&self.shared))
    }

    /// The blob store on this database.
    pub fn blob(&self) -> RedbBlobStore {
        RedbBlobStore::new(Arc::clone(&self.shared))
    }
}

/// Runs a blocking redb call on tokio's blocking pool (every write waits for an fsync).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn from_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

/// The usage row of one namespace or bucket.
fn read_usage(
    table: &impl ReadableTable<(&'static str, &'static str), (u64, u64)>,
    scope: &str,
    name: &str,
) -> Result<Usage, StoreError> {
    Ok(table
        .get((scope, name))?
        .map(|g| {
            let (bytes, keys) = g.value();
            Usage { bytes, keys }
        })
        .unwrap_or_default())
}

/// Stores the usage row of one namespace or bucket (removing it when empty).
fn write_usage(
    table: &mut redb::Table<'_, (&'static str, &'static str), (u64, u64)>,
    scope: &str,
    name: &str,
    usage: Usage,
) -> Result<(), StoreError> {
    if usage == Usage::default() {
        table.remove((scope, name))?;
    } else {
        table.insert((scope, name), (usage.bytes, usage.keys))?;
    }
    Ok(())
}

/// Recomputes every usage row from the data (opening a file written before usage rows).
fn rebuild_usage(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut totals: std::collections::BTreeMap<(&str, String), Usage> = Default::default();
    {
        let meta = txn.open_table(KV_META)?;
        let values = txn.open_table(KV_VALUES)?;
        for entry in meta.iter()? {
            let (k, v) = entry?;
            let (namespace, key) = k.value();
            let value_len = values.get((namespace, key))?.map_or(0, |g| g.value().len());
            let u = totals.entry((USAGE_KV, namespace.to_owned())).or_default();
            *u = u.replace(None, Some(entry_bytes(key, value_len, v.value().len())));
        }
        let metas = txn.open_table(BLOB_META)?;
        let bodies = txn.open_table(BLOB_BODIES)?;
        for entry in metas.iter()? {
            let (k, v) = entry?;
            let (bucket, key) = k.value();
            let body_len = bodies.get((bucket, key))?.map_or(0, |g| g.value().len());
            let u = totals.entry((USAGE_BLOB, bucket.to_owned())).or_default();
            *u = u.replace(None, Some(entry_bytes(key, body_len, v.value().len())));
        }
    }
    let mut usage = txn.open_table(USAGE)?;
    for ((scope, name), u) in totals {
        write_usage(&mut usage, scope, &name, u)?;
    }
    Ok(())
}

/// Schema 2 to 3: each whole body in `blob_bodies` becomes chunks of its object's version.
fn split_bodies_into_chunks(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    {
        let metas = txn.open_table(BLOB_META)?;
        let bodies = txn.open_table(BLOB_BODIES)?;
        let mut chunks = txn.open_table(BLOB_CHUNKS)?;
        for entry in metas.iter()? {
            let (k, v) = entry?;
            let (bucket, key) = k.value();
            let record: crate::blob::BlobRecord = from_json(v.value(), "blob record")?;
            let version = record.chunk_version()?;
            if let Some(body) = bodies.get((bucket, key))? {
                for (seq, chunk) in body.value().chunks(crate::BLOB_CHUNK_BYTES).enumerate() {
                    let seq = u32::try_from(seq)
                        .map_err(|_| StoreError::corrupt("blob body has too many chunks"))?;
                    chunks.insert((version, seq), chunk)?;
                }
            }
        }
    }
    txn.delete_table(BLOB_BODIES)?;
    Ok(())
}

/// Deletes the chunks of every upload still pending: at open, no put is running, so these
/// are puts a crash interrupted before they were acknowledged.
fn abandon_uploads(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut uploads = txn.open_table(BLOB_UPLOADS)?;
    let mut chunks = txn.open_table(BLOB_CHUNKS)?;
    let pending: Vec<u64> = uploads
        .iter()?
        .map(|e| e.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    for version in pending {
        chunks.retain_in((version, 0)..=(version, u32::MAX), |_, _| false)?;
        uploads.remove(version)?;
    }
    Ok(())
}
