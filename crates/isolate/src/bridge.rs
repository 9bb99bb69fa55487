//! The bridge between JavaScript values and capnweb values — the one conversion used
//! everywhere (call arguments, results, errors, env, fetch requests and responses).
//!
//! Data crosses by value. JavaScript `RpcTarget` instances and functions cross by reference:
//! they are registered in the isolate's [`Host`] and become [`JsTarget`] capabilities.
//! capnweb [`Stub`]s and [`RpcPromise`]s arriving in JavaScript become stub proxies (see
//! `js/prelude.js`) over a [`CapHandle`], and turn back into the same capability when passed
//! out again.

use std::sync::Arc;

use capnweb::{
    Body, ByteKind, Bytes, ErrorValue, Object as CwObject, PathKey, RequestValue, ResponseValue,
    RpcError, RpcPromise, Stub, Value,
};
use rquickjs::class::Trace;
use rquickjs::{
    Array, Class, Ctx, Exception, JsLifetime, Object, Type, TypedArray, Value as JsValue,
};

use crate::host::{js_array, Host};
use crate::target::{JsTarget, TargetRef};

/// How deep data may nest before conversion gives up (cycles end here too).
const MAX_DEPTH: usize = 64;

/// A capnweb capability held by JavaScript.
#[derive(Clone)]
pub(crate) enum Cap {
    Stub(Stub),
    Promise(RpcPromise),
}

impl Cap {
    /// The value at `path` inside this capability, as a promise.
    pub(crate) fn at(&self, path: &[PathKey]) -> RpcPromise {
        match self {
            Cap::Stub(s) => s.get_path(path),
            Cap::Promise(p) if path.is_empty() => p.clone(),
            Cap::Promise(p) => p.to_stub().get_path(path),
        }
    }

    pub(crate) fn call_path(&self, path: &[PathKey], args: Vec<Value>) -> RpcPromise {
        match self {
            Cap::Stub(s) => s.call_path(path, args),
            Cap::Promise(p) => p.call_path(path, args),
        }
    }

    fn into_value(self, path: &[PathKey]) -> Value {
        if path.is_empty() {
            return match self {
                Cap::Stub(s) => Value::Stub(s),
                Cap::Promise(p) => Value::Promise(p),
            };
        }
        Value::Promise(self.at(path))
    }
}

/// The JavaScript object that holds a capability; dropping it (GC or `[Symbol.dispose]`)
/// releases the capability.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "CapnwebCapability")]
pub(crate) struct CapHandle {
    #[qjs(skip_trace)]
    pub(crate) cap: Option<Cap>,
}

impl CapHandle {
    pub(crate) fn get(&self) -> Option<Cap> {
        self.cap.clone()
    }
}

/// The JavaScript object that holds a capnweb stream being read from JavaScript; dropping it
/// (GC or cancel) drops the stream, which tells its writer.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "CapnwebStream")]
pub(crate) struct StreamHandle {
    #[qjs(skip_trace)]
    pub(crate) stream: Option<capnweb::ReadableStream>,
}

/// Starts feeding a JavaScript `ReadableStream` into a new capnweb stream.
fn pump<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    stream: JsValue<'js>,
) -> rquickjs::Result<capnweb::ReadableStream> {
    let (tx, rs) = capnweb::ReadableStream::channel();
    let sid = host.add_sender(tx);
    host.web_fn(ctx, "pumpStream")?
        .call::<_, ()>((sid, stream))?;
    Ok(rs)
}

/// A JavaScript `ReadableStream` whose chunks are read from a capnweb stream.
fn readable<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    stream: &capnweb::ReadableStream,
) -> rquickjs::Result<JsValue<'js>> {
    let handle = Class::instance(
        ctx.clone(),
        StreamHandle {
            stream: Some(stream.clone()),
        },
    )?;
    host.web_fn(ctx, "mkReadable")?.call((handle,))
}

/// Reads a property path given from JavaScript (strings and numbers).
pub(crate) fn path_of(path: &Array<'_>) -> rquickjs::Result<Vec<PathKey>> {
    let mut out = Vec::with_capacity(path.len());
    for v in path.iter::<JsValue<'_>>() {
        let v = v?;
        if let Some(n) = v.as_number() {
            out.push(PathKey::Index(n as u64));
        } else {
            out.push(PathKey::Name(v.get::<String>()?));
        }
    }
    Ok(out)
}

/// A `Uint8Array` holding a copy of `bytes`, allocated in the isolate's heap so that its
/// memory limit counts it. (`TypedArray::new` adopts a Rust `Vec` instead, memory the
/// isolate's allocator never sees: a function could hold gigabytes of it past its limit.)
pub(crate) fn js_bytes<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> rquickjs::Result<TypedArray<'js, u8>> {
    TypedArray::<u8>::new_copy(ctx.clone(), bytes)
}

/// A JavaScript string as a Rust string, each lone surrogate (legal in JavaScript, not in
/// UTF-8) replaced by U+FFFD, as the Encoding Standard's UTF-8 encoder does.
pub(crate) fn string_lossy<'js>(
    ctx: &Ctx<'js>,
    s: &rquickjs::String<'js>,
) -> rquickjs::Result<String> {
    match s.to_string() {
        Ok(text) => Ok(text),
        Err(rquickjs::Error::Utf8(_)) => {
            let string: rquickjs::Object<'js> = ctx.globals().get("String")?;
            let proto: rquickjs::Object<'js> = string.get("prototype")?;
            let to_well_formed: rquickjs::Function<'js> = proto.get("toWellFormed")?;
            to_well_formed
                .call::<_, rquickjs::String<'js>>((rquickjs::function::This(s.clone()),))?
                .to_string()
        }
        Err(e) => Err(e),
    }
}

/// Copies the bytes of a `Uint8Array`.
pub(crate) fn bytes_of(a: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: the slice is copied into a Vec at once; no JavaScript runs while it is borrowed,
    // so the engine cannot detach or resize the buffer under it.
    unsafe { a.as_bytes() }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

fn type_error(ctx: &Ctx<'_>, msg: &str) -> rquickjs::Error {
    Exception::throw_type(ctx, msg)
}

/// JavaScript → capnweb.
pub(crate) fn to_value<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    v: JsValue<'js>,
) -> rquickjs::Result<Value> {
    convert_in(host, ctx, v, 0)
}

fn convert_in<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    v: JsValue<'js>,
    depth: usize,
) -> rquickjs::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(type_error(
            ctx,
            "value nests too deeply to be sent over RPC (is it cyclic?)",
        ));
    }
    Ok(match v.type_of() {
        Type::Uninitialized | Type::Undefined => Value::Undefined,
        Type::Null => Value::Null,
        Type::Bool => Value::Bool(v.as_bool().unwrap_or(false)),
        Type::Int => Value::Number(f64::from(v.as_int().unwrap_or(0))),
        Type::Float => Value::Number(v.as_float().unwrap_or(f64::NAN)),
        Type::String => string_in(ctx, &v)?,
        Type::BigInt => Value::BigInt(v.get::<rquickjs::convert::Coerced<String>>()?.0),
        Type::Symbol => return Err(type_error(ctx, "a Symbol cannot be sent over RPC")),
        Type::Array => {
            let a = v
                .into_array()
                .ok_or_else(|| type_error(ctx, "not an array"))?;
            let mut out = Vec::with_capacity(a.len());
            for item in a.iter::<JsValue<'js>>() {
                out.push(convert_in(host, ctx, item?, depth + 1)?);
            }
            Value::Array(out)
        }
        Type::Object
        | Type::Function
        | Type::Constructor
        | Type::Promise
        | Type::Exception
        | Type::Proxy => convert_object(host, ctx, v, depth)?,
        _ => return Err(type_error(ctx, "this value cannot be sent over RPC")),
    })
}

/// `(s) => its UTF-16 code units`, for strings a Rust `String` cannot hold.
const CODE_UNITS: &str = "(s) => { const a = new Array(s.length); \
     for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return a; }";

/// `(code units) => the string`.
const FROM_CODE_UNITS: &str = "(a) => { let s = ''; \
     for (let i = 0; i < a.length; i += 4096) s += String.fromCharCode.apply(null, a.slice(i, i + 4096)); \
     return s; }";

/// A JavaScript string as a capnweb string: a Rust string, or (when it holds a lone surrogate,
/// which is legal in JavaScript) its UTF-16 code units, so it crosses unchanged.
fn string_in<'js>(ctx: &Ctx<'js>, v: &JsValue<'js>) -> rquickjs::Result<Value> {
    match v.get::<String>() {
        Ok(s) => Ok(Value::String(s)),
        // QuickJS hands out lone surrogates as three-byte sequences, which are not UTF-8.
        Err(rquickjs::Error::Utf8(_)) => {
            let code_units: rquickjs::Function<'js> = ctx.eval(CODE_UNITS)?;
            let units: Vec<u16> = code_units.call((v.clone(),))?;
            Ok(Value::from_utf16(units))
        }
        Err(e) => Err(e),
    }
}

fn convert_object<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    v: JsValue<'js>,
    depth: usize,
) -> rquickjs::Result<Value> {
    let desc: Array<'js> = host.helper(ctx, "describe")?.call((v.clone(),))?;
    let tag: i32 = desc.get(0)?;
    let detail: JsValue<'js> = desc.get(1)?;
    Ok(match tag {
        0 | 1 => {
            let obj = v
                .into_object()
                .ok_or_else(|| type_error(ctx, "not an object"))?;
            let mut out = CwObject::new();
            for key in obj.keys::<String>() {
                let key = key?;
                let item: JsValue<'js> = obj.get(key.as_str())?;
                out.insert(key, convert_in(host, ctx, item, depth + 1)?);
            }
            Value::Object(out)
        }
        2 => {
            let pair: Array<'js> = Array::from_value(detail)?;
            let handle: Class<'js, CapHandle> = pair.get(0)?;
            let path = path_of(&pair.get::<Array<'js>>(1)?)?;
            let cap = handle
                .borrow()
                .get()
                .ok_or_else(|| type_error(ctx, "RPC stub was disposed"))?;
            cap.into_value(&path)
        }
        3 | 4 => Value::Stub(export(host, ctx, v)?),
        5 => {
            let d: Array<'js> = Array::from_value(detail)?;
            let name: String = d.get(0)?;
            let message: String = d.get(1)?;
            let stack: Option<String> = d.get(2)?;
            let props = match convert_in(host, ctx, d.get(3)?, depth + 1)? {
                Value::Object(o) => o,
                _ => CwObject::new(),
            };
            Value::Error(Box::new(ErrorValue {
                name,
                message,
                stack,
                props,
            }))
        }
        6 => {
            let ms = detail.as_number().unwrap_or(f64::NAN);
            Value::Date(if ms.is_nan() { None } else { Some(ms) })
        }
        7 => {
            let d: Array<'js> = Array::from_value(detail)?;
            let kind: String = d.get(0)?;
            let data = bytes_of(&d.get::<TypedArray<'js, u8>>(1)?);
            let kind = match ByteKind::from_name(&kind) {
                Some(ByteKind::Uint8Array) | None => None,
                other => other,
            };
            Value::Bytes(Bytes { data, kind })
        }
        8 => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let id = host.track_reply(tx);
            host.helper(ctx, "track")?.call::<_, ()>((id, v))?;
            Value::Promise(RpcPromise::from_future(async move {
                rx.await
                    .unwrap_or_else(|_| Err(RpcError::error("the isolate was shut down")))
            }))
        }
        9 => {
            let d: Array<'js> = Array::from_value(detail)?;
            Value::Request(Box::new(RequestValue {
                url: d.get(0)?,
                method: d.get(1)?,
                headers: header_pairs(&d.get(2)?)?,
                body: body_of(host, ctx, d.get(3)?, depth)?,
                extra: CwObject::new(),
            }))
        }
        10 => {
            let d: Array<'js> = Array::from_value(detail)?;
            Value::Response(Box::new(ResponseValue {
                status: d.get(0)?,
                status_text: d.get(1)?,
                headers: header_pairs(&d.get(2)?)?,
                body: body_of(host, ctx, d.get(3)?, depth)?,
                extra: CwObject::new(),
            }))
        }
        11 => Value::Headers(header_pairs(&Array::from_value(detail)?)?),
        12 => Value::Url(detail.get::<String>()?),
        13 => Value::Readable(pump(host, ctx, v)?),
        _ => return Err(type_error(ctx, "this value cannot be sent over RPC")),
    })
}

/// Exposes a JavaScript object or function as a capability.
pub(crate) fn export<'js>(host: &Host, ctx: &Ctx<'js>, v: JsValue<'js>) -> rquickjs::Result<Stub> {
    let shared = host
        .shared()
        .ok_or_else(|| type_error(ctx, "the isolate is shutting down"))?;
    let slot = host.register(ctx, v);
    Ok(Stub::from_arc(Arc::new(JsTarget::new(
        shared,
        TargetRef::Object(slot),
    ))))
}

fn header_pairs(a: &Array<'_>) -> rquickjs::Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(a.len());
    for pair in a.iter::<Array<'_>>() {
        let pair = pair?;
        out.push((pair.get(0)?, pair.get(1)?));
    }
    Ok(out)
}

fn body_of<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    v: JsValue<'js>,
    depth: usize,
) -> rquickjs::Result<Option<Body>> {
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    if v.is_string() {
        return Ok(Some(Body::Text(v.get()?)));
    }
    if let Ok(bytes) = TypedArray::<u8>::from_value(v.clone()) {
        return Ok(Some(Body::Bytes(bytes_of(&bytes))));
    }
    match convert_in(host, ctx, v, depth + 1)? {
        Value::Readable(rs) => Ok(Some(Body::Stream(rs))),
        _ => Err(type_error(
            ctx,
            "a body must be a string, bytes or a ReadableStream",
        )),
    }
}

/// Converts a list of call arguments.
pub(crate) fn to_js_array<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    values: &[Value],
) -> rquickjs::Result<Array<'js>> {
    let items = values
        .iter()
        .map(|v| to_js(host, ctx, v))
        .collect::<rquickjs::Result<Vec<_>>>()?;
    js_array(ctx, items)
}

/// capnweb → JavaScript.
pub(crate) fn to_js<'js>(host: &Host, ctx: &Ctx<'js>, v: &Value) -> rquickjs::Result<JsValue<'js>> {
    let c = ctx.clone();
    Ok(match v {
        Value::Undefined => JsValue::new_undefined(c),
        Value::Null => JsValue::new_null(c),
        Value::Bool(b) => JsValue::new_bool(c, *b),
        Value::Number(n) => JsValue::new_number(c, *n),
        Value::String(s) => rquickjs::String::from_str(c, s)?.into_value(),
        Value::JsString(s) => {
            let from_units: rquickjs::Function<'js> = ctx.eval(FROM_CODE_UNITS)?;
            from_units.call((s.code_units().to_vec(),))?
        }
        Value::BigInt(s) => {
            let big: rquickjs::Function<'js> = ctx.globals().get("BigInt")?;
            big.call((s.as_str(),))?
        }
        Value::Array(a) => to_js_array(host, ctx, a)?.into_value(),
        Value::Object(o) => {
            let obj = Object::new(c)?;
            for (k, x) in o {
                obj.set(k.as_str(), to_js(host, ctx, x)?)?;
            }
            obj.into_value()
        }
        Value::Date(ms) => host
            .helper(ctx, "mkDate")?
            .call((ms.unwrap_or(f64::NAN),))?,
        Value::Bytes(b) => {
            let u8s = js_bytes(&c, &b.data)?;
            let kind = b.kind.map_or("Uint8Array", ByteKind::name);
            host.helper(ctx, "mkBytes")?.call((kind, u8s))?
        }
        Value::Error(e) => {
            let props = to_js(host, ctx, &Value::Object(e.props.clone()))?;
            host.helper(ctx, "mkError")?.call((
                e.name.as_str(),
                e.message.as_str(),
                e.stack.as_deref(),
                props,
            ))?
        }
        Value::Url(href) => host.web_fn(ctx, "mkUrl")?.call((href.as_str(),))?,
        Value::Headers(h) => host
            .web_fn(ctx, "mkHeaders")?
            .call((pairs_to_js(ctx, h)?,))?,
        Value::Request(r) => host.web_fn(ctx, "mkRequest")?.call((
            r.url.as_str(),
            r.method.as_str(),
            pairs_to_js(ctx, &r.headers)?,
            body_to_js(host, ctx, r.body.as_ref())?,
        ))?,
        Value::Response(r) => host.web_fn(ctx, "mkResponse")?.call((
            r.status,
            r.status_text.as_str(),
            pairs_to_js(ctx, &r.headers)?,
            body_to_js(host, ctx, r.body.as_ref())?,
        ))?,
        Value::Blob(b) => js_bytes(&c, &b.data)?.into_value(),
        Value::Readable(rs) => readable(host, ctx, rs)?,
        Value::Stub(s) => cap_proxy(host, ctx, Cap::Stub(s.clone()))?,
        Value::Promise(p) => cap_proxy(host, ctx, Cap::Promise(p.clone()))?,
        _ => JsValue::new_undefined(c),
    })
}

/// A JavaScript stub proxy for a capability.
pub(crate) fn cap_proxy<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    cap: Cap,
) -> rquickjs::Result<JsValue<'js>> {
    let is_promise = matches!(cap, Cap::Promise(_));
    let handle = Class::instance(ctx.clone(), CapHandle { cap: Some(cap) })?;
    let path = Array::new(ctx.clone())?;
    host.helper(ctx, "makeProxy")?
        .call((handle, path, is_promise))
}

fn pairs_to_js<'js>(ctx: &Ctx<'js>, pairs: &[(String, String)]) -> rquickjs::Result<Array<'js>> {
    let items = pairs
        .iter()
        .map(|(k, v)| {
            let p = Array::new(ctx.clone())?;
            p.set(0, k.as_str())?;
            p.set(1, v.as_str())?;
            Ok(p.into_value())
        })
        .collect::<rquickjs::Result<Vec<_>>>()?;
    js_array(ctx, items)
}

fn body_to_js<'js>(
    host: &Host,
    ctx: &Ctx<'js>,
    body: Option<&Body>,
) -> rquickjs::Result<JsValue<'js>> {
    Ok(match body {
        None => JsValue::new_null(ctx.clone()),
        Some(Body::Text(s)) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
        Some(Body::Bytes(b)) => js_bytes(ctx, b)?.into_value(),
        Some(Body::Stream(rs)) => readable(host, ctx, rs)?,
        Some(_) => return Err(type_error(ctx, "this kind of body is not supported")),
    })
}
