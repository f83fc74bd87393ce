//! Positions of option values in proto source text.
//!
//! Protobuf source info locates a whole option statement, but not the fields inside an aggregate
//! value such as `option (mosaic.v1.message) = { def { name: "p" call { ... } } };`. Diagnostics
//! must point at the exact expression, so this module re-reads the aggregate's text (protobuf
//! text format) and records where every field occurrence and every string literal lies, keyed
//! by its path (`def[3].map.iterator.src`). String literals also keep a map from each decoded
//! byte back to the source, so an error at byte 7 of an expression lands on the right column
//! even after escapes.
//!
//! The scanner only needs to agree with protox on text that protox has already accepted, so it
//! is lenient: on anything unexpected it stops and the affected paths are simply not found
//! (callers then point at the whole option instead).

use std::collections::HashMap;

/// Where one string literal (or other scalar value) lies, and how its bytes map back.
#[derive(Clone, Debug, Default)]
pub struct ValueSpan {
    /// Byte range of the value token(s) in the file, quotes included.
    pub range: std::ops::Range<usize>,
    /// For strings: file offset of each decoded byte, plus one entry for the end.
    pub decoded_offsets: Vec<usize>,
}

/// One path segment: a field name and the occurrence index among same-named siblings.
pub type PathSegment = (String, usize);

/// Every field occurrence of one aggregate option value, by path.
#[derive(Debug, Default)]
pub struct OptionTree {
    values: HashMap<Vec<PathSegment>, ValueSpan>,
    names: HashMap<Vec<PathSegment>, std::ops::Range<usize>>,
    /// Field names followed by a list without the `:` protox requires (`request [...]`).
    lists_without_colon: Vec<std::ops::Range<usize>>,
}

// === impl ValueSpan ===

impl ValueSpan {
    /// The file byte range of `decoded` (a byte range of the decoded string), or the whole
    /// value when the range cannot be mapped.
    pub fn sub_range(&self, decoded: std::ops::Range<usize>) -> std::ops::Range<usize> {
        match (
            self.decoded_offsets.get(decoded.start),
            self.decoded_offsets.get(decoded.end),
        ) {
            (Some(&start), Some(&end)) if start <= end => start..end.max(start + 1),
            _ => self.range.clone(),
        }
    }
}

// === impl OptionTree ===

impl OptionTree {
    /// Scans the aggregate value of the option statement starting at `statement_start`.
    pub fn scan(text: &str, statement_start: usize) -> Self {
        let mut tree = Self::default();
        let mut lexer = Lexer::new(text, statement_start);
        // Skip to the `=` then expect `{` (or `<`).
        loop {
            match lexer.next() {
                Some(Token::Punct(b'=')) => break,
                Some(_) => {}
                None => return tree,
            }
        }
        if let Some(Token::Punct(b'{' | b'<')) = lexer.next() {
            let mut path = Vec::new();
            tree.scan_fields(&mut lexer, &mut path);
        }
        tree
    }

    /// The value at `path`, such as `[("def", 3), ("call", 0), ("method", 0)]`.
    pub fn value(&self, path: &[PathSegment]) -> Option<&ValueSpan> {
        self.values.get(path)
    }

    /// The span of the field name at `path` (for messages and fields without a scalar value).
    pub fn name(&self, path: &[PathSegment]) -> Option<std::ops::Range<usize>> {
        self.names.get(path).cloned()
    }

    /// Every field name, with its path, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = (&[PathSegment], std::ops::Range<usize>)> {
        self.names
            .iter()
            .map(|(path, range)| (path.as_slice(), range.clone()))
    }

    /// The names of fields written `name [ ... ]`, which protox rejects without a colon.
    pub fn lists_without_colon(&self) -> &[std::ops::Range<usize>] {
        &self.lists_without_colon
    }

    fn scan_fields(&mut self, lexer: &mut Lexer<'_>, path: &mut Vec<PathSegment>) {
        let mut counts: HashMap<String, usize> = HashMap::new();
        loop {
            let (name, name_range) = match lexer.next() {
                Some(Token::Ident(name, range)) => (name.to_owned(), range),
                Some(Token::Punct(b',' | b';')) => continue,
                _ => return, // `}` / `>` or the end
            };
            let mut next = lexer.next();
            if let Some(Token::Punct(b':')) = next {
                next = lexer.next();
            } else if let Some(Token::Punct(b'[')) = next {
                self.lists_without_colon.push(name_range.clone());
            }
            match next {
                Some(Token::Punct(b'[')) => loop {
                    match lexer.next() {
                        Some(Token::Punct(b']')) => break,
                        Some(Token::Punct(b',')) => {}
                        Some(Token::Punct(b'{' | b'<')) => {
                            self.enter(&name, &name_range, &mut counts, path, lexer, None);
                        }
                        Some(token) => {
                            let value = lexer.finish_value(token);
                            self.enter(&name, &name_range, &mut counts, path, lexer, Some(value));
                        }
                        None => return,
                    }
                },
                Some(Token::Punct(b'{' | b'<')) => {
                    self.enter(&name, &name_range, &mut counts, path, lexer, None);
                }
                Some(token) => {
                    let value = lexer.finish_value(token);
                    self.enter(&name, &name_range, &mut counts, path, lexer, Some(value));
                }
                None => return,
            }
        }
    }

    fn enter(
        &mut self,
        name: &str,
        name_range: &std::ops::Range<usize>,
        counts: &mut HashMap<String, usize>,
        path: &mut Vec<PathSegment>,
        lexer: &mut Lexer<'_>,
        value: Option<ValueSpan>,
    ) {
        let index = counts.entry(name.to_owned()).or_insert(0);
        path.push((name.to_owned(), *index));
        *index += 1;
        self.names.insert(path.clone(), name_range.clone());
        match value {
            Some(value) => {
                self.values.insert(path.clone(), value);
            }
            None => self.scan_fields(lexer, path),
        }
        path.pop();
    }
}

/// The scalar value of the option statement starting at `statement_start`, such as the
/// string of `(mosaic.v1.field).by = "a.b"` (adjacent literals joined, as in text format).
/// `None` when the value is not a scalar (an aggregate `{ ... }`) or cannot be found.
pub fn option_value(text: &str, statement_start: usize) -> Option<ValueSpan> {
    let mut lexer = Lexer::new(text, statement_start);
    while !matches!(lexer.next()?, Token::Punct(b'=')) {}
    match lexer.next()? {
        Token::Punct(_) => None,
        token => Some(lexer.finish_value(token)),
    }
}

/// Decodes one string literal token starting at `start` (at its quote), returning its decoded
/// bytes' source offsets and the end of the literal.
pub fn string_literal(text: &str, start: usize) -> Option<(Vec<usize>, usize)> {
    let bytes = text.as_bytes();
    let quote = *bytes.get(start)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let mut offsets = Vec::new();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b if b == quote => {
                offsets.push(i);
                return Some((offsets, i + 1));
            }
            b'\\' => {
                // One decoded character for the whole escape; good enough for positions.
                offsets.push(i);
                let (digits, max) = match bytes.get(i + 1) {
                    Some(b'x' | b'X') => (1, 2),
                    Some(b'u') => (1, 4),
                    Some(b'U') => (1, 8),
                    Some(b'0'..=b'7') => (0, 3),
                    _ => (1, 0),
                };
                i += 1 + digits;
                let mut taken = 0;
                while taken < max && i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                    i += 1;
                    taken += 1;
                }
            }
            b'\n' => return None,
            _ => {
                offsets.push(i);
                i += 1;
            }
        }
    }
    None
}

enum Token<'a> {
    Ident(&'a str, std::ops::Range<usize>),
    Str(usize),
    Other(std::ops::Range<usize>),
    Punct(u8),
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str, pos: usize) -> Self {
        Self { text, pos }
    }

    fn skip_trivia(&mut self) {
        let bytes = self.text.as_bytes();
        loop {
            while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            if bytes[self.pos..].starts_with(b"//") || bytes[self.pos..].starts_with(b"#") {
                while self.pos < bytes.len() && bytes[self.pos] != b'\n' {
                    self.pos += 1;
                }
            } else if bytes[self.pos..].starts_with(b"/*") {
                let body = &bytes[self.pos + 2..];
                match body.windows(2).position(|w| w == b"*/") {
                    Some(end) => self.pos += 2 + end + 2,
                    None => self.pos = bytes.len(),
                }
            } else {
                return;
            }
        }
    }

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_trivia();
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let first = *bytes.get(start)?;
        if first == b'"' || first == b'\'' {
            let (_, end) = string_literal(self.text, start)?;
            self.pos = end;
            return Some(Token::Str(start));
        }
        if first.is_ascii_alphabetic() || first == b'_' {
            while self.pos < bytes.len()
                && (bytes[self.pos].is_ascii_alphanumeric() || bytes[self.pos] == b'_')
            {
                self.pos += 1;
            }
            return Some(Token::Ident(&self.text[start..self.pos], start..self.pos));
        }
        if first.is_ascii_digit() || first == b'-' || first == b'.' {
            self.pos += 1;
            while self.pos < bytes.len()
                && (bytes[self.pos].is_ascii_alphanumeric()
                    || matches!(bytes[self.pos], b'.' | b'+' | b'-'))
            {
                self.pos += 1;
            }
            return Some(Token::Other(start..self.pos));
        }
        self.pos += 1;
        Some(Token::Punct(first))
    }

    /// Completes a scalar value whose first token is `first`: adjacent string literals
    /// concatenate, as in protobuf text format.
    fn finish_value(&mut self, first: Token<'a>) -> ValueSpan {
        match first {
            Token::Str(start) => {
                let mut offsets = Vec::new();
                let mut end = start;
                let mut literal = Some(start);
                while let Some(at) = literal {
                    let Some((mut decoded, literal_end)) = string_literal(self.text, at) else {
                        break;
                    };
                    let closing = decoded.pop();
                    offsets.extend(decoded);
                    end = literal_end;
                    self.pos = literal_end;
                    // Peek for an adjacent literal.
                    let saved = self.pos;
                    self.skip_trivia();
                    let next = self.text.as_bytes().get(self.pos).copied();
                    if matches!(next, Some(b'"' | b'\'')) {
                        literal = Some(self.pos);
                    } else {
                        self.pos = saved;
                        offsets.extend(closing);
                        literal = None;
                    }
                }
                ValueSpan {
                    range: start..end,
                    decoded_offsets: offsets,
                }
            }
            Token::Ident(_, range) | Token::Other(range) => ValueSpan {
                range,
                decoded_offsets: Vec::new(),
            },
            Token::Punct(_) => ValueSpan::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segments: &[(&str, usize)]) -> Vec<PathSegment> {
        segments
            .iter()
            .map(|(n, i)| ((*n).to_owned(), *i))
            .collect()
    }

    #[test]
    fn finds_nested_and_repeated_values() {
        let text = r#"message X {
  option (mosaic.v1.message) = {
    def { name: "a" by: "$.x" }
    // a comment { with braces }
    def {
      name: "b"
      call {
        method: "p.S/M"
        request { field: "id" by: "a + 1" }
        request: [{field: "k", by: 'a'}, { field: "j" by: "a"
                                                     " + 2" }]
      }
    }
  };
}"#;
        let start = text.find("option").unwrap();
        let tree = OptionTree::scan(text, start);
        let value = |p: &[(&str, usize)]| {
            let span = tree.value(&path(p)).unwrap_or_else(|| panic!("{p:?}"));
            &text[span.range.clone()]
        };
        assert_eq!(value(&[("def", 0), ("by", 0)]), "\"$.x\"");
        assert_eq!(value(&[("def", 1), ("name", 0)]), "\"b\"");
        assert_eq!(
            value(&[("def", 1), ("call", 0), ("method", 0)]),
            "\"p.S/M\""
        );
        assert_eq!(
            value(&[("def", 1), ("call", 0), ("request", 0), ("by", 0)]),
            "\"a + 1\""
        );
        assert_eq!(
            value(&[("def", 1), ("call", 0), ("request", 1), ("by", 0)]),
            "'a'"
        );
        let joined = tree
            .value(&path(&[("def", 1), ("call", 0), ("request", 2), ("by", 0)]))
            .unwrap();
        // "a" + " + 2" decode to "a + 2": byte 4 (`2`) maps into the second literal.
        assert_eq!(&text[joined.sub_range(4..5)], "2");
        assert!(tree.name(&path(&[("def", 1), ("call", 0)])).is_some());
        assert!(tree.value(&path(&[("def", 2)])).is_none());
    }

    #[test]
    fn maps_decoded_bytes_through_escapes() {
        let text = r#"option (x) = { by: "a\"b + c" };"#;
        let tree = OptionTree::scan(text, 0);
        let span = tree.value(&path(&[("by", 0)])).unwrap();
        // Decoded: a " b space + space c  → `c` is decoded byte 6.
        assert_eq!(&text[span.sub_range(6..7)], "c");
    }

    #[test]
    fn finds_the_value_of_a_scalar_option() {
        let text = "  int64 x = 1 [(mosaic.v1.field).by = \"a\"\n    \" + b\"];";
        let start = text.find('(').unwrap();
        let value = option_value(text, start).unwrap();
        assert_eq!(&text[value.range.clone()], "\"a\"\n    \" + b\"");
        // Decoded "a + b": byte 4 (`b`) lies in the second literal.
        assert_eq!(&text[value.sub_range(4..5)], "b");
        let aggregate = "[(mosaic.v1.field) = { by: \"a\" }]";
        assert!(option_value(aggregate, 1).is_none());
        for end in 0..=text.len() {
            let _ = option_value(&text[..end], start.min(end));
        }
    }

    #[test]
    fn never_panics_on_truncated_text() {
        let text = r#"option (x) = { def { name: "a" by: "$.x"#;
        for end in 0..=text.len() {
            let _ = OptionTree::scan(&text[..end], 0);
        }
    }
}
