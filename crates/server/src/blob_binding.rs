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
//! `writeHttpMetadata(headers)` is not provided.
//!
//! As in R2, `list` leaves `httpMetadata` and `customMetadata` out of its objects unless
//! `include` names them, and `cursor` is present only when `truncated` is true. A `put`
//! value may be a string, bytes, a Blob, a stream, or `null` (an empty object). Conditional
//! and range reads (`onlyIf`, `range`) are refused with a `TypeError`.

use std::collections::BTreeMap;
use std::sync::Arc;

use capnweb::{Bytes, CallResult, Object, ReadableStream, RpcError, RpcTarget, Stub, Value};
use store::{BlobListOptions, BlobMeta, BlobPutOptions, HttpMetadata, Quota, Store};

use crate::bindings::{body_bytes, key_arg, number_opt, options_arg, store_call, string_opt};

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
        let body = match args.next().unwrap_or_default() {
            Value::Null | Value::Undefined => Vec::new(),
            v => body_bytes(v, "value").await?,
        };
        let opts = options_arg(&[args.next().unwrap_or_default()], 0)?;
        let options = BlobPutOptions {
            http_metadata: http_metadata_arg(opts.get("httpMetadata"))?,
            custom_metadata: custom_metadata_arg(opts.get("customMetadata"))?,
        };
        let blob = self.store.blob().clone();
        let bucket = self.bucket.clone();
        let quota = self.quota;
        let meta = store_call(move || blob.put(&bucket, &key, &body, options, quota)).await?;
        Ok(Value::Object(object_meta(&meta, true)))
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
        let blob = self.store.blob().clone();
        let bucket = self.bucket.clone();
        Ok(match store_call(move || blob.get(&bucket, &key)).await? {
            None => Value::Null,
            Some((meta, body)) => {
                let mut o = object_meta(&meta, true);
                let content_type = meta.http_metadata.content_type.clone().unwrap_or_default();
                add_body(&mut o, body, content_type);
                Value::Object(o)
            }
        })
    }

    async fn head(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let key = key_arg(&args, 0, "key")?;
        let blob = self.store.blob().clone();
        let bucket = self.bucket.clone();
        Ok(match store_call(move || blob.head(&bucket, &key)).await? {
            None => Value::Null,
            Some(meta) => Value::Object(object_meta(&meta, true)),
        })
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
        let blob = self.store.blob().clone();
        let bucket = self.bucket.clone();
        store_call(move || {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            blob.delete(&bucket, &refs)
        })
        .await?;
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
        let blob = self.store.blob().clone();
        let bucket = self.bucket.clone();
        let result = store_call(move || blob.list(&bucket, options)).await?;
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

/// The `R2Object` fields of `meta`; with or without the two metadata maps.
/// Adds an `R2ObjectBody`'s body and accessors to `o`: `body` (a stream of the bytes),
/// `bodyUsed` (always `false`: the accessors can be called more than once, whether or not
/// `body` was read), and `text()`, `json()`,
/// `arrayBuffer()`, `bytes()`, `blob()` as function capabilities, so JavaScript's
/// `await obj.text()` works through the bridge while the metadata stay plain properties.
fn add_body(o: &mut Object, body: Vec<u8>, content_type: String) {
    let body: Arc<[u8]> = body.into();
    o.insert(
        "body".into(),
        Value::Readable(ReadableStream::from_bytes_chunked(&body, BODY_CHUNK)),
    );
    o.insert("bodyUsed".into(), Value::Bool(false));
    let accessor = |f: fn(&[u8], &str) -> Result<Value, RpcError>| {
        let body = body.clone();
        let content_type = content_type.clone();
        Value::Stub(Stub::from_fn(move |_args| {
            let out = f(&body, &content_type);
            async move { out }
        }))
    };
    o.insert(
        "text".into(),
        accessor(|b, _| Ok(Value::String(String::from_utf8_lossy(b).into_owned()))),
    );
    o.insert(
        "json".into(),
        accessor(|b, _| {
            serde_json::from_slice::<serde_json::Value>(b)
                .map(|j| Value::from_json(&j))
                .map_err(|e| RpcError::new("SyntaxError", format!("body is not JSON: {e}")))
        }),
    );
    o.insert(
        "arrayBuffer".into(),
        accessor(|b, _| Ok(Value::Bytes(Bytes::new(b.to_vec())))),
    );
    o.insert(
        "bytes".into(),
        accessor(|b, _| Ok(Value::Bytes(Bytes::new(b.to_vec())))),
    );
    o.insert(
        "blob".into(),
        accessor(|b, ct| {
            Ok(Value::Blob(Box::new(capnweb::BlobValue {
                content_type: ct.to_owned(),
                data: b.to_vec(),
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
