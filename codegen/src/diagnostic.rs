//! Diagnostics: what is wrong in a proto, where, and how to fix it.
//!
//! Every problem the generator finds becomes a [`Diagnostic`] pointing at the exact bytes of the
//! proto source it concerns. They are rendered in the style Rust users read every day:
//!
//! ```text
//! error: no field `autor_id` on `demo.reviews.v1.Review`
//!   --> demo/storefront/v1/storefront.proto:88:52
//!    |
//! 88 |   int64 x = 1 [(mosaic.v1.field).by = "$.review.autor_id"];
//!    |                                                 ^^^^^^^^
//!    = help: did you mean `author_id`?
//! ```
//!
//! The renderer is written here rather than taken from a reporting crate because the output is
//! part of the tested contract (the diagnostics corpus compares it exactly) and needs nothing
//! beyond one line of context and a caret.

use std::fmt;
use std::sync::Arc;

/// A source file the diagnostics point into.
#[derive(Debug)]
pub struct SourceFile {
    /// The proto file name as imported (`demo/storefront/v1/storefront.proto`).
    pub name: String,
    /// Its text.
    pub text: String,
    line_starts: Vec<usize>,
}

/// A byte range in one source file.
#[derive(Clone, Debug)]
pub struct Span {
    /// The file.
    pub file: Arc<SourceFile>,
    /// Byte offsets into the file's text.
    pub range: std::ops::Range<usize>,
}

/// One problem found in the protos.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where; `None` only for problems no source position describes.
    pub span: Option<Span>,
    /// How to fix it, when a fix can be suggested.
    pub hint: Option<String>,
}

// === impl SourceFile ===

impl SourceFile {
    /// Indexes `text` so byte offsets convert to lines and columns.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Arc::new(Self {
            name: name.into(),
            text,
            line_starts,
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |prefix| prefix.chars().count());
        (line + 1, column + 1)
    }

    /// Byte offset of a 0-based line and 0-based column (in characters), as protobuf source
    /// info reports them.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        rest.char_indices()
            .nth(column)
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches('\r')
    }
}

// === impl Span ===

impl Span {
    /// A span of `range` in `file`.
    pub fn new(file: &Arc<SourceFile>, range: std::ops::Range<usize>) -> Self {
        Self {
            file: Arc::clone(file),
            range,
        }
    }

    /// 1-based line and column of the start.
    pub fn start(&self) -> (usize, usize) {
        self.file.line_col(self.range.start)
    }
}

// === impl Diagnostic ===

impl Diagnostic {
    /// An error at `span`.
    pub fn error(message: impl Into<String>, span: Option<Span>) -> Self {
        Self {
            message: message.into(),
            span,
            hint: None,
        }
    }

    /// Adds a suggestion.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:col`, when the position is known.
    pub fn location(&self) -> Option<String> {
        self.span.as_ref().map(|span| {
            let (line, col) = span.start();
            format!("{}:{line}:{col}", span.file.name)
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let gutter = if let Some(span) = &self.span {
            let (line, col) = span.start();
            let gutter = " ".repeat(line.to_string().len());
            writeln!(f, "{gutter}--> {}:{line}:{col}", span.file.name)?;
            writeln!(f, "{gutter} |")?;
            let text = span.file.line_text(line);
            writeln!(f, "{line} | {text}")?;
            // The caret runs to the end of the span or of the line, whichever comes first.
            let (end_line, end_col) = span.file.line_col(span.range.end);
            let line_chars = text.chars().count();
            let last = if end_line == line {
                end_col
            } else {
                line_chars + 1
            };
            let width = last.saturating_sub(col).max(1);
            writeln!(f, "{gutter} | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
            gutter
        } else {
            String::new()
        };
        if let Some(hint) = &self.hint {
            writeln!(f, "{gutter} = help: {hint}")?;
        }
        Ok(())
    }
}

/// Renders every diagnostic, then a summary line.
pub fn render_all(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        out.push_str(&diagnostic.to_string());
        out.push('\n');
    }
    let count = diagnostics.len();
    let noun = if count == 1 { "error" } else { "errors" };
    out.push_str(&format!("mosaic-codegen: {count} {noun}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rustc_style_with_a_caret_under_the_span() {
        let file = SourceFile::new(
            "a.proto",
            "line one\n  int64 x = 1 [by = \"$.autor_id\"];\n",
        );
        let start = file.text.find("autor_id").unwrap();
        let diagnostic = Diagnostic::error(
            "no field `autor_id` on `demo.reviews.v1.Review`",
            Some(Span::new(&file, start..start + 8)),
        )
        .with_hint("did you mean `author_id`?");
        assert_eq!(diagnostic.location().unwrap(), "a.proto:2:24");
        assert_eq!(
            diagnostic.to_string(),
            "error: no field `autor_id` on `demo.reviews.v1.Review`\n \
             --> a.proto:2:24\n  |\n2 |   int64 x = 1 [by = \"$.autor_id\"];\n  |                        ^^^^^^^^\n  = help: did you mean `author_id`?\n"
        );
    }

    #[test]
    fn offsets_and_positions_round_trip() {
        let file = SourceFile::new("b.proto", "ab\ncdé\nf");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(3), (2, 1));
        assert_eq!(file.offset_of(1, 2), 5);
        assert_eq!(file.line_col(file.offset_of(1, 2)), (2, 3));
        assert_eq!(file.line_text(2), "cdé");
        assert_eq!(file.offset_of(9, 0), file.text.len());
    }
}
