//! Embedded, versioned schema migrations, applied at connect.
//!
//! Each migration is a SQL file compiled into the binary and applied once, in order, in one
//! transaction with the record of it in `schema_migrations`. The transaction first takes an
//! advisory lock, so nodes starting together apply each migration once; a node that finds a
//! migration newer than it knows refuses to start ([`StoreError::UnsupportedSchema`]).

use crate::error::StoreError;

use super::pg_error;

/// The migrations, oldest first: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_nodes.sql")),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

/// Advisory lock key held while migrating ("fnstore" in ASCII).
const MIGRATION_LOCK: i64 = 0x66_6e_73_74_6f_72_65;

/// Applies every migration the database lacks.
pub(super) async fn apply(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
            version integer PRIMARY KEY, \
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg_error)?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    let found = u64::try_from(found).unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::UnsupportedSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS {
        if u64::try_from(*version).unwrap_or(0) <= found {
            continue;
        }
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)
}
