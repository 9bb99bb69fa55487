use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use store::{BlobPutOptions, KvPutOptions, ManualClock, Quota, Store, StoreError};

use crate::T0_MS;

/// Env var that turns [`abort_child_writes_then_aborts`] from a no-op into the
/// child half of [`data_survives_a_process_abort_after_the_call_returns`].
const CHILD_DB_ENV: &str = "STORE_TEST_ABORT_CHILD_DB";

fn write_sample(store: &Store) {
    store
        .code()
        .deploy("hello", b"{\"v\":1}", Some("one"))
        .expect("deploy");
    store
        .code()
        .deploy("hello", b"{\"v\":2}", None)
        .expect("deploy");
    store.code().rollback("hello").expect("rollback");
    let options = KvPutOptions {
        metadata: Some(serde_json::json!({"m": 1})),
        expiration_ttl: Some(3600),
        ..KvPutOptions::default()
    };
    store
        .kv()
        .put("NS", "key", b"value", options, Quota::default())
        .expect("kv put");
    store
        .blob()
        .put(
            "bucket",
            "dir/file.bin",
            &[1, 2, 3],
            BlobPutOptions::default(),
            Quota::default(),
        )
        .expect("blob put");
}

fn check_sample(store: &Store) {
    let live = store.code().live("hello").expect("live").expect("deployed");
    assert_eq!(
        (live.version, live.bundle.as_slice()),
        (1, &b"{\"v\":1}"[..])
    );
    assert_eq!(live.note.as_deref(), Some("one"));
    assert_eq!(store.code().versions("hello").expect("versions").len(), 2);
    let entry = store
        .kv()
        .get("NS", "key")
        .expect("kv get")
        .expect("kv present");
    assert_eq!(entry.value, b"value");
    assert_eq!(entry.metadata, Some(serde_json::json!({"m": 1})));
    assert_eq!(entry.expiration, Some(T0_MS / 1000 + 3600));
    let (meta, body) = store
        .blob()
        .get("bucket", "dir/file.bin")
        .expect("blob get")
        .expect("blob present");
    assert_eq!(body, [1, 2, 3]);
    assert_eq!(meta.size, 3);
}

fn open(path: &Path) -> Store {
    Store::open_with_clock(path, Arc::new(ManualClock::new(T0_MS))).expect("open")
}

#[test]
fn data_persists_after_dropping_and_reopening_the_store_at_the_same_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/functions.redb");
    {
        let store = open(&path);
        write_sample(&store);
    }
    let store = open(&path);
    check_sample(&store);
    // Version numbering carries on from the file.
    assert_eq!(store.code().deploy("hello", b"3", None).expect("deploy"), 3);
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

#[test]
fn data_survives_a_process_abort_after_the_call_returns() {
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
    check_sample(&store);
}

/// Child half of the test above; does nothing when run normally.
#[test]
fn abort_child_writes_then_aborts() {
    let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let store = open(Path::new(&path));
    write_sample(&store);
    // No destructor runs, nothing is flushed: like SIGKILL right after the calls.
    std::process::abort();
}
