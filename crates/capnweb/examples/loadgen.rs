//! A load generator for any server implementing the interop contract (see
//! `tests/interop/README.md`), built on this crate's client.
//!
//! `cargo run --release -p capnweb --example loadgen -- --url ws://127.0.0.1:PORT/` measures:
//!
//! * sequential `square(i)` latency (p50/p99 over `--seq-calls`, after `--warmup` calls);
//! * a 3-call dependent chain `square(square(add(1, 2)))`, pipelined (all three sent at once,
//!   only the last awaited) and awaited one by one (median over `--chain-reps` each);
//! * `--concurrent` concurrent `square` calls, total time (median over `--concurrent-reps`);
//! * throughput with `--inflight` calls always outstanding for `--duration` seconds.
//!
//! Every result is checked; wrong results and errors are counted. It prints one JSON line
//! (the same shape as `bench/capnweb/node_client.mjs`) and exits 1 if anything failed.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capnweb::transport::websocket;
use capnweb::{Limits, RpcError, Stub, Value};
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// WebSocket URL of the server, e.g. ws://127.0.0.1:8080/.
    #[arg(long)]
    url: String,
    /// Sequential calls measured.
    #[arg(long, default_value_t = 3000)]
    seq_calls: usize,
    /// Sequential warm-up calls (not measured).
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Repetitions of each 3-call chain (pipelined, awaited).
    #[arg(long, default_value_t = 300)]
    chain_reps: usize,
    /// Calls issued at once in the concurrency test.
    #[arg(long, default_value_t = 1000)]
    concurrent: usize,
    /// Repetitions of the concurrency test.
    #[arg(long, default_value_t = 10)]
    concurrent_reps: usize,
    /// Calls kept outstanding in the throughput test.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
    /// Length of the throughput test, in seconds.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Tokio worker threads (0 = a current-thread runtime, like Node's single thread).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// A label copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

/// Counts failures; remembers the first few messages for the report.
#[derive(Default)]
struct Errors {
    errors: AtomicU64,
    wrong: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Errors {
    fn note(&self, msg: String) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() < 5 {
            s.push(msg);
        }
    }

    /// Checks a call's outcome against `expected`; true if it was right.
    fn check(&self, what: &str, got: Result<Value, RpcError>, expected: f64) -> bool {
        match got {
            Ok(v) if v.as_f64() == Some(expected) => true,
            Ok(v) => {
                self.wrong.fetch_add(1, Ordering::Relaxed);
                self.note(format!(
                    "{what}: expected {expected}, got {:?}",
                    v.to_json()
                ));
                false
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.note(format!("{what}: {e}"));
                false
            }
        }
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The `q`-quantile (nearest rank) of `v`, which is sorted in place.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// `i` for the sequential and concurrent tests: small, so `i * i` is exact.
fn operand(i: usize) -> f64 {
    (i % 1000) as f64
}

async fn pipelined_chain(api: &Stub) -> Result<Value, RpcError> {
    let sum = api.call("add", vec![Value::Number(1.0), Value::Number(2.0)]);
    let sq = api.call("square", vec![sum.into()]);
    api.call("square", vec![sq.into()]).await
}

async fn awaited_chain(api: &Stub) -> Result<Value, RpcError> {
    let sum = api
        .call("add", vec![Value::Number(1.0), Value::Number(2.0)])
        .await?;
    let sq = api.call("square", vec![sum]).await?;
    api.call("square", vec![sq]).await
}

async fn run(args: Args) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let errors = Arc::new(Errors::default());
    let session = websocket::connect(&args.url, None, Limits::default())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", args.url))?;
    let api = session.remote_main();

    // (a) Sequential latency.
    for i in 0..args.warmup {
        let r = api.call("square", vec![Value::Number(operand(i))]).await;
        errors.check("warm-up square", r, operand(i) * operand(i));
    }
    let mut seq = Vec::with_capacity(args.seq_calls);
    for i in 0..args.seq_calls {
        let t = Instant::now();
        let r = api.call("square", vec![Value::Number(operand(i))]).await;
        seq.push(us(t.elapsed()));
        errors.check("sequential square", r, operand(i) * operand(i));
    }
    let seq_mean = seq.iter().sum::<f64>() / seq.len().max(1) as f64;
    let seq_p50 = quantile(&mut seq, 0.50);
    let seq_p99 = quantile(&mut seq, 0.99);

    // (b) The 3-call chain: square(square(add(1, 2))) = 81. A few unmeasured reps first.
    for _ in 0..20 {
        errors.check("chain warm-up", pipelined_chain(&api).await, 81.0);
        errors.check("chain warm-up", awaited_chain(&api).await, 81.0);
    }
    let mut piped = Vec::with_capacity(args.chain_reps);
    for _ in 0..args.chain_reps {
        let t = Instant::now();
        let r = pipelined_chain(&api).await;
        piped.push(us(t.elapsed()));
        errors.check("pipelined chain", r, 81.0);
    }
    let mut awaited = Vec::with_capacity(args.chain_reps);
    for _ in 0..args.chain_reps {
        let t = Instant::now();
        let r = awaited_chain(&api).await;
        awaited.push(us(t.elapsed()));
        errors.check("awaited chain", r, 81.0);
    }

    // (c) N concurrent calls, all issued before any is awaited. One unmeasured rep first.
    let mut burst = Vec::with_capacity(args.concurrent_reps);
    for rep in 0..=args.concurrent_reps {
        let t = Instant::now();
        let promises: Vec<_> = (0..args.concurrent)
            .map(|i| api.call("square", vec![Value::Number(operand(i))]))
            .collect();
        let results =
            futures::future::join_all(promises.into_iter().map(|p| p.into_future())).await;
        let elapsed = t.elapsed();
        for (i, r) in results.into_iter().enumerate() {
            errors.check("concurrent square", r, operand(i) * operand(i));
        }
        if rep > 0 {
            burst.push(elapsed.as_secs_f64() * 1e3);
        }
    }

    // (d) Throughput: `inflight` workers, each looping call -> await, for `duration` seconds.
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let deadline = t + Duration::from_secs_f64(args.duration);
    let workers: Vec<_> = (0..args.inflight)
        .map(|w| {
            let api = api.clone();
            let errors = errors.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < deadline {
                    let x = operand(i);
                    let r = api.call("square", vec![Value::Number(x)]).await;
                    if errors.check("throughput square", r, x * x) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    i += args.inflight;
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let elapsed = t.elapsed().as_secs_f64();
    let completed = done.load(Ordering::Relaxed);

    drop(api);
    session.abort(RpcError::error("load generator done"));

    let samples = errors
        .samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(json!({
        "client": "rust",
        "label": args.label,
        "url": args.url,
        "seq_calls": args.seq_calls,
        "seq_p50_us": round(seq_p50, 1),
        "seq_p99_us": round(seq_p99, 1),
        "seq_mean_us": round(seq_mean, 1),
        "chain_reps": args.chain_reps,
        "chain3_pipelined_us": round(quantile(&mut piped, 0.5), 1),
        "chain3_awaited_us": round(quantile(&mut awaited, 0.5), 1),
        "concurrent": args.concurrent,
        "concurrent_ms": round(quantile(&mut burst, 0.5), 2),
        "inflight": args.inflight,
        "throughput_cps": round(completed as f64 / elapsed, 0),
        "throughput_calls": completed,
        "errors": errors.errors.load(Ordering::Relaxed),
        "wrong": errors.wrong.load(Ordering::Relaxed),
        "error_samples": samples,
    }))
}

fn main() {
    let args = Args::parse();
    let mut builder = if args.threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads);
        b
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start tokio: {e}");
            std::process::exit(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(report) => {
            println!("{report}");
            let failed =
                report["errors"].as_u64().unwrap_or(0) + report["wrong"].as_u64().unwrap_or(0);
            if failed > 0 {
                eprintln!("loadgen: {failed} calls failed or returned wrong results");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    }
}
