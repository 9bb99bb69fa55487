//! The code store: immutable, numbered versions of each function's bundle,
//! one of which is live.
//!
//! A bundle is opaque bytes (by convention JSON written by the caller, who
//! defines its format). Versions are numbered per function id from 1 and never
//! reused, not even after [`CodeStore::delete`] and a new deploy under the same
//! id, so a cache keyed by `(id, version)` can never serve stale code.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{excerpt, StoreError};

/// Longest function id, in bytes (`[a-z0-9][a-z0-9-]{0,62}`).
pub const FUNCTION_ID_MAX_LEN: usize = 63;

/// Largest bundle one deploy may store, in bytes (64 MiB). A front end will
/// usually enforce a smaller limit on request bodies; this one keeps a single
/// value within what the embedded backend handles comfortably in memory.
pub const CODE_MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;

/// Longest deploy note, in bytes.
pub const CODE_MAX_NOTE_BYTES: usize = 1024;

/// Metadata of one stored version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version number (1, 2, ... per function id; never reused).
    pub version: u64,
    /// When it was deployed, unix milliseconds.
    pub created_at: u64,
    /// The note given at deploy time.
    pub note: Option<String>,
    /// Size of the bundle in bytes.
    pub size: u64,
    /// Whether this version is the live one.
    pub live: bool,
}

/// One version with its bundle.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVersion {
    /// The version number.
    pub version: u64,
    /// When it was deployed, unix milliseconds.
    pub created_at: u64,
    /// The note given at deploy time.
    pub note: Option<String>,
    /// The bundle exactly as deployed.
    pub bundle: Vec<u8>,
}

impl fmt::Debug for CodeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeVersion")
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .field("note", &self.note)
            .field("bundle_len", &self.bundle.len())
            .finish()
    }
}

/// Summary of one deployed function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// The function id.
    pub id: String,
    /// The live version.
    pub live_version: u64,
    /// How many versions are stored.
    pub versions: u64,
    /// The newest version number (the one the last deploy created).
    pub latest_version: u64,
    /// When the first version of this function was deployed, unix ms.
    pub created_at: u64,
    /// When the live version last changed (deploy, rollback, set_live), unix ms.
    pub updated_at: u64,
}

/// Storage of function code.
///
/// Every method validates `id` with [`validate_function_id`] first and fails
/// with [`StoreError::InvalidFunctionId`] on a bad one, so a caller can pass
/// the first path segment of a request straight in. Every mutating method
/// commits before it returns: once it returns `Ok`, the change survives a
/// crash of the process.
#[async_trait::async_trait]
pub trait CodeStore: Send + Sync + fmt::Debug {
    /// Stores `bundle` as a new version of `id` and makes it live, in one
    /// transaction: readers see either the old live version or the new one.
    /// Returns the new version number.
    async fn deploy(
        &self,
        id: &str,
        bundle: Vec<u8>,
        note: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// The live version of `id` with its bundle, or `None` if `id` is not deployed.
    async fn live(&self, id: &str) -> Result<Option<CodeVersion>, StoreError>;

    /// Only the live version number (cheap: does not read the bundle).
    async fn live_version(&self, id: &str) -> Result<Option<u64>, StoreError>;

    /// One version with its bundle, or `None` if `id` or the version does not exist.
    async fn get_version(&self, id: &str, version: u64) -> Result<Option<CodeVersion>, StoreError>;

    /// All versions of `id`, oldest first. Empty if `id` is not deployed.
    async fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError>;

    /// Summary of one function, or `None` if it is not deployed.
    async fn info(&self, id: &str) -> Result<Option<FunctionInfo>, StoreError>;

    /// Summaries of all deployed functions, ordered by id.
    async fn list(&self) -> Result<Vec<FunctionInfo>, StoreError>;

    /// Makes the newest version older than the live one live and returns it.
    ///
    /// Fails with [`StoreError::FunctionNotFound`] or
    /// [`StoreError::NoPreviousVersion`]; the live version is unchanged then.
    async fn rollback(&self, id: &str) -> Result<u64, StoreError>;

    /// Makes `version` live. Fails with [`StoreError::FunctionNotFound`] or
    /// [`StoreError::VersionNotFound`].
    async fn set_live(&self, id: &str, version: u64) -> Result<(), StoreError>;

    /// Removes the function and all its versions. Returns whether it existed.
    ///
    /// Version numbers are not reused by a later deploy under the same id.
    async fn delete(&self, id: &str) -> Result<bool, StoreError>;
}

/// Checks a function id against `[a-z0-9][a-z0-9-]{0,62}`.
///
/// This excludes `_` entirely, so the `_admin`, `_rpc`, ... prefixes the
/// front end reserves can never be a function id.
///
/// ```
/// assert!(store::validate_function_id("hello-world").is_ok());
/// assert!(store::validate_function_id("_admin").is_err());
/// ```
pub fn validate_function_id(id: &str) -> Result<(), StoreError> {
    let invalid = |reason| StoreError::InvalidFunctionId {
        id: excerpt(id),
        reason,
    };
    let bytes = id.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(invalid("must not be empty"));
    };
    if bytes.len() > FUNCTION_ID_MAX_LEN {
        return Err(invalid("must be at most 63 characters"));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(invalid("must start with a lowercase letter or a digit"));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Err(invalid(
            "may contain only lowercase letters, digits and '-'",
        ));
    }
    Ok(())
}

pub(crate) fn validate_deploy(bundle: &[u8], note: Option<&str>) -> Result<(), StoreError> {
    if bundle.len() > CODE_MAX_BUNDLE_BYTES {
        return Err(StoreError::TooLarge {
            what: "bundle",
            size: bundle.len(),
            limit: CODE_MAX_BUNDLE_BYTES,
        });
    }
    if let Some(note) = note {
        if note.len() > CODE_MAX_NOTE_BYTES {
            return Err(StoreError::TooLarge {
                what: "note",
                size: note.len(),
                limit: CODE_MAX_NOTE_BYTES,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_function_ids_are_accepted() {
        for id in [
            "a",
            "0",
            "hello",
            "hello-world",
            "a-",
            "9lives",
            &"a".repeat(63),
        ] {
            assert!(validate_function_id(id).is_ok(), "{id:?} should be valid");
        }
    }

    #[test]
    fn invalid_function_ids_are_rejected_with_the_rule_broken() {
        let cases = [
            ("", "must not be empty"),
            ("-a", "must start with"),
            ("Hello", "must start with"),
            ("_admin", "must start with"),
            ("a_b", "may contain only"),
            ("a/b", "may contain only"),
            ("a.b", "may contain only"),
            ("héllo", "may contain only"),
            ("a b", "may contain only"),
        ];
        for (id, reason) in cases {
            let err = validate_function_id(id).expect_err(id);
            assert!(
                err.to_string().contains(reason),
                "{id:?}: {err} should mention {reason:?}"
            );
        }
        let too_long = "a".repeat(64);
        let err = validate_function_id(&too_long).expect_err("64 chars");
        assert!(err.to_string().contains("at most 63"), "{err}");
    }
}
