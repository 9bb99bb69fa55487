//! Metrics memory with nobody scraping, in short: the built binary answers rounds of capnweb
//! calls (a new session each round, 64 calls in flight) while `/_metrics` is never read, and
//! its resident set at the end stays within 5 % of what it was after the first tenth of the
//! run. Before the metrics upkeep, recorded samples piled up until an exporter rendered them
//! (about 40 bytes per call). The long version is `bench/soak/metrics.sh` (release build).
//!
//! `SOAK_CALLS` sets the number of calls (default 200,000).

use std::sync::Arc;
use std::time::Instant;

use capnweb::transport::websocket;
use capnweb::{Limits, Value};
use serde_json::json;

use crate::common::{js_bundle, request};
use crate::spawned::Spawned;

const ROUNDS: u64 = 10;
const IN_FLIGHT: u64 = 64;

/// One round: a new session, `calls` calls of `add(i, 1)` with [`IN_FLIGHT`] outstanding, each
/// answer checked.
async fn round(url: &str, calls: u64) {
    let session = websocket::connect(url, None, Limits::default())
        .await
        .expect("connects");
    let api = Arc::new(session.remote_main());
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|w| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut i = w;
                while i < calls {
                    let got = api
                        .call("add", vec![Value::Number(i as f64), Value::Number(1.0)])
                        .await
                        .expect("add answers");
                    assert_eq!(got.as_f64(), Some(i as f64 + 1.0));
                    i += IN_FLIGHT;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_memory_stays_flat_when_nobody_scrapes() {
    let total: u64 = std::env::var("SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let per_round = total / ROUNDS;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "soak-test-token";
    let server = Spawned::start_with(dir.path(), &[], &[("FUNCTIONS_ADMIN_TOKEN", token)]);
    let auth = format!("Bearer {token}");
    let r = request(
        &server.base,
        "PUT",
        "/_admin/functions/soak",
        &[("authorization", &auth)],
        js_bundle("v1", json!({})).to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let url = server.ws("soak");
    let started = Instant::now();
    round(&url, per_round).await;
    let at_tenth = server.rss_kib();
    let mut curve = vec![at_tenth];
    for _ in 1..ROUNDS {
        round(&url, per_round).await;
        curve.push(server.rss_kib());
    }
    let at_end = server.rss_kib();
    let ratio = at_end as f64 / at_tenth as f64;
    eprintln!(
        "soak: {total} calls in {:.1} s; RSS after each round (KiB): {curve:?}; end/tenth = {ratio:.3}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        ratio <= 1.05,
        "RSS grew from {at_tenth} KiB after a tenth of the run to {at_end} KiB at the end \
         ({ratio:.3}×, bound 1.05×); curve {curve:?}"
    );
}
