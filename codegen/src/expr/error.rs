//! The one diagnostic type of the expression layer.

use std::ops::Range;

/// A problem in an expression: where (a byte range of the expression text), what, and how to
/// fix it when we can tell.
///
/// Spans are always within the text and on `char` boundaries, so `&text[span]` never panics;
/// an empty span (`n..n`) points between two characters (used for "the expression is empty").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// Byte range in the expression text.
    pub span: Range<usize>,
    /// What is wrong, as a sentence fragment without a trailing period.
    pub message: String,
    /// How to fix it, such as "did you mean `author_id`?".
    pub hint: Option<String>,
}

impl ExprError {
    pub(crate) fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn with_optional_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}
