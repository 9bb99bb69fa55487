//! The blob binding: a capnweb [`RpcTarget`] with R2 semantics over the store's
//! [`BlobStore`](store::BlobStore), one bucket per binding.
//!
//! | call | returns |
//! |---|---|
//! | `put(key, value, {httpMetadata?, customMetadata?})` | an `R2Object` (metadata only) |
//! | `get(key)` | `null`, or an `R2Object` with `body` (the bytes) |
//! | `head(key)` | `null`, or an `R2Object` |
//! | `delete(key \| [keys])` | `undefined` |
//! | `list({prefix?, cursor?, limit?, delimiter?, include?})` | `{objects, truncated, cursor?, delimitedPrefixes}` |
//!
//! An `R2Object` here is a plain object: `{key, version, size, etag, httpEtag, uploaded
//! (Date), httpMetadata: {contentType?, contentLanguage?, contentDisposition?,
//! contentEncoding?, cacheControl?, cacheExpiry? (Date)}, customMetadata, storageClass}`.
//! `get` adds what an `R2ObjectBody` has: `body` (a `ReadableStream` of `Uint8Array`
//! chunks of at most 64 KiB, readable once), `bodyUsed`, and the accessors `text()`, `json()`, `arrayBuffer()`, `bytes()`, `blob()` as function
//! capabilities, so `const o = await env.R2.get(k); await o.text()` works from JavaScript
//! and over the wire while the metadata stay plain, synchronously readable properties.
//!
//! Bodies stream: a `put` of a `ReadableStream` hands its chunks to the store as they
//! arrive, and `body` is fed from the store's chunks as the reader pulls them (at most 16
//! chunks of 64 KiB wait unread), so neither holds a whole object in memory. The accessors
//! read the object again when called (they need all of it) and throw if it was replaced
//! in between.
//! `writeHttpMetadata(headers)` is not provided.
//!
//! As in R2, `list` leaves `httpMetadata` and `customMetadata` out of its objects unless
//! `include` names them, and `cursor` is present only when `truncated` is true. A `put`
//! value may be a string, bytes, a Blob, a stream, or `null` (an empty object). Conditional
//! and range reads (`onlyIf`, `range`) are refused with a `TypeError`.

use std::collections::BTreeMap;
use std::sync::Arc;

use capnweb::{Bytes, CallResult, Object, ReadableStream, RpcError, RpcTarget, Stub, Value};
use futures::StreamExt;
use store::{
    BlobBody, BlobListOptions, BlobMeta, BlobPutOptions, BlobStore, HttpMetadata, Quota, Store,
    StoreError, BLOB_MAX_BODY_BYTES,
};

use crate::bindings::{key_arg, number_opt, options_arg, store_call, store_error, string_opt};

/// The largest chunk of an object's `body` stream.
const BODY_CHUNK: usize = 64 * 1024;

/// A bucket as an RPC target.
#[derive(Debug, Clone)]
pub struct BlobBinding {
    store: Store,
    bucket: String,
    quota: Quota,
}

impl BlobBinding {
    /// The binding for `bucket` in `store`; puts that would take the bucket past `quota`
    /// throw `QuotaExceededError`.
    pub fn new(store: Store, bucket: String, quota: Quota) -> BlobBinding {
        BlobBinding {
            store,
            bucket,
            quota,
        }
    }

    async fn put(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let mut args = args.into_iter();
        let key = key_arg(&[args.next().unwrap_or_default()], 0, "key")?;
        let value = args.next().unwrap_or_default();
        let opts = options_arg(&[args.next().unwrap_or_default()], 0)?;
        let options = BlobPutOptions {
            http_metadata: http_metadata_arg(opts.get("httpMetadata"))?,
            custom_metadata: custom_metadata_arg(opts.get("customMetadata"))?,
        };
        let failure = Arc::new(std::sync::Mutex::new(None));
        let body = body_stream(value, failure.clone())?;
        let put = self
            .store
            .blob()
            .put(&self.bucket, &key, body, options, self.quota)
            .await;
        match put {
            Ok(meta) => Ok(Value::Object(object_meta(&meta, true))),
            // The value's own stream failed: throw what it threw.
            Err(StoreError::BodyFailed(_)) => {
                let thrown = failure.lock().unwrap_or_else(|e| e.into_inner()).take();
                Err(thrown.unwrap_or_else(|| RpcError::error("the value stream failed")))
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn get_object(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let key = key_arg(&args, 0, "key")?;
        let opts = options_arg(&args, 1)?;
        for unsupported in ["onlyIf", "range"] {
            if opts.get(unsupported).is_some_and(|v| !v.is_undefined()) {
                return Err(RpcError::type_error(format!(
                    "get() option {unsupported} is not supported"
                )));
            }
        }
        Ok(
            match store_call(self.store.blob().get(&self.bucket, &key)).await? {
                None => Value::Null,
                Some(object) => {
                    let mut o = object_meta(&object.meta, true);
                    let source = BodySource {
                        blob: self.store.blob().clone(),
                        bucket: self.bucket.clone(),
                        key,
                        version: object.meta.version.clone(),
                        content_type: object
                            .meta
                            .http_metadata
                            .content_type
                            .clone()
                            .unwrap_or_default(),
                    };
                    add_body(&mut o, object.body, source);
                    Value::Object(o)
                }
            },
        )
    }

    async fn head(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let key = key_arg(&args, 0, "key")?;
        Ok(
            match store_call(self.store.blob().head(&self.bucket, &key)).await? {
                None => Value::Null,
                Some(meta) => Value::Object(object_meta(&meta, true)),
            },
        )
    }

    async fn delete(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let keys: Vec<String> = match args.first() {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| RpcError::type_error("keys must be strings"))
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(RpcError::type_error(
                    "key must be a string or an array of strings",
                ))
            }
        };
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        store_call(self.store.blob().delete(&self.bucket, &refs)).await?;
        Ok(Value::Undefined)
    }

    async fn list(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let opts = options_arg(&args, 0)?;
        let include: Vec<String> = match opts.get("include") {
            None | Some(Value::Undefined) | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(_) => return Err(RpcError::type_error("include must be an array")),
        };
        let options = BlobListOptions {
            prefix: string_opt(&opts, "prefix")?,
            cursor: string_opt(&opts, "cursor")?,
            limit: number_opt(&opts, "limit")?.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
            delimiter: string_opt(&opts, "delimiter")?,
        };
        let result = store_call(self.store.blob().list(&self.bucket, options)).await?;
        let with_http = include.iter().any(|s| s == "httpMetadata");
        let with_custom = include.iter().any(|s| s == "customMetadata");
        let objects = result
            .objects
            .iter()
            .map(|m| {
                let mut o = object_meta(m, false);
                if with_http {
                    o.insert("httpMetadata".into(), http_metadata_value(&m.http_metadata));
                }
                if with_custom {
                    o.insert(
                        "customMetadata".into(),
                        custom_metadata_value(&m.custom_metadata),
                    );
                }
                Value::Object(o)
            })
            .collect();
        let mut out = Object::new();
        out.insert("objects".into(), Value::Array(objects));
        out.insert("truncated".into(), Value::Bool(result.truncated));
        if let (true, Some(c)) = (result.truncated, result.cursor) {
            out.insert("cursor".into(), Value::String(c));
        }
        out.insert(
            "delimitedPrefixes".into(),
            Value::Array(
                result
                    .delimited_prefixes
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ),
        );
        Ok(Value::Object(out))
    }
}

impl RpcTarget for BlobBinding {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let method = method.to_owned();
        Box::pin(async move {
            match method.as_str() {
                "put" => self.put(args).await,
                "get" => self.get_object(args).await,
                "head" => self.head(args).await,
                "delete" => self.delete(args).await,
                "list" => self.list(args).await,
                other => Err(RpcError::type_error(format!(
                    "'{other}' is not a function."
                ))),
            }
        })
    }
}

/// A `put` value as a body stream: a string (UTF-8), bytes, a Blob, `null` (empty), or a
/// `ReadableStream` whose chunks are passed on as they arrive. A chunk that is not bytes, or
/// an error from the stream, ends the body: what was thrown is kept in `failure`.
fn body_stream(
    value: Value,
    failure: Arc<std::sync::Mutex<Option<RpcError>>>,
) -> Result<BlobBody, RpcError> {
    let bytes = match value {
        Value::Null | Value::Undefined => Vec::new(),
        Value::String(s) => s.into_bytes(),
        Value::Bytes(b) => b.data,
        Value::Blob(b) => b.data,
        Value::Readable(r) => {
            let stream = futures::stream::unfold(Some(r), move |reader| {
                let failure = failure.clone();
                async move {
                    let reader = reader?;
                    let chunk = match reader.next().await? {
                        Ok(Value::Bytes(b)) => Ok(bytes::Bytes::from(b.data)),
                        Ok(Value::String(s)) => Ok(bytes::Bytes::from(s.into_bytes())),
                        Ok(other) => Err(RpcError::type_error(format!(
                            "stream chunk is not bytes: {:?}",
                            other.to_json()
                        ))),
                        Err(e) => Err(e),
                    };
                    match chunk {
                        Ok(chunk) => Some((Ok(chunk), Some(reader))),
                        Err(e) => {
                            let message = e.message().to_owned();
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            Some((Err(StoreError::BodyFailed(message)), None))
                        }
                    }
                }
            });
            return Ok(stream.boxed());
        }
        _ => return Err(RpcError::type_error(
            "value must be a string, ArrayBuffer, ArrayBufferView, Blob, ReadableStream or null",
        )),
    };
    Ok(store::body_from_bytes(bytes))
}

/// Where a `get`'s accessors read the object again from.
#[derive(Clone)]
struct BodySource {
    blob: Arc<dyn BlobStore>,
    bucket: String,
    key: String,
    version: String,
    content_type: String,
}

impl BodySource {
    /// The whole body of the version `get` returned, read again.
    async fn read(&self) -> Result<Vec<u8>, RpcError> {
        let object = store_call(self.blob.get(&self.bucket, &self.key))
            .await?
            .filter(|o| o.meta.version == self.version)
            .ok_or_else(|| {
                store_error(StoreError::ObjectChanged {
                    key: self.key.clone(),
                })
            })?;
        store_call(store::read_body(object.body, BLOB_MAX_BODY_BYTES)).await
    }
}

/// Feeds `body` into a capnweb stream in chunks of at most [`BODY_CHUNK`] bytes, pulling
/// from the store only as the reader keeps up.
fn body_readable(mut body: BlobBody) -> ReadableStream {
    let (tx, readable) = ReadableStream::channel();
    tokio::spawn(async move {
        let mut sent_any = false;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    for piece in chunk.chunks(BODY_CHUNK) {
                        sent_any = true;
                        if tx
                            .write(Value::Bytes(Bytes::new(piece.to_vec())))
                            .await
                            .is_err()
                        {
                            return; // The reader went away.
                        }
                    }
                }
                Err(e) => {
                    tx.abort(store_error(e)).await;
                    return;
                }
            }
        }
        if !sent_any {
            // As before: an empty body is one empty chunk.
            let _ = tx.write(Value::Bytes(Bytes::new(Vec::new()))).await;
        }
    });
    readable
}

/// Adds an `R2ObjectBody`'s body and accessors to `o`: `body` (a stream of the bytes),
/// `bodyUsed` (always `false`: the accessors can be called more than once, whether or not
/// `body` was read), and `text()`, `json()`,
/// `arrayBuffer()`, `bytes()`, `blob()` as function capabilities, so JavaScript's
/// `await obj.text()` works through the bridge while the metadata stay plain properties.
fn add_body(o: &mut Object, body: BlobBody, source: BodySource) {
    o.insert("body".into(), Value::Readable(body_readable(body)));
    o.insert("bodyUsed".into(), Value::Bool(false));
    let accessor = |f: fn(Vec<u8>, &str) -> Result<Value, RpcError>| {
        let source = source.clone();
        Value::Stub(Stub::from_fn(move |_args| {
            let source = source.clone();
            async move {
                let bytes = source.read().await?;
                f(bytes, &source.content_type)
            }
        }))
    };
    o.insert(
        "text".into(),
        accessor(|b, _| Ok(Value::String(String::from_utf8_lossy(&b).into_owned()))),
    );
    o.insert(
        "json".into(),
        accessor(|b, _| {
            serde_json::from_slice::<serde_json::Value>(&b)
                .map(|j| Value::from_json(&j))
                .map_err(|e| RpcError::new("SyntaxError", format!("body is not JSON: {e}")))
        }),
    );
    o.insert(
        "arrayBuffer".into(),
        accessor(|b, _| Ok(Value::Bytes(Bytes::new(b)))),
    );
    o.insert(
        "bytes".into(),
        accessor(|b, _| Ok(Value::Bytes(Bytes::new(b)))),
    );
    o.insert(
        "blob".into(),
        accessor(|b, ct| {
            Ok(Value::Blob(Box::new(capnweb::BlobValue {
                content_type: ct.to_owned(),
                data: b,
            })))
        }),
    );
}

fn object_meta(meta: &BlobMeta, with_metadata: bool) -> Object {
    let mut o = Object::new();
    o.insert("key".into(), Value::string(&meta.key));
    o.insert("version".into(), Value::string(&meta.version));
    o.insert("size".into(), Value::from(meta.size));
    o.insert("etag".into(), Value::string(&meta.etag));
    o.insert(
        "httpEtag".into(),
        Value::String(format!("\"{}\"", meta.etag)),
    );
    o.insert("uploaded".into(), Value::Date(Some(meta.uploaded as f64)));
    if with_metadata {
        o.insert(
            "httpMetadata".into(),
            http_metadata_value(&meta.http_metadata),
        );
        o.insert(
            "customMetadata".into(),
            custom_metadata_value(&meta.custom_metadata),
        );
    }
    o.insert("storageClass".into(), Value::string("Standard"));
    o
}

fn http_metadata_value(h: &HttpMetadata) -> Value {
    let mut o = Object::new();
    let fields = [
        ("contentType", &h.content_type),
        ("contentLanguage", &h.content_language),
        ("contentDisposition", &h.content_disposition),
        ("contentEncoding", &h.content_encoding),
        ("cacheControl", &h.cache_control),
    ];
    for (name, v) in fields {
        if let Some(v) = v {
            o.insert(name.into(), Value::string(v));
        }
    }
    if let Some(ms) = h.cache_expiry {
        o.insert("cacheExpiry".into(), Value::Date(Some(ms as f64)));
    }
    Value::Object(o)
}

fn custom_metadata_value(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::string(v)))
            .collect(),
    )
}

/// `httpMetadata` as an object of the R2 field names, or a `Headers` (the header names).
fn http_metadata_arg(v: Option<&Value>) -> Result<HttpMetadata, RpcError> {
    let pairs: Vec<(String, Value)> = match v {
        None | Some(Value::Undefined) | Some(Value::Null) => return Ok(HttpMetadata::default()),
        Some(Value::Object(o)) => o.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(Value::Headers(h)) => h
            .iter()
            .map(|(k, v)| (header_to_field(k), Value::string(v)))
            .collect(),
        Some(_) => {
            return Err(RpcError::type_error(
                "httpMetadata must be an object or Headers",
            ))
        }
    };
    let mut h = HttpMetadata::default();
    for (k, v) in pairs {
        let text = || match &v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Undefined | Value::Null => Ok(None),
            _ => Err(RpcError::type_error(format!(
                "httpMetadata.{k} must be a string"
            ))),
        };
        match k.as_str() {
            "contentType" => h.content_type = text()?,
            "contentLanguage" => h.content_language = text()?,
            "contentDisposition" => h.content_disposition = text()?,
            "contentEncoding" => h.content_encoding = text()?,
            "cacheControl" => h.cache_control = text()?,
            "cacheExpiry" => {
                h.cache_expiry = match &v {
                    Value::Date(Some(ms)) | Value::Number(ms) if *ms >= 0.0 => Some(*ms as u64),
                    Value::Undefined | Value::Null => None,
                    _ => {
                        return Err(RpcError::type_error(
                            "httpMetadata.cacheExpiry must be a Date",
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

fn header_to_field(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "content-type" => "contentType",
        "content-language" => "contentLanguage",
        "content-disposition" => "contentDisposition",
        "content-encoding" => "contentEncoding",
        "cache-control" => "cacheControl",
        _ => "",
    }
    .to_owned()
}

fn custom_metadata_arg(v: Option<&Value>) -> Result<BTreeMap<String, String>, RpcError> {
    match v {
        None | Some(Value::Undefined) | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(RpcError::type_error(format!(
                    "customMetadata.{k} must be a string"
                ))),
            })
            .collect(),
        Some(_) => Err(RpcError::type_error("customMetadata must be an object")),
    }
}
