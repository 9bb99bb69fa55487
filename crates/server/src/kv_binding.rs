//! The KV binding: a capnweb [`RpcTarget`] with Workers KV semantics over the store's
//! [`KvStore`](store::KvStore), one namespace per binding.
//!
//! Methods (as called on the stub; arguments are capnweb values):
//!
//! | call | returns |
//! |---|---|
//! | `get(key, type?)`, `type` = `"text"` (default) / `"json"` / `"arrayBuffer"` / `"stream"` or `{type}` | the value, or `null` when missing or expired |
//! | `getWithMetadata(key, type?)` | `{value, metadata, cacheStatus: null}` (`value`/`metadata` `null` when missing) |
//! | `put(key, value, {expirationTtl?, expiration?, metadata?})` | `undefined`; value is a string, bytes, a Blob or a stream |
//! | `delete(key)` | `undefined` (deleting a missing key is not an error) |
//! | `list({prefix?, cursor?, limit?})` | `{keys: [{name, expiration?, metadata?}], list_complete, cursor?, cacheStatus: null}` |
//!
//! `arrayBuffer` values come back as `Value::Bytes` of kind `ArrayBuffer`; `json` values
//! are parsed here (invalid JSON throws `SyntaxError`, as `JSON.parse` would). Bad input
//! throws `TypeError` (bad key, TTL under 60 s, bad cursor) or `RangeError` (sizes, limits),
//! with the store's message. `cursor` is present only while `list_complete` is false.

use std::sync::Arc;

use capnweb::{ByteKind, Bytes, CallResult, Object, ReadableStream, RpcError, RpcTarget, Value};
use store::{KvEntry, KvListOptions, KvPutOptions, Quota, Store};

use crate::bindings::{body_bytes, key_arg, number_opt, options_arg, store_call, string_opt};

/// A KV namespace as an RPC target.
#[derive(Debug, Clone)]
pub struct KvBinding {
    store: Store,
    namespace: String,
    quota: Quota,
}

#[derive(Clone, Copy)]
enum ValueType {
    Text,
    Json,
    ArrayBuffer,
    Stream,
}

impl KvBinding {
    /// The binding for `namespace` in `store`; puts that would take the namespace past
    /// `quota` throw `QuotaExceededError`.
    pub fn new(store: Store, namespace: String, quota: Quota) -> KvBinding {
        KvBinding {
            store,
            namespace,
            quota,
        }
    }

    async fn entry(&self, key: String) -> Result<Option<KvEntry>, RpcError> {
        store_call(self.store.kv().get(&self.namespace, &key)).await
    }

    async fn get_value(&self, args: Vec<Value>, with_metadata: bool) -> Result<Value, RpcError> {
        if matches!(args.first(), Some(Value::Array(_))) {
            return Err(RpcError::type_error(
                "get() with an array of keys is not supported; get each key",
            ));
        }
        let key = key_arg(&args, 0, "key")?;
        let ty = value_type(args.get(1))?;
        let entry = self.entry(key).await?;
        let (value, metadata) = match entry {
            None => (Value::Null, Value::Null),
            Some(e) => (
                decode(e.value, ty)?,
                e.metadata.as_ref().map_or(Value::Null, Value::from_json),
            ),
        };
        if with_metadata {
            Ok(Value::object([
                ("value", value),
                ("metadata", metadata),
                ("cacheStatus", Value::Null),
            ]))
        } else {
            Ok(value)
        }
    }

    async fn put(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let mut args = args.into_iter();
        let key = key_arg(&[args.next().unwrap_or_default()], 0, "key")?;
        let value = body_bytes(args.next().unwrap_or_default(), "value").await?;
        let opts = options_arg(&[args.next().unwrap_or_default()], 0)?;
        let options = KvPutOptions {
            expiration: number_opt(&opts, "expiration")?,
            expiration_ttl: number_opt(&opts, "expirationTtl")?,
            metadata: match opts.get("metadata") {
                None | Some(Value::Undefined) | Some(Value::Null) => None,
                Some(m) => Some(m.to_json()),
            },
        };
        store_call(
            self.store
                .kv()
                .put(&self.namespace, &key, value, options, self.quota),
        )
        .await?;
        Ok(Value::Undefined)
    }

    async fn delete(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let key = key_arg(&args, 0, "key")?;
        store_call(self.store.kv().delete(&self.namespace, &key)).await?;
        Ok(Value::Undefined)
    }

    async fn list(&self, args: Vec<Value>) -> Result<Value, RpcError> {
        let opts = options_arg(&args, 0)?;
        let options = KvListOptions {
            prefix: string_opt(&opts, "prefix")?,
            cursor: string_opt(&opts, "cursor")?,
            limit: number_opt(&opts, "limit")?.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        };
        let result = store_call(self.store.kv().list(&self.namespace, options)).await?;
        let keys = result
            .keys
            .into_iter()
            .map(|k| {
                let mut o = Object::new();
                o.insert("name".into(), Value::String(k.name));
                if let Some(e) = k.expiration {
                    o.insert("expiration".into(), Value::from(e));
                }
                if let Some(m) = &k.metadata {
                    o.insert("metadata".into(), Value::from_json(m));
                }
                Value::Object(o)
            })
            .collect();
        let mut out = Object::new();
        out.insert("keys".into(), Value::Array(keys));
        out.insert("list_complete".into(), Value::Bool(result.list_complete));
        if let (false, Some(c)) = (result.list_complete, result.cursor) {
            out.insert("cursor".into(), Value::String(c));
        }
        out.insert("cacheStatus".into(), Value::Null);
        Ok(Value::Object(out))
    }
}

impl RpcTarget for KvBinding {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let method = method.to_owned();
        Box::pin(async move {
            match method.as_str() {
                "get" => self.get_value(args, false).await,
                "getWithMetadata" => self.get_value(args, true).await,
                "put" => self.put(args).await,
                "delete" => self.delete(args).await,
                "list" => self.list(args).await,
                other => Err(RpcError::type_error(format!(
                    "'{other}' is not a function."
                ))),
            }
        })
    }
}

fn value_type(arg: Option<&Value>) -> Result<ValueType, RpcError> {
    let name = match arg {
        None | Some(Value::Undefined) | Some(Value::Null) => return Ok(ValueType::Text),
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => match o.get("type") {
            None | Some(Value::Undefined) => return Ok(ValueType::Text),
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(RpcError::type_error("options.type must be a string")),
        },
        Some(_) => {
            return Err(RpcError::type_error(
                "the second argument must be a type string or an options object",
            ))
        }
    };
    match name {
        "text" => Ok(ValueType::Text),
        "json" => Ok(ValueType::Json),
        "arrayBuffer" => Ok(ValueType::ArrayBuffer),
        "stream" => Ok(ValueType::Stream),
        other => Err(RpcError::type_error(format!(
            "Unknown response type {other:?}. Possible types are \"text\", \"arrayBuffer\", \"json\", and \"stream\"."
        ))),
    }
}

fn decode(bytes: Vec<u8>, ty: ValueType) -> Result<Value, RpcError> {
    Ok(match ty {
        ValueType::Text => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        ValueType::Json => {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| RpcError::new("SyntaxError", format!("invalid JSON: {e}")))?;
            Value::from_json(&v)
        }
        ValueType::ArrayBuffer => Value::Bytes(Bytes {
            data: bytes,
            kind: Some(ByteKind::ArrayBuffer),
        }),
        ValueType::Stream => Value::Readable(ReadableStream::from_bytes(bytes)),
    })
}
