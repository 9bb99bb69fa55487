//! JavaScript strings in JSON trees. A JavaScript string is any sequence of UTF-16 code units,
//! lone surrogates included (`JSON.stringify` writes them as `\udXXX` escapes), but a
//! `serde_json` tree holds Rust strings. Inside the codec's trees, strings are therefore kept in
//! an escaped form that a Rust string can hold:
//!
//! | JavaScript | in a codec tree |
//! |---|---|
//! | U+10FFFF (the escape character itself) | U+10FFFF U+10FFFF |
//! | a lone surrogate `0xD800 + k` | U+10FFFF, then U+F0000 + k |
//! | any other character | itself |
//!
//! [`prepare_text`] puts received JSON text in that form before it is parsed (text without a
//! surrogate escape or a U+10FFFF, which is nearly all of it, is not copied), the evaluator
//! [`decode`]s tree strings into values, the devaluator [`encode_str`]s and [`encode_units`]s
//! values into tree strings, and the JSON writer turns the escapes back into `\udXXX`
//! ([`write_fragment`]), so nothing outside the codec ever sees the escaped form.

use std::borrow::Cow;

/// The escape character.
const ESC: char = '\u{10FFFF}';
/// Where the characters that stand for lone surrogates start.
const SURROGATE_BASE: u32 = 0xF0000;

/// A tree string decoded.
pub(crate) enum Decoded<'a> {
    /// Well-formed: a Rust string.
    Str(Cow<'a, str>),
    /// Holds a lone surrogate: UTF-16 code units.
    Units(Vec<u16>),
}

/// The tree form of a well-formed string.
pub(crate) fn encode_str(s: &str) -> Cow<'_, str> {
    if s.contains(ESC) {
        Cow::Owned(s.replace(ESC, "\u{10FFFF}\u{10FFFF}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The tree form of a string given as UTF-16 code units.
pub(crate) fn encode_units(units: &[u16]) -> String {
    let mut out = String::with_capacity(units.len());
    for c in char::decode_utf16(units.iter().copied()) {
        match c {
            Ok(ESC) => {
                out.push(ESC);
                out.push(ESC);
            }
            Ok(c) => out.push(c),
            Err(e) => {
                out.push(ESC);
                out.push(surrogate_char(e.unpaired_surrogate()));
            }
        }
    }
    out
}

fn surrogate_char(unit: u16) -> char {
    char::from_u32(SURROGATE_BASE + u32::from(unit - 0xD800)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// What an escape sequence `ESC c` stands for.
enum Escaped {
    Esc,
    Surrogate(u16),
    /// Not an escape (cannot come out of this module): `ESC` stands for itself.
    Neither,
}

fn escaped(c: char) -> Escaped {
    let n = u32::from(c);
    if c == ESC {
        Escaped::Esc
    } else if (SURROGATE_BASE..SURROGATE_BASE + 0x800).contains(&n) {
        Escaped::Surrogate(0xD800 + (n - SURROGATE_BASE) as u16)
    } else {
        Escaped::Neither
    }
}

/// A tree string as a JavaScript string.
pub(crate) fn decode(s: &str) -> Decoded<'_> {
    if !s.contains(ESC) {
        return Decoded::Str(Cow::Borrowed(s));
    }
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let mut lone = false;
    let mut chars = s.chars().peekable();
    let mut buf = [0u16; 2];
    while let Some(c) = chars.next() {
        if c == ESC {
            match chars.peek().copied().map(escaped) {
                Some(Escaped::Esc) => {
                    chars.next();
                    units.extend_from_slice(ESC.encode_utf16(&mut buf));
                    continue;
                }
                Some(Escaped::Surrogate(u)) => {
                    chars.next();
                    units.push(u);
                    lone = true;
                    continue;
                }
                Some(Escaped::Neither) | None => {}
            }
        }
        units.extend_from_slice(c.encode_utf16(&mut buf));
    }
    if lone {
        // Two halves written apart may have joined into a pair: only if some stay lone is this
        // not a Rust string.
        match String::from_utf16(&units) {
            Ok(s) => Decoded::Str(Cow::Owned(s)),
            Err(_) => Decoded::Units(units),
        }
    } else {
        Decoded::Str(Cow::Owned(String::from_utf16_lossy(&units)))
    }
}

/// A tree string as a Rust string, lone surrogates replaced by U+FFFD (for the places a
/// JavaScript string cannot be kept whole: object keys, error messages, header values).
pub(crate) fn decode_lossy(s: &str) -> String {
    match decode(s) {
        Decoded::Str(s) => s.into_owned(),
        Decoded::Units(u) => String::from_utf16_lossy(&u),
    }
}

/// Received JSON text in tree form: every `\uXXXX` escape of a lone surrogate becomes `ESC`
/// and its character, every U+10FFFF (raw, or escaped as a pair) becomes `ESC ESC`.
pub(crate) fn prepare_text(text: &str) -> Cow<'_, str> {
    if !needs_preparing(text) {
        return Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    let mut copied = 0;
    let mut in_string = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                in_string = !in_string;
                i += 1;
            }
            b'\\' if in_string => {
                let here = i;
                let first = hex4(b, i);
                match first {
                    Some(hi @ 0xD800..=0xDBFF) => match hex4(b, i + 6) {
                        Some(lo @ 0xDC00..=0xDFFF) => {
                            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            if cp == u32::from(ESC) {
                                out.push_str(&text[copied..here]);
                                out.push(ESC);
                                out.push(ESC);
                                copied = here + 12;
                            }
                            i = here + 12;
                        }
                        _ => {
                            out.push_str(&text[copied..here]);
                            out.push(ESC);
                            out.push(surrogate_char(hi as u16));
                            i = here + 6;
                            copied = i;
                        }
                    },
                    Some(lo @ 0xDC00..=0xDFFF) => {
                        out.push_str(&text[copied..here]);
                        out.push(ESC);
                        out.push(surrogate_char(lo as u16));
                        i = here + 6;
                        copied = i;
                    }
                    // Any other escape: skip the backslash and the character it escapes.
                    _ => i += 2,
                }
            }
            0xF4 if text[i..].starts_with(ESC) => {
                out.push_str(&text[copied..i]);
                out.push(ESC);
                out.push(ESC);
                i += ESC.len_utf8();
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied.min(text.len())..]);
    Cow::Owned(out)
}

/// Whether `text` holds a `\u` escape of a surrogate or a U+10FFFF.
fn needs_preparing(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(at) = b.get(from..).and_then(|rest| memchr2(b'\\', 0xF4, rest)) {
        let i = from + at;
        if b[i] == 0xF4 {
            if text[i..].starts_with(ESC) {
                return true;
            }
        } else if b.get(i + 1) == Some(&b'u') {
            if matches!(hex4(b, i), Some(0xD800..=0xDFFF)) {
                return true;
            }
        } else {
            // An escaped character: skip it (it may be a backslash).
            from = i + 2;
            continue;
        }
        from = i + 1;
    }
    false
}

fn memchr2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&x| x == a || x == b)
}

/// The value of a `\uXXXX` escape starting at `i`.
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
        return None;
    }
    let digits = b.get(i + 2..i + 6)?;
    let s = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// Writes a fragment of a tree string as JSON string content: escapes become U+10FFFF or a
/// `\udXXX` escape (lower-case, as `JSON.stringify` writes it).
pub(crate) fn write_fragment<W: ?Sized + std::io::Write>(
    w: &mut W,
    fragment: &str,
) -> std::io::Result<()> {
    if !fragment.contains(ESC) {
        return w.write_all(fragment.as_bytes());
    }
    let mut chars = fragment.char_indices().peekable();
    let mut copied = 0;
    while let Some((i, c)) = chars.next() {
        if c != ESC {
            continue;
        }
        let replacement = match chars.peek().map(|&(_, n)| escaped(n)) {
            Some(Escaped::Esc) => None,
            Some(Escaped::Surrogate(u)) => Some(u),
            Some(Escaped::Neither) | None => continue,
        };
        w.write_all(&fragment.as_bytes()[copied..i])?;
        if let Some((j, n)) = chars.next() {
            copied = j + n.len_utf8();
        }
        match replacement {
            None => w.write_all(ESC.to_string().as_bytes())?,
            Some(u) => write!(w, "\\u{u:04x}")?,
        }
    }
    w.write_all(&fragment.as_bytes()[copied..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(s: &str) -> String {
        let mut out = Vec::new();
        write_fragment(&mut out, s).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn lone_surrogates_survive_text_tree_and_back() {
        for js in [
            vec![0x61, 0xD800, 0x62],
            vec![0xDC00],
            vec![0xD800, 0xD800],
            vec![0xDC00, 0xD800],
            vec![0xDBFF, 0xDFFF, 0xDFFF],
            vec![0xD83D, 0xDE00, 0xD83D],
        ] {
            let tree = encode_units(&js);
            match decode(&tree) {
                Decoded::Units(u) => assert_eq!(u, js),
                Decoded::Str(s) => panic!("decoded as a Rust string: {s:?}"),
            }
            // What JSON.stringify would write, and back.
            let text = format!("\"{}\"", write(&tree));
            let prepared = prepare_text(&text);
            let parsed: String = serde_json::from_str(&prepared).expect("parses");
            assert_eq!(parsed, tree, "{text}");
        }
    }

    #[test]
    fn the_escape_character_itself_round_trips() {
        let s = "a\u{10FFFF}\u{F0000}b";
        let tree = encode_str(s);
        assert!(matches!(decode(&tree), Decoded::Str(d) if d == s));
        assert_eq!(write(&tree), s);
        let text = format!("\"{s}\"");
        let prepared = prepare_text(&text);
        assert_eq!(
            serde_json::from_str::<String>(&prepared).ok().as_deref(),
            Some(&*tree)
        );
        // Escaped as a pair, too.
        let prepared = prepare_text("\"\\udbff\\udfff\"");
        assert_eq!(
            serde_json::from_str::<String>(&prepared).ok().as_deref(),
            Some("\u{10FFFF}\u{10FFFF}")
        );
    }

    #[test]
    fn ordinary_text_is_not_copied() {
        for t in [
            "[\"push\",1]",
            "\"a\\\\ud800\"",
            "\"\\n\\\"\"",
            "\"\\",
            "\\",
            "\"\\u",
        ] {
            assert!(matches!(prepare_text(t), Cow::Borrowed(_)), "{t}");
        }
        // Truncated escapes at the very end are left for the parser to refuse.
        for t in ["\"\\ud8", "\"\\ud800\\u", "\"\\ud800\\", "\"\u{10FFFF}\\"] {
            let _ = prepare_text(t);
        }
    }

    #[test]
    fn halves_written_apart_join_into_a_pair() {
        let tree = format!("{}{}", encode_units(&[0xD83D]), encode_units(&[0xDE00]));
        assert!(matches!(decode(&tree), Decoded::Str(s) if s == "😀"));
    }
}
