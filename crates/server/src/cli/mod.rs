//! The command line: `functions serve` and the client commands.

mod client;
mod dev;
mod rpc_limits;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use server::token::TokenSource;
use server::{Config, FunctionHost, LoaderHost, Server};

use client::Client;

#[derive(Parser)]
#[command(
    name = "functions",
    version,
    about = "Run dynamically loaded JavaScript functions, and manage them"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Deploy a function from a directory (with function.json) or a single .js file.
    Deploy {
        /// The function directory or .js file.
        path: PathBuf,
        /// The function id (default: from function.json, else the directory or file name).
        #[arg(long)]
        id: Option<String>,
        /// A note stored with the version.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        build: BuildArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// List deployed functions.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one function with its versions.
    Get {
        /// The function id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a function and all its versions.
    Delete {
        /// The function id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Make the previous version of a function live again.
    Rollback {
        /// The function id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Call an RPC method of a function and print the result as JSON.
    Call {
        /// The function id.
        id: String,
        /// The method name.
        method: String,
        /// Arguments, each one JSON value (quote strings: '"text"').
        args: Vec<String>,
        /// Use a WebSocket session instead of an HTTP batch.
        #[arg(long)]
        ws: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the live nodes of the cluster (on the embedded store: the one server).
    Nodes {
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a function's console output (console.log & co.) live, until Ctrl-C.
    ///
    /// Each line prints as `TIMESTAMP LEVEL message` (UTC; `[sub-id]` before the message for
    /// code the function loaded with env.LOADER.get). Only lines printed from now on are
    /// shown: there is no history. Exits 0 on Ctrl-C or when the server ends the stream
    /// (shutdown), 1 on an unknown function, a bad token or a broken connection.
    Logs {
        /// The function id.
        id: String,
        /// Print each line as the server sends it: one JSON object per line
        /// ({function, level, message, timestamp_ms[, source][, dropped]}).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Develop a function locally: serve DIR on an embedded store, redeploy it on every
    /// change (`redeployed ID version N`; a change that fails keeps the last good version
    /// serving and prints why), and print its console lines. Ctrl-C stops.
    Dev(dev::DevArgs),
    /// Write TypeScript declarations of a deployed function: its RPC surface (`Api`, from its
    /// TypeScript signatures; `Promise<any>` where there are none), its `Env` from its
    /// bindings, and the binding types. For `newWebSocketRpcSession<Api>(url)` in a client.
    Types {
        /// The function id.
        id: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Export conditions to resolve the function's package imports with (a base class
        /// imported from a package), replacing the ones it was deployed with.
        #[arg(long, value_name = "A,B,C")]
        conditions: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Data directory: the store and the admin token.
    #[arg(long, default_value = ".functions")]
    data: PathBuf,
    /// A shared store for several nodes: `postgres://user:password@host:port/db`. Without
    /// it the store is the embedded file in the data directory. A shared store requires
    /// the admin token in FUNCTIONS_ADMIN_TOKEN (the same on every node). TLS as in libpq:
    /// `?sslmode=verify-full&sslrootcert=ca.pem` (sslmode: disable, prefer (the default),
    /// require, verify-ca, verify-full; sslrootcert=system for the platform's roots;
    /// sslcert/sslkey for a client certificate).
    #[arg(long, env = "FUNCTIONS_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Most connections this node keeps to a shared store (each waits at most 5 s for a
    /// free one before the call fails as unavailable).
    #[arg(long, default_value_t = 16)]
    store_connections: usize,
    /// The URL other nodes reach this one at (`functions logs` fans out to it), for example
    /// `http://10.0.0.5:8787`. Default: `http://` and the address it listens on.
    #[arg(long, env = "FUNCTIONS_ADVERTISE")]
    advertise: Option<String>,
    /// Deploy every function in this directory at startup (each subdirectory with a
    /// function.json, and each top-level .js file).
    #[arg(long)]
    deploy: Option<PathBuf>,
    /// The admin token (default: the one stored in the data directory, else a new one).
    /// Prefer `FUNCTIONS_ADMIN_TOKEN` or the token file: a flag's value shows in `ps`.
    #[arg(long, env = "FUNCTIONS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Seconds to let in-flight requests finish on SIGTERM/SIGINT.
    #[arg(long, default_value_t = 10)]
    shutdown_grace: u64,
    /// JavaScript threads that always run (default: the number of CPUs, at least 2).
    #[arg(long)]
    js_threads: Option<usize>,
    /// Most JavaScript threads: more start, up to this, while every thread is stuck in one job
    /// (a spinning isolate holds a thread until its CPU limit).
    #[arg(long, default_value_t = isolate::DEFAULT_MAX_JS_THREADS)]
    max_js_threads: usize,
    /// Largest WebAssembly module, in MiB, that a function may compile (bigger: RangeError).
    #[arg(long, default_value_t = isolate::DEFAULT_MAX_WASM_MODULE_BYTES / (1024 * 1024))]
    max_wasm_module_mb: usize,
    /// Threads that compile WebAssembly (default: the number of CPUs, at most 4).
    #[arg(long)]
    wasm_compile_threads: Option<usize>,
    /// Most bytes one KV namespace or blob bucket may hold (keys, values, metadata); a
    /// binding's `quota` may only lower it.
    #[arg(long, default_value_t = store::DEFAULT_QUOTA_BYTES)]
    storage_quota_bytes: u64,
    /// Most keys one KV namespace or blob bucket may hold; a binding's `quota` may only
    /// lower it.
    #[arg(long, default_value_t = store::DEFAULT_QUOTA_KEYS)]
    storage_quota_keys: u64,
    #[command(flatten)]
    background: BackgroundArgs,
    /// Most CPU time per invocation a function may declare (`limits.cpuMs`), in ms: a deploy
    /// above it is refused (400), and the default (1,000) is capped to it. Code a function
    /// loads gets at most the function's.
    #[arg(long, default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=server::manifest::MAX_CPU_MS))]
    max_cpu_ms: u64,
    /// Most memory a function may declare (`limits.memoryMb`), in MiB: a deploy above it is
    /// refused (400), and the default (128) is capped to it. Code a function loads gets at
    /// most the function's.
    #[arg(long, default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=server::manifest::MAX_MEMORY_MB))]
    max_memory_mb: u64,
    /// Most children (code loaded through env.LOADER, `get` and `load` alike) resident per
    /// function version; past it the least recently used is evicted.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    max_children: u64,
    /// Most calls (and loads) in flight into one function version's children at once; one
    /// more is refused at once with a TooManyCallsError.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    max_child_calls: u64,
    #[command(flatten)]
    rpc: rpc_limits::RpcLimitArgs,
}

impl ServeArgs {
    /// The Worker Loader's configuration these flags ask for.
    fn loader_config(&self) -> loader::LoaderConfig {
        let defaults = loader::LoaderConfig::default();
        let mib = |mb: u64| usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        loader::LoaderConfig {
            max_limits: loader::Limits {
                cpu_time: std::time::Duration::from_millis(self.max_cpu_ms),
                memory_bytes: mib(self.max_memory_mb),
                ..defaults.max_limits
            },
            children: loader::ChildrenConfig {
                max_resident: usize::try_from(self.max_children).unwrap_or(usize::MAX),
                max_in_flight: usize::try_from(self.max_child_calls).unwrap_or(usize::MAX),
            },
            default_limits: self.background.limits(),
            ..defaults
        }
    }
}

/// How long and how much background work an invocation may leave (see the README's Limits).
#[derive(Args)]
struct BackgroundArgs {
    /// Milliseconds that work handed to `ctx.waitUntil` may go on after the response.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    wait_until_ms: u64,
    /// Milliseconds an invocation may take to answer before it fails.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    wall_time_ms: u64,
    /// Timers (setTimeout/setInterval) one isolate may have pending.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_timers: u64,
}

impl BackgroundArgs {
    /// The isolate limits these flags set (the others at their defaults).
    fn limits(&self) -> isolate::Limits {
        isolate::Limits {
            wait_until: std::time::Duration::from_millis(self.wait_until_ms),
            wall_time: std::time::Duration::from_millis(self.wall_time_ms),
            max_timers: usize::try_from(self.max_timers).unwrap_or(usize::MAX),
            ..isolate::Limits::default()
        }
    }
}

/// How a function's sources are built (`deploy`, `dev`).
#[derive(Args)]
pub(crate) struct BuildArgs {
    /// Export conditions packages are resolved with, in priority order, replacing the default
    /// `workerd,worker,browser` (and function.json's `conditions`); `import`/`require` and
    /// `default` are always added. At most 16, each of A-Z a-z 0-9 . _ - (`""`: none).
    #[arg(long, value_name = "A,B,C")]
    conditions: Option<String>,
}

impl BuildArgs {
    /// The conditions asked for, if any (checked by the server too).
    pub(crate) fn conditions(&self) -> Option<Vec<String>> {
        self.conditions.as_deref().map(split_conditions)
    }
}

/// `a,b,c` as a list (`""` is the empty list).
fn split_conditions(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Args)]
struct Conn {
    /// The server's URL.
    #[arg(long, env = "FUNCTIONS_URL", default_value = "http://127.0.0.1:8787")]
    server: String,
    /// The admin token.
    #[arg(long, env = "FUNCTIONS_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the admin token from this data directory's token file (a local server's).
    #[arg(long)]
    data: Option<PathBuf>,
}

impl Conn {
    fn client(&self) -> Result<Client> {
        let token = match (&self.token, &self.data) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(dir)) => Some(
                server::token::read(dir)?
                    .ok_or_else(|| anyhow!("no admin token file in {}", dir.display()))?,
            ),
            (None, None) => None,
        };
        Ok(Client::new(&self.server, token))
    }
}

impl Cli {
    pub async fn run(self) -> Result<()> {
        match self.command {
            Command::Serve(args) => serve(*args).await,
            Command::Deploy {
                path,
                id,
                note,
                build,
                conn,
            } => {
                let f = server::function_dir::load_with_conditions(
                    &path,
                    id.as_deref(),
                    build.conditions().as_deref(),
                )?;
                deploy(&conn.client()?, f, note.as_deref()).await
            }
            Command::List { conn } => {
                let out = conn
                    .client()?
                    .admin("GET", "/_admin/functions", None)
                    .await?;
                let list = out["functions"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("no functions deployed");
                }
                for f in list {
                    println!(
                        "{}\tversion {}\t({} versions)",
                        f["id"].as_str().unwrap_or("?"),
                        f["live_version"],
                        f["versions"]
                    );
                }
                Ok(())
            }
            Command::Get { id, conn } => {
                let out = conn
                    .client()?
                    .admin("GET", &format!("/_admin/functions/{id}"), None)
                    .await?;
                println!("{}", serde_json::to_string_pretty(&out)?);
                Ok(())
            }
            Command::Delete { id, conn } => {
                conn.client()?
                    .admin("DELETE", &format!("/_admin/functions/{id}"), None)
                    .await?;
                println!("deleted {id}");
                Ok(())
            }
            Command::Rollback { id, conn } => {
                let out = conn
                    .client()?
                    .admin("POST", &format!("/_admin/functions/{id}/rollback"), None)
                    .await?;
                println!("{id} is now at version {}", out["version"]);
                Ok(())
            }
            Command::Call {
                id,
                method,
                args,
                ws,
                conn,
            } => call(&conn.server, &id, &method, &args, ws).await,
            Command::Logs { id, json, conn } => logs(&conn.client()?, &id, json).await,
            Command::Dev(args) => dev::dev(args).await,
            Command::Types {
                id,
                out,
                conditions,
                conn,
            } => {
                let got = conn
                    .client()?
                    .admin("GET", &format!("/_admin/functions/{id}"), None)
                    .await?;
                let live = bundle::Bundle::from_value(got["bundle"].clone())
                    .map_err(|e| anyhow!("{id}: the live bundle does not parse: {e}"))?;
                let version = got["live_version"]
                    .as_u64()
                    .or_else(|| got["versions"].as_array()?.last()?["version"].as_u64());
                let opts = match conditions.as_deref().map(split_conditions) {
                    Some(c) => {
                        bundle::manifest::validate_conditions(&c)?;
                        bundle::BuildOptions { conditions: c }
                    }
                    None => bundle::BuildOptions::for_bundle(&live),
                };
                let text = bundle::types::declarations_with(&id, version, &live, &opts);
                match out {
                    Some(path) => {
                        std::fs::write(&path, text)
                            .with_context(|| format!("writing {}", path.display()))?;
                        eprintln!("wrote {}", path.display());
                    }
                    None => print!("{text}"),
                }
                Ok(())
            }
            Command::Nodes { conn } => {
                let out = conn.client()?.admin("GET", "/_admin/nodes", None).await?;
                let nodes = out["nodes"].as_array().cloned().unwrap_or_default();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                println!("ID\tADDRESS\tVERSION\tUPTIME\tISOLATES\tIN FLIGHT\tLAST SEEN");
                for n in nodes {
                    let ms = |k: &str| n[k].as_u64().unwrap_or(0);
                    println!(
                        "{}{}\t{}\t{}\t{}s\t{}\t{}\t{:.1}s ago",
                        n["id"].as_str().unwrap_or("?"),
                        if n["self"].as_bool() == Some(true) {
                            "*"
                        } else {
                            ""
                        },
                        n["address"].as_str().unwrap_or("?"),
                        n["version"].as_str().unwrap_or("?"),
                        now.saturating_sub(ms("started_at")) / 1000,
                        ms("resident_isolates"),
                        ms("in_flight"),
                        now.saturating_sub(ms("heartbeat_at")) as f64 / 1000.0,
                    );
                }
                Ok(())
            }
        }
    }
}

/// The host that runs function code: the Worker Loader (QuickJS isolates).
fn host(args: &ServeArgs) -> Arc<dyn FunctionHost> {
    Arc::new(LoaderHost::with_config(args.loader_config()))
}

async fn serve(args: ServeArgs) -> Result<()> {
    // Before the first isolate exists (they take effect only then).
    if let Some(n) = args.js_threads {
        isolate::set_js_threads(n);
    }
    isolate::set_max_js_threads(args.max_js_threads);
    isolate::set_socket_limits(args.rpc.socket_limits());
    let rpc_limits = args.rpc.limits();
    // The capnweb sessions functions run themselves share the /_rpc table and its budget.
    isolate::set_function_rpc_limits(rpc_limits.clone());
    isolate::set_max_wasm_module_bytes(args.max_wasm_module_mb.saturating_mul(1024 * 1024));
    if let Some(n) = args.wasm_compile_threads {
        isolate::set_wasm_compile_threads(n);
    }
    let to_deploy = match &args.deploy {
        Some(dir) => server::function_dir::discover(dir)?,
        None => Vec::new(),
    };
    let host = host(&args);
    let config = Config {
        listen: args.listen,
        data_dir: args.data.clone(),
        store_url: args.store.filter(|s| !s.is_empty()),
        store_connections: args.store_connections,
        advertise: args.advertise.filter(|s| !s.is_empty()),
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
        shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace),
        storage_quota: store::Quota {
            max_bytes: args.storage_quota_bytes,
            max_keys: args.storage_quota_keys,
        },
        rpc_limits,
        trusted_proxies: args.rpc.trusted_proxies(),
        redact: args.rpc.redact()?,
        ..Config::default()
    };
    let server = Server::start(config, host).await?;
    for f in to_deploy {
        let version = server
            .registry()
            .deploy(
                &f.id,
                f.bundle,
                Some(format!("serve --deploy {}", f.path.display())),
            )
            .await
            .with_context(|| format!("deploying {}", f.path.display()))?;
        println!("deployed {} version {version}", f.id);
    }
    if server.token_source() == TokenSource::Generated {
        println!(
            "admin token: {} (saved in {})",
            server.admin_token(),
            args.data.join(server::token::TOKEN_FILE).display()
        );
    }
    println!("listening on http://{}", server.local_addr());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    wait_for_signal().await?;
    tracing::info!("shutting down");
    server.shutdown().await?;
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            _ = term.recv() => {},
            r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

async fn deploy(
    client: &Client,
    f: server::function_dir::FunctionSource,
    note: Option<&str>,
) -> Result<()> {
    let body = serde_json::to_vec(&f.bundle.to_json())?;
    let mut url = format!("/_admin/functions/{}", f.id);
    if let Some(note) = note {
        url.push_str("?note=");
        url.push_str(&percent_encode(note));
    }
    let out = client.admin("PUT", &url, Some(body)).await?;
    println!(
        "deployed {} version {} to {}",
        f.id,
        out["version"],
        client.base()
    );
    Ok(())
}

/// `functions logs`: follows `GET /_admin/functions/<id>/logs` until Ctrl-C or its end.
async fn logs(client: &Client, id: &str, json: bool) -> Result<()> {
    use http_body_util::BodyExt as _;
    use std::io::Write as _;

    if store::validate_function_id(id).is_err() {
        bail!("{id:?} is not a function id (ids are [a-z0-9][a-z0-9-]{{0,62}})");
    }
    let resp = client
        .send("GET", &format!("/_admin/functions/{id}/logs"), None)
        .await?;
    eprintln!(
        "following the console output of {id} on {} (Ctrl-C to stop)",
        client.base()
    );
    let mut body = resp.into_body();
    let mut pending: Vec<u8> = Vec::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let frame = tokio::select! {
            r = &mut ctrl_c => {
                r.context("waiting for Ctrl-C")?;
                return Ok(());
            }
            f = body.frame() => f,
        };
        let Some(frame) = frame else {
            eprintln!("the server ended the stream");
            return Ok(());
        };
        let frame = frame.context("the log stream broke")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line[..nl]);
            let line = line.trim();
            if line.is_empty() {
                continue; // heartbeat
            }
            let text = match serde_json::from_str::<server::logs::LogLine>(line) {
                Ok(l) if !json => format_line(&l),
                _ => line.to_owned(),
            };
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{text}").and_then(|()| out.flush()) {
                Ok(()) => {}
                // The reader went away (`functions logs x | head`): done.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e).context("writing to stdout"),
            }
        }
    }
}

/// `TIMESTAMP LEVEL [node] [source] message` (`node` on a shared store only).
fn format_line(l: &server::logs::LogLine) -> String {
    let ts = server::logs::format_timestamp(l.timestamp_ms);
    let level = l.level.to_uppercase();
    let mut out = format!("{ts} {level:<5} ");
    for tag in [&l.node, &l.source].into_iter().flatten() {
        out.push_str(&format!("[{tag}] "));
    }
    out.push_str(&l.message);
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn call(server: &str, id: &str, method: &str, args: &[String], ws: bool) -> Result<()> {
    let values = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::from_str::<serde_json::Value>(a)
                .map(|v| capnweb::Value::from_json(&v))
                .map_err(|e| {
                    anyhow!(
                        "argument {} is not JSON ({e}); quote strings: '\"text\"'",
                        i + 1
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let base = server.trim_end_matches('/');
    if !base.starts_with("http://") {
        bail!("server URL {base:?} must start with http://");
    }
    let url = format!("{base}/_rpc/{id}");
    let limits = capnweb::Limits::default();
    let result = if ws {
        let ws_url = url.replacen("http://", "ws://", 1);
        let session = capnweb::transport::websocket::connect(&ws_url, None, limits)
            .await
            .map_err(|e| anyhow!("cannot open a WebSocket to {ws_url}: {e}"))?;
        session.remote_main().call(method, values).await
    } else {
        let batch = capnweb::transport::batch::HttpBatch::new(url.clone(), limits);
        let main = batch.main();
        let method = method.to_owned();
        batch
            .run(async move { main.call(&method, values).await })
            .await
            .map_err(|e| anyhow!("calling {url}: {e}"))?
    };
    match result {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v.to_json())?);
            Ok(())
        }
        Err(e) => bail!("{id}.{method}() threw {e}"),
    }
}
