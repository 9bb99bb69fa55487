//! `add(a, b)`: JavaScript's `a + b` for the values capnweb carries, so the interop server
//! answers exactly as the reference server (whose `add` is `return a + b`).
//!
//! Both operands go through ToPrimitive: arrays, objects, errors and the other by-value
//! objects become strings (`Array.prototype.join`, `"[object Object]"`, `"Name: message"`, a
//! URL's href). If either is then a string, the result is the concatenation of both as strings
//! (`Number::toString` for numbers). Otherwise two bigints add as bigints, a bigint with
//! anything else is a `TypeError`, and the rest add as numbers (`undefined` is `NaN`, `null`
//! is 0, booleans 0 or 1). Not covered: `Date` (its string form depends on the time zone) and
//! capabilities, which are refused with a `TypeError`.

use capnweb::{RpcError, Value};

/// A value after ToPrimitive.
enum Prim {
    Str(String),
    /// A string with a lone surrogate, as UTF-16 code units.
    Units(Vec<u16>),
    Num(f64),
    /// `undefined`, `null`, `true`, `false`: a number to add, a word to concatenate.
    Lit(f64, &'static str),
    Big(String),
}

/// JavaScript's `a + b`.
pub fn js_add(a: &Value, b: &Value) -> Result<Value, RpcError> {
    Ok(match (to_primitive(a)?, to_primitive(b)?) {
        // Concatenation is by code unit: two halves of a pair sent apart join into one.
        (Prim::Units(mut x), y) => {
            x.extend(prim_units(y));
            Value::from_utf16(x)
        }
        (x, Prim::Units(y)) => {
            let mut x = prim_units(x);
            x.extend(y);
            Value::from_utf16(x)
        }
        (Prim::Str(x), y) => Value::String(x + &prim_string(y)),
        (x, Prim::Str(y)) => Value::String(prim_string(x) + &y),
        (Prim::Big(x), Prim::Big(y)) => Value::BigInt(big_add(&x, &y)),
        (Prim::Big(_), _) | (_, Prim::Big(_)) => {
            return Err(RpcError::type_error(
                "Cannot mix BigInt and other types, use explicit conversions",
            ))
        }
        (x, y) => Value::Number(prim_number(&x) + prim_number(&y)),
    })
}

fn to_primitive(v: &Value) -> Result<Prim, RpcError> {
    Ok(match v {
        Value::Undefined => Prim::Lit(f64::NAN, "undefined"),
        Value::Null => Prim::Lit(0.0, "null"),
        Value::Bool(true) => Prim::Lit(1.0, "true"),
        Value::Bool(false) => Prim::Lit(0.0, "false"),
        Value::Number(n) => Prim::Num(*n),
        Value::BigInt(d) => Prim::Big(d.clone()),
        Value::String(s) => Prim::Str(s.clone()),
        Value::JsString(s) => Prim::Units(s.code_units().to_vec()),
        other => Prim::Str(object_string(other)?),
    })
}

/// ToString of an object (its ToPrimitive with hint "default" for everything but Date).
fn object_string(v: &Value) -> Result<String, RpcError> {
    Ok(match v {
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                parts.push(match item {
                    Value::Undefined | Value::Null => String::new(),
                    other => prim_string(to_primitive(other)?),
                });
            }
            parts.join(",")
        }
        Value::Error(e) => match (e.name.is_empty(), e.message.is_empty()) {
            (_, true) => e.name.clone(),
            (true, false) => e.message.clone(),
            (false, false) => format!("{}: {}", e.name, e.message),
        },
        Value::Url(href) => href.clone(),
        Value::Object(_) | Value::Headers(_) | Value::Request(_) | Value::Response(_) => {
            format!("[object {}]", class_name(v))
        }
        Value::Bytes(b) => b
            .data
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(","),
        _ => {
            return Err(RpcError::type_error(
                "add: this value has no string form here (Date, Blob, stream or capability)",
            ))
        }
    })
}

fn class_name(v: &Value) -> &'static str {
    match v {
        Value::Headers(_) => "Headers",
        Value::Request(_) => "Request",
        Value::Response(_) => "Response",
        _ => "Object",
    }
}

fn prim_units(p: Prim) -> Vec<u16> {
    match p {
        Prim::Units(u) => u,
        other => prim_string(other).encode_utf16().collect(),
    }
}

fn prim_string(p: Prim) -> String {
    match p {
        Prim::Str(s) => s,
        Prim::Units(u) => String::from_utf16_lossy(&u),
        Prim::Big(d) => d,
        Prim::Num(n) => number_string(n),
        Prim::Lit(_, word) => word.to_owned(),
    }
}

fn prim_number(p: &Prim) -> f64 {
    match p {
        Prim::Num(n) | Prim::Lit(n, _) => *n,
        // Strings and bigints never get here.
        Prim::Str(_) | Prim::Units(_) | Prim::Big(_) => f64::NAN,
    }
}

/// ECMAScript `Number::toString`.
fn number_string(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        ryu_js::Buffer::new().format(n).to_owned()
    }
}

/// The sum of two bigints given as decimal digits (with an optional leading `-`).
fn big_add(a: &str, b: &str) -> String {
    let (an, ad) = split_sign(a);
    let (bn, bd) = split_sign(b);
    let (neg, digits) = if an == bn {
        (an, add_digits(ad, bd))
    } else {
        match cmp_digits(ad, bd) {
            std::cmp::Ordering::Equal => return "0".into(),
            std::cmp::Ordering::Greater => (an, sub_digits(ad, bd)),
            std::cmp::Ordering::Less => (bn, sub_digits(bd, ad)),
        }
    };
    let digits = digits.trim_start_matches('0');
    match (digits.is_empty(), neg) {
        (true, _) => "0".into(),
        (false, true) => format!("-{digits}"),
        (false, false) => digits.to_owned(),
    }
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.strip_prefix('-') {
        Some(d) => (true, d.trim_start_matches('0')),
        None => (false, s.trim_start_matches('0')),
    }
}

fn cmp_digits(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_digits(a: &str, b: &str) -> String {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.len().checked_sub(i + 1).map_or(0, |j| a[j] - b'0');
        let y = b.len().checked_sub(i + 1).map_or(0, |j| b[j] - b'0');
        let s = x + y + carry;
        out.push(b'0' + s % 10);
        carry = s / 10;
    }
    if carry > 0 {
        out.push(b'0' + carry);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// `a - b` for digit strings with `a >= b`.
fn sub_digits(a: &str, b: &str) -> String {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = 0i8;
    for i in 0..a.len() {
        let x = (a[a.len() - 1 - i] - b'0') as i8;
        let y = b
            .len()
            .checked_sub(i + 1)
            .map_or(0, |j| (b[j] - b'0') as i8);
        let mut d = x - y - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(b'0' + d as u8);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}
