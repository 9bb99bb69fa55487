use std::time::Duration;

use store::{StoreError, CODE_MAX_NOTE_BYTES};

use crate::{store_with_clock, T0_MS};

#[test]
fn deploy_makes_a_new_version_live() {
    let (store, clock) = store_with_clock();
    let code = store.code();
    assert_eq!(code.live("hello").expect("live"), None);

    let v1 = code
        .deploy("hello", b"{\"v\":1}", Some("first"))
        .expect("deploy v1");
    clock.advance(Duration::from_secs(5));
    let v2 = code.deploy("hello", b"{\"v\":2}", None).expect("deploy v2");
    assert_eq!((v1, v2), (1, 2));

    let live = code.live("hello").expect("live").expect("deployed");
    assert_eq!(live.version, 2);
    assert_eq!(live.bundle, b"{\"v\":2}");
    assert_eq!(live.created_at, T0_MS + 5_000);
    assert_eq!(code.live_version("hello").expect("live_version"), Some(2));

    let old = code.get_version("hello", 1).expect("get").expect("v1 kept");
    assert_eq!(old.bundle, b"{\"v\":1}");
    assert_eq!(old.note.as_deref(), Some("first"));
    assert_eq!(code.get_version("hello", 3).expect("get"), None);
}

#[test]
fn versions_are_numbered_per_function() {
    let (store, _) = store_with_clock();
    let code = store.code();
    assert_eq!(code.deploy("a", b"1", None).expect("deploy"), 1);
    assert_eq!(code.deploy("a", b"2", None).expect("deploy"), 2);
    assert_eq!(code.deploy("b", b"1", None).expect("deploy"), 1);
}

#[test]
fn versions_lists_metadata_oldest_first_with_the_live_flag() {
    let (store, clock) = store_with_clock();
    let code = store.code();
    code.deploy("fn", b"one", Some("initial")).expect("deploy");
    clock.advance(Duration::from_millis(10));
    code.deploy("fn", b"three", None).expect("deploy");
    code.rollback("fn").expect("rollback");

    let versions = code.versions("fn").expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].version, 1);
    assert_eq!(versions[0].note.as_deref(), Some("initial"));
    assert_eq!(versions[0].size, 3);
    assert!(versions[0].live);
    assert_eq!(versions[1].version, 2);
    assert_eq!(versions[1].created_at, T0_MS + 10);
    assert_eq!(versions[1].size, 5);
    assert!(!versions[1].live);
    assert!(code.versions("missing").expect("versions").is_empty());
}

#[test]
fn rollback_restores_the_previous_bundle() {
    let (store, _) = store_with_clock();
    let code = store.code();
    code.deploy("app", b"good", None).expect("deploy");
    code.deploy("app", b"better", None).expect("deploy");
    code.deploy("app", b"broken", None).expect("deploy");

    assert_eq!(code.rollback("app").expect("rollback"), 2);
    assert_eq!(
        code.live("app").expect("live").expect("live").bundle,
        b"better"
    );
    assert_eq!(code.rollback("app").expect("rollback"), 1);
    assert_eq!(
        code.live("app").expect("live").expect("live").bundle,
        b"good"
    );

    // A deploy after a rollback gets a fresh number and becomes live.
    assert_eq!(code.deploy("app", b"fixed", None).expect("deploy"), 4);
    assert_eq!(code.live_version("app").expect("live"), Some(4));
}

#[test]
fn rollback_without_an_older_version_is_an_error_and_changes_nothing() {
    let (store, _) = store_with_clock();
    let code = store.code();
    code.deploy("solo", b"only", None).expect("deploy");
    let err = code.rollback("solo").expect_err("nothing to roll back to");
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
    assert_eq!(code.live_version("solo").expect("live"), Some(1));

    let err = code.rollback("ghost").expect_err("not deployed");
    assert!(matches!(err, StoreError::FunctionNotFound { .. }), "{err}");
    assert!(err.is_not_found());
}

#[test]
fn set_live_switches_to_any_stored_version_and_rejects_missing_ones() {
    let (store, clock) = store_with_clock();
    let code = store.code();
    for bundle in [&b"a"[..], b"b", b"c"] {
        code.deploy("pick", bundle, None).expect("deploy");
    }
    clock.advance(Duration::from_secs(1));
    code.set_live("pick", 1).expect("set_live");
    assert_eq!(code.live("pick").expect("live").expect("live").bundle, b"a");
    let info = code.info("pick").expect("info").expect("exists");
    assert_eq!(info.live_version, 1);
    assert_eq!(info.latest_version, 3);
    assert_eq!(info.updated_at, T0_MS + 1_000);

    let err = code.set_live("pick", 9).expect_err("no v9");
    assert!(
        matches!(err, StoreError::VersionNotFound { version: 9, .. }),
        "{err}"
    );
    let err = code.set_live("nope", 1).expect_err("no function");
    assert!(matches!(err, StoreError::FunctionNotFound { .. }), "{err}");
    assert_eq!(code.live_version("pick").expect("live"), Some(1));
}

#[test]
fn list_reports_each_function_with_live_version_and_counts() {
    let (store, clock) = store_with_clock();
    let code = store.code();
    code.deploy("zeta", b"z", None).expect("deploy");
    clock.advance(Duration::from_secs(2));
    code.deploy("alpha", b"a1", None).expect("deploy");
    code.deploy("alpha", b"a2", None).expect("deploy");

    let list = code.list().expect("list");
    let ids: Vec<&str> = list.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["alpha", "zeta"]);
    assert_eq!(list[0].live_version, 2);
    assert_eq!(list[0].versions, 2);
    assert_eq!(list[0].updated_at, T0_MS + 2_000);
    assert_eq!(list[1].live_version, 1);
    assert_eq!(list[1].versions, 1);
    assert_eq!(list[1].created_at, T0_MS);
}

#[test]
fn delete_removes_the_function_and_all_its_versions() {
    let (store, _) = store_with_clock();
    let code = store.code();
    code.deploy("gone", b"1", None).expect("deploy");
    code.deploy("gone", b"2", None).expect("deploy");
    code.deploy("kept", b"k", None).expect("deploy");

    assert!(code.delete("gone").expect("delete"));
    assert_eq!(code.live("gone").expect("live"), None);
    assert_eq!(code.get_version("gone", 1).expect("get"), None);
    assert_eq!(code.get_version("gone", 2).expect("get"), None);
    assert!(code.versions("gone").expect("versions").is_empty());
    assert_eq!(code.info("gone").expect("info"), None);
    let ids: Vec<String> = code
        .list()
        .expect("list")
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, ["kept"]);
    assert!(
        !code.delete("gone").expect("second delete"),
        "reports it no longer existed"
    );
    assert_eq!(code.live("kept").expect("live").expect("kept").bundle, b"k");
}

#[test]
fn redeploy_after_delete_never_reuses_a_version_number() {
    let (store, _) = store_with_clock();
    let code = store.code();
    code.deploy("phoenix", b"old-1", None).expect("deploy");
    code.deploy("phoenix", b"old-2", None).expect("deploy");
    code.delete("phoenix").expect("delete");

    let v = code.deploy("phoenix", b"new", None).expect("redeploy");
    assert_eq!(v, 3, "a cache keyed by (id, version) must not see old code");
    let info = code.info("phoenix").expect("info").expect("exists");
    assert_eq!(info.versions, 1);
    let err = code.rollback("phoenix").expect_err("old versions are gone");
    assert!(matches!(err, StoreError::NoPreviousVersion { .. }), "{err}");
}

#[test]
fn invalid_function_ids_are_rejected_by_every_operation() {
    let (store, _) = store_with_clock();
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
        let err = code.deploy(id, b"x", None).expect_err(id);
        assert!(
            matches!(err, StoreError::InvalidFunctionId { .. }),
            "{id:?}: {err}"
        );
        assert!(err.is_client_error());
        assert!(err.to_string().contains("invalid function id"), "{err}");
        assert!(code.live(id).is_err(), "{id:?}");
        assert!(code.versions(id).is_err(), "{id:?}");
        assert!(code.delete(id).is_err(), "{id:?}");
        assert!(code.rollback(id).is_err(), "{id:?}");
    }
    assert!(code.list().expect("list").is_empty());
    // The longest valid id works.
    code.deploy(&"a".repeat(63), b"x", None)
        .expect("63 chars is valid");
}

#[test]
fn oversized_note_is_rejected_before_anything_is_stored() {
    let (store, _) = store_with_clock();
    let note = "n".repeat(CODE_MAX_NOTE_BYTES + 1);
    let err = store
        .code()
        .deploy("f", b"x", Some(&note))
        .expect_err("note too long");
    assert!(
        matches!(err, StoreError::TooLarge { what: "note", .. }),
        "{err}"
    );
    assert_eq!(store.code().live("f").expect("live"), None);
}

#[test]
fn concurrent_deploys_from_threads_get_distinct_versions() {
    let (store, _) = store_with_clock();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let code = std::sync::Arc::clone(store.code());
            std::thread::spawn(move || {
                (0..5)
                    .map(|j| code.deploy("busy", format!("{i}-{j}").as_bytes(), None))
                    .collect::<Result<Vec<u64>, _>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread").expect("deploys"))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>());
    assert_eq!(store.code().live_version("busy").expect("live"), Some(40));
}
