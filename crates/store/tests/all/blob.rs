use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use store::{
    BlobListOptions, BlobPutOptions, HttpMetadata, Quota, StoreError, BLOB_CHUNK_BYTES,
    BLOB_MAX_CUSTOM_METADATA_BYTES, BLOB_MAX_DELETE_KEYS, BLOB_MAX_KEY_BYTES,
};

use store::{ManualClock, Store};

use crate::{body, get_whole, T0_MS};

async fn put_plain(store: &store::Store, bucket: &str, key: &str) {
    store
        .blob()
        .put(
            bucket,
            key,
            body(key.as_bytes()),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect("put");
}

async fn blob_put_get_head_round_trip_with_metadata_and_md5_etag(
    store: Store,
    _clock: ManualClock,
) {
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
            body(b"hello"),
            options.clone(),
            Quota::default(),
        )
        .await
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

    let (meta, body) = get_whole(blob, "assets", "docs/hello.txt")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(body, b"hello");
    assert_eq!(meta, put);
    assert_eq!(
        blob.head("assets", "docs/hello.txt").await.expect("head"),
        Some(put)
    );
    assert_eq!(
        get_whole(blob, "assets", "docs/other.txt")
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        blob.head("other-bucket", "docs/hello.txt")
            .await
            .expect("head"),
        None
    );
}

async fn blob_put_overwrites_and_gives_a_new_version(store: Store, clock: ManualClock) {
    let blob = store.blob();
    let first = blob
        .put(
            "b",
            "k",
            body(b"one"),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect("put");
    clock.advance(Duration::from_secs(1));
    let second = blob
        .put(
            "b",
            "k",
            body(b"two!"),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect("put");
    assert_ne!(first.version, second.version);
    assert_ne!(first.etag, second.etag);
    let (meta, body) = get_whole(blob, "b", "k")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(body, b"two!");
    assert_eq!(meta.size, 4);
    assert_eq!(meta.uploaded, T0_MS + 1_000);
}

async fn blob_delete_removes_named_keys_and_skips_absent_ones(store: Store, _clock: ManualClock) {
    for key in ["a", "b", "c"] {
        put_plain(&store, "bucket", key).await;
    }
    let blob = store.blob();
    assert_eq!(
        blob.delete("bucket", &["a", "c", "zzz"])
            .await
            .expect("delete"),
        2
    );
    assert_eq!(get_whole(blob, "bucket", "a").await.expect("get"), None);
    assert!(get_whole(blob, "bucket", "b").await.expect("get").is_some());
    assert_eq!(blob.head("bucket", "c").await.expect("head"), None);
    assert_eq!(blob.delete("bucket", &[]).await.expect("delete nothing"), 0);
}

async fn blob_list_with_delimiter_rolls_up_common_prefixes(store: Store, _clock: ManualClock) {
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
        put_plain(&store, "media", key).await;
    }
    put_plain(&store, "other", "photos/elsewhere.jpg").await;
    let blob = store.blob();

    let top = blob
        .list(
            "media",
            BlobListOptions {
                delimiter: Some("/".into()),
                ..BlobListOptions::default()
            },
        )
        .await
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
        .await
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
        .await
        .expect("list");
    assert_eq!(
        flat.objects.len(),
        6,
        "no delimiter: every key under the prefix"
    );
    assert!(flat.delimited_prefixes.is_empty());
}

async fn blob_list_pagination_with_delimiter_returns_each_entry_once(
    store: Store,
    _clock: ManualClock,
) {
    let mut expected_objects = BTreeSet::new();
    let mut expected_prefixes = BTreeSet::new();
    for dir in 0..7 {
        for file in 0..4 {
            put_plain(&store, "b", &format!("d{dir}/f{file}")).await;
        }
        expected_prefixes.insert(format!("d{dir}/"));
    }
    for file in 0..9 {
        let key = format!("e{file}");
        put_plain(&store, "b", &key).await;
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
            .await
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

async fn blob_list_pagination_without_delimiter_returns_every_key_once(
    store: Store,
    _clock: ManualClock,
) {
    let expected: Vec<String> = (0..25).map(|i| format!("logs/{i:03}")).collect();
    for key in &expected {
        put_plain(&store, "b", key).await;
    }
    put_plain(&store, "b", "zz-not-logs").await;
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
            .await
            .expect("list");
        seen.extend(page.objects.into_iter().map(|o| o.key));
        if !page.truncated {
            break;
        }
        cursor = page.cursor;
    }
    assert_eq!(seen, expected);
}

async fn blob_limits_are_rejected_with_clear_errors(store: Store, _clock: ManualClock) {
    let blob = store.blob();
    let err = blob
        .put(
            "b",
            "",
            body(b"x"),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect_err("empty key");
    assert!(matches!(err, StoreError::InvalidKey { .. }), "{err}");
    let long = "k".repeat(BLOB_MAX_KEY_BYTES + 1);
    let err = blob
        .put(
            "b",
            &long,
            body(b"x"),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect_err("long key");
    assert!(
        err.to_string()
            .contains("1025 bytes exceeds the limit of 1024"),
        "{err}"
    );
    let err = blob
        .put(
            "",
            "k",
            body(b"x"),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
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
        .put("b", "k", body(b"x"), options, Quota::default())
        .await
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
    let err = blob.delete("b", &refs).await.expect_err("too many keys");
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
        .await
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
        .await
        .expect_err("bad cursor");
    assert!(matches!(err, StoreError::InvalidCursor), "{err}");
    assert!(blob
        .list("b", BlobListOptions::default())
        .await
        .expect("list")
        .objects
        .is_empty());
}

/// A body of `len` bytes (a repeating pattern) sent in pieces of `piece` bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn pieces(data: &[u8], piece: usize) -> store::BlobBody {
    let chunks: Vec<Result<bytes::Bytes, StoreError>> = data
        .chunks(piece)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

async fn blob_large_body_streams_in_and_out_in_chunks(store: Store, _clock: ManualClock) {
    let blob = store.blob();
    let data = pattern(2 * BLOB_CHUNK_BYTES + 12_345);
    let meta = blob
        .put(
            "b",
            "big",
            pieces(&data, 300_000),
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect("put");
    assert_eq!(meta.size, data.len() as u64);
    let expected_etag = {
        use md5::Digest;
        md5::Md5::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(meta.etag, expected_etag);
    let object = blob.get("b", "big").await.expect("get").expect("present");
    assert_eq!(object.meta, meta);
    let chunks: Vec<bytes::Bytes> = object.body.map(|c| c.expect("chunk")).collect().await;
    assert_eq!(chunks.len(), 3, "read back in stored chunks of 1 MiB");
    assert!(chunks.iter().all(|c| c.len() <= BLOB_CHUNK_BYTES));
    assert!(
        chunks.concat() == data,
        "the body read back is the body written"
    );
    // The same body in one piece.
    blob.put(
        "b",
        "one-piece",
        body(&data),
        BlobPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put");
    let (_, read) = get_whole(blob, "b", "one-piece")
        .await
        .expect("get")
        .expect("present");
    assert!(
        read == data,
        "one piece: the body read back is the body written"
    );
    // An empty body is an object too.
    blob.put(
        "b",
        "empty",
        body(b""),
        BlobPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put empty");
    let (meta, bytes) = get_whole(blob, "b", "empty")
        .await
        .expect("get")
        .expect("present");
    assert_eq!((meta.size, bytes.len()), (0, 0));
}

async fn blob_put_whose_body_fails_keeps_the_old_object(store: Store, _clock: ManualClock) {
    let blob = store.blob();
    blob.put(
        "b",
        "k",
        body(b"old"),
        BlobPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put");
    let usage = blob.usage("b").await.expect("usage");
    let failing = futures::stream::iter(vec![
        Ok(bytes::Bytes::from(vec![1u8; BLOB_CHUNK_BYTES + 10])),
        Err(StoreError::Unavailable("the client went away".into())),
    ])
    .boxed();
    let err = blob
        .put(
            "b",
            "k",
            failing,
            BlobPutOptions::default(),
            Quota::default(),
        )
        .await
        .expect_err("the body failed");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    let (_, bytes) = get_whole(blob, "b", "k")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(bytes, b"old");
    assert_eq!(blob.usage("b").await.expect("usage"), usage);
}

async fn blob_body_read_after_its_object_was_replaced_ends_with_an_error(
    store: Store,
    _clock: ManualClock,
) {
    let blob = store.blob();
    let first = pattern(2 * BLOB_CHUNK_BYTES);
    blob.put(
        "b",
        "k",
        pieces(&first, BLOB_CHUNK_BYTES),
        BlobPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put");
    let mut reader = blob
        .get("b", "k")
        .await
        .expect("get")
        .expect("present")
        .body;
    let head = reader.next().await.expect("first chunk").expect("ok");
    assert_eq!(&head[..], &first[..BLOB_CHUNK_BYTES]);
    let second = vec![9u8; 2 * BLOB_CHUNK_BYTES];
    blob.put(
        "b",
        "k",
        pieces(&second, BLOB_CHUNK_BYTES),
        BlobPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("replace");
    let err = reader
        .next()
        .await
        .expect("an item")
        .expect_err("the old version is gone");
    assert!(matches!(err, StoreError::ObjectChanged { .. }), "{err}");
    assert!(
        reader.next().await.is_none(),
        "the stream ends after the error"
    );
    let (_, bytes) = get_whole(blob, "b", "k")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(bytes, second, "never a mix of the two");
}

crate::on_both_backends!(
    blob_large_body_streams_in_and_out_in_chunks,
    blob_put_whose_body_fails_keeps_the_old_object,
    blob_body_read_after_its_object_was_replaced_ends_with_an_error,
    blob_put_get_head_round_trip_with_metadata_and_md5_etag,
    blob_put_overwrites_and_gives_a_new_version,
    blob_delete_removes_named_keys_and_skips_absent_ones,
    blob_list_with_delimiter_rolls_up_common_prefixes,
    blob_list_pagination_with_delimiter_returns_each_entry_once,
    blob_list_pagination_without_delimiter_returns_every_key_once,
    blob_limits_are_rejected_with_clear_errors,
);
