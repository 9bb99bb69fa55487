//! The value model: everything capnweb can carry, by value or by reference.
//!
//! Data (numbers, strings, arrays, objects, bytes, dates, errors, URLs, headers, requests,
//! responses) travels by value. [`Stub`]s and [`RpcPromise`]s travel by reference: the peer
//! gets a capability it can call, and the object stays here.

use indexmap::IndexMap;

use crate::stream::ReadableStream;
use crate::{RpcPromise, Stub};

/// A JavaScript plain object: own enumerable properties in insertion order.
pub type Object = IndexMap<String, Value>;

/// One value that can cross a capnweb connection.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Value {
    /// JavaScript `undefined`.
    #[default]
    Undefined,
    /// JavaScript `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A JavaScript number (IEEE 754 double), including `Infinity` and `NaN`.
    Number(f64),
    /// A BigInt, as its decimal digits (with a leading `-` when negative).
    BigInt(String),
    /// A string (well-formed Unicode; a JavaScript string holding a lone surrogate is
    /// [`Value::JsString`]).
    String(String),
    /// A JavaScript string that holds a lone surrogate (legal in JavaScript, common in
    /// truncated text), as its UTF-16 code units. It round-trips unchanged; convert it with
    /// [`JsString::to_string_lossy`] where a Rust string is needed.
    JsString(JsString),
    /// An array.
    Array(Vec<Value>),
    /// A plain object.
    Object(Object),
    /// A `Date` as milliseconds since the epoch; `None` is an invalid date.
    Date(Option<f64>),
    /// Binary data: a `Uint8Array`, `ArrayBuffer` or another typed array.
    Bytes(Bytes),
    /// An `Error` and its own properties.
    Error(Box<ErrorValue>),
    /// A WHATWG `URL`, by its `href`.
    Url(String),
    /// A `Headers` object as its list of pairs.
    Headers(Vec<(String, String)>),
    /// A fetch `Request`.
    Request(Box<RequestValue>),
    /// A fetch `Response`.
    Response(Box<ResponseValue>),
    /// A `Blob`: bytes with a MIME type.
    Blob(Box<BlobValue>),
    /// A `ReadableStream`: chunks that arrive over time.
    Readable(ReadableStream),
    /// A capability: calls on it go to the object it points at.
    Stub(Stub),
    /// The promised result of a call that may not have finished yet.
    Promise(RpcPromise),
}

/// A JavaScript string that is not well-formed Unicode: it holds at least one lone surrogate,
/// so it cannot be a Rust `String`. Build it with [`Value::from_utf16`], which gives a
/// [`Value::String`] whenever the code units are well-formed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsString {
    units: Vec<u16>,
}

impl JsString {
    /// The UTF-16 code units, as JavaScript's `charCodeAt` sees them.
    pub fn code_units(&self) -> &[u16] {
        &self.units
    }

    /// The string with every lone surrogate replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf16_lossy(&self.units)
    }
}

impl std::fmt::Debug for JsString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsString({:?})", self.to_string_lossy())
    }
}

impl Value {
    /// About how many bytes this value holds in memory: its strings, bytes and bodies, plus a
    /// little for every element (capabilities and streams count as that little; what a stream
    /// buffers is charged where it is buffered). Used to charge results a peer has not yet
    /// released to its session's buffer budget.
    pub(crate) fn held_bytes(&self) -> usize {
        const EACH: usize = 16;
        let pairs = |h: &[(String, String)]| -> usize {
            h.iter().map(|(k, v)| EACH + k.len() + v.len()).sum()
        };
        let object =
            |o: &Object| -> usize { o.iter().map(|(k, v)| k.len() + v.held_bytes()).sum() };
        let body = |b: &Option<Body>| -> usize {
            match b {
                Some(Body::Text(t)) => t.len(),
                Some(Body::Bytes(b)) => b.len(),
                _ => 0,
            }
        };
        EACH + match self {
            Value::Undefined
            | Value::Null
            | Value::Bool(_)
            | Value::Number(_)
            | Value::Date(_)
            | Value::Readable(_)
            | Value::Stub(_)
            | Value::Promise(_) => 0,
            Value::BigInt(s) | Value::String(s) | Value::Url(s) => s.len(),
            Value::JsString(j) => j.units.len() * 2,
            Value::Array(a) => a.iter().map(Value::held_bytes).sum(),
            Value::Object(o) => object(o),
            Value::Bytes(b) => b.data.len(),
            Value::Error(e) => {
                e.name.len()
                    + e.message.len()
                    + e.stack.as_ref().map_or(0, String::len)
                    + object(&e.props)
            }
            Value::Headers(h) => pairs(h),
            Value::Request(r) => {
                r.url.len() + r.method.len() + pairs(&r.headers) + body(&r.body) + object(&r.extra)
            }
            Value::Response(r) => {
                r.status_text.len() + pairs(&r.headers) + body(&r.body) + object(&r.extra)
            }
            Value::Blob(b) => b.content_type.len() + b.data.len(),
        }
    }

    /// A string from UTF-16 code units: [`Value::String`] when they are well-formed,
    /// [`Value::JsString`] when they hold a lone surrogate.
    pub fn from_utf16(units: Vec<u16>) -> Value {
        match String::from_utf16(&units) {
            Ok(s) => Value::String(s),
            Err(_) => Value::JsString(JsString { units }),
        }
    }

    /// Either kind of string as a Rust string, lone surrogates replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
            Value::JsString(s) => Some(std::borrow::Cow::Owned(s.to_string_lossy())),
            _ => None,
        }
    }

    /// Either kind of string as UTF-16 code units.
    pub fn to_utf16(&self) -> Option<Vec<u16>> {
        match self {
            Value::String(s) => Some(s.encode_utf16().collect()),
            Value::JsString(s) => Some(s.units.clone()),
            _ => None,
        }
    }

    /// Shorthand for [`Value::String`].
    pub fn string(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    /// Builds an object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The number as an `i64`, if this is an integral number that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
                Some(*n as i64)
            }
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The array's elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The object's properties, if this is a plain object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// An own property of a plain object (`Undefined` otherwise).
    pub fn get(&self, key: &str) -> &Value {
        static UNDEFINED: Value = Value::Undefined;
        match self {
            Value::Object(o) => o.get(key).unwrap_or(&UNDEFINED),
            _ => &UNDEFINED,
        }
    }

    /// Whether this is `undefined`.
    pub fn is_undefined(&self) -> bool {
        matches!(self, Value::Undefined)
    }

    /// Roughly how many bytes this value holds (data only: a capability counts as a few
    /// bytes). Used to charge buffered chunks to a session's budget.
    pub fn approx_size(&self) -> usize {
        const SMALL: usize = 16;
        let pairs = |h: &[(String, String)]| {
            h.iter()
                .map(|(k, v)| k.len() + v.len() + SMALL)
                .sum::<usize>()
        };
        let body = |b: &Option<Body>| match b {
            Some(Body::Text(t)) => t.len(),
            Some(Body::Bytes(b)) => b.len(),
            _ => 0,
        };
        match self {
            Value::String(s) | Value::BigInt(s) | Value::Url(s) => s.len() + SMALL,
            Value::JsString(s) => s.units.len() * 2 + SMALL,
            Value::Bytes(b) => b.data.len() + SMALL,
            Value::Array(a) => a.iter().map(Value::approx_size).sum::<usize>() + SMALL,
            Value::Object(o) => {
                o.iter()
                    .map(|(k, v)| k.len() + v.approx_size())
                    .sum::<usize>()
                    + SMALL
            }
            Value::Error(e) => {
                e.name.len()
                    + e.message.len()
                    + e.stack.as_ref().map_or(0, String::len)
                    + e.props
                        .iter()
                        .map(|(k, v)| k.len() + v.approx_size())
                        .sum::<usize>()
                    + SMALL
            }
            Value::Headers(h) => pairs(h) + SMALL,
            Value::Request(r) => r.url.len() + pairs(&r.headers) + body(&r.body) + SMALL,
            Value::Response(r) => pairs(&r.headers) + body(&r.body) + SMALL,
            Value::Blob(b) => b.data.len() + b.content_type.len() + SMALL,
            _ => SMALL,
        }
    }

    /// Converts plain JSON into a value (objects, arrays, numbers, strings, booleans, null).
    pub fn from_json(json: &serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts this value to plain JSON the way `JSON.stringify` would see it: `undefined`
    /// properties are dropped, integral numbers are integers (`5`, not `5.0`) and non-finite
    /// ones `null`, bigints become strings, dates milliseconds, bytes arrays of numbers, errors
    /// `{name, message, ...}`, and capabilities `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Undefined | Value::Null | Value::Stub(_) | Value::Promise(_) => J::Null,
            Value::Readable(_) | Value::Blob(_) => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) if n.is_finite() => crate::json::number(*n),
            Value::Number(_) => J::Null,
            Value::BigInt(s) => J::String(s.clone()),
            Value::String(s) => J::String(s.clone()),
            Value::JsString(s) => J::String(s.to_string_lossy()),
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(o) => J::Object(
                o.iter()
                    .filter(|(_, v)| !v.is_undefined())
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
            Value::Date(ms) => ms
                .filter(|m| m.is_finite())
                .map_or(J::Null, crate::json::number),
            Value::Bytes(b) => J::Array(b.data.iter().map(|x| J::from(*x)).collect()),
            Value::Error(e) => {
                let mut o = serde_json::Map::new();
                o.insert("name".into(), J::String(e.name.clone()));
                o.insert("message".into(), J::String(e.message.clone()));
                for (k, v) in &e.props {
                    if !v.is_undefined() {
                        o.insert(k.clone(), v.to_json());
                    }
                }
                J::Object(o)
            }
            Value::Url(u) => J::String(u.clone()),
            Value::Headers(h) => J::Object(
                h.iter()
                    .map(|(k, v)| (k.clone(), J::String(v.clone())))
                    .collect(),
            ),
            Value::Request(r) => J::String(r.url.clone()),
            Value::Response(_) => J::Object(serde_json::Map::new()),
        }
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Number(n.into())
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(n.into())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n as f64)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n as f64)
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Number(n as f64)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}
impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Value::Object(o)
    }
}
impl From<Stub> for Value {
    fn from(s: Stub) -> Self {
        Value::Stub(s)
    }
}
impl From<RpcPromise> for Value {
    fn from(p: RpcPromise) -> Self {
        Value::Promise(p)
    }
}
impl From<ErrorValue> for Value {
    fn from(e: ErrorValue) -> Self {
        Value::Error(Box::new(e))
    }
}

/// The JavaScript type of a [`Bytes`] value, when it is not a plain `Uint8Array`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum ByteKind {
    ArrayBuffer,
    DataView,
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    BigInt64Array,
    BigUint64Array,
    Float32Array,
    Float64Array,
}

impl ByteKind {
    const ALL: [ByteKind; 13] = [
        ByteKind::ArrayBuffer,
        ByteKind::DataView,
        ByteKind::Int8Array,
        ByteKind::Uint8Array,
        ByteKind::Uint8ClampedArray,
        ByteKind::Int16Array,
        ByteKind::Uint16Array,
        ByteKind::Int32Array,
        ByteKind::Uint32Array,
        ByteKind::BigInt64Array,
        ByteKind::BigUint64Array,
        ByteKind::Float32Array,
        ByteKind::Float64Array,
    ];

    /// The JavaScript constructor name, as written on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ByteKind::ArrayBuffer => "ArrayBuffer",
            ByteKind::DataView => "DataView",
            ByteKind::Int8Array => "Int8Array",
            ByteKind::Uint8Array => "Uint8Array",
            ByteKind::Uint8ClampedArray => "Uint8ClampedArray",
            ByteKind::Int16Array => "Int16Array",
            ByteKind::Uint16Array => "Uint16Array",
            ByteKind::Int32Array => "Int32Array",
            ByteKind::Uint32Array => "Uint32Array",
            ByteKind::BigInt64Array => "BigInt64Array",
            ByteKind::BigUint64Array => "BigUint64Array",
            ByteKind::Float32Array => "Float32Array",
            ByteKind::Float64Array => "Float64Array",
        }
    }

    /// Looks a constructor name up.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Bytes per element, for the typed arrays whose length must be a multiple of it.
    pub fn element_size(self) -> Option<usize> {
        match self {
            ByteKind::Int16Array | ByteKind::Uint16Array => Some(2),
            ByteKind::Int32Array | ByteKind::Uint32Array | ByteKind::Float32Array => Some(4),
            ByteKind::BigInt64Array | ByteKind::BigUint64Array | ByteKind::Float64Array => Some(8),
            _ => None,
        }
    }
}

/// Binary data and the JavaScript type it came as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes {
    /// The raw bytes (little-endian for multi-byte typed arrays, as on the wire).
    pub data: Vec<u8>,
    /// `None` for a `Uint8Array` sent without a marker (the common case).
    pub kind: Option<ByteKind>,
}

impl Bytes {
    /// A plain `Uint8Array`.
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        Bytes {
            data: data.into(),
            kind: None,
        }
    }
}

/// An error value: what `throw` carries across the wire.
#[derive(Debug, Clone)]
pub struct ErrorValue {
    /// The error's type name (`Error`, `TypeError`, `RangeError`, ...).
    pub name: String,
    /// The message.
    pub message: String,
    /// The stack, when the sender chose to include it.
    pub stack: Option<String>,
    /// Own properties other than name, message and stack (including `cause` and `errors`).
    pub props: Object,
}

impl ErrorValue {
    /// An error with a name and message and no properties.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorValue {
            name: name.into(),
            message: message.into(),
            stack: None,
            props: Object::new(),
        }
    }
}

/// A `Blob` carried by value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobValue {
    /// The MIME type (`""` when none).
    pub content_type: String,
    /// The content.
    pub data: Vec<u8>,
}

/// The body of a request or response.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Body {
    /// A text body.
    Text(String),
    /// A binary body.
    Bytes(Vec<u8>),
    /// A streamed body.
    Stream(ReadableStream),
}

/// A fetch `Request` carried by value.
#[derive(Debug, Clone)]
pub struct RequestValue {
    /// The absolute URL.
    pub url: String,
    /// The method (`GET` when absent on the wire).
    pub method: String,
    /// Header pairs.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Body>,
    /// Other `RequestInit` fields (`redirect`, `cache`, `cf`, ...), kept as they came.
    pub extra: Object,
}

/// A fetch `Response` carried by value.
#[derive(Debug, Clone)]
pub struct ResponseValue {
    /// HTTP status (200 when absent on the wire).
    pub status: u16,
    /// The status text, if any.
    pub status_text: String,
    /// Header pairs.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Body>,
    /// Other `ResponseInit` fields, kept as they came.
    pub extra: Object,
}

/// One step of a property path: a name, or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathKey {
    /// A property name.
    Name(String),
    /// An array index.
    Index(u64),
}

impl PathKey {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            PathKey::Name(s) => serde_json::Value::String(s.clone()),
            PathKey::Index(i) => serde_json::Value::from(*i),
        }
    }
}

impl std::fmt::Display for PathKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathKey::Name(s) => f.write_str(s),
            PathKey::Index(i) => write!(f, "{i}"),
        }
    }
}

impl From<&str> for PathKey {
    fn from(s: &str) -> Self {
        PathKey::Name(s.to_owned())
    }
}
impl From<String> for PathKey {
    fn from(s: String) -> Self {
        PathKey::Name(s)
    }
}
impl From<u64> for PathKey {
    fn from(i: u64) -> Self {
        PathKey::Index(i)
    }
}

/// Names no RPC path may reach: the members of `Object.prototype`, plus `toJSON`.
pub(crate) fn is_forbidden_property(name: &str) -> bool {
    matches!(
        name,
        "constructor"
            | "__proto__"
            | "__defineGetter__"
            | "__defineSetter__"
            | "__lookupGetter__"
            | "__lookupSetter__"
            | "hasOwnProperty"
            | "isPrototypeOf"
            | "propertyIsEnumerable"
            | "toLocaleString"
            | "toString"
            | "valueOf"
            | "toJSON"
    )
}
