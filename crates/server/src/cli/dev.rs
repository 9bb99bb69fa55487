//! `functions dev [DIR]`: a local server for one function directory. It deploys DIR, prints
//! the function's console lines as they come, watches DIR (notify: inotify on Linux) and
//! redeploys on every change, printing `redeployed ID version N`. A change that does not build
//! or load is refused as any deploy is: the last good version keeps serving and the reason is
//! printed. Ctrl-C (or SIGTERM) stops the server and exits 0.
//!
//! The store is embedded, in `--data DIR` or in a temporary directory removed on exit.
//! Changes under `node_modules/` and hidden entries are not watched (run `npm install`, then
//! touch a source file).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use server::{Config, LoaderHost, Server};

use super::client::Client;

/// How long a burst of file events is collected before one redeploy.
const SETTLE: Duration = Duration::from_millis(150);

/// `functions dev` arguments.
#[derive(clap::Args)]
pub(crate) struct DevArgs {
    /// The function directory (default: the current directory).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: std::net::SocketAddr,
    /// Data directory for the embedded store (default: a temporary one, removed on exit).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The function id (default: from function.json, else the directory name).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    build: super::BuildArgs,
}

fn watched(path: &Path, root: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    !rel.components().any(|c| match c {
        Component::Normal(s) => {
            let s = s.to_string_lossy();
            s == "node_modules" || s.starts_with('.')
        }
        _ => false,
    })
}

pub(crate) async fn dev(args: DevArgs) -> Result<()> {
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("{}", args.dir.display()))?;
    let (data_dir, _temp) = match &args.data {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::tempdir().context("creating a temporary data directory")?;
            (t.path().to_owned(), Some(t))
        }
    };
    let config = Config {
        listen: args.listen,
        data_dir,
        ..Config::default()
    };
    let server = Server::start(config, Arc::new(LoaderHost::new())).await?;
    let base = format!("http://{}", server.local_addr());
    println!("listening on {base}");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let root = dir.clone();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            if !ev.kind.is_access() && ev.paths.iter().any(|p| watched(p, &root)) {
                let _ = tx.send(());
            }
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", dir.display()))?;

    let mut live: Option<(String, u64)> = None;
    let mut follow: Option<tokio::task::JoinHandle<()>> = None;
    deploy_once(&server, &dir, &args, &mut live, &base).await;
    if let Some((id, _)) = &live {
        follow = Some(tokio::spawn(follow_console(
            Client::new(&base, Some(server.admin_token().to_owned())),
            id.clone(),
        )));
    }
    println!("watching {} (Ctrl-C to stop)", dir.display());
    flush();
    let stop = super::wait_for_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = &mut stop => {
                r?;
                break;
            }
            ev = rx.recv() => {
                if ev.is_none() {
                    break;
                }
                // Let a burst of writes (an editor's save, a git checkout) settle.
                tokio::time::sleep(SETTLE).await;
                while rx.try_recv().is_ok() {}
                let had = live.as_ref().map(|(id, _)| id.clone());
                deploy_once(&server, &dir, &args, &mut live, &base).await;
                if had.is_none() {
                    if let Some((id, _)) = &live {
                        follow = Some(tokio::spawn(follow_console(
                            Client::new(&base, Some(server.admin_token().to_owned())),
                            id.clone(),
                        )));
                    }
                }
                flush();
            }
        }
    }
    drop(watcher);
    if let Some(f) = follow {
        f.abort();
    }
    server.shutdown().await?;
    println!("stopped");
    flush();
    Ok(())
}

fn flush() {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}

/// Loads and deploys `dir`; prints what happened. On failure the live version stays.
async fn deploy_once(
    server: &Server,
    dir: &Path,
    args: &DevArgs,
    live: &mut Option<(String, u64)>,
    base: &str,
) {
    let d = dir.to_owned();
    let id = args.id.clone();
    let conditions = args.build.conditions();
    let loaded = tokio::task::spawn_blocking(move || {
        server::function_dir::load_with_conditions(&d, id.as_deref(), conditions.as_deref())
    })
    .await;
    let result = match loaded {
        Ok(Ok(f)) => server
            .registry()
            .deploy(&f.id, f.bundle, Some("functions dev".into()))
            .await
            .map(|v| (f.id, v))
            .map_err(anyhow::Error::from),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(anyhow::anyhow!("loading the directory: {e}")),
    };
    match result {
        Ok((id, version)) => {
            if live.is_some() {
                println!("redeployed {id} version {version}");
            } else {
                println!("deployed {id} version {version} at {base}/{id}");
            }
            *live = Some((id, version));
        }
        Err(e) => match live {
            Some((id, v)) => {
                println!("redeploy failed, {id} version {v} keeps serving: {e:#}")
            }
            None => println!("deploy failed: {e:#}"),
        },
    }
}

/// Prints the function's console lines (`[level] message (source)`) until aborted.
async fn follow_console(client: Client, id: String) {
    use http_body_util::BodyExt as _;
    let Ok(resp) = client
        .send("GET", &format!("/_admin/functions/{id}/logs"), None)
        .await
    else {
        return;
    };
    let mut body = resp.into_body();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line[..nl]) else {
                continue;
            };
            let Some(message) = v["message"].as_str() else {
                continue;
            };
            let level = v["level"].as_str().unwrap_or("log");
            match v["source"].as_str() {
                Some(src) => println!("[{id}] {level}: {message} ({src})"),
                None => println!("[{id}] {level}: {message}"),
            }
            flush();
        }
    }
}
