//! Quotas per KV namespace and per bucket: enforced inside the write transaction, exact
//! across puts, replacements, deletes and expiry, and rebuilt for files written before them.

use std::sync::Arc;

use store::{
    BlobPutOptions, KvPutOptions, Quota, QuotaResource, QuotaScope, Store, StoreError, Usage,
};

use crate::store_with_clock;

fn quota(max_bytes: u64, max_keys: u64) -> Quota {
    Quota {
        max_bytes,
        max_keys,
    }
}

fn kv_put(store: &Store, ns: &str, key: &str, value: &[u8], q: Quota) -> Result<(), StoreError> {
    store.kv().put(ns, key, value, KvPutOptions::default(), q)
}

#[test]
fn kv_bytes_quota_refuses_the_put_that_would_pass_it_and_writes_nothing() {
    let (store, _) = store_with_clock();
    let q = quota(1000, 100);
    kv_put(&store, "NS", "a", &[0; 600], q).expect("fits");
    let before = store.kv().usage("NS").expect("usage");
    assert_eq!(before.keys, 1);
    assert!(before.bytes >= 601, "{before:?}");
    let err = kv_put(&store, "NS", "b", &[0; 600], q).expect_err("over the byte quota");
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                scope: QuotaScope::KvNamespace,
                resource: QuotaResource::Bytes,
                limit: 1000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_client_error());
    assert!(
        store.kv().get("NS", "b").expect("get").is_none(),
        "nothing written"
    );
    assert_eq!(store.kv().usage("NS").expect("usage"), before);
    // Other namespaces have their own quota.
    kv_put(&store, "OTHER", "b", &[0; 600], q).expect("other namespace");
}

#[test]
fn kv_keys_quota_counts_keys_not_replacements() {
    let (store, _) = store_with_clock();
    let q = quota(1 << 20, 2);
    kv_put(&store, "NS", "a", b"1", q).expect("first");
    kv_put(&store, "NS", "b", b"2", q).expect("second");
    kv_put(&store, "NS", "a", b"replaced", q).expect("replacing is not a new key");
    let err = kv_put(&store, "NS", "c", b"3", q).expect_err("third key");
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                resource: QuotaResource::Keys,
                used: 3,
                limit: 2,
                ..
            }
        ),
        "{err:?}"
    );
    store.kv().delete("NS", "b").expect("delete");
    kv_put(&store, "NS", "c", b"3", q).expect("room again after a delete");
    assert_eq!(store.kv().usage("NS").expect("usage").keys, 2);
}

#[test]
fn kv_usage_returns_to_zero_after_deletes_and_expiry() {
    let (store, clock) = store_with_clock();
    let q = Quota::default();
    kv_put(&store, "NS", "keep", b"value", q).expect("put");
    store
        .kv()
        .put(
            "NS",
            "ttl",
            b"value",
            KvPutOptions {
                expiration_ttl: Some(60),
                ..KvPutOptions::default()
            },
            q,
        )
        .expect("put");
    assert_eq!(store.kv().usage("NS").expect("usage").keys, 2);
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(store.kv().purge_expired().expect("purge"), 1);
    assert_eq!(store.kv().usage("NS").expect("usage").keys, 1);
    store.kv().delete("NS", "keep").expect("delete");
    store.kv().delete("NS", "keep").expect("deleting twice");
    assert_eq!(store.kv().usage("NS").expect("usage"), Usage::default());
}

#[test]
fn a_namespace_over_a_lowered_quota_can_still_shrink() {
    let (store, _) = store_with_clock();
    kv_put(&store, "NS", "big", &[0; 5000], Quota::default()).expect("put");
    let small = quota(100, 10);
    kv_put(&store, "NS", "big", &[0; 10], small).expect("shrinking is allowed");
    kv_put(&store, "NS", "big2", &[0; 10], small).expect("now within the quota");
}

#[test]
fn concurrent_writers_never_pass_the_quota_together() {
    let (store, _) = store_with_clock();
    let q = quota(1 << 30, 50);
    let store = Arc::new(store);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..20)
                    .filter(|i| kv_put(&store, "NS", &format!("k{t}-{i}"), b"v", q).is_ok())
                    .count()
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(ok, 50, "exactly the quota's keys went in");
    assert_eq!(store.kv().usage("NS").expect("usage").keys, 50);
}

#[test]
fn blob_quota_bounds_bytes_and_keys_and_deletes_give_room_back() {
    let (store, _) = store_with_clock();
    let blob = store.blob();
    let q = quota(10_000, 3);
    let put =
        |key: &str, len: usize| blob.put("b", key, &vec![7; len], BlobPutOptions::default(), q);
    put("one", 4000).expect("fits");
    put("two", 4000).expect("fits");
    let err = put("three", 4000).expect_err("bytes");
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                scope: QuotaScope::BlobBucket,
                resource: QuotaResource::Bytes,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(blob.head("b", "three").expect("head").is_none());
    put("three", 10).expect("small fits");
    let err = put("four", 10).expect_err("keys");
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                resource: QuotaResource::Keys,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(blob.delete("b", &["one", "nope"]).expect("delete"), 1);
    put("four", 4000).expect("room again");
    blob.delete("b", &["two", "three", "four"]).expect("delete");
    assert_eq!(blob.usage("b").expect("usage"), Usage::default());
}

#[test]
fn usage_is_rebuilt_when_a_file_from_before_quotas_opens() {
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
    let usage = store.kv().usage("NS").expect("usage");
    assert_eq!(usage.keys, 2);
    assert_eq!(usage.bytes, 2 * (1 + 100 + 2));
    // The rebuilt rows are then kept exact.
    store.kv().delete("NS", "a").expect("delete");
    assert_eq!(store.kv().usage("NS").expect("usage").keys, 1);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
