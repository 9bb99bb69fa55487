//! The shared backend: PostgreSQL, for several nodes over one database.
//!
//! [`PgBackend::connect`] opens a pool of connections (tokio-postgres with deadpool), checks
//! that the database answers and applies the embedded schema migrations (`migrations/*.sql`,
//! in order, each once, under an advisory lock so nodes starting together do not race).
//!
//! The tables mirror the redb backend's (see `migrations/0001_initial.sql`), and every
//! operation keeps its semantics and transaction boundaries:
//!
//! - a deploy, rollback, `set_live` or delete is one transaction, and sends a notification on
//!   the [`CODE_CHANNEL`] channel carrying the function id, delivered when it commits;
//! - a KV or blob write locks its namespace's or bucket's `usage` row first and checks the
//!   quota inside the same transaction (`usage.rs`), so writers on many nodes never slip
//!   past it together;
//! - blob bodies are 1 MiB `bytea` rows written as they stream in (see `crate::blob`).
//!
//! Times (deploy times, KV expiry) come from the node's [`Clock`], as on redb: nodes'
//! clocks should agree (NTP) for expiry to agree across nodes.
//!
//! Connection failures surface as [`StoreError::Unavailable`]; the pool reconnects on the
//! next call.
//!
//! # TLS
//!
//! Every connection (the pool's and the listener's) uses TLS as libpq's URL parameters say,
//! with rustls on the `ring` provider:
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default), `allow` | when the server offers it | not checked, or the chain when `sslrootcert` names a file |
//! | `require` | always | not checked, or the chain when `sslrootcert` names a file |
//! | `verify-ca` | always | chains to `sslrootcert` |
//! | `verify-full` | always | chains to `sslrootcert` and names the host (subjectAltName) |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the platform's trust store
//! (then `sslmode` must be, and defaults to, `verify-full`); `sslcert` and `sslkey` name a
//! client certificate and its unencrypted PEM key. Over a Unix socket TLS is never used (as
//! in libpq). A TLS failure at connect is a [`StoreError::Tls`] saying what to change; a bad
//! parameter or file an [`StoreError::InvalidTlsParameter`] or [`StoreError::TlsFile`].
//! Errors never carry the URL, so the password stays out of them.

mod blob;
mod code;
mod kv;
mod listen;
mod migrations;
mod nodes;
mod sslparams;
mod tls;
mod usage;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio_postgres::error::SqlState;

use crate::clock::Clock;
use crate::error::StoreError;

pub use blob::PgBlobStore;
pub use code::PgCodeStore;
pub use kv::PgKvStore;
pub use listen::CodeEvent;
pub use migrations::SCHEMA_VERSION;
pub use nodes::NodeRecord;

/// The notification channel a code change is announced on; the payload is the function id.
/// With [`PgOptions::schema`] set the channel is `functions_code_<schema>` (channels are
/// per database, not per schema).
pub const CODE_CHANNEL: &str = "functions_code";

/// How the backend connects.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Most connections in the pool.
    pub pool_size: usize,
    /// How long a call waits for a free connection, or for a new one to connect, before it
    /// fails with [`StoreError::Unavailable`].
    pub timeout: Duration,
    /// The schema to keep the tables in (created if missing); `None` uses the connection's
    /// default (`public`). Lowercase letters, digits and `_` only.
    pub schema: Option<String>,
    /// The `application_name` of its connections (the listener's is this plus
    /// `-listener`), as `pg_stat_activity` shows them.
    pub application_name: String,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            timeout: Duration::from_secs(5),
            schema: None,
            application_name: "functions".to_owned(),
        }
    }
}

/// What the three stores share: the pool, the clock and the notification channel.
pub(crate) struct PgShared {
    pool: Pool,
    clock: Arc<dyn Clock>,
    channel: String,
}

impl fmt::Debug for PgShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgShared")
            .field("pool", &self.pool.status())
            .field("clock", &self.clock)
            .finish()
    }
}

impl PgShared {
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

/// A pool of connections to one PostgreSQL database. Hand out its stores with
/// [`PgBackend::code`], [`PgBackend::kv`] and [`PgBackend::blob`]; usually through
/// [`crate::Store::connect_postgres`].
#[derive(Clone, Debug)]
pub struct PgBackend {
    shared: Arc<PgShared>,
    config: tokio_postgres::Config,
    tls: tls::Tls,
}

/// The TLS session of a connection, as the server reports it (`pg_stat_ssl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSession {
    /// The protocol version, such as `TLSv1.3`.
    pub version: String,
    /// The cipher suite, such as `TLS_AES_256_GCM_SHA384`.
    pub cipher: String,
}

impl PgBackend {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or the
    /// key=value form), applies missing migrations and sweeps blob uploads a crashed node
    /// left unfinished. The URL's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` work as
    /// in libpq (see the module docs).
    ///
    /// Fails with [`StoreError::Config`] for a malformed URL,
    /// [`StoreError::InvalidTlsParameter`] or [`StoreError::TlsFile`] for a bad TLS parameter
    /// or file, [`StoreError::Tls`] when TLS cannot be set up with the server,
    /// [`StoreError::Unavailable`] when the database cannot be reached, and
    /// [`StoreError::UnsupportedSchema`] when a newer version of this crate migrated it.
    pub async fn connect(
        url: &str,
        options: PgOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let (mut config, tls) = parse_url(url)?;
        config.connect_timeout(options.timeout);
        // A node whose database vanished without a FIN (a partition) notices within a minute.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(20));
        let mut channel = CODE_CHANNEL.to_owned();
        if let Some(schema) = &options.schema {
            validate_schema(schema)?;
        }
        // One connection first, outside the pool, so that a TLS failure is told apart
        // (the pool's errors are the driver's).
        let first = connect_one(&config, &tls).await?;
        if let Some(schema) = &options.schema {
            channel = format!("{CODE_CHANNEL}_{schema}");
            first
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(pg_error)?;
            config.options(format!("-c search_path={schema}"));
        }
        drop(first);
        config.application_name(&options.application_name);
        let manager = Manager::from_config(
            config.clone(),
            tls.connector(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build the connection pool: {e}")))?;
        let shared = Arc::new(PgShared {
            pool,
            clock,
            channel,
        });
        {
            let mut client = shared.client().await?;
            migrations::apply(&mut client).await?;
        }
        let backend = PgBackend {
            shared,
            config,
            tls,
        };
        backend.blob().sweep_abandoned_uploads().await?;
        Ok(backend)
    }

    /// The code store on this database.
    pub fn code(&self) -> PgCodeStore {
        PgCodeStore::new(Arc::clone(&self.shared))
    }

    /// The KV store on this database.
    pub fn kv(&self) -> PgKvStore {
        PgKvStore::new(Arc::clone(&self.shared))
    }

    /// The blob store on this database.
    pub fn blob(&self) -> PgBlobStore {
        PgBlobStore::new(Arc::clone(&self.shared))
    }

    /// Starts listening for code changes made through any node (this one included): the
    /// receiver gets [`CodeEvent::Resync`] each time the listener (re)connects (changes may
    /// have been missed while it was away) and [`CodeEvent::Changed`] for each deploy,
    /// rollback, `set_live` or delete. The listener runs on a connection of its own,
    /// reconnects with backoff (0.1 s doubling to 5 s) and stops when the receiver is dropped.
    pub fn watch_code(&self) -> tokio::sync::mpsc::Receiver<CodeEvent> {
        listen::spawn(
            self.config.clone(),
            self.tls.clone(),
            self.shared.channel.clone(),
        )
    }

    /// The TLS session of one of the pool's connections as the server sees it, or `None` when
    /// it is in clear text (`sslmode=disable`, or `prefer` to a server without TLS).
    pub async fn tls_session(&self) -> Result<Option<TlsSession>, StoreError> {
        let client = self.shared.client().await?;
        let row = client
            .query_opt(
                "SELECT version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.map(|row| TlsSession {
            version: row.get::<_, Option<String>>(0).unwrap_or_default(),
            cipher: row.get::<_, Option<String>>(1).unwrap_or_default(),
        }))
    }
}

/// The URL for tokio-postgres, and the TLS set-up its parameters ask for.
fn parse_url(url: &str) -> Result<(tokio_postgres::Config, tls::Tls), StoreError> {
    let (rest, params) = sslparams::split(url)?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e| {
        StoreError::Config(format!(
            "the PostgreSQL URL does not parse: {}",
            describe(&e)
        ))
    })?;
    let tls = tls::Tls::new(&params, &mut config)?;
    Ok((config, tls))
}

/// Drops `schema` and everything in it (test clean-up).
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
    validate_schema(schema)?;
    let (config, tls) = parse_url(url)?;
    let client = connect_one(&config, &tls).await?;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .map_err(pg_error)
}

fn validate_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "schema name {schema:?} must be lowercase letters, digits and _ (at most 63)"
        )))
    }
}

/// One connection outside the pool, its driver task spawned.
pub(crate) async fn connect_one(
    config: &tokio_postgres::Config,
    tls: &tls::Tls,
) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = tls.connect(config).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A driver error as a store error: lost or refused connections are
/// [`StoreError::Unavailable`], anything else a backend failure.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let unavailable = e.is_closed()
        || match e.code() {
            None => e.as_db_error().is_none(),
            Some(code) => {
                code.code().starts_with("08")
                    || [
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                        SqlState::TOO_MANY_CONNECTIONS,
                    ]
                    .contains(code)
            }
        };
    if unavailable {
        StoreError::Unavailable(describe(&e))
    } else {
        StoreError::Backend(Box::new(e))
    }
}

/// An error and its causes, as one line: tokio-postgres's own messages name only the kind
/// ("error connecting to server"), the cause says what happened.
pub(crate) fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(e),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection became free in time".to_owned())
        }
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".to_owned()),
        other => StoreError::Backend(Box::new(other)),
    }
}

/// A stored number as `u64` (they are written from `u64`s, so never negative).
pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(format!("{what} is negative")))
}

/// A number to store as `bigint`.
pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::corrupt(format!("{what} does not fit in a bigint")))
}

/// Stored bytes as UTF-8 text.
pub(crate) fn to_string(bytes: Vec<u8>, what: &str) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| StoreError::corrupt(format!("{what} is not UTF-8")))
}

/// The exclusive upper bound of keys starting with `prefix`, as bytes (`None`: unbounded).
pub(crate) fn prefix_end(prefix: &str) -> Option<Vec<u8>> {
    crate::cursor::prefix_successor(prefix).map(String::into_bytes)
}
