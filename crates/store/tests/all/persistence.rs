use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use store::{BlobPutOptions, KvPutOptions, ManualClock, Quota, Store, StoreError};

use crate::{body, T0_MS};

/// Env var that turns [`abort_child_writes_then_aborts`] from a no-op into the
/// child half of [`data_survives_a_process_abort_after_the_call_returns`].
const CHILD_DB_ENV: &str = "STORE_TEST_ABORT_CHILD_DB";

async fn write_sample(store: &Store) {
    store
        .code()
        .deploy("hello", (b"{\"v\":1}").to_vec(), Some("one"))
        .await
        .expect("deploy");
    store
        .code()
        .deploy("hello", (b"{\"v\":2}").to_vec(), None)
        .await
        .expect("deploy");
    store.code().rollback("hello").await.expect("rollback");
    let options = KvPutOptions {
        metadata: Some(serde_json::json!({"m": 1})),
        expiration_ttl: Some(3600),
        ..KvPutOptions::default()
    };
    store
        .kv()
        .put("NS", "key", b"value".to_vec(), options, Quota::default())
        .await
        .expect("kv put");
    store
        .blob()
        .put(
            "bucket",
            "dir/file.bin",
            body(&[1, 2, 3]),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect("blob put");
}

async fn check_sample(store: &Store) {
    let live = store
        .code()
        .live("hello")
        .await
        .expect("live")
        .expect("deployed");
    assert_eq!(
        (live.version, live.bundle.as_slice()),
        (1, &b"{\"v\":1}"[..])
    );
    assert_eq!(live.note.as_deref(), Some("one"));
    assert_eq!(
        store
            .code()
            .versions("hello")
            .await
            .expect("versions")
            .len(),
        2
    );
    let entry = store
        .kv()
        .get("NS", "key")
        .await
        .expect("kv get")
        .expect("kv present");
    assert_eq!(entry.value, b"value");
    assert_eq!(entry.metadata, Some(serde_json::json!({"m": 1})));
    assert_eq!(entry.expiration, Some(T0_MS / 1000 + 3600));
    let (meta, body) = crate::get_whole(store.blob(), "bucket", "dir/file.bin")
        .await
        .expect("blob get")
        .expect("blob present");
    assert_eq!(body, [1, 2, 3]);
    assert_eq!(meta.size, 3);
}

fn open(path: &Path) -> Store {
    Store::open_with_clock(path, Arc::new(ManualClock::new(T0_MS))).expect("open")
}

#[tokio::test]
async fn data_persists_after_dropping_and_reopening_the_store_at_the_same_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/functions.redb");
    {
        let store = open(&path);
        write_sample(&store).await;
    }
    let store = open(&path);
    check_sample(&store).await;
    // Version numbering carries on from the file.
    assert_eq!(
        store
            .code()
            .deploy("hello", b"3".to_vec(), None)
            .await
            .expect("deploy"),
        3
    );
}

#[test]
fn opening_an_open_database_again_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let _first = open(&path);
    let err = Store::open(&path).expect_err("second open");
    assert!(matches!(err, StoreError::AlreadyOpen { .. }), "{err}");
    assert!(err.to_string().contains("already open"), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.redb");
    std::fs::write(&path, vec![0xAB; 8192]).expect("write garbage");
    let err = Store::open(&path).expect_err("garbage file");
    assert!(!err.is_client_error(), "{err}");
}

#[tokio::test]
async fn data_survives_a_process_abort_after_the_call_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.redb");
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "persistence::abort_child_writes_then_aborts"])
        .env(CHILD_DB_ENV, &path)
        .output()
        .expect("run child");
    let died_by_abort = {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            child.status.signal() == Some(6)
        }
        #[cfg(not(unix))]
        {
            !child.status.success()
        }
    };
    assert!(
        died_by_abort,
        "the child must die by abort, got {}: {}{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    let store = open(&path);
    check_sample(&store).await;
}

/// Child half of the test above; does nothing when run normally.
#[tokio::test]
async fn abort_child_writes_then_aborts() {
    let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let store = open(Path::new(&path));
    write_sample(&store).await;
    // No destructor runs, nothing is flushed: like SIGKILL right after the calls.
    std::process::abort();
}

#[tokio::test]
async fn usage_is_rebuilt_when_a_file_from_before_quotas_opens() {
    // A schema-1 file, written as that version did: data rows, no usage rows.
    let dir = std::env::temp_dir().join(format!("store-quota-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("v1.redb");
    let _ = std::fs::remove_file(&path);
    {
        let db = redb::Database::create(&path).expect("create");
        let txn = db.begin_write().expect("txn");
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .expect("meta");
            meta.insert("schema_version", 1).expect("insert");
            let kv_meta = redb::TableDefinition::<(&str, &str), &[u8]>::new("kv_meta");
            let kv_values = redb::TableDefinition::<(&str, &str), &[u8]>::new("kv_values");
            let mut m = txn.open_table(kv_meta).expect("kv_meta");
            let mut v = txn.open_table(kv_values).expect("kv_values");
            for key in ["a", "b"] {
                m.insert(("NS", key), &b"{}"[..]).expect("insert");
                v.insert(("NS", key), &[0u8; 100][..]).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
    let store = Store::open(&path).expect("opens and migrates");
    let usage = store.kv().usage("NS").await.expect("usage");
    assert_eq!(usage.keys, 2);
    assert_eq!(usage.bytes, 2 * (1 + 100 + 2));
    // The rebuilt rows are then kept exact.
    store.kv().delete("NS", "a").await.expect("delete");
    assert_eq!(store.kv().usage("NS").await.expect("usage").keys, 1);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn blobs_of_a_schema_2_file_are_split_into_chunks_when_it_opens() {
    // A schema-2 file, written as that version did: whole bodies in `blob_bodies`.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v2.redb");
    let data: Vec<u8> = (0..store::BLOB_CHUNK_BYTES + 5)
        .map(|i| (i % 7) as u8)
        .collect();
    {
        let db = ::redb::Database::create(&path).expect("create");
        let txn = db.begin_write().expect("txn");
        {
            let mut meta = txn
                .open_table(::redb::TableDefinition::<&str, u64>::new("meta"))
                .expect("meta");
            meta.insert("schema_version", 2).expect("insert");
            meta.insert("blob_version", 7).expect("insert");
            let metas = ::redb::TableDefinition::<(&str, &str), &[u8]>::new("blob_meta");
            let bodies = ::redb::TableDefinition::<(&str, &str), &[u8]>::new("blob_bodies");
            let record = format!(
                r#"{{"size":{},"etag":"e","uploaded":1,"version":"0000000000000007"}}"#,
                data.len()
            );
            txn.open_table(metas)
                .expect("blob_meta")
                .insert(("b", "k"), record.as_bytes())
                .expect("insert");
            txn.open_table(bodies)
                .expect("blob_bodies")
                .insert(("b", "k"), data.as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let store = Store::open(&path).expect("opens and migrates");
    let object = store
        .blob()
        .get("b", "k")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(object.meta.size, data.len() as u64);
    let read = store::read_body(object.body, store::BLOB_MAX_BODY_BYTES)
        .await
        .expect("data");
    assert_eq!(read, data);
    // A new put replaces it and its chunks go.
    store
        .blob()
        .put(
            "b",
            "k",
            crate::body(b"new"),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect("put");
    let (_, read) = crate::get_whole(store.blob(), "b", "k")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(read, b"new");
}
