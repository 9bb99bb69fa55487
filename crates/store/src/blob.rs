//! Object storage with Cloudflare R2 semantics.
//!
//! Objects live in buckets (one per blob binding) under UTF-8 keys. Each
//! object has its body, HTTP metadata (content type and friends), custom
//! string metadata, and what the store computes: size, etag, upload time and a
//! version string that changes with every put.
//!
//! The etag is the lowercase hex MD5 of the body, as R2 and S3 compute it for
//! single-part uploads, so clients that check it against an MD5 of what they
//! sent keep working. It identifies content; it is not a security checksum.
//!
//! # Limits
//!
//! Checked before anything is written. R2 itself allows objects up to 5 GiB;
//! this crate caps a body at [`BLOB_MAX_BODY_BYTES`] because a body is passed
//! and stored as one in-memory value.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{excerpt, StoreError};

/// Longest object key, in UTF-8 bytes (R2's limit).
pub const BLOB_MAX_KEY_BYTES: usize = 1024;
/// Largest body, in bytes (100 MiB).
pub const BLOB_MAX_BODY_BYTES: usize = 100 * 1024 * 1024;
/// Largest custom metadata, counted as the sum of the UTF-8 lengths of all
/// names and values (R2's limit).
pub const BLOB_MAX_CUSTOM_METADATA_BYTES: usize = 8192;
/// Largest total of the HTTP metadata strings, in bytes.
pub const BLOB_MAX_HTTP_METADATA_BYTES: usize = 8192;
/// Objects (plus delimited prefixes) per `list` page when no limit is given.
pub const BLOB_LIST_DEFAULT_LIMIT: usize = 1000;
/// Largest `list` limit.
pub const BLOB_LIST_MAX_LIMIT: usize = 1000;
/// Most keys one `delete` call may name (R2's limit).
pub const BLOB_MAX_DELETE_KEYS: usize = 1000;
/// Longest bucket name, in bytes.
pub const BLOB_MAX_BUCKET_BYTES: usize = 255;

/// The HTTP headers stored with an object (R2's `httpMetadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMetadata {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Expires`, unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_expiry: Option<u64>,
}

impl HttpMetadata {
    fn byte_len(&self) -> usize {
        [
            &self.content_type,
            &self.content_language,
            &self.content_disposition,
            &self.content_encoding,
            &self.cache_control,
        ]
        .iter()
        .filter_map(|field| field.as_deref())
        .map(str::len)
        .sum()
    }
}

/// Options of [`BlobStore::put`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobPutOptions {
    /// HTTP metadata to store.
    #[serde(default)]
    pub http_metadata: HttpMetadata,
    /// Custom metadata to store.
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
}

/// An object's metadata (R2's `R2Object`, without the body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobMeta {
    /// The key.
    pub key: String,
    /// Body size in bytes.
    pub size: u64,
    /// Lowercase hex MD5 of the body (R2's `etag`; `httpEtag` is it in quotes).
    pub etag: String,
    /// When it was put, unix milliseconds.
    pub uploaded: u64,
    /// The HTTP metadata given at put.
    pub http_metadata: HttpMetadata,
    /// The custom metadata given at put.
    pub custom_metadata: BTreeMap<String, String>,
    /// Opaque, different for every put in this database.
    pub version: String,
}

/// Options of [`BlobStore::list`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobListOptions {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// The `cursor` of the previous page.
    pub cursor: Option<String>,
    /// Entries per page (objects plus delimited prefixes): 1 to
    /// [`BLOB_LIST_MAX_LIMIT`], default [`BLOB_LIST_DEFAULT_LIMIT`].
    pub limit: Option<usize>,
    /// Roll up keys that contain this after the prefix into one entry of
    /// `delimited_prefixes` (`"/"` lists one "directory" level). Empty means none.
    pub delimiter: Option<String>,
}

/// One page of [`BlobStore::list`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobListResult {
    /// Objects in ascending key order.
    pub objects: Vec<BlobMeta>,
    /// True when there is more after this page.
    pub truncated: bool,
    /// Pass as [`BlobListOptions::cursor`] for the next page; `None` when not truncated.
    pub cursor: Option<String>,
    /// With a delimiter: each distinct `prefix + … + delimiter` seen on this
    /// page, ascending. Each appears on exactly one page of a full listing.
    pub delimited_prefixes: Vec<String>,
}

/// Object storage.
///
/// Every method validates its bucket and keys first (see the `BLOB_*`
/// constants). Every mutating method commits before it returns.
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Stores `body` under `key`, replacing any previous object, and returns
    /// the new object's metadata; if the bucket would pass `quota`, fails with
    /// [`StoreError::QuotaExceeded`] and writes nothing.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        options: BlobPutOptions,
        quota: crate::quota::Quota,
    ) -> Result<BlobMeta, StoreError>;

    /// What the bucket holds.
    fn usage(&self, bucket: &str) -> Result<crate::quota::Usage, StoreError>;

    /// The object's metadata and body, or `None`.
    fn get(&self, bucket: &str, key: &str) -> Result<Option<(BlobMeta, Vec<u8>)>, StoreError>;

    /// The object's metadata without reading its body, or `None`.
    fn head(&self, bucket: &str, key: &str) -> Result<Option<BlobMeta>, StoreError>;

    /// Removes these keys (absent ones are skipped), in one transaction.
    /// Returns how many objects existed and were removed.
    fn delete(&self, bucket: &str, keys: &[&str]) -> Result<usize, StoreError>;

    /// One page of objects in ascending key order, without bodies.
    fn list(&self, bucket: &str, options: BlobListOptions) -> Result<BlobListResult, StoreError>;
}

pub(crate) fn validate_bucket(bucket: &str) -> Result<(), StoreError> {
    let reason = if bucket.is_empty() {
        "must not be empty"
    } else if bucket.len() > BLOB_MAX_BUCKET_BYTES {
        "must be at most 255 bytes"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidBucket {
        bucket: excerpt(bucket),
        reason,
    })
}

pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        "object keys must not be empty".to_owned()
    } else if key.len() > BLOB_MAX_KEY_BYTES {
        format!(
            "key of {} bytes exceeds the limit of {BLOB_MAX_KEY_BYTES} bytes",
            key.len()
        )
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidKey {
        key: excerpt(key),
        reason,
    })
}

pub(crate) fn validate_put(body: &[u8], options: &BlobPutOptions) -> Result<(), StoreError> {
    if body.len() > BLOB_MAX_BODY_BYTES {
        return Err(StoreError::TooLarge {
            what: "blob body",
            size: body.len(),
            limit: BLOB_MAX_BODY_BYTES,
        });
    }
    let custom: usize = options
        .custom_metadata
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if custom > BLOB_MAX_CUSTOM_METADATA_BYTES {
        return Err(StoreError::TooLarge {
            what: "custom metadata",
            size: custom,
            limit: BLOB_MAX_CUSTOM_METADATA_BYTES,
        });
    }
    let http = options.http_metadata.byte_len();
    if http > BLOB_MAX_HTTP_METADATA_BYTES {
        return Err(StoreError::TooLarge {
            what: "http metadata",
            size: http,
            limit: BLOB_MAX_HTTP_METADATA_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn list_limit(limit: Option<usize>) -> Result<usize, StoreError> {
    match limit {
        None => Ok(BLOB_LIST_DEFAULT_LIMIT),
        Some(limit) if (1..=BLOB_LIST_MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(StoreError::InvalidListLimit {
            limit,
            max: BLOB_LIST_MAX_LIMIT,
        }),
    }
}

/// Lowercase hex MD5 of `body`.
pub(crate) fn etag(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(body)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_hex_md5_of_the_body() {
        assert_eq!(etag(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(etag(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }
}
