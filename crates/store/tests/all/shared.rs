//! What only a shared database has: several nodes (here, several `Store`s connected to one
//! PostgreSQL schema) writing at once.

use store::{KvPutOptions, KvStore, Quota, Store, StoreError};

use crate::backend::{self, Fixture};

/// Two nodes on one fresh PostgreSQL schema: the fixture's store and another (`None`
/// without a database: see `backend`). End with [`cleanup`].
async fn two_nodes() -> Option<(Fixture, Store)> {
    let f = backend::postgres().await?;
    let other = f.another_node().await;
    Some((f, other))
}

/// Closes the second node, then drops the fixture's schema.
async fn cleanup(f: Fixture, other: Store) {
    drop(other);
    f.cleanup().await;
}

/// Puts a one-byte value under `key` in namespace `NS`.
async fn put(kv: &dyn KvStore, key: &str, quota: Quota) -> Result<(), StoreError> {
    kv.put("NS", key, b"v".to_vec(), KvPutOptions::default(), quota)
        .await
}

/// Terminates, from the database side, every connection whose `application_name` is
/// `name` (what a database restart does to them); how many there were.
async fn terminate_connections(name: &str) -> usize {
    let url = std::env::var(backend::POSTGRES_ENV).expect("url");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&name],
        )
        .await
        .expect("terminate")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_two_nodes_never_pass_a_quota_together() {
    let Some((f, other)) = two_nodes().await else {
        return;
    };
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
                    match put(node.kv().as_ref(), &format!("k{t}-{i}"), quota).await {
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
    cleanup(f, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_on_one_node_is_live_on_the_other_and_versions_never_collide() {
    let Some((f, other)) = two_nodes().await else {
        return;
    };
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
    cleanup(f, other).await;
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

/// The next event, or a failure after `within`.
pub(crate) async fn next_event(
    events: &mut tokio::sync::mpsc::Receiver<store::postgres::CodeEvent>,
    within: std::time::Duration,
) -> store::postgres::CodeEvent {
    tokio::time::timeout(within, events.recv())
        .await
        .expect("an event in time")
        .expect("the listener is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_code_change_on_one_node_is_heard_by_the_other_and_a_reconnect_resyncs() {
    use store::postgres::CodeEvent;
    let Some((f, other)) = two_nodes().await else {
        return;
    };
    let mut events = other.postgres().expect("postgres").watch_code();
    let wait = std::time::Duration::from_secs(10);
    assert_eq!(next_event(&mut events, wait).await, CodeEvent::Resync);
    let code = f.store.code();
    code.deploy("app", b"1".to_vec(), None)
        .await
        .expect("deploy");
    assert_eq!(
        next_event(&mut events, wait).await,
        CodeEvent::Changed("app".into())
    );
    code.deploy("app", b"2".to_vec(), None)
        .await
        .expect("deploy");
    code.rollback("app").await.expect("rollback");
    code.set_live("app", 2).await.expect("set_live");
    code.delete("app").await.expect("delete");
    for _ in 0..4 {
        assert_eq!(
            next_event(&mut events, wait).await,
            CodeEvent::Changed("app".into())
        );
    }
    // Failed changes announce nothing: the next event is the deploy after them.
    assert!(code.rollback("app").await.is_err());
    assert!(!code.delete("app").await.expect("delete"));
    code.deploy("next", b"1".to_vec(), None)
        .await
        .expect("deploy");
    assert_eq!(
        next_event(&mut events, wait).await,
        CodeEvent::Changed("next".into())
    );

    // Cut the listener's connection from the database side: it reconnects and says so.
    let listener = format!("{}-listener", f.application_name());
    let killed = terminate_connections(&listener).await;
    assert!(killed != 0, "the listener was connected");
    assert_eq!(next_event(&mut events, wait).await, CodeEvent::Resync);
    code.deploy("after", b"1".to_vec(), None)
        .await
        .expect("deploy");
    assert_eq!(
        next_event(&mut events, wait).await,
        CodeEvent::Changed("after".into())
    );
    drop(events);
    cleanup(f, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_heartbeat_are_listed_until_they_go_quiet_or_leave() {
    use store::postgres::NodeRecord;
    let Some((f, other)) = two_nodes().await else {
        return;
    };
    let a = f.store.postgres().expect("postgres");
    let b = other.postgres().expect("postgres");
    let node = |id: &str, address: &str| NodeRecord {
        id: id.into(),
        address: address.into(),
        version: "test".into(),
        started_at: crate::T0_MS,
        heartbeat_at: 0,
        resident_isolates: 3,
        in_flight: 1,
    };
    a.heartbeat(&node("a", "127.0.0.1:1"))
        .await
        .expect("heartbeat");
    b.heartbeat(&node("b", "127.0.0.1:2"))
        .await
        .expect("heartbeat");
    let window = std::time::Duration::from_secs(15);
    let listed = a.nodes(window).await.expect("nodes");
    let ids: Vec<&str> = listed.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(listed[0].heartbeat_at, crate::T0_MS);
    assert_eq!(listed[1].resident_isolates, 3);
    // b goes quiet: 20 s later only a, which beat again, is live.
    f.clock.advance(std::time::Duration::from_secs(20));
    a.heartbeat(&node("a", "127.0.0.1:1"))
        .await
        .expect("heartbeat");
    let ids: Vec<String> = b
        .nodes(window)
        .await
        .expect("nodes")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, ["a"]);
    a.leave("a").await.expect("leave");
    assert!(b.nodes(window).await.expect("nodes").is_empty());
    cleanup(f, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_connections_are_cut_recovers_without_losing_acknowledged_writes() {
    let Some(f) = backend::postgres().await else {
        return;
    };
    let kv = f.store.kv().clone();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let key = format!("before-{i}");
        put(kv.as_ref(), &key, Quota::default()).await.expect("put");
        acknowledged.push(key);
    }
    // Cut every pooled connection from the database side (what a restart does to them).
    let cut = terminate_connections(f.application_name()).await;
    assert!(cut != 0, "the pool had connections");
    // Writes go on: each either is acknowledged or fails as Unavailable (never another
    // error), and the pool recovers by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut failed = 0;
    let mut i = 0;
    while acknowledged.len() < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pool did not recover"
        );
        let key = format!("after-{i}");
        i += 1;
        match put(kv.as_ref(), &key, Quota::default()).await {
            Ok(()) => acknowledged.push(key),
            Err(e) if e.is_unavailable() => failed += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    eprintln!("{failed} calls failed as unavailable while the pool reconnected");
    for key in &acknowledged {
        assert!(
            kv.get("NS", key).await.expect("get").is_some(),
            "acknowledged {key} is there"
        );
    }
    f.cleanup().await;
}
