//! Quotas per KV namespace and per bucket: enforced inside the write transaction, exact
//! across puts, replacements, deletes and expiry, and rebuilt for files written before them.

use store::{
    BlobPutOptions, KvPutOptions, Quota, QuotaResource, QuotaScope, Store, StoreError, Usage,
};

use store::ManualClock;

use crate::body;

fn quota(max_bytes: u64, max_keys: u64) -> Quota {
    Quota {
        max_bytes,
        max_keys,
    }
}

async fn kv_put(
    store: &Store,
    ns: &str,
    key: &str,
    value: &[u8],
    q: Quota,
) -> Result<(), StoreError> {
    store
        .kv()
        .put(ns, key, value.to_vec(), KvPutOptions::default(), q)
        .await
}

async fn kv_bytes_quota_refuses_the_put_that_would_pass_it_and_writes_nothing(
    store: Store,
    _clock: ManualClock,
) {
    let q = quota(1000, 100);
    kv_put(&store, "NS", "a", &[0; 600], q).await.expect("fits");
    let before = store.kv().usage("NS").await.expect("usage");
    assert_eq!(before.keys, 1);
    assert!(before.bytes >= 601, "{before:?}");
    let err = kv_put(&store, "NS", "b", &[0; 600], q)
        .await
        .expect_err("over the byte quota");
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
        store.kv().get("NS", "b").await.expect("get").is_none(),
        "nothing written"
    );
    assert_eq!(store.kv().usage("NS").await.expect("usage"), before);
    // Other namespaces have their own quota.
    kv_put(&store, "OTHER", "b", &[0; 600], q)
        .await
        .expect("other namespace");
}

async fn kv_keys_quota_counts_keys_not_replacements(store: Store, _clock: ManualClock) {
    let q = quota(1 << 20, 2);
    kv_put(&store, "NS", "a", b"1", q).await.expect("first");
    kv_put(&store, "NS", "b", b"2", q).await.expect("second");
    kv_put(&store, "NS", "a", b"replaced", q)
        .await
        .expect("replacing is not a new key");
    let err = kv_put(&store, "NS", "c", b"3", q)
        .await
        .expect_err("third key");
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
    store.kv().delete("NS", "b").await.expect("delete");
    kv_put(&store, "NS", "c", b"3", q)
        .await
        .expect("room again after a delete");
    assert_eq!(store.kv().usage("NS").await.expect("usage").keys, 2);
}

async fn kv_usage_returns_to_zero_after_deletes_and_expiry(store: Store, clock: ManualClock) {
    let q = Quota::default();
    kv_put(&store, "NS", "keep", b"value", q)
        .await
        .expect("put");
    store
        .kv()
        .put(
            "NS",
            "ttl",
            b"value".to_vec(),
            KvPutOptions {
                expiration_ttl: Some(60),
                ..KvPutOptions::default()
            },
            q,
        )
        .await
        .expect("put");
    assert_eq!(store.kv().usage("NS").await.expect("usage").keys, 2);
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(store.kv().purge_expired().await.expect("purge"), 1);
    assert_eq!(store.kv().usage("NS").await.expect("usage").keys, 1);
    store.kv().delete("NS", "keep").await.expect("delete");
    store
        .kv()
        .delete("NS", "keep")
        .await
        .expect("deleting twice");
    assert_eq!(
        store.kv().usage("NS").await.expect("usage"),
        Usage::default()
    );
}

async fn a_namespace_over_a_lowered_quota_can_still_shrink(store: Store, _clock: ManualClock) {
    kv_put(&store, "NS", "big", &[0; 5000], Quota::default())
        .await
        .expect("put");
    let small = quota(100, 10);
    kv_put(&store, "NS", "big", &[0; 10], small)
        .await
        .expect("shrinking is allowed");
    kv_put(&store, "NS", "big2", &[0; 10], small)
        .await
        .expect("now within the quota");
}

async fn concurrent_writers_never_pass_the_quota_together(store: Store, _clock: ManualClock) {
    let q = quota(1 << 30, 50);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ok = 0;
                for i in 0..20 {
                    if kv_put(&store, "NS", &format!("k{t}-{i}"), b"v", q)
                        .await
                        .is_ok()
                    {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.expect("task");
    }
    assert_eq!(ok, 50, "exactly the quota's keys went in");
    assert_eq!(store.kv().usage("NS").await.expect("usage").keys, 50);
}

async fn blob_quota_bounds_bytes_and_keys_and_deletes_give_room_back(
    store: Store,
    _clock: ManualClock,
) {
    let blob = store.blob();
    let q = quota(10_000, 3);
    let put = |key: &'static str, len: usize| {
        blob.put("b", key, body(&vec![7; len]), BlobPutOptions::default(), q)
    };
    put("one", 4000).await.expect("fits");
    put("two", 4000).await.expect("fits");
    let err = put("three", 4000).await.expect_err("bytes");
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
    assert!(blob.head("b", "three").await.expect("head").is_none());
    put("three", 10).await.expect("small fits");
    let err = put("four", 10).await.expect_err("keys");
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
    assert_eq!(blob.delete("b", &["one", "nope"]).await.expect("delete"), 1);
    put("four", 4000).await.expect("room again");
    blob.delete("b", &["two", "three", "four"])
        .await
        .expect("delete");
    assert_eq!(blob.usage("b").await.expect("usage"), Usage::default());
}

crate::on_both_backends!(
    kv_bytes_quota_refuses_the_put_that_would_pass_it_and_writes_nothing,
    kv_keys_quota_counts_keys_not_replacements,
    kv_usage_returns_to_zero_after_deletes_and_expiry,
    a_namespace_over_a_lowered_quota_can_still_shrink,
    concurrent_writers_never_pass_the_quota_together,
    blob_quota_bounds_bytes_and_keys_and_deletes_give_room_back,
);
