//! Behaviour tests of the store: one suite, run against every backend.
//!
//! Each test in `blob`, `code`, `kv` and `quota` is an `async fn(Store, ManualClock)`, and
//! [`on_both_backends!`] turns it into two `#[tokio::test]`s: `MODULE::redb::NAME` on an
//! in-memory redb and `MODULE::postgres::NAME` on a fresh schema of the PostgreSQL database
//! named by `FUNCTIONS_TEST_POSTGRES` (see `backend.rs`). `persistence` holds what only the
//! embedded file backend has (files, reopening, old file formats); `shared` what only the
//! shared database has (two nodes on one database); `tls` TLS to PostgreSQL (a second,
//! TLS-only server at `FUNCTIONS_TEST_POSTGRES_TLS`).

mod backend;
mod blob;
mod code;
mod kv;
mod persistence;
mod quota;
mod shared;
mod tls;

/// 2026-01-01T00:00:00Z in unix milliseconds.
const T0_MS: u64 = 1_767_225_600_000;

/// A blob body of these bytes.
fn body(data: &[u8]) -> store::BlobBody {
    store::body_from_bytes(data.to_vec())
}

/// `get` with the whole body read: the object's metadata and bytes, or `None`.
async fn get_whole(
    blob: &std::sync::Arc<dyn store::BlobStore>,
    bucket: &str,
    key: &str,
) -> Result<Option<(store::BlobMeta, Vec<u8>)>, store::StoreError> {
    match blob.get(bucket, key).await? {
        None => Ok(None),
        Some(object) => {
            let body = store::read_body(object.body, store::BLOB_MAX_BODY_BYTES).await?;
            Ok(Some((object.meta, body)))
        }
    }
}
