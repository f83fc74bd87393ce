//! Path templates: `Template = "/" Segments [":" Verb]`.
//!
//! ```text
//! Segments = Segment { "/" Segment }
//! Segment  = "*" | "**" | LITERAL | Variable
//! Variable = "{" FieldPath [ "=" Segments ] "}"
//! FieldPath = IDENT { "." IDENT }
//! Verb     = LITERAL
//! ```
//!
//! `{f}` is `{f=*}`. `**` matches zero or more segments and must be the last segment (a verb
//! may follow). A variable's segments are captured whole, literals included
//! (`{name=shelves/*}` binds `shelves/1`). Variables do not nest. Every error carries the byte
//! range of the template text it is about, so the generator can point at the column.

use std::ops::Range;

/// One segment of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches this text exactly (after percent-decoding the request's segment).
    Literal(String),
    /// `*`: exactly one segment.
    Single,
    /// `**`: zero or more segments; always the last.
    Multi,
}

/// A variable: which field it binds and which segments it captures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// The field path, as written (`book.name`).
    pub field_path: Vec<String>,
    /// The first segment it captures (an index into [`Template::segments`]).
    pub start: usize,
    /// One past its last segment.
    pub end: usize,
    /// Where it is written in the template text (braces included).
    pub at: Range<usize>,
}

impl Variable {
    /// Whether it may capture more than one segment (`{f=a/*}`, `{f=**}`): such values keep
    /// `%2F` encoded, as the spec says, so a captured `/` and an escaped one stay distinct.
    pub fn is_multi_segment(&self, template: &Template) -> bool {
        self.end - self.start != 1 || template.segments[self.start] == Segment::Multi
    }
}

/// A parsed path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
    pub variables: Vec<Variable>,
    pub verb: Option<String>,
}

/// Why a template does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    /// The byte range of the template text at fault.
    pub at: Range<usize>,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

fn error<T>(message: impl Into<String>, at: Range<usize>) -> Result<T, TemplateError> {
    Err(TemplateError {
        message: message.into(),
        at,
    })
}

/// Characters a literal may hold: RFC 3986 unreserved, sub-delimiters other than the ones the
/// grammar uses, `@`, and percent-escapes.
fn literal_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'@'
        )
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Parser {
            text: text.as_bytes(),
            at: 0,
            multi_at: None,
        }
        .template()
    }

    /// The template in a normal form, variables shown by their captured pattern: two
    /// templates with the same form match the same paths (`/v1/{id}` and `/v1/{name=*}` do).
    pub fn shape(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Single => out.push('*'),
                Segment::Multi => out.push_str("**"),
            }
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        out
    }
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    /// Where the first `**` is written.
    multi_at: Option<Range<usize>>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn template(mut self) -> Result<Template, TemplateError> {
        if self.peek() != Some(b'/') {
            return error("a path template starts with `/`", 0..self.text.len().min(1));
        }
        let mut template = Template {
            segments: Vec::new(),
            variables: Vec::new(),
            verb: None,
        };
        loop {
            // At a `/`.
            self.at += 1;
            self.segment(&mut template, false)?;
            match self.peek() {
                Some(b'/') => continue,
                Some(b':') => {
                    self.at += 1;
                    let start = self.at;
                    let verb = self.literal();
                    if verb.is_empty() {
                        return error(
                            "a verb follows `:` (as in `/v1/{name=*}:cancel`)",
                            start - 1..start,
                        );
                    }
                    template.verb = Some(verb);
                    if self.peek().is_some() {
                        return error("the verb ends the template", self.at..self.text.len());
                    }
                    break;
                }
                None => break,
                Some(other) => {
                    return error(
                        format!("unexpected `{}` in the path template", other as char),
                        self.at..self.at + 1,
                    );
                }
            }
        }
        if let Some(position) = template
            .segments
            .iter()
            .position(|segment| *segment == Segment::Multi)
            && position + 1 != template.segments.len()
        {
            let at = self.multi_at.clone().unwrap_or(0..self.text.len());
            return error(
                "`**` matches the rest of the path, so it must be the last segment",
                at,
            );
        }
        let mut seen: Vec<&Vec<String>> = Vec::new();
        for variable in &template.variables {
            if seen.contains(&&variable.field_path) {
                return error(
                    format!("`{}` is bound twice", variable.field_path.join(".")),
                    variable.at.clone(),
                );
            }
            seen.push(&variable.field_path);
        }
        Ok(template)
    }

    /// One segment after a `/` (inside a variable when `nested`).
    fn segment(&mut self, template: &mut Template, nested: bool) -> Result<(), TemplateError> {
        let start = self.at;
        match self.peek() {
            Some(b'*') => {
                self.at += 1;
                if self.peek() == Some(b'*') {
                    self.at += 1;
                    self.multi_at.get_or_insert(start..self.at);
                    template.segments.push(Segment::Multi);
                } else {
                    template.segments.push(Segment::Single);
                }
                if let Some(c) = self.peek()
                    && !matches!(c, b'/' | b':' | b'}')
                {
                    return error("`*` and `**` stand alone in a segment", start..self.at + 1);
                }
                Ok(())
            }
            Some(b'{') if !nested => self.variable(template),
            Some(b'{') => error("variables do not nest", start..start + 1),
            Some(c) if literal_char(c) => {
                let literal = self.literal();
                if let Err(message) = crate::escape::check(&literal) {
                    return error(message, start..self.at);
                }
                template.segments.push(Segment::Literal(literal));
                Ok(())
            }
            Some(b'/') | None => error(
                "empty segment: two `/` in a row or a trailing `/`",
                start.saturating_sub(1)..start,
            ),
            Some(other) => error(
                format!(
                    "`{}` cannot appear in a path segment; percent-encode it",
                    other as char
                ),
                start..start + 1,
            ),
        }
    }

    fn literal(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(literal_char) {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    fn variable(&mut self, template: &mut Template) -> Result<(), TemplateError> {
        let open = self.at;
        self.at += 1;
        let mut field_path = Vec::new();
        loop {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                self.at += 1;
            }
            let ident = &self.text[start..self.at];
            if ident.is_empty() || ident[0].is_ascii_digit() {
                return error(
                    "a variable names a field: `{field}` or `{message.field}`",
                    start..(self.at + 1).min(self.text.len()),
                );
            }
            field_path.push(String::from_utf8_lossy(ident).into_owned());
            if self.peek() == Some(b'.') {
                self.at += 1;
                continue;
            }
            break;
        }
        let first = template.segments.len();
        match self.peek() {
            Some(b'}') => template.segments.push(Segment::Single),
            Some(b'=') => loop {
                self.at += 1;
                self.segment(template, true)?;
                match self.peek() {
                    Some(b'/') => continue,
                    Some(b'}') => break,
                    _ => {
                        return error(
                            "unclosed variable: `}` expected",
                            open..self.at.min(self.text.len()).max(open + 1),
                        );
                    }
                }
            },
            _ => {
                return error(
                    "unclosed variable: `}` or `=` expected after the field name",
                    open..self.at.min(self.text.len()).max(open + 1),
                );
            }
        }
        self.at += 1;
        template.variables.push(Variable {
            field_path,
            start: first,
            end: template.segments.len(),
            at: open..self.at,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Template {
        match Template::parse(text) {
            Ok(template) => template,
            Err(error) => panic!("{text}: {error}"),
        }
    }

    fn fails(text: &str) -> TemplateError {
        match Template::parse(text) {
            Ok(template) => panic!("{text} parsed: {template:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn variables_capture_their_segments() {
        let template = parse("/v1/{name=shelves/*/books/*}:read");
        assert_eq!(
            template.segments,
            [
                Segment::Literal("v1".into()),
                Segment::Literal("shelves".into()),
                Segment::Single,
                Segment::Literal("books".into()),
                Segment::Single,
            ]
        );
        assert_eq!(template.verb.as_deref(), Some("read"));
        let variable = &template.variables[0];
        assert_eq!(variable.field_path, ["name"]);
        assert_eq!((variable.start, variable.end), (1, 5));
        assert_eq!(variable.at, 4..28);
        assert!(variable.is_multi_segment(&template));
        assert_eq!(template.shape(), "/v1/shelves/*/books/*:read");
    }

    #[test]
    fn short_variables_are_one_segment() {
        let template = parse("/v1/users/{user.id}/x/**");
        assert_eq!(template.variables[0].field_path, ["user", "id"]);
        assert!(!template.variables[0].is_multi_segment(&template));
        assert_eq!(template.shape(), "/v1/users/*/x/**");
        let multi = parse("/files/{path=**}");
        assert!(multi.variables[0].is_multi_segment(&multi));
    }

    #[test]
    fn bad_templates_say_where() {
        for (text, message, at) in [
            ("v1/x", "starts with `/`", 0..1),
            ("/v1//x", "empty segment", 3..4),
            ("/v1/", "empty segment", 3..4),
            ("/v1/**/x", "must be the last", 4..6),
            ("/v1/{a=b/{c}}", "do not nest", 9..10),
            ("/v1/{a", "unclosed", 4..6),
            ("/v1/{}", "names a field", 5..6),
            ("/v1/{a}/{a}", "bound twice", 8..11),
            ("/v1/x:", "a verb follows", 5..6),
            ("/v1/a*", "unexpected `*`", 5..6),
            ("/v1/**x", "stand alone", 4..7),
            ("/v1/a b", "unexpected ` `", 5..6),
            ("/v1/%zz", "percent", 4..7),
        ] {
            let error = fails(text);
            assert!(
                error.message.contains(message),
                "{text}: `{}` lacks `{message}`",
                error.message
            );
            assert_eq!(error.at, at, "{text}: {}", error.message);
        }
    }
}
