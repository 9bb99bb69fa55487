//! [`Server`]: opens the store, resolves the admin token, binds and serves; shuts down
//! gracefully.
//!
//! The store is the embedded redb file in the data directory, or, with
//! [`Config::store_url`] set to a `postgres://` URL, a PostgreSQL database shared with other
//! nodes. A shared store takes its admin token from the operator only (the flag or
//! `FUNCTIONS_ADMIN_TOKEN`): nodes never generate one each.
//!
//! Shutdown ([`Server::shutdown`]): stop accepting, let in-flight requests finish for at most
//! [`Config::shutdown_grace`], then drop every cached function and the store. Every store
//! write commits (and fsyncs) before it returns, so there is nothing left to flush after
//! that; dropping the store closes the database file cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use store::{Store, StoreError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::host::FunctionHost;
use crate::http::{self, AppState};
use crate::registry::Registry;
use crate::token::{self, TokenError, TokenSource};

/// The store file's name inside the data directory.
pub const STORE_FILE: &str = "store.redb";

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (port 0 picks a free port; see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// The data directory (store, admin token).
    pub data_dir: PathBuf,
    /// The shared store's URL (`postgres://…`); `None` uses the embedded store in
    /// `data_dir`.
    pub store_url: Option<String>,
    /// Most connections a node keeps to a shared store.
    pub store_connections: usize,
    /// The URL other nodes reach this one at; `None`: `http://` and the bound address.
    pub advertise: Option<String>,
    /// The admin token; `None` uses the stored one or generates one (embedded store only:
    /// a shared store requires it).
    pub admin_token: Option<String>,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// capnweb limits for `/_rpc` sessions: the session limits table, budgets and caps
    /// included.
    pub rpc_limits: capnweb::Limits,
    /// The most one KV namespace or bucket may hold (a binding may ask for less).
    pub storage_quota: store::Quota,
    /// Proxies whose `X-Forwarded-For` is believed when counting sessions per client address.
    pub trusted_proxies: Vec<crate::http::client_addr::Network>,
    /// Headers whose values never appear in logs, traces or error bodies.
    pub redact: crate::http::rpc_auth::Redact,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            data_dir: PathBuf::from(".functions"),
            store_url: None,
            store_connections: 16,
            advertise: None,
            admin_token: None,
            shutdown_grace: Duration::from_secs(10),
            body_limit: http::DEFAULT_BODY_LIMIT,
            rpc_limits: capnweb::Limits::default(),
            storage_quota: store::Quota::default(),
            trusted_proxies: Vec::new(),
            redact: Default::default(),
        }
    }
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Opening the store failed (already open by another server, damaged, no permission).
    // The store's error is the source, not repeated here: `functions serve` prints the chain.
    #[error("cannot open the store")]
    Store(#[from] StoreError),
    /// The admin token could not be read or created.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(String),
}

/// Opens the configured store and resolves the admin token.
async fn open_store(config: &Config) -> Result<(Store, (String, TokenSource)), ServerError> {
    if let Some(url) = &config.store_url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ServerError::Store(StoreError::Config(
                "--store must be a postgres:// or postgresql:// URL (leave it out for the \
                 embedded store in the data directory)"
                    .to_owned(),
            )));
        }
        // Checked first: a missing token is a configuration error, whatever the database says.
        let token = token::required(config.admin_token.clone())?;
        let options = store::postgres::PgOptions {
            pool_size: config.store_connections,
            ..store::postgres::PgOptions::default()
        };
        let store =
            Store::connect_postgres_with(url, options, Arc::new(store::SystemClock)).await?;
        // Says whether `sslmode=prefer` (the default) found TLS, as the server sees it.
        match store.postgres() {
            Some(pg) => match pg.tls_session().await? {
                Some(tls) => {
                    tracing::info!("store: PostgreSQL (shared, {} {})", tls.version, tls.cipher)
                }
                None => tracing::info!("store: PostgreSQL (shared, clear text)"),
            },
            None => tracing::info!("store: PostgreSQL (shared)"),
        }
        return Ok((store, (token, TokenSource::Given)));
    }
    let data_dir = config.data_dir.clone();
    let given = config.admin_token.clone();
    tokio::task::spawn_blocking(move || {
        // Private from the start: KV values, blobs and bundle `env`s live here.
        store::private::create_dir_all(&data_dir)?;
        store::private::restrict_dir(&data_dir)?;
        let store = Store::open(data_dir.join(STORE_FILE))?;
        let token = token::load_or_create(&data_dir, given)?;
        Ok::<_, ServerError>((store, token))
    })
    .await
    .map_err(|e| ServerError::Serve(e.to_string()))?
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    registry: Arc<Registry>,
    token: String,
    token_source: TokenSource,
    grace: Duration,
    stop: Option<oneshot::Sender<()>>,
    end_streams: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    /// The node registry heartbeat (shared store only); it leaves the registry on shutdown.
    heartbeat: Option<JoinHandle<()>>,
    /// WebSockets functions accepted that are open now.
    sockets: Arc<crate::http::socket::OpenSockets>,
}

/// How long shutdown waits for open WebSockets to send their 1001 close.
const SOCKETS_CLOSE: Duration = Duration::from_secs(2);

impl Server {
    /// Opens the store (`config.store_url`, else the file in `config.data_dir`), binds
    /// `config.listen` and starts serving with functions run by `host`.
    pub async fn start(config: Config, host: Arc<dyn FunctionHost>) -> Result<Server, ServerError> {
        crate::metrics::install();
        let (store, (token, token_source)) = open_store(&config).await?;
        let watch = store.postgres().map(|pg| pg.watch_code());
        let pg = store.postgres().cloned();
        let registry = Registry::with_quota(store, host.clone(), config.storage_quota);
        let (end_streams, shutdown) = tokio::sync::watch::channel(false);
        if let Some(events) = watch {
            tokio::spawn(crate::cluster::follow(
                Arc::downgrade(&registry),
                events,
                shutdown.clone(),
            ));
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let advertised = config
            .advertise
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        if pg.is_some() && config.advertise.is_none() && addr.ip().is_unspecified() {
            tracing::warn!(
                "listening on {addr} with no --advertise: other nodes cannot reach this one \
                 (for `functions logs`); pass --advertise http://HOST:PORT"
            );
        }
        let node = crate::node::Node::new(advertised.trim_end_matches('/').to_owned(), host);
        let heartbeat =
            pg.map(|pg| tokio::spawn(crate::node::heartbeat(node.clone(), pg, shutdown.clone())));
        let sockets = Arc::new(crate::http::socket::OpenSockets::default());
        let state = AppState {
            registry: registry.clone(),
            admin_token: Arc::new(token.clone()),
            rpc_limits: config.rpc_limits.clone(),
            rpc_admission: capnweb::Admission::new(),
            trusted_proxies: Arc::new(crate::http::client_addr::TrustedProxies(
                config.trusted_proxies.clone(),
            )),
            shutdown,
            node,
            sockets: sockets.clone(),
            redact: Arc::new(config.redact.clone()),
        };
        let app = http::router(state, config.body_limit);
        let (stop, stopped) = oneshot::channel::<()>();
        // TCP_NODELAY: small RPC messages must not wait for delayed ACKs.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
        });
        tracing::info!(%addr, "listening");
        Ok(Server {
            addr,
            registry,
            token,
            token_source,
            grace: config.shutdown_grace,
            stop: Some(stop),
            end_streams,
            task,
            heartbeat,
            sockets,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin token in use.
    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// Where the token came from ([`TokenSource::Generated`]: print it once).
    pub fn token_source(&self) -> TokenSource {
        self.token_source
    }

    /// The registry (to deploy at startup, or to inspect in tests).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops accepting, waits up to the grace period for in-flight requests, then closes the
    /// store. Returns once the database file is closed (when no `/_rpc` session still holds
    /// a binding of it).
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Log streams never finish on their own: end them so the grace period is not spent
        // waiting for them.
        self.end_streams.send_replace(true);
        // Open WebSockets close with 1001 on the same signal: let their close frames go out.
        self.sockets.drained(SOCKETS_CLOSE).await;
        let result = match tokio::time::timeout(self.grace, &mut self.task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(ServerError::Serve(e.to_string())),
            Ok(Err(e)) => Err(ServerError::Serve(e.to_string())),
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "in-flight requests did not finish in time");
                self.task.abort();
                Ok(())
            }
        };
        if let Some(heartbeat) = self.heartbeat.take() {
            // Leaving the registry is a courtesy: a node that does not is dropped after 15 s.
            let _ = tokio::time::timeout(Duration::from_secs(2), heartbeat).await;
        }
        self.registry.clear();
        self.registry.host().shutdown();
        result
    }
}
