//! The `functions` binary: `functions serve` runs the server; the other commands talk to
//! one over HTTP. See `functions --help`.

mod cli;

// Rust's allocations (HTTP, capnweb values, strings) go to mimalloc; QuickJS keeps its own
// allocator (rquickjs without `rust-alloc`), so isolate memory limits still hold.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // stderr logging as `RUST_LOG` says, and (whatever it says) console output from functions
    // to the live-logs hub behind `GET /_admin/functions/<id>/logs`.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(server::logs::layer())
        .init();
    match cli::Cli::parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
