//! The expression codec: [`Value`]s to wire JSON (`devaluate`) and back (`evaluate`), in
//! exactly the forms the JavaScript implementation writes and accepts.
//!
//! Capabilities are not serialized here but handed to an [`Exporter`] (sending) or taken
//! from an [`Importer`] (receiving): the session, or a `map()` recorder/applicator.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{json, Value as Json};

use crate::hook::HookRef;
use crate::json::number;
use crate::limits::Limits;
use crate::stream::ReadableStream;
use crate::value::{
    is_forbidden_property, BlobValue, Body, ByteKind, Bytes, ErrorValue, Object, PathKey,
    RequestValue, ResponseValue, Value,
};
use crate::wtf::{decode, decode_lossy, encode_str, encode_units, Decoded};
use crate::{RpcError, RpcPromise, Stub};

/// Where capabilities go when a value is sent.
pub(crate) trait Exporter {
    fn export_stub(&self, hook: HookRef) -> Result<i64, RpcError>;
    fn export_promise(&self, hook: HookRef) -> Result<i64, RpcError>;
    /// The id under which the peer already knows `hook` (it is one of its exports to us).
    fn import_id_of(&self, hook: &HookRef) -> Option<i64>;
    fn create_pipe(&self, stream: ReadableStream) -> Result<i64, RpcError>;
}

/// Where capabilities come from when a value is received.
pub(crate) trait Importer {
    fn get_export(&self, id: i64) -> Option<HookRef>;
    fn import_stub(&self, id: i64) -> Result<HookRef, RpcError>;
    fn import_promise(&self, id: i64) -> Result<HookRef, RpcError>;
    fn take_pipe_readable(&self, id: i64) -> Result<ReadableStream, RpcError>;
    fn limits(&self) -> &Limits;
}

const MAX_SEND_DEPTH: usize = 256;

/// The error constructors the JavaScript evaluator knows by name.
const KNOWN_ERROR_TYPES: [&str; 8] = [
    "Error",
    "EvalError",
    "RangeError",
    "ReferenceError",
    "SyntaxError",
    "TypeError",
    "URIError",
    "AggregateError",
];

fn b64() -> GeneralPurpose {
    GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// A string for a tree (see `crate::wtf`).
fn enc(s: &str) -> Json {
    Json::String(encode_str(s).into_owned())
}

/// A string from a tree, lone surrogates replaced by U+FFFD (see `crate::wtf`).
fn dec(s: &str) -> String {
    decode_lossy(s)
}

/// Serializes `value` for the wire.
pub(crate) fn devaluate(value: &Value, exporter: &dyn Exporter) -> Result<Json, RpcError> {
    devaluate_at(value, exporter, 0)
}

fn devaluate_at(value: &Value, ex: &dyn Exporter, depth: usize) -> Result<Json, RpcError> {
    if depth >= MAX_SEND_DEPTH {
        return Err(RpcError::error(
            "Serialization exceeded maximum allowed depth. (Does the message contain cycles?)",
        ));
    }
    let d = depth + 1;
    Ok(match value {
        Value::Undefined => json!(["undefined"]),
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) if n.is_nan() => json!(["nan"]),
        Value::Number(n) if n.is_infinite() => {
            if *n > 0.0 {
                json!(["inf"])
            } else {
                json!(["-inf"])
            }
        }
        Value::Number(n) => number(*n),
        Value::BigInt(s) => json!(["bigint", s]),
        Value::String(s) => enc(s),
        Value::JsString(s) => Json::String(encode_units(s.code_units())),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|v| devaluate_at(v, ex, d))
                .collect::<Result<Vec<_>, _>>()?;
            Json::Array(vec![Json::Array(items)])
        }
        Value::Object(o) => {
            let mut m = serde_json::Map::with_capacity(o.len());
            for (k, v) in o {
                m.insert(encode_str(k).into_owned(), devaluate_at(v, ex, d)?);
            }
            Json::Object(m)
        }
        Value::Date(ms) => match ms {
            Some(ms) if ms.is_finite() => json!(["date", number(*ms)]),
            _ => json!(["date", null]),
        },
        Value::Bytes(b) => {
            let text = b64().encode(&b.data);
            match b.kind {
                None => json!(["bytes", text]),
                Some(k) => json!(["bytes", text, k.name()]),
            }
        }
        Value::Error(e) => devaluate_error(e, ex, d),
        Value::Url(u) => json!(["url", enc(u)]),
        Value::Headers(h) => json!(["headers", pairs(h)]),
        Value::Request(r) => devaluate_request(r, ex, d)?,
        Value::Response(r) => devaluate_response(r, ex, d)?,
        Value::Readable(s) => json!(["readable", ex.create_pipe(s.clone())?]),
        Value::Blob(b) => {
            let pipe = ex.create_pipe(ReadableStream::from_bytes(b.data.clone()))?;
            json!(["blob", enc(&b.content_type), ["readable", pipe]])
        }
        Value::Stub(s) => match ex.import_id_of(&s.hook) {
            Some(id) => json!(["import", id]),
            None => json!(["export", ex.export_stub(s.hook.clone())?]),
        },
        Value::Promise(p) => match ex.import_id_of(&p.hook) {
            Some(id) => json!(["pipeline", id]),
            None => json!(["promise", ex.export_promise(p.hook.clone())?]),
        },
    })
}

fn pairs(h: &[(String, String)]) -> Json {
    Json::Array(h.iter().map(|(k, v)| json!([enc(k), enc(v)])).collect())
}

fn devaluate_error(e: &ErrorValue, ex: &dyn Exporter, d: usize) -> Json {
    let mut props = serde_json::Map::new();
    for (k, v) in &e.props {
        if k == "name" || k == "message" || k == "stack" {
            continue;
        }
        // Like the JavaScript implementation, a property that cannot be serialized is dropped
        // rather than failing the whole error.
        if let Ok(j) = devaluate_at(v, ex, d) {
            props.insert(encode_str(k).into_owned(), j);
        }
    }
    let mut out = vec![json!("error"), enc(&e.name), enc(&e.message)];
    if !props.is_empty() {
        out.push(e.stack.as_deref().map_or(Json::Null, enc));
        out.push(Json::Object(props));
    } else if let Some(stack) = &e.stack {
        out.push(enc(stack));
    }
    Json::Array(out)
}

fn devaluate_body(b: &Body, ex: &dyn Exporter, d: usize) -> Result<Json, RpcError> {
    Ok(match b {
        Body::Text(t) => enc(t),
        Body::Bytes(bytes) => devaluate_at(&Value::Bytes(Bytes::new(bytes.clone())), ex, d)?,
        Body::Stream(s) => json!(["readable", ex.create_pipe(s.clone())?]),
    })
}

fn devaluate_request(r: &RequestValue, ex: &dyn Exporter, d: usize) -> Result<Json, RpcError> {
    let mut init = serde_json::Map::new();
    if r.method != "GET" {
        init.insert("method".into(), enc(&r.method));
    }
    if !r.headers.is_empty() {
        init.insert("headers".into(), pairs(&r.headers));
    }
    if let Some(body) = &r.body {
        init.insert("body".into(), devaluate_body(body, ex, d)?);
        init.insert("duplex".into(), json!("half"));
    }
    for (k, v) in &r.extra {
        if !init.contains_key(k) {
            init.insert(k.clone(), v.to_json());
        }
    }
    Ok(json!(["request", enc(&r.url), Json::Object(init)]))
}

fn devaluate_response(r: &ResponseValue, ex: &dyn Exporter, d: usize) -> Result<Json, RpcError> {
    let body = match &r.body {
        Some(b) => devaluate_body(b, ex, d)?,
        None => Json::Null,
    };
    let mut init = serde_json::Map::new();
    if r.status != 200 {
        init.insert("status".into(), json!(r.status));
    }
    if !r.status_text.is_empty() {
        init.insert("statusText".into(), enc(&r.status_text));
    }
    if !r.headers.is_empty() {
        init.insert("headers".into(), pairs(&r.headers));
    }
    for (k, v) in &r.extra {
        if !init.contains_key(k) {
            init.insert(k.clone(), v.to_json());
        }
    }
    Ok(json!(["response", body, Json::Object(init)]))
}

/// Deserializes a wire expression.
pub(crate) fn evaluate(json: &Json, importer: &dyn Importer) -> Result<Value, RpcError> {
    evaluate_at(json, importer, 0)
}

fn unknown(json: &Json) -> RpcError {
    let mut text = crate::json::to_js_string(json);
    if text.len() > 200 {
        let mut cut = 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    RpcError::type_error(format!("unknown special value: {text}"))
}

fn parse_path(json: &Json) -> Option<Vec<PathKey>> {
    json.as_array()?
        .iter()
        .map(|p| match p {
            Json::String(s) => Some(PathKey::Name(dec(s))),
            Json::Number(n) => n.as_u64().map(PathKey::Index).or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| PathKey::Index(f as u64))
            }),
            _ => None,
        })
        .collect()
}

fn as_id(json: &Json) -> Option<i64> {
    json.as_i64()
        .or_else(|| json.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

fn evaluate_at(json: &Json, im: &dyn Importer, depth: usize) -> Result<Value, RpcError> {
    let max = im.limits().max_depth;
    if depth >= max {
        return Err(RpcError::type_error(format!(
            "Deserialization exceeded maximum allowed message depth of {max}."
        )));
    }
    let d = depth + 1;
    match json {
        Json::Null => Ok(Value::Null),
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(n) => Ok(Value::Number(n.as_f64().unwrap_or(f64::NAN))),
        Json::String(s) => Ok(match decode(s) {
            Decoded::Str(s) => Value::String(s.into_owned()),
            Decoded::Units(u) => Value::from_utf16(u),
        }),
        Json::Object(o) => {
            let mut out = Object::with_capacity(o.len());
            for (k, v) in o {
                let v = evaluate_at(v, im, d)?;
                let k = dec(k);
                if !is_forbidden_property(&k) {
                    out.insert(k, v);
                }
            }
            Ok(Value::Object(out))
        }
        Json::Array(a) => evaluate_special(json, a, im, d),
    }
}

fn evaluate_special(
    json: &Json,
    a: &[Json],
    im: &dyn Importer,
    d: usize,
) -> Result<Value, RpcError> {
    if let [Json::Array(items)] = a {
        return items
            .iter()
            .map(|v| evaluate_at(v, im, d))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    let tag = match a.first() {
        Some(Json::String(s)) => s.as_str(),
        _ => return Err(unknown(json)),
    };
    match (tag, a.len()) {
        ("undefined", 1) => Ok(Value::Undefined),
        ("inf", _) => Ok(Value::Number(f64::INFINITY)),
        ("-inf", _) => Ok(Value::Number(f64::NEG_INFINITY)),
        ("nan", _) => Ok(Value::Number(f64::NAN)),
        ("bigint", _) => match a.get(1) {
            Some(Json::String(digits)) => {
                let max = im.limits().max_bigint_digits;
                if digits.len() > max {
                    return Err(RpcError::type_error(format!(
                        "Deserialized bigint exceeds maximum length of {max} digits."
                    )));
                }
                let body = digits.strip_prefix('-').unwrap_or(digits);
                if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(RpcError::new(
                        "SyntaxError",
                        format!("Cannot convert {digits} to a BigInt"),
                    ));
                }
                Ok(Value::BigInt(normalize_bigint(digits)))
            }
            _ => Err(unknown(json)),
        },
        ("date", _) => match a.get(1) {
            Some(Json::Null) => Ok(Value::Date(None)),
            Some(Json::Number(n)) => Ok(Value::Date(n.as_f64())),
            _ => Err(unknown(json)),
        },
        ("bytes", 2 | 3) => {
            let Some(Json::String(text)) = a.get(1) else {
                return Err(unknown(json));
            };
            let data = b64()
                .decode(text.trim_end_matches('='))
                .map_err(|e| RpcError::type_error(format!("invalid base64 in bytes: {e}")))?;
            let kind = match a.get(2) {
                None => None,
                Some(Json::String(name)) => {
                    let Some(kind) = ByteKind::from_name(name) else {
                        let marker: String = name.chars().take(64).collect();
                        return Err(RpcError::type_error(format!(
                            "Unknown bytes type marker: {marker}"
                        )));
                    };
                    if let Some(size) = kind.element_size() {
                        if data.len() % size != 0 {
                            return Err(RpcError::type_error(format!(
                                "Invalid byte length {} for {}; expected a multiple of {size}",
                                data.len(),
                                kind.name()
                            )));
                        }
                    }
                    Some(kind)
                }
                Some(other) => {
                    return Err(RpcError::type_error(format!(
                        "Unknown bytes type marker type: {}",
                        json_type(other)
                    )))
                }
            };
            Ok(Value::Bytes(Bytes { data, kind }))
        }
        ("error", n) if n >= 3 => {
            let (Some(Json::String(name)), Some(Json::String(message))) = (a.get(1), a.get(2))
            else {
                return Err(unknown(json));
            };
            // Like the JavaScript evaluator, a type name it has no constructor for arrives as
            // a plain `Error`.
            let name = if KNOWN_ERROR_TYPES.contains(&name.as_str()) {
                name.as_str()
            } else {
                "Error"
            };
            let mut e = ErrorValue::new(name, dec(message));
            if let Some(Json::String(stack)) = a.get(3) {
                e.stack = Some(dec(stack));
            }
            if n >= 5 {
                let Some(Json::Object(props)) = a.get(4) else {
                    return Err(unknown(json));
                };
                for (k, v) in props {
                    if k == "name" || k == "message" || k == "stack" {
                        continue;
                    }
                    let v = evaluate_at(v, im, d)?;
                    let k = dec(k);
                    if !is_forbidden_property(&k) {
                        e.props.insert(k, v);
                    }
                }
            }
            Ok(Value::Error(Box::new(e)))
        }
        ("url", 2) => match a.get(1) {
            Some(Json::String(u)) => Ok(Value::Url(dec(u))),
            _ => Err(unknown(json)),
        },
        ("headers", 2) => match a.get(1) {
            Some(Json::Array(list)) => Ok(Value::Headers(
                parse_pairs(list).ok_or_else(|| unknown(json))?,
            )),
            _ => Err(unknown(json)),
        },
        ("request", 3) => evaluate_request(json, a, im, d),
        ("blob", 3) => {
            let Some(Json::String(content_type)) = a.get(1) else {
                return Err(unknown(json));
            };
            let Value::Readable(stream) = evaluate_at(&a[2], im, d)? else {
                return Err(RpcError::type_error(
                    "Blob content must be serialized as a ReadableStream.",
                ));
            };
            let content_type = dec(content_type);
            Ok(Value::Promise(RpcPromise::from_future(async move {
                let data = stream.read_all().await?;
                Ok(Value::Blob(Box::new(BlobValue { content_type, data })))
            })))
        }
        ("response", 3) => evaluate_response(json, a, im, d),
        ("import" | "pipeline", 2..=4) => {
            let id = a.get(1).and_then(as_id).ok_or_else(|| unknown(json))?;
            let hook = im
                .get_export(id)
                .ok_or_else(|| RpcError::error(format!("no such entry on exports table: {id}")))?;
            let is_promise = tag == "pipeline";
            let hook = match a.len() {
                2 => {
                    if is_promise {
                        hook.get(&[])
                    } else {
                        hook
                    }
                }
                3 => {
                    let path = a.get(2).and_then(parse_path).ok_or_else(|| unknown(json))?;
                    hook.get(&path)
                }
                _ => {
                    let path = a.get(2).and_then(parse_path).ok_or_else(|| unknown(json))?;
                    let Some(Json::Array(args)) = a.get(3) else {
                        return Err(unknown(json));
                    };
                    let args = args
                        .iter()
                        .map(|v| evaluate_at(v, im, d))
                        .collect::<Result<Vec<_>, _>>()?;
                    hook.call(&path, args)
                }
            };
            Ok(if is_promise {
                Value::Promise(RpcPromise::from_hook(hook))
            } else {
                Value::Stub(Stub::from_hook(hook))
            })
        }
        ("remap", 5) => {
            let id = a.get(1).and_then(as_id).ok_or_else(|| unknown(json))?;
            let path = a.get(2).and_then(parse_path).ok_or_else(|| unknown(json))?;
            let (Some(Json::Array(caps)), Some(Json::Array(instructions))) = (a.get(3), a.get(4))
            else {
                return Err(unknown(json));
            };
            let hook = im
                .get_export(id)
                .ok_or_else(|| RpcError::error(format!("no such entry on exports table: {id}")))?;
            let mut captures = Vec::with_capacity(caps.len());
            for cap in caps {
                let bad = || {
                    RpcError::type_error(format!(
                        "unknown map capture: {}",
                        crate::json::to_js_string(cap)
                    ))
                };
                let Some([Json::String(kind), idj]) = cap.as_array().map(Vec::as_slice) else {
                    return Err(bad());
                };
                let cid = as_id(idj).ok_or_else(bad)?;
                captures.push(match kind.as_str() {
                    "export" => im.import_stub(cid)?,
                    "import" => im.get_export(cid).ok_or_else(|| {
                        RpcError::error(format!("no such entry on exports table: {cid}"))
                    })?,
                    _ => return Err(bad()),
                });
            }
            let hook = hook.map(&path, captures, std::sync::Arc::new(instructions.clone()));
            Ok(Value::Promise(RpcPromise::from_hook(hook)))
        }
        ("export" | "promise", _) => {
            let id = a.get(1).and_then(as_id).ok_or_else(|| unknown(json))?;
            if tag == "promise" {
                Ok(Value::Promise(RpcPromise::from_hook(
                    im.import_promise(id)?,
                )))
            } else {
                Ok(Value::Stub(Stub::from_hook(im.import_stub(id)?)))
            }
        }
        ("writable", _) => {
            let id = a.get(1).and_then(as_id).ok_or_else(|| unknown(json))?;
            Ok(Value::Stub(Stub::from_hook(im.import_stub(id)?)))
        }
        ("readable", _) => {
            let id = a.get(1).and_then(as_id).ok_or_else(|| unknown(json))?;
            Ok(Value::Readable(im.take_pipe_readable(id)?))
        }
        _ => Err(unknown(json)),
    }
}

fn json_type(j: &Json) -> &'static str {
    match j {
        Json::Null => "object",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) | Json::Object(_) => "object",
    }
}

/// BigInt("007") is 7n and BigInt("-0") is 0n: the digits the JavaScript value would print.
fn normalize_bigint(digits: &str) -> String {
    let (neg, body) = match digits.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, digits),
    };
    let trimmed = body.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else if neg {
        format!("-{trimmed}")
    } else {
        trimmed.to_owned()
    }
}

fn parse_pairs(list: &[Json]) -> Option<Vec<(String, String)>> {
    list.iter()
        .map(|p| match p.as_array().map(Vec::as_slice) {
            Some([Json::String(k), Json::String(v)]) => Some((dec(k), dec(v))),
            _ => None,
        })
        .collect()
}

fn evaluate_body(
    json: &Json,
    im: &dyn Importer,
    d: usize,
    what: &str,
) -> Result<Option<Body>, RpcError> {
    Ok(match evaluate_at(json, im, d)? {
        Value::Null | Value::Undefined => None,
        Value::String(s) => Some(Body::Text(s)),
        Value::JsString(s) => Some(Body::Text(s.to_string_lossy())),
        Value::Bytes(b) => Some(Body::Bytes(b.data)),
        Value::Readable(r) => Some(Body::Stream(r)),
        _ => {
            return Err(RpcError::type_error(format!(
                "{what} body must be of type ReadableStream."
            )))
        }
    })
}

fn evaluate_request(
    json: &Json,
    a: &[Json],
    im: &dyn Importer,
    d: usize,
) -> Result<Value, RpcError> {
    let (Some(Json::String(url)), Some(Json::Object(init))) = (a.get(1), a.get(2)) else {
        return Err(unknown(json));
    };
    let mut req = RequestValue {
        url: dec(url),
        method: "GET".into(),
        headers: Vec::new(),
        body: None,
        extra: Object::new(),
    };
    for (k, v) in init {
        match k.as_str() {
            "method" => req.method = dec(v.as_str().unwrap_or("GET")).to_ascii_uppercase(),
            "headers" => {
                let Json::Array(list) = v else {
                    return Err(RpcError::type_error(
                        "Request headers must be serialized as an array of pairs.",
                    ));
                };
                req.headers = parse_pairs(list).ok_or_else(|| unknown(json))?;
            }
            "body" => req.body = evaluate_body(v, im, d, "Request")?,
            "duplex" => {}
            _ => {
                req.extra.insert(k.clone(), Value::from_json(v));
            }
        }
    }
    Ok(Value::Request(Box::new(req)))
}

fn evaluate_response(
    json: &Json,
    a: &[Json],
    im: &dyn Importer,
    d: usize,
) -> Result<Value, RpcError> {
    let Some(Json::Object(init)) = a.get(2) else {
        return Err(unknown(json));
    };
    let body = match a.get(1) {
        Some(b) => evaluate_body(b, im, d, "Response")?,
        None => None,
    };
    let mut resp = ResponseValue {
        status: 200,
        status_text: String::new(),
        headers: Vec::new(),
        body,
        extra: Object::new(),
    };
    for (k, v) in init {
        match k.as_str() {
            "status" => {
                resp.status = v
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (200..=599).contains(s))
                    .ok_or_else(|| RpcError::range_error("Response status must be in 200..=599"))?
            }
            "statusText" => resp.status_text = dec(v.as_str().unwrap_or_default()),
            "headers" => {
                let Json::Array(list) = v else {
                    return Err(RpcError::type_error(
                        "Request headers must be serialized as an array of pairs.",
                    ));
                };
                resp.headers = parse_pairs(list).ok_or_else(|| unknown(json))?;
            }
            "webSocket" => {
                return Err(RpcError::type_error(
                    "Can't deserialize a Response containing a webSocket.",
                ))
            }
            _ => {
                resp.extra.insert(k.clone(), Value::from_json(v));
            }
        }
    }
    Ok(Value::Response(Box::new(resp)))
}

/// A codec with no session: serializes data only (capabilities are refused), like the
/// JavaScript `serialize()`/`deserialize()` functions.
pub(crate) struct NoSession(pub(crate) Limits);

impl Exporter for NoSession {
    fn export_stub(&self, _: HookRef) -> Result<i64, RpcError> {
        Err(RpcError::error(
            "Cannot serialize RPC stubs without an RPC session.",
        ))
    }
    fn export_promise(&self, h: HookRef) -> Result<i64, RpcError> {
        self.export_stub(h)
    }
    fn import_id_of(&self, _: &HookRef) -> Option<i64> {
        None
    }
    fn create_pipe(&self, _: ReadableStream) -> Result<i64, RpcError> {
        Err(RpcError::error(
            "Cannot create pipes without an RPC session.",
        ))
    }
}

impl Importer for NoSession {
    fn get_export(&self, _: i64) -> Option<HookRef> {
        None
    }
    fn import_stub(&self, _: i64) -> Result<HookRef, RpcError> {
        Err(RpcError::error(
            "Cannot deserialize RPC stubs without an RPC session.",
        ))
    }
    fn import_promise(&self, id: i64) -> Result<HookRef, RpcError> {
        self.import_stub(id)
    }
    fn take_pipe_readable(&self, _: i64) -> Result<ReadableStream, RpcError> {
        Err(RpcError::error(
            "Cannot retrieve pipe readable without an RPC session.",
        ))
    }
    fn limits(&self) -> &Limits {
        &self.0
    }
}

/// How deeply `text` nests arrays and objects (brackets inside strings do not count).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses one message's JSON text. Nesting is checked first (so hostile input cannot exhaust
/// the stack), loosely enough that every message within `limits.max_depth` parses: escaped
/// arrays and special forms add up to two JSON levels per value level.
pub(crate) fn parse_json(text: &str, limits: &Limits) -> Result<Json, RpcError> {
    let allowed = limits.max_depth.saturating_mul(2).saturating_add(8);
    if nesting_depth(text) > allowed {
        return Err(RpcError::type_error(format!(
            "Deserialization exceeded maximum allowed message depth of {}.",
            limits.max_depth
        )));
    }
    let text = crate::wtf::prepare_text(text);
    let mut de = serde_json::Deserializer::from_str(&text);
    de.disable_recursion_limit();
    let json = <Json as serde::Deserialize>::deserialize(&mut de)
        .and_then(|j| de.end().map(|()| j))
        .map_err(|e| RpcError::new("SyntaxError", format!("invalid JSON in RPC message: {e}")))?;
    Ok(json)
}

/// Serializes plain data to capnweb's JSON text (the JavaScript `serialize()`).
pub fn serialize(value: &Value) -> Result<String, RpcError> {
    Ok(crate::json::to_js_string(&devaluate(
        value,
        &NoSession(Limits::default()),
    )?))
}

/// Parses capnweb's JSON text into plain data (the JavaScript `deserialize()`).
pub fn deserialize(text: &str) -> Result<Value, RpcError> {
    let limits = Limits::default();
    let json = parse_json(text, &limits)?;
    evaluate(&json, &NoSession(limits))
}
