//! Cold start of bare isolates (no loader): build + evaluate + first call, and idle memory.
//!
//! Run with `cargo run --release -p isolate --example cold_start`; with `GAP=1` it waits 2 ms
//! between loads (as sporadic cold starts do), which lets each JavaScript thread build a blank
//! isolate ahead of time.

use std::time::{Duration, Instant};

use isolate::{Isolate, IsolateConfig};

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut load = Vec::new();
    let mut first = Vec::new();
    let mut keep = Vec::new();
    for i in 0..300 {
        let start = Instant::now();
        let iso = Isolate::new(IsolateConfig::single(format!("cold-{i}"), CODE)).await?;
        let loaded = start.elapsed();
        iso.rpc_target()
            .call("add", vec![1.into(), 2.into()])
            .await?;
        load.push(loaded);
        first.push(start.elapsed());
        keep.push(iso);
        if std::env::var_os("GAP").is_some() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    println!(
        "load: p50 {:?} p99 {:?}; load + first call: p50 {:?} p99 {:?}",
        percentile(&mut load, 0.5),
        percentile(&mut load, 0.99),
        percentile(&mut first, 0.5),
        percentile(&mut first, 0.99)
    );
    let heap: usize = keep.iter().map(Isolate::memory_usage).sum();
    println!("JS heap per isolate: {} KiB", heap / keep.len() / 1024);
    Ok(())
}
