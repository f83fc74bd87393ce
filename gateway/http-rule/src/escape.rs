//! Percent-decoding as `google/api/http.proto` specifies it.
//!
//! A request path is split at its literal `/` before anything is decoded, so an escaped `%2F`
//! never splits a segment. Then: a literal segment and a single-segment variable (`{v}`) are
//! decoded whole, `%2F` included; a multi-segment variable (`{v=**}`, `{v=a/*}`) is decoded
//! except `%2F` / `%2f`, which stay as written, so the field can tell a separator it captured
//! from an escaped slash. Query names and values are decoded the same way with `+` read as a
//! space, as HTML forms and `URLSearchParams` send it (write `%2B` for a plus sign).
//!
//! Written here because the `percent-encoding` crate decodes every escape or none, and passes
//! malformed ones through silently where a clear 400 is wanted.

/// Checks that every `%` in `text` starts a valid escape.
pub fn check(text: &str) -> Result<(), String> {
    decode(text, Mode::Segment).map(drop)
}

/// How to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Everything, `%2F` included.
    Segment,
    /// Everything except `%2F` (multi-segment variables).
    KeepSlash,
    /// Everything, and `+` is a space (query names and values).
    Query,
}

/// Decodes `text`; `Err` says what is malformed.
pub fn decode(text: &str, mode: Mode) -> Result<String, String> {
    if !text
        .bytes()
        .any(|b| b == b'%' || (b == b'+' && mode == Mode::Query))
    {
        return Ok(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let value = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?));
                let Some(value) = value else {
                    let shown: String = text[i..].chars().take(3).collect();
                    return Err(format!(
                        "malformed percent-encoding `{shown}`: `%` is followed by two hex digits"
                    ));
                };
                if value == b'/' && mode == Mode::KeepSlash {
                    out.extend_from_slice(&bytes[i..i + 3]);
                } else {
                    out.push(value);
                }
                i += 3;
            }
            b'+' if mode == Mode::Query => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{text}` does not decode to UTF-8 text"))
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_by_mode() {
        assert_eq!(decode("a%20b", Mode::Segment).unwrap(), "a b");
        assert_eq!(decode("a%2Fb", Mode::Segment).unwrap(), "a/b");
        assert_eq!(
            decode("a%2Fb%2fc%20", Mode::KeepSlash).unwrap(),
            "a%2Fb%2fc "
        );
        assert_eq!(decode("a+b%2B", Mode::Query).unwrap(), "a b+");
        assert_eq!(decode("a+b", Mode::Segment).unwrap(), "a+b");
        assert_eq!(decode("caf%C3%A9", Mode::Segment).unwrap(), "café");
    }

    #[test]
    fn malformed_escapes_are_errors() {
        for text in ["%", "%2", "%zz", "a%g0", "%C3"] {
            assert!(decode(text, Mode::Segment).is_err(), "{text}");
        }
    }
}
