//! The codec writes exactly what the JavaScript `serialize()` writes (strings captured from
//! capnweb 0.12.0 under Node 20) and reads it back.

use capnweb::{deserialize, serialize, ByteKind, Bytes, ErrorValue, Value};

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::object(pairs)
}

#[test]
fn serialize_matches_strings_captured_from_javascript() {
    let mut err = ErrorValue::new("Error", "boom");
    err.props.insert("code".into(), "E".into());
    err.props.insert("n".into(), 1.into());
    let cases: Vec<(Value, &str)> = vec![
        (Value::Number(5.0), "5"),
        (Value::Number(-3.25), "-3.25"),
        (
            Value::Number(12345678901234567890.0),
            "12345678901234567000",
        ),
        (Value::Number(1.5e-7), "1.5e-7"),
        (Value::Number(1e21), "1e+21"),
        (Value::Number(-0.0), "0"),
        (
            Value::string("a\"b\\c\n\u{1}é/"),
            "\"a\\\"b\\\\c\\n\\u0001é/\"",
        ),
        (Value::Bool(true), "true"),
        (Value::Null, "null"),
        (Value::Undefined, "[\"undefined\"]"),
        (Value::Number(f64::INFINITY), "[\"inf\"]"),
        (Value::Number(f64::NEG_INFINITY), "[\"-inf\"]"),
        (Value::Number(f64::NAN), "[\"nan\"]"),
        (
            Value::BigInt("123456789012345678901234567890".into()),
            "[\"bigint\",\"123456789012345678901234567890\"]",
        ),
        (Value::BigInt("-5".into()), "[\"bigint\",\"-5\"]"),
        (
            Value::Date(Some(1_700_000_000_000.0)),
            "[\"date\",1700000000000]",
        ),
        (Value::Date(None), "[\"date\",null]"),
        (
            Value::Bytes(Bytes::new(vec![1, 2, 3, 4, 5])),
            "[\"bytes\",\"AQIDBAU\"]",
        ),
        (
            Value::Bytes(Bytes {
                data: vec![255, 0, 1],
                kind: Some(ByteKind::ArrayBuffer),
            }),
            "[\"bytes\",\"/wAB\",\"ArrayBuffer\"]",
        ),
        (
            Value::Bytes(Bytes {
                data: vec![1, 0, 0xfe, 0xff],
                kind: Some(ByteKind::Int16Array),
            }),
            "[\"bytes\",\"AQD+/w\",\"Int16Array\"]",
        ),
        (
            Value::Array(vec![
                1.into(),
                "x".into(),
                Value::Array(vec![2.into(), Value::Array(vec![3.into()])]),
            ]),
            "[[1,\"x\",[[2,[[3]]]]]]",
        ),
        (
            Value::Array(vec!["bigint".into(), "1".into()]),
            "[[\"bigint\",\"1\"]]",
        ),
        (Value::Array(vec![]), "[[]]"),
        (
            obj(vec![
                ("b", 1.into()),
                ("a", obj(vec![("c", Value::Array(vec![true.into()]))])),
                ("u", Value::Undefined),
            ]),
            "{\"b\":1,\"a\":{\"c\":[[true]]},\"u\":[\"undefined\"]}",
        ),
        (
            ErrorValue::new("TypeError", "bad").into(),
            "[\"error\",\"TypeError\",\"bad\"]",
        ),
        (
            err.into(),
            "[\"error\",\"Error\",\"boom\",null,{\"code\":\"E\",\"n\":1}]",
        ),
        (
            Value::Url("https://example.com/a?b=1#c".into()),
            "[\"url\",\"https://example.com/a?b=1#c\"]",
        ),
        (
            Value::Headers(vec![
                ("content-type".into(), "text/plain".into()),
                ("x-a".into(), "1".into()),
            ]),
            "[\"headers\",[[\"content-type\",\"text/plain\"],[\"x-a\",\"1\"]]]",
        ),
    ];
    for (value, expected) in cases {
        let text = serialize(&value).expect("serializable");
        assert_eq!(text, expected, "serializing {value:?}");
        let back = deserialize(&text).expect("deserializable");
        assert_eq!(
            serialize(&back).expect("reserializable"),
            expected,
            "round trip of {expected}"
        );
    }
}

#[test]
fn deserialize_rejects_unknown_special_values() {
    for bad in [
        "[]",
        "[\"bogus\"]",
        "[1,2]",
        "[\"bytes\",\"AA\",\"NotAType\"]",
        "[\"bytes\",\"AAAA\",\"Int16Array\"]",
        "[\"date\",\"x\"]",
        "[\"bigint\",\"12x\"]",
    ] {
        let err = deserialize(bad).expect_err(bad);
        assert!(
            matches!(err.name(), "TypeError" | "SyntaxError"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn deserialize_drops_object_prototype_names_and_to_json() {
    let v = deserialize(r#"{"toString":1,"constructor":2,"__proto__":3,"toJSON":4,"ok":5}"#)
        .expect("valid");
    let o = v.as_object().expect("object");
    assert_eq!(o.keys().collect::<Vec<_>>(), vec!["ok"]);
}

#[test]
fn unknown_error_names_arrive_as_plain_error_like_javascript() {
    let v = deserialize(r#"["error","CustomError","boom",null,{"code":7}]"#).expect("valid");
    let Value::Error(e) = v else {
        panic!("not an error")
    };
    assert_eq!(e.name, "Error");
    assert_eq!(e.message, "boom");
    assert_eq!(e.props.get("code").and_then(Value::as_f64), Some(7.0));
    let v = deserialize(r#"["error","RangeError","r"]"#).expect("valid");
    let Value::Error(e) = v else {
        panic!("not an error")
    };
    assert_eq!(e.name, "RangeError");
}

#[test]
fn bigint_digits_limit_is_enforced() {
    let long = format!("[\"bigint\",\"{}\"]", "9".repeat(16_385));
    let err = deserialize(&long).expect_err("too long");
    assert!(err.message().contains("maximum length of 16384"), "{err}");
    let ok = format!("[\"bigint\",\"{}\"]", "9".repeat(16_384));
    assert!(deserialize(&ok).is_ok());
}

#[test]
fn depth_limit_is_enforced_on_receive() {
    let deep = format!("{}1{}", "{\"a\":".repeat(300), "}".repeat(300));
    let err = deserialize(&deep).expect_err("too deep");
    assert!(
        err.message()
            .contains("maximum allowed message depth of 256"),
        "{err}"
    );
}

#[test]
fn stubs_cannot_be_serialized_without_a_session() {
    let stub = capnweb::Stub::from_fn(|_| async { Ok(Value::Null) });
    let err = serialize(&Value::Stub(stub)).expect_err("no session");
    assert!(err.message().contains("without an RPC session"));
}

#[test]
fn numbers_read_back_to_the_exact_double_javascript_wrote() {
    // JSON.parse is correctly rounded; a fast, approximate parse is off by one ulp on these
    // (found by the fuzz target: 4.444444444444444e+46 read back as 4.4444444444444437e+46).
    for text in [
        "4.444444444444444e+46",
        "44444444444444444444444444444444444444444444444",
        "0.30000000000000004",
        "1.7976931348623157e+308",
        "5e-324",
        "2.2250738585072014e-308",
        "9007199254740993",
    ] {
        let exact: f64 = text.parse().expect("a valid number");
        let got = deserialize(text).expect("a number").as_f64();
        assert_eq!(got.map(f64::to_bits), Some(exact.to_bits()), "{text}");
        let again = serialize(&Value::Number(exact)).expect("serialize");
        assert_eq!(deserialize(&again).expect("re-read").as_f64(), Some(exact));
    }
}
