use std::time::Duration;

use store::{StoreError, CODE_MAX_NOTE_BYTES};

use store::{ManualClock, Store};

use crate::T0_MS;

async fn deploy_makes_a_new_version_live(store: Store, clock: ManualClock) {
    let code = store.code();
    assert_eq!(code.live("hello").await.expect("live"), None);

    let v1 = code
        .deploy("hello", (b"{\"v\":1}").to_vec(), Some("first"))
        .await
        .expect("deploy v1");
    clock.advance(Duration::from_secs(5));
    let v2 = code
        .deploy("hello", (b"{\"v\":2}").to_vec(), None)
        .await
        .expect("deploy v2");
    assert_eq!((v1, v2), (1, 2));

    let live = code.live("hello").await.expect("live").expect("deployed");
    assert_eq!(live.version, 2);
    assert_eq!(live.bundle, b"{\"v\":2}");
    assert_eq!(live.created_at, T0_MS + 5_000);
    assert_eq!(
        code.live_version("hello").await.expect("live_version"),
        Some(2)
    );

    let old = code
        .get_version("hello", 1)
        .await
        .expect("get")
        .expect("v1 kept");
    assert_eq!(old.bundle, b"{\"v\":1}");
    assert_eq!(old.note.as_deref(), Some("first"));
    assert_eq!(code.get_version("hello", 3).await.expect("get"), None);
}

async fn versions_are_numbered_per_function(store: Store, _clock: ManualClock) {
    let code = store.code();
    assert_eq!(
        code.deploy("a", b"1".to_vec(), None).await.expect("deploy"),
        1
    );
    assert_eq!(
        code.deploy("a", b"2".to_vec(), None).await.expect("deploy"),
        2
    );
    assert_eq!(
        code.deploy("b", b"1".to_vec(), None).await.expect("deploy"),
        1
    );
}

async fn versions_lists_metadata_oldest_first_with_the_live_flag(store: Store, clock: ManualClock) {
    let code = store.code();
    code.deploy("fn", b"one".to_vec(), Some("initial"))
        .await
        .expect("deploy");
    clock.advance(Duration::from_millis(10));
    code.deploy("fn", b"three".to_vec(), None)
        .await
        .expect("deploy");
    code.rollback("fn").await.expect("rollback");

    let versions = code.versions("fn").await.expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].version, 1);
    assert_eq!(versions[0].note.as_deref(), Some("initial"));
    assert_eq!(versions[0].size, 3);
    assert!(versions[0].live);
    assert_eq!(versions[1].version, 2);
    assert_eq!(versions[1].created_at, T0_MS + 10);
    assert_eq!(versions[1].size, 5);
    assert!(!versions[1].live);
    assert!(code.versions("missing").await.expect("versions").is_empty());
}

async fn rollback_restores_the_previous_bundle(store: Store, _clock: ManualClock) {
    let code = store.code();
    code.deploy("app", b"good".to_vec(), None)
        .await
        .expect("deploy");
    code.deploy("app", b"better".to_vec(), None)
        .await
        .expect("deploy");
    code.deploy("app", b"broken".to_vec(), None)
        .await
        .expect("deploy");

    assert_eq!(code.rollback("app").await.expect("rollback"), 2);
    assert_eq!(
        code.live("app").await.expect("live").expect("live").bundle,
        b"better"
    );
    assert_eq!(code.rollback("app").await.expect("rollback"), 1);
    assert_eq!(
        code.live("app").await.expect("live").expect("live").bundle,
        b"good"
    );

    // A deploy after a rollback gets a fresh number and becomes live.
    assert_eq!(
        code.deploy("app", b"fixed".to_vec(), None)
            .await
            .expect("deploy"),
        4
    );
    assert_eq!(code.live_version("app").await.expect("live"), Some(4));
}

async fn rollback_without_an_older_version_is_an_error_and_changes_nothing(
    store: Store,
    _clock: ManualClock,
) {
    let code = store.code();
    code.deploy("solo", b"only".to_vec(), None)
        .await
        .expect("deploy");
    let err = code
        .rollback("solo")
        .await
        .expect_err("nothing to roll back to");
    assert!(
        matches!(
            err,
            StoreError::NoPreviousVersion {
                live_version: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(code.live_version("solo").await.expect("live"), Some(1));

    let err = code.rollback("ghost").await.expect_err("not deployed");
    assert!(matches!(err, StoreError::FunctionNotFound { .. }), "{err}");
    assert!(err.is_not_found());
}

async fn set_live_switches_to_any_stored_version_and_rejects_missing_ones(
    store: Store,
    clock: ManualClock,
) {
    let code = store.code();
    for bundle in [&b"a"[..], b"b", b"c"] {
        code.deploy("pick", bundle.to_vec(), None)
            .await
            .expect("deploy");
    }
    clock.advance(Duration::from_secs(1));
    code.set_live("pick", 1).await.expect("set_live");
    assert_eq!(
        code.live("pick").await.expect("live").expect("live").bundle,
        b"a"
    );
    let info = code.info("pick").await.expect("info").expect("exists");
    assert_eq!(info.live_version, 1);
    assert_eq!(info.latest_version, 3);
    assert_eq!(info.updated_at, T0_MS + 1_000);

    let err = code.set_live("pick", 9).await.expect_err("no v9");
    assert!(
        matches!(err, StoreError::VersionNotFound { version: 9, .. }),
        "{err}"
    );
    let err = code.set_live("nope", 1).await.expect_err("no function");
    assert!(matches!(err, StoreError::FunctionNotFound { .. }), "{err}");
    assert_eq!(code.live_version("pick").await.expect("live"), Some(1));
}

async fn list_reports_each_function_with_live_version_and_counts(store: Store, clock: ManualClock) {
    let code = store.code();
    code.deploy("zeta", b"z".to_vec(), None)
        .await
        .expect("deploy");
    clock.advance(Duration::from_secs(2));
    code.deploy("alpha", b"a1".to_vec(), None)
        .await
        .expect("deploy");
    code.deploy("alpha", b"a2".to_vec(), None)
        .await
        .expect("deploy");

    let list = code.list().await.expect("list");
    let ids: Vec<&str> = list.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["alpha", "zeta"]);
    assert_eq!(list[0].live_version, 2);
    assert_eq!(list[0].versions, 2);
    assert_eq!(list[0].updated_at, T0_MS + 2_000);
    assert_eq!(list[1].live_version, 1);
    assert_eq!(list[1].versions, 1);
    assert_eq!(list[1].created_at, T0_MS);
}

async fn delete_removes_the_function_and_all_its_versions(store: Store, _clock: ManualClock) {
    let code = store.code();
    code.deploy("gone", b"1".to_vec(), None)
        .await
        .expect("deploy");
    code.deploy("gone", b"2".to_vec(), None)
        .await
        .expect("deploy");
    code.deploy("kept", b"k".to_vec(), None)
        .await
        .expect("deploy");

    assert!(code.delete("gone").await.expect("delete"));
    assert_eq!(code.live("gone").await.expect("live"), None);
    assert_eq!(code.get_version("gone", 1).await.expect("get"), None);
    assert_eq!(code.get_version("gone", 2).await.expect("get"), None);
    assert!(code.versions("gone").await.expect("versions").is_empty());
    assert_eq!(code.info("gone").await.expect("info"), None);
    let ids: Vec<String> = code
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, ["kept"]);
    assert!(
        !code.delete("gone").await.expect("second delete"),
        "reports it no longer existed"
    );
    assert_eq!(
        code.live("kept").await.expect("live").expect("kept").bundle,
        b"k"
    );
}

async fn redeploy_after_delete_never_reuses_a_version_number(store: Store, _clock: ManualClock) {
    let code = store.code();
    code.deploy("phoenix", b"old-1".to_vec(), None)
        .await
        .expect("deploy");
    code.deploy("phoenix", b"old-2".to_vec(), None)
        .await
        .expect("deploy");
    code.delete("phoenix").await.expect("delete");

    let v = code
        .deploy("phoenix", b"new".to_vec(), None)
        .await
        .expect("redeploy");
    assert_eq!(v, 3, "a cache keyed by (id, version) must not see old code");
    let info = code.info("phoenix").await.expect("info").expect("exists");
    assert_eq!(info.versions, 1);
    let err = code
        .rollback("phoenix")
        .await
        .expect_err("old versions are gone");
    assert!(matches!(err, StoreError::NoPreviousVersion { .. }), "{err}");
}

async fn invalid_function_ids_are_rejected_by_every_operation(store: Store, _clock: ManualClock) {
    let code = store.code();
    let long = "a".repeat(64);
    for id in [
        "",
        "Hello",
        "_admin",
        "-lead",
        "has space",
        "a/b",
        "dot.ted",
        long.as_str(),
    ] {
        let err = code.deploy(id, b"x".to_vec(), None).await.expect_err(id);
        assert!(
            matches!(err, StoreError::InvalidFunctionId { .. }),
            "{id:?}: {err}"
        );
        assert!(err.is_client_error());
        assert!(err.to_string().contains("invalid function id"), "{err}");
        assert!(code.live(id).await.is_err(), "{id:?}");
        assert!(code.versions(id).await.is_err(), "{id:?}");
        assert!(code.delete(id).await.is_err(), "{id:?}");
        assert!(code.rollback(id).await.is_err(), "{id:?}");
    }
    assert!(code.list().await.expect("list").is_empty());
    // The longest valid id works.
    code.deploy(&"a".repeat(63), b"x".to_vec(), None)
        .await
        .expect("63 chars is valid");
}

async fn oversized_note_is_rejected_before_anything_is_stored(store: Store, _clock: ManualClock) {
    let note = "n".repeat(CODE_MAX_NOTE_BYTES + 1);
    let err = store
        .code()
        .deploy("f", b"x".to_vec(), Some(&note))
        .await
        .expect_err("note too long");
    assert!(
        matches!(err, StoreError::TooLarge { what: "note", .. }),
        "{err}"
    );
    assert_eq!(store.code().live("f").await.expect("live"), None);
}

async fn concurrent_deploys_get_distinct_versions(store: Store, _clock: ManualClock) {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let code = std::sync::Arc::clone(store.code());
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for j in 0..5 {
                    versions.push(
                        code.deploy("busy", format!("{i}-{j}").into_bytes(), None)
                            .await?,
                    );
                }
                Ok::<_, store::StoreError>(versions)
            })
        })
        .collect();
    let mut all: Vec<u64> = Vec::new();
    for h in handles {
        all.extend(h.await.expect("task").expect("deploys"));
    }
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>());
    assert_eq!(
        store.code().live_version("busy").await.expect("live"),
        Some(40)
    );
}

crate::on_both_backends!(
    deploy_makes_a_new_version_live,
    versions_are_numbered_per_function,
    versions_lists_metadata_oldest_first_with_the_live_flag,
    rollback_restores_the_previous_bundle,
    rollback_without_an_older_version_is_an_error_and_changes_nothing,
    set_live_switches_to_any_stored_version_and_rejects_missing_ones,
    list_reports_each_function_with_live_version_and_counts,
    delete_removes_the_function_and_all_its_versions,
    redeploy_after_delete_never_reuses_a_version_number,
    invalid_function_ids_are_rejected_by_every_operation,
    oversized_note_is_rejected_before_anything_is_stored,
    concurrent_deploys_get_distinct_versions,
);
