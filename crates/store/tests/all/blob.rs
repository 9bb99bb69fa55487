use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use store::{
    BlobListOptions, BlobPutOptions, HttpMetadata, Quota, StoreError,
    BLOB_MAX_CUSTOM_METADATA_BYTES, BLOB_MAX_DELETE_KEYS, BLOB_MAX_KEY_BYTES,
};

use crate::{store_with_clock, T0_MS};

fn put_plain(store: &store::Store, bucket: &str, key: &str) {
    store
        .blob()
        .put(
            bucket,
            key,
            key.as_bytes(),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .expect("put");
}

#[test]
fn blob_put_get_head_round_trip_with_metadata_and_md5_etag() {
    let (store, _) = store_with_clock();
    let blob = store.blob();
    let options = BlobPutOptions {
        http_metadata: HttpMetadata {
            content_type: Some("text/plain".into()),
            cache_control: Some("max-age=60".into()),
            ..HttpMetadata::default()
        },
        custom_metadata: BTreeMap::from([("owner".to_owned(), "alice".to_owned())]),
    };
    let put = blob
        .put(
            "assets",
            "docs/hello.txt",
            b"hello",
            options.clone(),
            Quota::default(),
        )
        .expect("put");
    assert_eq!(put.key, "docs/hello.txt");
    assert_eq!(put.size, 5);
    assert_eq!(
        put.etag, "5d41402abc4b2a76b9719d911017c592",
        "hex md5 of the body"
    );
    assert_eq!(put.uploaded, T0_MS);
    assert_eq!(put.http_metadata, options.http_metadata);
    assert_eq!(put.custom_metadata, options.custom_metadata);

    let (meta, body) = blob
        .get("assets", "docs/hello.txt")
        .expect("get")
        .expect("present");
    assert_eq!(body, b"hello");
    assert_eq!(meta, put);
    assert_eq!(
        blob.head("assets", "docs/hello.txt").expect("head"),
        Some(put)
    );
    assert_eq!(blob.get("assets", "docs/other.txt").expect("get"), None);
    assert_eq!(
        blob.head("other-bucket", "docs/hello.txt").expect("head"),
        None
    );
}

#[test]
fn blob_put_overwrites_and_gives_a_new_version() {
    let (store, clock) = store_with_clock();
    let blob = store.blob();
    let first = blob
        .put(
            "b",
            "k",
            b"one",
            BlobPutOptions::default(),
            Quota::default(),
        )
        .expect("put");
    clock.advance(Duration::from_secs(1));
    let second = blob
        .put(
            "b",
            "k",
            b"two!",
            BlobPutOptions::default(),
            Quota::default(),
        )
        .expect("put");
    assert_ne!(first.version, second.version);
    assert_ne!(first.etag, second.etag);
    let (meta, body) = blob.get("b", "k").expect("get").expect("present");
    assert_eq!(body, b"two!");
    assert_eq!(meta.size, 4);
    assert_eq!(meta.uploaded, T0_MS + 1_000);
}

#[test]
fn blob_delete_removes_named_keys_and_skips_absent_ones() {
    let (store, _) = store_with_clock();
    for key in ["a", "b", "c"] {
        put_plain(&store, "bucket", key);
    }
    let blob = store.blob();
    assert_eq!(
        blob.delete("bucket", &["a", "c", "zzz"]).expect("delete"),
        2
    );
    assert_eq!(blob.get("bucket", "a").expect("get"), None);
    assert!(blob.get("bucket", "b").expect("get").is_some());
    assert_eq!(blob.head("bucket", "c").expect("head"), None);
    assert_eq!(blob.delete("bucket", &[]).expect("delete nothing"), 0);
}

#[test]
fn blob_list_with_delimiter_rolls_up_common_prefixes() {
    let (store, _) = store_with_clock();
    for key in [
        "photos/2024/a.jpg",
        "photos/2024/b.jpg",
        "photos/2025/c.jpg",
        "photos/cover.jpg",
        "photos/readme",
        "photosynthesis.txt",
        "videos/x.mp4",
        "root.txt",
    ] {
        put_plain(&store, "media", key);
    }
    put_plain(&store, "other", "photos/elsewhere.jpg");
    let blob = store.blob();

    let top = blob
        .list(
            "media",
            BlobListOptions {
                delimiter: Some("/".into()),
                ..BlobListOptions::default()
            },
        )
        .expect("list");
    let names: Vec<&str> = top.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, ["photosynthesis.txt", "root.txt"]);
    assert_eq!(top.delimited_prefixes, ["photos/", "videos/"]);
    assert!(!top.truncated);
    assert_eq!(top.cursor, None);

    let photos = blob
        .list(
            "media",
            BlobListOptions {
                prefix: Some("photos/".into()),
                delimiter: Some("/".into()),
                ..BlobListOptions::default()
            },
        )
        .expect("list");
    let names: Vec<&str> = photos.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, ["photos/cover.jpg", "photos/readme"]);
    assert_eq!(photos.delimited_prefixes, ["photos/2024/", "photos/2025/"]);
    assert_eq!(photos.objects[0].size, "photos/cover.jpg".len() as u64);

    let flat = blob
        .list(
            "media",
            BlobListOptions {
                prefix: Some("photos".into()),
                ..BlobListOptions::default()
            },
        )
        .expect("list");
    assert_eq!(
        flat.objects.len(),
        6,
        "no delimiter: every key under the prefix"
    );
    assert!(flat.delimited_prefixes.is_empty());
}

#[test]
fn blob_list_pagination_with_delimiter_returns_each_entry_once() {
    let (store, _) = store_with_clock();
    let mut expected_objects = BTreeSet::new();
    let mut expected_prefixes = BTreeSet::new();
    for dir in 0..7 {
        for file in 0..4 {
            put_plain(&store, "b", &format!("d{dir}/f{file}"));
        }
        expected_prefixes.insert(format!("d{dir}/"));
    }
    for file in 0..9 {
        let key = format!("e{file}");
        put_plain(&store, "b", &key);
        expected_objects.insert(key);
    }

    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    let mut cursor = None;
    for page_no in 0.. {
        assert!(page_no < 50, "pagination must terminate");
        let page = store
            .blob()
            .list(
                "b",
                BlobListOptions {
                    cursor: cursor.take(),
                    limit: Some(3),
                    delimiter: Some("/".into()),
                    ..BlobListOptions::default()
                },
            )
            .expect("list");
        assert!(page.objects.len() + page.delimited_prefixes.len() <= 3);
        objects.extend(page.objects.into_iter().map(|o| o.key));
        prefixes.extend(page.delimited_prefixes);
        if !page.truncated {
            break;
        }
        cursor = page.cursor;
        assert!(cursor.is_some(), "a truncated page has a cursor");
    }
    assert_eq!(prefixes, expected_prefixes.into_iter().collect::<Vec<_>>());
    assert_eq!(objects, expected_objects.into_iter().collect::<Vec<_>>());
}

#[test]
fn blob_list_pagination_without_delimiter_returns_every_key_once() {
    let (store, _) = store_with_clock();
    let expected: Vec<String> = (0..25).map(|i| format!("logs/{i:03}")).collect();
    for key in &expected {
        put_plain(&store, "b", key);
    }
    put_plain(&store, "b", "zz-not-logs");
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .blob()
            .list(
                "b",
                BlobListOptions {
                    prefix: Some("logs/".into()),
                    cursor: cursor.take(),
                    limit: Some(10),
                    ..BlobListOptions::default()
                },
            )
            .expect("list");
        seen.extend(page.objects.into_iter().map(|o| o.key));
        if !page.truncated {
            break;
        }
        cursor = page.cursor;
    }
    assert_eq!(seen, expected);
}

#[test]
fn blob_limits_are_rejected_with_clear_errors() {
    let (store, _) = store_with_clock();
    let blob = store.blob();
    let err = blob
        .put("b", "", b"x", BlobPutOptions::default(), Quota::default())
        .expect_err("empty key");
    assert!(matches!(err, StoreError::InvalidKey { .. }), "{err}");
    let long = "k".repeat(BLOB_MAX_KEY_BYTES + 1);
    let err = blob
        .put(
            "b",
            &long,
            b"x",
            BlobPutOptions::default(),
            Quota::default(),
        )
        .expect_err("long key");
    assert!(
        err.to_string()
            .contains("1025 bytes exceeds the limit of 1024"),
        "{err}"
    );
    let err = blob
        .put("", "k", b"x", BlobPutOptions::default(), Quota::default())
        .expect_err("empty bucket");
    assert!(matches!(err, StoreError::InvalidBucket { .. }), "{err}");

    let options = BlobPutOptions {
        custom_metadata: BTreeMap::from([(
            "big".to_owned(),
            "v".repeat(BLOB_MAX_CUSTOM_METADATA_BYTES),
        )]),
        ..BlobPutOptions::default()
    };
    let err = blob
        .put("b", "k", b"x", options, Quota::default())
        .expect_err("big metadata");
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                what: "custom metadata",
                ..
            }
        ),
        "{err}"
    );

    let keys: Vec<String> = (0..=BLOB_MAX_DELETE_KEYS)
        .map(|i| format!("k{i}"))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let err = blob.delete("b", &refs).expect_err("too many keys");
    assert!(
        matches!(
            err,
            StoreError::TooManyKeys {
                count: 1001,
                limit: 1000
            }
        ),
        "{err}"
    );

    let err = blob
        .list(
            "b",
            BlobListOptions {
                limit: Some(0),
                ..BlobListOptions::default()
            },
        )
        .expect_err("limit 0");
    assert!(matches!(err, StoreError::InvalidListLimit { .. }), "{err}");
    let err = blob
        .list(
            "b",
            BlobListOptions {
                cursor: Some("zz".into()),
                ..BlobListOptions::default()
            },
        )
        .expect_err("bad cursor");
    assert!(matches!(err, StoreError::InvalidCursor), "{err}");
    assert!(blob
        .list("b", BlobListOptions::default())
        .expect("list")
        .objects
        .is_empty());
}
