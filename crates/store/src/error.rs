//! The one error type of this crate.

use std::path::PathBuf;

/// Longest excerpt of caller-supplied text (an id, a key) that an error keeps.
///
/// Ids and keys come from untrusted callers; an error message must not echo a
/// megabyte of attacker input into logs.
const EXCERPT_CHARS: usize = 80;

/// Everything that can go wrong in a store call.
///
/// Variants that describe bad input carry what was wrong in words a caller can
/// show to the person who made the request (see [`StoreError::is_client_error`]);
/// the rest are failures of the backend itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A function id does not match `[a-z0-9][a-z0-9-]{0,62}`.
    #[error("invalid function id {id:?}: {reason}")]
    InvalidFunctionId {
        /// The id as given (shortened if long).
        id: String,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// No function with this id is deployed.
    #[error("function {id:?} not found")]
    FunctionNotFound {
        /// The id asked for.
        id: String,
    },

    /// The function exists but has no such version.
    #[error("function {id:?} has no version {version}")]
    VersionNotFound {
        /// The function id.
        id: String,
        /// The version asked for.
        version: u64,
    },

    /// `rollback` was asked for but nothing older than the live version exists.
    #[error(
        "function {id:?} has no version older than live version {live_version} to roll back to"
    )]
    NoPreviousVersion {
        /// The function id.
        id: String,
        /// The version that is live and stays live.
        live_version: u64,
    },

    /// A KV namespace name is empty or too long.
    #[error("invalid KV namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The name as given (shortened if long).
        namespace: String,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// A blob bucket name is empty or too long.
    #[error("invalid bucket {bucket:?}: {reason}")]
    InvalidBucket {
        /// The name as given (shortened if long).
        bucket: String,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// A KV or blob key breaks a rule (empty, `.`/`..`, too long).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given (shortened if long).
        key: String,
        /// Which rule it broke, with the numbers involved.
        reason: String,
    },

    /// A value, blob body or code bundle is larger than the limit.
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was too large: `"value"`, `"metadata"`, `"bundle"`, `"note"`, `"blob body"`, `"custom metadata"`.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// A KV `expiration` (absolute, unix seconds) is in the past or too soon.
    #[error("invalid expiration of {expiration}: {reason}")]
    InvalidExpiration {
        /// The expiration as given.
        expiration: u64,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// A KV `expiration_ttl` is shorter than the minimum.
    #[error("invalid expiration_ttl of {ttl}: {reason}")]
    InvalidExpirationTtl {
        /// The TTL in seconds as given.
        ttl: u64,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// A list `limit` is 0 or above the maximum.
    #[error("invalid list limit of {limit}: must be between 1 and {max}")]
    InvalidListLimit {
        /// The limit as given.
        limit: usize,
        /// The largest limit allowed.
        max: usize,
    },

    /// A list cursor was not one this store handed out.
    #[error("invalid list cursor")]
    InvalidCursor,

    /// One call named more keys than allowed (blob `delete`).
    #[error("{count} keys in one call exceeds the limit of {limit}")]
    TooManyKeys {
        /// How many keys were given.
        count: usize,
        /// The limit.
        limit: usize,
    },

    /// A stored record could not be decoded: the database was written by
    /// something else or is damaged.
    #[error("stored data is corrupt: {what}")]
    Corrupt {
        /// What failed to decode.
        what: String,
    },

    /// The database file is already open (in this process or another).
    ///
    /// The embedded backend allows one `Store` per file; share that one
    /// (it is cheap to clone) instead of opening the file again.
    #[error("database {path:?} is already open; share the open Store instead of opening it twice")]
    AlreadyOpen {
        /// The file.
        path: PathBuf,
    },

    /// The database was written by a newer version of this crate.
    #[error("database schema version {found} is newer than the supported version {supported}")]
    UnsupportedSchema {
        /// The schema version found in the file.
        found: u64,
        /// The newest schema version this build understands.
        supported: u64,
    },

    /// Creating the directory that holds the database failed.
    #[error("cannot create directory {path:?}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A write would take a KV namespace or a bucket past its quota; nothing was written.
    #[error("{scope} {name:?} quota exceeded: {used} {resource} would pass the limit of {limit}")]
    QuotaExceeded {
        /// A KV namespace or a bucket.
        scope: crate::quota::QuotaScope,
        /// Its name (shortened if long).
        name: String,
        /// Which limit.
        resource: crate::quota::QuotaResource,
        /// What the namespace or bucket would hold after the write.
        used: u64,
        /// The limit.
        limit: u64,
    },

    /// A blob's body stream outlived its object: the object was replaced or deleted before
    /// the stream's last chunk was read (the stream never mixes two versions).
    #[error("object {key:?} was replaced or deleted while its body was being read")]
    ObjectChanged {
        /// The object's key (shortened if long).
        key: String,
    },

    /// A blob body stream given to `put` failed (its producer threw or went away); nothing
    /// was written.
    #[error("the body stream failed: {0}")]
    BodyFailed(String),

    /// The store is configured wrongly (a malformed database URL, a bad schema name).
    #[error("invalid store configuration: {0}")]
    Config(String),

    /// A TLS parameter of the PostgreSQL URL (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`)
    /// has a bad value or does not go with the others.
    #[error("invalid {parameter} in the PostgreSQL URL: {reason}")]
    InvalidTlsParameter {
        /// The parameter.
        parameter: String,
        /// What is wrong and what would be right.
        reason: String,
    },

    /// A certificate or key file named by the PostgreSQL URL cannot be read or holds nothing
    /// usable.
    #[error("cannot use the {parameter} file {path:?}: {reason}")]
    TlsFile {
        /// The parameter that names it: `sslrootcert`, `sslcert` or `sslkey`.
        parameter: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (the I/O error, or what the file lacks).
        reason: String,
    },

    /// TLS to PostgreSQL failed: the server does not offer it, its certificate failed
    /// verification, or the handshake broke. Retrying does not help until the configuration
    /// (the URL, the server's certificate, the CA file) changes.
    #[error("TLS to PostgreSQL failed: {0}")]
    Tls(TlsFailure),

    /// The storage backend cannot be reached now (the database is down or every connection
    /// is busy); the call may succeed if retried later. Nothing was written.
    #[error("storage unavailable: {0}")]
    Unavailable(String),

    /// The storage backend failed (I/O error, full disk, damaged file, ...).
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Why TLS to PostgreSQL failed ([`StoreError::Tls`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server answered the TLS request with "no" (`ssl = off`), and `sslmode` requires TLS.
    #[error(
        "the server does not support TLS, and sslmode={mode} requires it (turn on ssl in the \
         server's configuration, or use sslmode=prefer to fall back to clear text)"
    )]
    NotSupported {
        /// The `sslmode` in effect.
        mode: &'static str,
    },
    /// The server's certificate failed verification.
    #[error("the server's certificate failed verification (sslmode={mode}): {problem}")]
    Certificate {
        /// The `sslmode` in effect.
        mode: &'static str,
        /// What is wrong with the certificate.
        problem: CertificateProblem,
    },
    /// The handshake failed for another reason (no protocol version or cipher in common, the
    /// server rejected our client certificate, the connection dropped).
    #[error("the TLS handshake failed: {reason}")]
    Handshake {
        /// What the TLS library reported.
        reason: String,
    },
}

/// What is wrong with the server's certificate ([`TlsFailure::Certificate`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// It is not signed (through its chain) by any of the trusted certificate authorities.
    #[error(
        "it is not signed by a certificate authority in {roots} (is sslrootcert your \
         provider's CA bundle for this server?)"
    )]
    UnknownIssuer {
        /// Where the trusted authorities came from: `sslrootcert file "PATH"` or `the
        /// platform's root certificates`.
        roots: String,
    },
    /// It chains to a trusted authority but does not name the host connected to
    /// (`sslmode=verify-full`).
    #[error(
        "it is not valid for the host name {host:?} (it names {}); connect by one of those \
         names, or use sslmode=verify-ca to check the chain only",
        if .presented.is_empty() { "no host in its subjectAltName".to_owned() } else { .presented.join(", ") }
    )]
    WrongHost {
        /// The host name or address connected to.
        host: String,
        /// The names in the certificate's subjectAltName.
        presented: Vec<String>,
    },
    /// It has expired or is not valid yet (or this machine's clock is wrong).
    #[error("it is outside its validity period ({0}); check this machine's clock too")]
    Expired(String),
    /// Anything else the verifier rejected (bad signature, wrong key usage, a CA certificate
    /// used as the server's own).
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// True when the error was caused by the caller's input or by asking for
    /// something that does not exist (an HTTP front end answers 4xx), false
    /// when the store itself failed (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            StoreError::Corrupt { .. }
                | StoreError::AlreadyOpen { .. }
                | StoreError::UnsupportedSchema { .. }
                | StoreError::Io { .. }
                | StoreError::Unavailable(_)
                | StoreError::Config(_)
                | StoreError::InvalidTlsParameter { .. }
                | StoreError::TlsFile { .. }
                | StoreError::Tls(_)
                | StoreError::Backend(_)
        )
    }

    /// True for [`StoreError::Unavailable`]: the backend is unreachable for now (an HTTP
    /// front end answers 503 with `Retry-After`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// True for [`StoreError::FunctionNotFound`] and [`StoreError::VersionNotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::FunctionNotFound { .. } | StoreError::VersionNotFound { .. }
        )
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt { what: what.into() }
    }
}

/// Shortens caller-supplied text for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

macro_rules! from_redb {
    ($($ty:ty),* $(,)?) => {
        $(
            impl From<$ty> for StoreError {
                fn from(error: $ty) -> Self {
                    StoreError::Backend(Box::new(redb::Error::from(error)))
                }
            }
        )*
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

impl From<redb::Error> for StoreError {
    fn from(error: redb::Error) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "é".repeat(200);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn backend_failures_are_not_client_errors() {
        let err = StoreError::from(redb::StorageError::Corrupted("x".into()));
        assert!(!err.is_client_error());
        assert!(StoreError::InvalidCursor.is_client_error());
    }
}
