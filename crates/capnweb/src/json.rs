//! JSON text exactly as JavaScript's `JSON.stringify` writes it (numbers in ECMAScript
//! `Number::toString` form: `5`, not `5.0`; `1e+21`), so our messages are byte-identical to
//! the official implementation's.

use serde_json::ser::Formatter;

struct JsFormatter;

impl Formatter for JsFormatter {
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, w: &mut W, v: f64) -> std::io::Result<()> {
        let mut buf = ryu_js::Buffer::new();
        w.write_all(buf.format(v).as_bytes())
    }

    fn write_f32<W: ?Sized + std::io::Write>(&mut self, w: &mut W, v: f32) -> std::io::Result<()> {
        self.write_f64(w, f64::from(v))
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // Lone surrogates are kept escaped inside codec trees (crate::wtf).
        crate::wtf::write_fragment(w, fragment)
    }
}

/// Writes `value` as compact JSON text the way `JSON.stringify` does.
pub fn to_js_string(value: &serde_json::Value) -> String {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JsFormatter);
    // Serializing a serde_json::Value into a Vec cannot fail.
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return String::from("null");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A JSON number for `n` (the caller has excluded non-finite values).
pub(crate) fn number(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 && !(n == 0.0 && n.is_sign_negative())
    {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_written_like_javascript() {
        assert_eq!(to_js_string(&number(5.0)), "5");
        assert_eq!(to_js_string(&number(-0.0)), "0");
        assert_eq!(to_js_string(&number(0.1)), "0.1");
        assert_eq!(to_js_string(&number(1e21)), "1e+21");
        assert_eq!(to_js_string(&number(1.5e-7)), "1.5e-7");
        assert_eq!(
            to_js_string(&number(123456789012345680000.0)),
            "123456789012345680000"
        );
    }

    #[test]
    fn strings_are_escaped_like_json_stringify() {
        let v = json!(["a\"b\\c\n\u{1}\u{7f}é/"]);
        assert_eq!(to_js_string(&v), "[\"a\\\"b\\\\c\\n\\u0001\u{7f}é/\"]");
    }
}
