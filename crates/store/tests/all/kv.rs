use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use store::{
    KvListOptions, KvPutOptions, Quota, StoreError, KV_MAX_KEY_BYTES, KV_MAX_METADATA_BYTES,
    KV_MAX_VALUE_BYTES,
};

use store::{ManualClock, Store};

use crate::T0_MS;

const NOW_SECS: u64 = T0_MS / 1000;

fn ttl(secs: u64) -> KvPutOptions {
    KvPutOptions {
        expiration_ttl: Some(secs),
        ..KvPutOptions::default()
    }
}

async fn kv_put_then_get_returns_value_and_metadata(store: Store, _clock: ManualClock) {
    let kv = store.kv();
    let options = KvPutOptions {
        metadata: Some(json!({"owner": "alice", "n": 3})),
        ..KvPutOptions::default()
    };
    kv.put(
        "NS",
        "greeting",
        b"hello".to_vec(),
        options,
        Quota::default(),
    )
    .await
    .expect("put");
    let entry = kv
        .get("NS", "greeting")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(entry.value, b"hello");
    assert_eq!(entry.metadata, Some(json!({"owner": "alice", "n": 3})));
    assert_eq!(entry.expiration, None);
    assert_eq!(kv.get("NS", "missing").await.expect("get"), None);

    kv.put(
        "NS",
        "greeting",
        b"bye".to_vec(),
        KvPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("overwrite");
    let entry = kv
        .get("NS", "greeting")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(entry.value, b"bye");
    assert_eq!(entry.metadata, None, "overwrite replaces metadata too");
}

async fn kv_namespaces_are_isolated(store: Store, _clock: ManualClock) {
    let kv = store.kv();
    kv.put(
        "A",
        "k",
        b"a".to_vec(),
        KvPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put");
    kv.put(
        "B",
        "k",
        b"b".to_vec(),
        KvPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put");
    assert_eq!(kv.get("A", "k").await.expect("get").expect("a").value, b"a");
    assert_eq!(kv.get("B", "k").await.expect("get").expect("b").value, b"b");
    kv.delete("A", "k").await.expect("delete");
    assert_eq!(kv.get("A", "k").await.expect("get"), None);
    assert!(kv.get("B", "k").await.expect("get").is_some());
    let listed = kv.list("B", KvListOptions::default()).await.expect("list");
    assert_eq!(listed.keys.len(), 1);
}

async fn kv_delete_of_an_absent_key_is_not_an_error(store: Store, _clock: ManualClock) {
    store
        .kv()
        .delete("NS", "never-was")
        .await
        .expect("delete absent");
}

async fn kv_entry_expires_after_its_ttl_without_sleeping(store: Store, clock: ManualClock) {
    let kv = store.kv();
    kv.put(
        "NS",
        "session",
        b"token".to_vec(),
        ttl(60),
        Quota::default(),
    )
    .await
    .expect("put");
    let entry = kv.get("NS", "session").await.expect("get").expect("fresh");
    assert_eq!(entry.expiration, Some(NOW_SECS + 60));

    clock.advance(Duration::from_secs(59));
    assert!(
        kv.get("NS", "session").await.expect("get").is_some(),
        "alive at 59 s"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        kv.get("NS", "session").await.expect("get"),
        None,
        "gone at 60 s"
    );
    let listed = kv.list("NS", KvListOptions::default()).await.expect("list");
    assert!(listed.keys.is_empty(), "expired keys are not listed");
}

async fn kv_absolute_expiration_hides_the_entry_once_reached(store: Store, clock: ManualClock) {
    let kv = store.kv();
    let options = KvPutOptions {
        expiration: Some(NOW_SECS + 3600),
        ..KvPutOptions::default()
    };
    kv.put("NS", "k", b"v".to_vec(), options, Quota::default())
        .await
        .expect("put");
    clock.set_ms((NOW_SECS + 3599) * 1000);
    assert!(kv.get("NS", "k").await.expect("get").is_some());
    clock.set_ms((NOW_SECS + 3600) * 1000);
    assert_eq!(kv.get("NS", "k").await.expect("get"), None);
}

async fn kv_expired_entry_is_deleted_lazily_and_stays_gone_if_time_goes_back(
    store: Store,
    clock: ManualClock,
) {
    let kv = store.kv();
    kv.put("NS", "k", b"v".to_vec(), ttl(60), Quota::default())
        .await
        .expect("put");
    clock.advance(Duration::from_secs(120));
    assert_eq!(kv.get("NS", "k").await.expect("get"), None);
    // The get deleted it: even a clock stepped back cannot revive it.
    clock.set_ms(T0_MS);
    assert_eq!(kv.get("NS", "k").await.expect("get"), None);
}

async fn kv_list_deletes_expired_entries_it_passes(store: Store, clock: ManualClock) {
    let kv = store.kv();
    kv.put("NS", "short", b"v".to_vec(), ttl(60), Quota::default())
        .await
        .expect("put");
    kv.put("NS", "long", b"v".to_vec(), ttl(3600), Quota::default())
        .await
        .expect("put");
    clock.advance(Duration::from_secs(61));
    let names: Vec<String> = kv
        .list("NS", KvListOptions::default())
        .await
        .expect("list")
        .keys
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["long"]);
    clock.set_ms(T0_MS);
    assert_eq!(
        kv.get("NS", "short").await.expect("get"),
        None,
        "list swept it"
    );
    assert!(kv.get("NS", "long").await.expect("get").is_some());
}

async fn kv_purge_expired_removes_only_expired_entries(store: Store, clock: ManualClock) {
    let kv = store.kv();
    kv.put("A", "old", b"v".to_vec(), ttl(60), Quota::default())
        .await
        .expect("put");
    kv.put("B", "old", b"v".to_vec(), ttl(60), Quota::default())
        .await
        .expect("put");
    kv.put("A", "new", b"v".to_vec(), ttl(600), Quota::default())
        .await
        .expect("put");
    kv.put(
        "A",
        "forever",
        b"v".to_vec(),
        KvPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put");
    clock.advance(Duration::from_secs(300));
    assert_eq!(kv.purge_expired().await.expect("purge"), 2);
    assert_eq!(kv.purge_expired().await.expect("purge again"), 0);
    assert!(kv.get("A", "new").await.expect("get").is_some());
    assert!(kv.get("A", "forever").await.expect("get").is_some());
}

async fn kv_list_pagination_with_prefix_and_cursor_returns_every_key_exactly_once(
    store: Store,
    _clock: ManualClock,
) {
    let kv = store.kv();
    let mut expected = BTreeSet::new();
    for i in 0..257 {
        let key = format!("user:{i:04}");
        kv.put(
            "NS",
            &key,
            b"x".to_vec(),
            KvPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect("put");
        expected.insert(key);
    }
    // Keys around the prefix that must not appear.
    for key in ["user", "user;", "usea:1", "admin:1", "v"] {
        kv.put(
            "NS",
            key,
            b"x".to_vec(),
            KvPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect("put");
    }
    kv.put(
        "OTHER",
        "user:9999",
        b"x".to_vec(),
        KvPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put");

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = kv
            .list(
                "NS",
                KvListOptions {
                    prefix: Some("user:".into()),
                    cursor: cursor.take(),
                    limit: Some(50),
                },
            )
            .await
            .expect("list");
        pages += 1;
        assert!(page.keys.len() <= 50);
        seen.extend(page.keys.into_iter().map(|k| k.name));
        if page.list_complete {
            assert_eq!(page.cursor, None);
            break;
        }
        cursor = Some(page.cursor.expect("incomplete page has a cursor"));
        assert!(pages < 100, "pagination must terminate");
    }
    assert_eq!(pages, 6);
    let sorted: Vec<String> = expected.iter().cloned().collect();
    assert_eq!(seen, sorted, "every key once, in byte order");
}

async fn kv_list_orders_keys_by_bytes_and_reports_metadata(store: Store, _clock: ManualClock) {
    let kv = store.kv();
    for key in ["b", "a", "B", "é", "a0"] {
        let options = KvPutOptions {
            metadata: Some(json!({ "k": key })),
            ..KvPutOptions::default()
        };
        kv.put("NS", key, b"".to_vec(), options, Quota::default())
            .await
            .expect("put");
    }
    kv.put("NS", "ttl", b"".to_vec(), ttl(100), Quota::default())
        .await
        .expect("put");
    let page = kv.list("NS", KvListOptions::default()).await.expect("list");
    let names: Vec<&str> = page.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["B", "a", "a0", "b", "ttl", "é"]);
    assert_eq!(page.keys[0].metadata, Some(json!({"k": "B"})));
    assert_eq!(page.keys[4].expiration, Some(NOW_SECS + 100));
    assert!(page.list_complete);
}

async fn kv_limits_are_rejected_with_clear_errors(store: Store, _clock: ManualClock) {
    let kv = store.kv();
    let put = |key: String, value: &[u8], options: KvPutOptions| {
        let kv = kv.clone();
        let value = value.to_vec();
        async move { kv.put("NS", &key, value, options, Quota::default()).await }
    };

    let err = put("".to_owned(), b"v", KvPutOptions::default())
        .await
        .expect_err("empty key");
    assert!(err.to_string().contains("must not be empty"), "{err}");
    for dots in [".", ".."] {
        let err = put(dots.to_owned(), b"v", KvPutOptions::default())
            .await
            .expect_err("dot key");
        assert!(err.to_string().contains("must not be `.` or `..`"), "{err}");
    }
    let long_key = "k".repeat(KV_MAX_KEY_BYTES + 1);
    let err = put(long_key.clone(), b"v", KvPutOptions::default())
        .await
        .expect_err("long key");
    assert!(
        err.to_string()
            .contains("513 bytes exceeds the limit of 512"),
        "{err}"
    );
    assert!(
        err.to_string().len() < 300,
        "error does not echo the whole key"
    );
    put("k".repeat(KV_MAX_KEY_BYTES), b"v", KvPutOptions::default())
        .await
        .expect("512 bytes is fine");
    assert!(
        kv.get("NS", &long_key).await.is_err(),
        "get validates keys too"
    );

    let err = put("k".to_owned(), b"v", ttl(59))
        .await
        .expect_err("short ttl");
    assert!(
        matches!(err, StoreError::InvalidExpirationTtl { ttl: 59, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("at least 60"), "{err}");

    let past = KvPutOptions {
        expiration: Some(NOW_SECS - 1),
        ..KvPutOptions::default()
    };
    let err = put("k".to_owned(), b"v", past)
        .await
        .expect_err("past expiration");
    assert!(matches!(err, StoreError::InvalidExpiration { .. }), "{err}");
    let soon = KvPutOptions {
        expiration: Some(NOW_SECS + 30),
        ..KvPutOptions::default()
    };
    let err = put("k".to_owned(), b"v", soon).await.expect_err("too soon");
    assert!(
        err.to_string()
            .contains("at least 60 seconds in the future"),
        "{err}"
    );

    let big = vec![0u8; KV_MAX_VALUE_BYTES + 1];
    let err = put("k".to_owned(), &big, KvPutOptions::default())
        .await
        .expect_err("big value");
    assert!(
        matches!(err, StoreError::TooLarge { what: "value", size, limit } if size == KV_MAX_VALUE_BYTES + 1 && limit == KV_MAX_VALUE_BYTES),
        "{err}"
    );

    let meta = KvPutOptions {
        metadata: Some(json!("m".repeat(KV_MAX_METADATA_BYTES))),
        ..KvPutOptions::default()
    };
    let err = put("k".to_owned(), b"v", meta)
        .await
        .expect_err("big metadata");
    assert!(
        err.to_string()
            .contains("metadata of 1026 bytes exceeds the limit of 1024"),
        "{err}"
    );

    for limit in [0, 1001] {
        let err = kv
            .list(
                "NS",
                KvListOptions {
                    limit: Some(limit),
                    ..KvListOptions::default()
                },
            )
            .await
            .expect_err("bad limit");
        assert!(matches!(err, StoreError::InvalidListLimit { .. }), "{err}");
    }
    let err = kv
        .list(
            "NS",
            KvListOptions {
                cursor: Some("not-a-cursor".into()),
                ..KvListOptions::default()
            },
        )
        .await
        .expect_err("bad cursor");
    assert!(matches!(err, StoreError::InvalidCursor), "{err}");

    let err = kv.get("", "k").await.expect_err("empty namespace");
    assert!(matches!(err, StoreError::InvalidNamespace { .. }), "{err}");

    // Nothing rejected was stored.
    let keys = kv
        .list("NS", KvListOptions::default())
        .await
        .expect("list")
        .keys;
    assert_eq!(keys.len(), 1, "only the 512-byte key");
}

crate::on_both_backends!(
    kv_put_then_get_returns_value_and_metadata,
    kv_namespaces_are_isolated,
    kv_delete_of_an_absent_key_is_not_an_error,
    kv_entry_expires_after_its_ttl_without_sleeping,
    kv_absolute_expiration_hides_the_entry_once_reached,
    kv_expired_entry_is_deleted_lazily_and_stays_gone_if_time_goes_back,
    kv_list_deletes_expired_entries_it_passes,
    kv_purge_expired_removes_only_expired_entries,
    kv_list_pagination_with_prefix_and_cursor_returns_every_key_exactly_once,
    kv_list_orders_keys_by_bytes_and_reports_metadata,
    kv_limits_are_rejected_with_clear_errors,
);
