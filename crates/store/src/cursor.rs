//! List cursors: opaque to callers, a position in key order to us.
//!
//! A cursor holds the key at which the next page starts (inclusive), as
//! lowercase hex of its UTF-8 bytes. A cursor resumes correctly even if keys
//! were added or removed in between; it grants nothing a caller could not get
//! by listing, so it needs no signature.

use crate::error::StoreError;

/// Longest cursor accepted, in characters (hex of a 1024-byte key, plus slack).
const MAX_CURSOR_CHARS: usize = 4096;

pub(crate) fn encode(start_key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(start_key.len() * 2);
    for byte in start_key.bytes() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

pub(crate) fn decode(cursor: &str) -> Result<String, StoreError> {
    if cursor.len() > MAX_CURSOR_CHARS || !cursor.len().is_multiple_of(2) {
        return Err(StoreError::InvalidCursor);
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(StoreError::InvalidCursor),
    };
    let bytes = cursor
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect::<Result<Vec<u8>, StoreError>>()?;
    String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)
}

/// Where a listing starts: the later of the prefix and the cursor position.
pub(crate) fn start_key(prefix: &str, cursor: Option<&str>) -> Result<String, StoreError> {
    let from_cursor = cursor.filter(|c| !c.is_empty()).map(decode).transpose()?;
    Ok(match from_cursor {
        Some(key) if key.as_str() > prefix => key,
        _ => prefix.to_owned(),
    })
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` if there is none (`prefix` is empty or all `char::MAX`).
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        // Skip the surrogate gap, which no `char` occupies.
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_any_key() {
        for key in ["", "a", "dir/file.txt", "ключ\u{0}\u{10FFFF}"] {
            assert_eq!(decode(&encode(key)).expect("decodes"), key);
        }
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        for bad in ["abc", "zz", "ff", "GG00", &"0".repeat(5000)] {
            assert!(
                matches!(decode(bad), Err(StoreError::InvalidCursor)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefix_successor_bounds_every_key_with_the_prefix() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor(""), None);
        let succ = prefix_successor("photos/").expect("has successor");
        for key in ["photos/", "photos/z", "photos/\u{10FFFF}\u{10FFFF}"] {
            assert!(key < succ.as_str());
        }
        assert!("photos0" >= succ.as_str());
    }
}
