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
//! Checked before anything is written, except the body's size, which is counted as the body
//! streams in: the put fails as soon as it passes [`BLOB_MAX_BODY_BYTES`]. R2 itself allows
//! objects up to 5 GiB.
//!
//! # Bodies are streams
//!
//! A body goes in and comes out as a [`BlobBody`], a stream of byte chunks, so neither a put
//! nor a get holds a whole object in memory. Both backends store a body as rows of at most
//! [`BLOB_CHUNK_BYTES`], written as they arrive (each chunk in its own short transaction,
//! under the object's new version number, so no slow uploader holds a lock or a connection)
//! and made visible by one final transaction that swaps the object's metadata, checks the
//! quota and deletes the old version's chunks. A put that fails or is abandoned leaves
//! chunks that are never visible; they are deleted on failure, and the ones a crash left
//! behind are swept (see [`BlobStore::put`]).
//!
//! A get reads the metadata, then each chunk of that version as the stream is pulled, with
//! no transaction or connection held in between. A stream whose object is replaced or
//! deleted before its last chunk is read ends with [`StoreError::ObjectChanged`] rather
//! than mixing two versions.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
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
/// Largest stored chunk of a body, in bytes (1 MiB): the unit of memory a put or get holds.
pub const BLOB_CHUNK_BYTES: usize = 1024 * 1024;

/// An object's body: a stream of byte chunks (of any size going in; of at most
/// [`BLOB_CHUNK_BYTES`] coming out). An error item ends a put with that error.
pub type BlobBody = BoxStream<'static, Result<Bytes, StoreError>>;

/// A body of bytes already in memory.
pub fn body_from_bytes(data: impl Into<Bytes>) -> BlobBody {
    futures::stream::iter([Ok(data.into())]).boxed()
}

/// Reads a whole body into memory, failing once it passes `limit` bytes.
pub async fn read_body(mut body: BlobBody, limit: usize) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len().saturating_add(chunk.len()) > limit {
            return Err(StoreError::TooLarge {
                what: "blob body",
                size: out.len().saturating_add(chunk.len()),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An object with its body, as [`BlobStore::get`] returns it.
pub struct BlobObject {
    /// Its metadata.
    pub meta: BlobMeta,
    /// Its body, read chunk by chunk as the stream is pulled.
    pub body: BlobBody,
}

impl fmt::Debug for BlobObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobObject")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

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

/// One object's stored metadata record, as JSON in both backends (the key is the row key).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct BlobRecord {
    pub(crate) size: u64,
    pub(crate) etag: String,
    pub(crate) uploaded: u64,
    #[serde(default)]
    pub(crate) http_metadata: HttpMetadata,
    #[serde(default)]
    pub(crate) custom_metadata: BTreeMap<String, String>,
    pub(crate) version: String,
}

impl BlobRecord {
    /// The version number the body's chunks are stored under (the hex `version`).
    pub(crate) fn chunk_version(&self) -> Result<u64, StoreError> {
        u64::from_str_radix(&self.version, 16)
            .map_err(|_| StoreError::corrupt(format!("blob version {:?}", self.version)))
    }

    pub(crate) fn size_usize(&self) -> usize {
        usize::try_from(self.size).unwrap_or(usize::MAX)
    }

    pub(crate) fn into_meta(self, key: &str) -> BlobMeta {
        BlobMeta {
            key: key.to_owned(),
            size: self.size,
            etag: self.etag,
            uploaded: self.uploaded,
            http_metadata: self.http_metadata,
            custom_metadata: self.custom_metadata,
            version: self.version,
        }
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
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Streams `body` in under `key`, replacing any previous object, and returns the new
    /// object's metadata. Fails, leaving the old object in place, when the body passes
    /// [`BLOB_MAX_BODY_BYTES`], when the body stream yields an error, or when the bucket
    /// would pass `quota` ([`StoreError::QuotaExceeded`]; checked when the body has ended).
    /// Readers see the old object until the put returns.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: BlobBody,
        options: BlobPutOptions,
        quota: crate::quota::Quota,
    ) -> Result<BlobMeta, StoreError>;

    /// What the bucket holds.
    async fn usage(&self, bucket: &str) -> Result<crate::quota::Usage, StoreError>;

    /// The object's metadata and a stream of its body, or `None`.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<BlobObject>, StoreError>;

    /// The object's metadata without reading its body, or `None`.
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<BlobMeta>, StoreError>;

    /// Removes these keys (absent ones are skipped), in one transaction.
    /// Returns how many objects existed and were removed.
    async fn delete(&self, bucket: &str, keys: &[&str]) -> Result<usize, StoreError>;

    /// One page of objects in ascending key order, without bodies.
    async fn list(
        &self,
        bucket: &str,
        options: BlobListOptions,
    ) -> Result<BlobListResult, StoreError>;
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

/// Checks a put's metadata (the body is checked as it streams in, by [`Chunker`]).
pub(crate) fn validate_put(options: &BlobPutOptions) -> Result<(), StoreError> {
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
#[cfg(test)]
pub(crate) fn etag(body: &[u8]) -> String {
    let mut chunker = Chunker::default();
    let _ = chunker.push(body);
    chunker.finish().2
}

/// Cuts a body that arrives in pieces of any size into stored chunks of
/// [`BLOB_CHUNK_BYTES`], counting its size (refusing past [`BLOB_MAX_BODY_BYTES`]) and
/// hashing it for the etag on the way.
#[derive(Default)]
pub(crate) struct Chunker {
    buf: Vec<u8>,
    size: usize,
    md5: md5::Md5,
}

impl Chunker {
    /// Adds `data`; returns the chunks it completed.
    pub(crate) fn push(&mut self, mut data: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        use md5::Digest;
        let size = self.size.saturating_add(data.len());
        if size > BLOB_MAX_BODY_BYTES {
            return Err(StoreError::TooLarge {
                what: "blob body",
                size,
                limit: BLOB_MAX_BODY_BYTES,
            });
        }
        self.size = size;
        self.md5.update(data);
        let mut full = Vec::new();
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf
                    .reserve_exact(BLOB_CHUNK_BYTES.min(data.len().max(64 * 1024)));
            }
            let take = (BLOB_CHUNK_BYTES - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == BLOB_CHUNK_BYTES {
                full.push(std::mem::take(&mut self.buf));
            }
        }
        Ok(full)
    }

    /// The last, partial chunk (if any), the body's size and its etag.
    pub(crate) fn finish(self) -> (Option<Vec<u8>>, u64, String) {
        use md5::Digest;
        let etag = self
            .md5
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let last = (!self.buf.is_empty()).then_some(self.buf);
        (last, u64::try_from(self.size).unwrap_or(u64::MAX), etag)
    }
}

/// A body stream over stored chunks `0..count`: `first` (chunk 0, read with the metadata)
/// then each further chunk fetched as the stream is pulled. A chunk that is gone (the
/// object was replaced or deleted) ends the stream with [`StoreError::ObjectChanged`].
pub(crate) fn chunk_stream<F, Fut>(
    key: &str,
    first: Option<Vec<u8>>,
    count: u64,
    fetch: F,
) -> BlobBody
where
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send + 'static,
{
    let key = excerpt(key);
    let first = futures::stream::iter(first.map(|c| Ok(Bytes::from(c))));
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let rest = futures::stream::unfold((1u32, false), move |(seq, failed)| {
        let next = (!failed && seq < count).then(|| fetch(seq));
        let key = key.clone();
        async move {
            let chunk = match next?.await {
                Ok(Some(data)) => Ok(Bytes::from(data)),
                Ok(None) => Err(StoreError::ObjectChanged { key }),
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            Some((chunk, (seq + 1, failed)))
        }
    });
    first.chain(rest).boxed()
}

/// How many chunks a body of `size` bytes is stored in.
pub(crate) fn chunk_count(size: u64) -> u64 {
    size.div_ceil(BLOB_CHUNK_BYTES as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_hex_md5_of_the_body() {
        assert_eq!(etag(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(etag(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn chunker_cuts_any_pieces_into_full_chunks_and_a_tail() {
        let mut chunker = Chunker::default();
        let mut chunks = Vec::new();
        for piece in [&[1u8; 700_000][..], &[2u8; 700_000][..], &[3u8; 10][..]] {
            chunks.extend(chunker.push(piece).expect("within the limit"));
        }
        let (last, size, _) = chunker.finish();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].len(), BLOB_CHUNK_BYTES);
        assert_eq!(last.map(|l| l.len()), Some(1_400_010 - BLOB_CHUNK_BYTES));
        assert_eq!(size, 1_400_010);
        assert_eq!(chunk_count(size), 2);
        assert_eq!(chunk_count(0), 0);
    }

    #[test]
    fn chunker_refuses_a_body_past_the_limit() {
        let mut chunker = Chunker::default();
        let big = vec![0u8; BLOB_CHUNK_BYTES];
        for _ in 0..(BLOB_MAX_BODY_BYTES / BLOB_CHUNK_BYTES) {
            chunker.push(&big).expect("up to the limit");
        }
        assert!(matches!(
            chunker.push(b"x"),
            Err(StoreError::TooLarge {
                what: "blob body",
                ..
            })
        ));
    }
}
