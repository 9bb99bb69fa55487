//! Strings are JavaScript strings: any sequence of UTF-16 code units, lone surrogates included,
//! round-trips through the codec and over a session, as `Value::JsString`.

use capnweb::{Limits, Value};

use crate::api::Api;
use crate::harness::connect;
use crate::over_both;

fn cases() -> Vec<Vec<u16>> {
    vec![
        vec![0x61, 0xD800, 0x62],
        vec![0xDC00],
        vec![0xD800, 0xD800],
        vec![0xDC00, 0xD800],
        vec![0xDBFF, 0xDFFF, 0xDFFF],
        vec![0xD83D, 0xDE00, 0xD83D],
    ]
}

#[test]
fn lone_surrogates_are_written_as_json_stringify_writes_them() {
    let v = Value::from_utf16(vec![0x61, 0xD800, 0x62]);
    assert!(matches!(v, Value::JsString(_)));
    assert_eq!(capnweb::serialize(&v).expect("serialize"), "\"a\\ud800b\"");
    let back = capnweb::deserialize("\"a\\ud800b\"").expect("deserialize");
    assert_eq!(back.to_utf16(), Some(vec![0x61, 0xD800, 0x62]));
    assert_eq!(back.to_string_lossy().as_deref(), Some("a\u{FFFD}b"));
    // Well-formed code units are a plain Rust string.
    assert!(matches!(Value::from_utf16(vec![0xD83D, 0xDE00]), Value::String(s) if s == "😀"));
    // U+10FFFF, which the codec uses internally, is just a character.
    let max = Value::string("\u{10FFFF}\u{F0000}");
    let text = capnweb::serialize(&max).expect("serialize");
    assert_eq!(text, "\"\u{10FFFF}\u{F0000}\"");
    assert_eq!(
        capnweb::deserialize(&text).expect("read").as_str(),
        Some("\u{10FFFF}\u{F0000}")
    );
}

#[test]
fn lone_surrogates_round_trip_through_the_codec_in_any_position() {
    for units in cases() {
        let v = Value::object([
            ("s", Value::from_utf16(units.clone())),
            ("list", Value::Array(vec![Value::from_utf16(units.clone())])),
        ]);
        let text = capnweb::serialize(&v).expect("serialize");
        let back = capnweb::deserialize(&text).expect("deserialize");
        assert_eq!(back.get("s").to_utf16(), Some(units.clone()), "{text}");
        let list = back.get("list").as_array().expect("array");
        assert_eq!(list[0].to_utf16(), Some(units.clone()));
    }
}

over_both!(lone_surrogates_round_trip_over_a_session, |link| {
    let (main, _) = Api::stub();
    let c = connect(link, main, Limits::default()).await;
    let api = c.client.remote_main();
    for units in cases() {
        let got = api
            .call("echo", vec![Value::from_utf16(units.clone())])
            .await
            .expect("echo");
        assert_eq!(got.to_utf16(), Some(units));
    }
    assert!(c.client.broken().is_none());
});
