//! The backends the suite runs on, and [`on_both_backends!`].
//!
//! The PostgreSQL half connects to the URL in `FUNCTIONS_TEST_POSTGRES` and gives each test a
//! schema of its own (created, migrated, dropped at the end), so tests run in parallel on one
//! database. Without the variable the PostgreSQL tests print why and pass vacuously, except
//! under `CI=true`, where a missing variable or an unreachable database fails them: CI never
//! skips a backend silently.

use std::sync::Arc;

use store::{ManualClock, Store};

use crate::T0_MS;

/// The environment variable naming the test database.
pub(crate) const POSTGRES_ENV: &str = "FUNCTIONS_TEST_POSTGRES";

/// A store on a clock that only moves when the test says so, and how to clean it up.
pub(crate) struct Fixture {
    pub(crate) store: Store,
    pub(crate) clock: ManualClock,
    schema: Option<(String, String)>,
}

impl Fixture {
    /// The `application_name` of this fixture's connections (its listener's adds `-listener`).
    pub(crate) fn application_name(&self) -> &str {
        &self.schema.as_ref().expect("a PostgreSQL fixture").1
    }

    /// Another store on the same PostgreSQL schema (another node), on the same clock.
    pub(crate) async fn another_node(&self) -> Store {
        let (url, schema) = self.schema.as_ref().expect("a PostgreSQL fixture");
        let options = store::postgres::PgOptions {
            schema: Some(schema.clone()),
            application_name: schema.clone(),
            ..store::postgres::PgOptions::default()
        };
        Store::connect_postgres_with(url, options, Arc::new(self.clock.clone()))
            .await
            .expect("second connection")
    }

    /// Drops the test's PostgreSQL schema (after a passing test; a failing one leaves it to
    /// look at).
    pub(crate) async fn cleanup(self) {
        if let Some((url, schema)) = self.schema {
            drop(self.store);
            store::postgres::drop_schema(&url, &schema)
                .await
                .expect("drop the test schema");
        }
    }
}

/// An in-memory redb store.
pub(crate) async fn redb() -> Fixture {
    let clock = ManualClock::new(T0_MS);
    let store =
        Store::in_memory_with_clock(Arc::new(clock.clone())).expect("in-memory store opens");
    Fixture {
        store,
        clock,
        schema: None,
    }
}

/// A PostgreSQL store in a fresh schema, or `None` (skip) when no database is configured
/// outside CI.
pub(crate) async fn postgres() -> Option<Fixture> {
    let url = url_from_env(POSTGRES_ENV, "starts a database")?;
    Some(
        in_fresh_schema(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {POSTGRES_ENV} is not usable: {e}")),
    )
}

/// The value of `var`, or `None` (skip, saying so) when it is unset outside CI; under
/// `CI=true` a missing variable fails the test. `how` says what `scripts/postgres.sh` does
/// about it.
pub(crate) fn url_from_env(var: &str, how: &str) -> Option<String> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci => panic!(
            "{var} is not set: under CI=true the PostgreSQL tests must run \
             (.ci/run starts the databases and sets it)"
        ),
        _ => {
            eprintln!("skipped: {var} is not set (scripts/postgres.sh {how})");
            None
        }
    }
}

/// A store on the database at `url`, in a fresh schema (its name is also the connections'
/// `application_name`).
pub(crate) async fn in_fresh_schema(url: &str) -> Result<Fixture, store::StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random schema name");
    let schema = format!(
        "store_test_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let clock = ManualClock::new(T0_MS);
    let options = store::postgres::PgOptions {
        schema: Some(schema.clone()),
        // Tests that cut connections find theirs by this name.
        application_name: schema.clone(),
        ..store::postgres::PgOptions::default()
    };
    let store = Store::connect_postgres_with(url, options, Arc::new(clock.clone())).await?;
    Ok(Fixture {
        store,
        clock,
        schema: Some((url.to_owned(), schema)),
    })
}

/// Runs each named `async fn(Store, ManualClock)` of the calling module as a test on every
/// backend: `redb::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod redb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = $crate::backend::redb().await;
                    super::$name(f.store.clone(), f.clock.clone()).await;
                    f.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = $crate::backend::postgres().await else {
                        return;
                    };
                    super::$name(f.store.clone(), f.clock.clone()).await;
                    f.cleanup().await;
                }
            )*
        }
    };
}
