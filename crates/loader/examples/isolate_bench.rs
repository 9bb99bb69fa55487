//! A small benchmark of isolates through the Loader: cold load + first call, warm calls,
//! 1000 concurrent calls, and memory per idle isolate.
//!
//! Run with `cargo run --release -p loader --example isolate_bench`.

use std::time::{Duration, Instant};

use loader::{Loader, LoaderConfig, WorkerCode};

const CODE: &str = r#"
import { RpcTarget } from 'cloudflare:workers';
export class Bench extends RpcTarget {
  async add(a, b) { return a + b; }
}
export default { rpc: Bench, async fetch() { return new Response('ok'); } };
"#;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let loader = Loader::new(LoaderConfig {
        max_isolates: 2000,
        ..Default::default()
    });

    // Cold: build an isolate, evaluate the module, make the first call.
    let mut cold = Vec::new();
    for i in 0..200 {
        let start = Instant::now();
        let stub = loader.get(format!("cold-{i}"), || async {
            Ok::<_, String>(WorkerCode::single(CODE))
        });
        stub.get_rpc_target()
            .call("add", vec![1.into(), 2.into()])
            .await?;
        cold.push(start.elapsed());
    }
    println!(
        "cold load + first call: p50 {:?}  p99 {:?}",
        percentile(&mut cold, 0.5),
        percentile(&mut cold, 0.99)
    );

    // Warm: calls on a resident isolate.
    let target = loader
        .get("warm", || async {
            Ok::<_, String>(WorkerCode::single(CODE))
        })
        .get_rpc_target();
    target.call("add", vec![1.into(), 2.into()]).await?;
    let mut warm = Vec::new();
    for i in 0..5000 {
        let start = Instant::now();
        target.call("add", vec![i.into(), 1.into()]).await?;
        warm.push(start.elapsed());
    }
    println!(
        "warm call: p50 {:?}  p99 {:?}",
        percentile(&mut warm, 0.5),
        percentile(&mut warm, 0.99)
    );

    // Concurrent: 1000 calls in flight at once on one isolate.
    let start = Instant::now();
    let calls: Vec<_> = (0..1000)
        .map(|i| std::future::IntoFuture::into_future(target.call("add", vec![i.into(), 1.into()])))
        .collect();
    for r in futures::future::join_all(calls).await {
        r?;
    }
    let took = start.elapsed();
    println!(
        "1000 concurrent calls: {took:?} total, {:?} per call",
        took / 1000
    );

    // Memory: RSS delta over 1000 idle isolates.
    let before = rss_bytes();
    let mut keep = Vec::new();
    for i in 0..1000 {
        let stub = loader.get(format!("idle-{i}"), || async {
            Ok::<_, String>(WorkerCode::single(CODE))
        });
        keep.push(stub.isolate().await?);
    }
    match (before, rss_bytes()) {
        (Some(b), Some(a)) => println!(
            "memory per idle isolate: {:.0} KiB (RSS delta over 1000 isolates: {:.1} MiB)",
            a.saturating_sub(b) as f64 / 1000.0 / 1024.0,
            a.saturating_sub(b) as f64 / (1024.0 * 1024.0)
        ),
        _ => println!("memory per idle isolate: RSS not available on this platform"),
    }
    println!("resident isolates: {}", loader.resident());
    drop(keep);
    Ok(())
}
