//! What only a shared database has: several nodes (here, several `Store`s connected to one
//! PostgreSQL schema) writing at once.

use store::{KvPutOptions, Quota, StoreError};

use crate::backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_two_nodes_never_pass_a_quota_together() {
    let Some(f) = backend::postgres().await else {
        return;
    };
    let other = f.another_node().await;
    let quota = Quota {
        max_bytes: 1 << 30,
        max_keys: 40,
    };
    let tasks: Vec<_> = [f.store.clone(), other.clone()]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
        .map(|(t, node)| {
            tokio::spawn(async move {
                let mut ok = 0;
                for i in 0..15 {
                    let put = node
                        .kv()
                        .put(
                            "NS",
                            &format!("k{t}-{i}"),
                            b"v".to_vec(),
                            KvPutOptions::default(),
                            quota,
                        )
                        .await;
                    match put {
                        Ok(()) => ok += 1,
                        Err(StoreError::QuotaExceeded { .. }) => {}
                        Err(e) => panic!("unexpected error: {e}"),
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
    assert_eq!(
        ok, 40,
        "exactly the quota's keys went in, across both nodes"
    );
    assert_eq!(other.kv().usage("NS").await.expect("usage").keys, 40);
    let listed = f
        .store
        .kv()
        .list("NS", store::KvListOptions::default())
        .await
        .expect("list");
    assert_eq!(listed.keys.len(), 40);
    drop(other);
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_on_one_node_is_live_on_the_other_and_versions_never_collide() {
    let Some(f) = backend::postgres().await else {
        return;
    };
    let other = f.another_node().await;
    let a = f.store.code().clone();
    let b = other.code().clone();
    let (va, vb) = tokio::join!(
        a.deploy("app", b"from a".to_vec(), None),
        b.deploy("app", b"from b".to_vec(), None)
    );
    let mut versions = [va.expect("deploy a"), vb.expect("deploy b")];
    versions.sort_unstable();
    assert_eq!(versions, [1, 2]);
    let live_a = a.live("app").await.expect("live").expect("deployed");
    let live_b = b.live("app").await.expect("live").expect("deployed");
    assert_eq!(live_a, live_b);
    assert_eq!(b.rollback("app").await.expect("rollback"), 1);
    assert_eq!(a.live_version("app").await.expect("live"), Some(1));
    drop(other);
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable_not_a_panic() {
    // A port nothing listens on (the tests' own database is elsewhere).
    let err = store::Store::connect_postgres_with(
        "postgres://nobody@127.0.0.1:1/none",
        store::postgres::PgOptions {
            timeout: std::time::Duration::from_secs(2),
            ..store::postgres::PgOptions::default()
        },
        std::sync::Arc::new(store::SystemClock),
    )
    .await
    .expect_err("nothing listens on port 1");
    assert!(err.is_unavailable(), "{err:?}");
    let err = store::Store::connect_postgres("not a url at all")
        .await
        .expect_err("malformed");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(!err.to_string().contains("password"), "{err}");
}
