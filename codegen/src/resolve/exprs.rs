//! Expressions in the context of a message: parsed, checked against the names in scope, and
//! every problem reported at its exact place in the proto.

use std::collections::HashSet;

use super::Resolver;
use super::message::StepCtx;
use super::sites::sub_span;
use crate::diagnostic::{Diagnostic, Span};
use crate::expr::{self, Type};
use crate::model::*;
use crate::schema::ARGS_SUFFIX;
use crate::source::{PathSegment, ValueSpan};

impl Resolver<'_> {
    /// Parses and checks one expression; reports problems at their exact place.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn expression(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        path: &[PathSegment],
        text: &str,
        reads: &mut HashSet<String>,
        expected: Option<&Type>,
        what: &str,
    ) -> Option<Expression> {
        let (span, value) = Self::value_span(ctx.site, path);
        self.checked_expression(scope, text, span, value, reads, expected, what, Some(ctx))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn checked_expression(
        &mut self,
        scope: &expr::Scope,
        text: &str,
        span: Option<Span>,
        value: Option<ValueSpan>,
        reads: &mut HashSet<String>,
        expected: Option<&Type>,
        what: &str,
        ctx: Option<&StepCtx<'_>>,
    ) -> Option<Expression> {
        let at = |range: std::ops::Range<usize>| sub_span(&span, &value, range);
        if text.trim().is_empty() {
            self.error(format!("{what} is empty"), span.clone());
            return None;
        }
        let parsed = match expr::parse(text) {
            Ok(parsed) => parsed,
            Err(err) => {
                let d = Diagnostic::error(
                    format!("malformed expression: {}", err.message),
                    at(err.span.clone()),
                );
                self.diagnostics.push(match err.hint {
                    Some(h) => d.with_hint(h),
                    None => d,
                });
                return None;
            }
        };
        let mut ok = true;
        for (name, range) in parsed.names() {
            if name == "$" && self.message.failed_input {
                ok = false;
                continue;
            }
            if scope.get(&name).is_some() {
                if name.starts_with(super::ENV_PREFIX) {
                    self.message.reads_env = true;
                }
                reads.insert(name);
                continue;
            }
            if let Some(ctx) = ctx
                && let Some(pos) = ctx.all_names.iter().position(|n| *n == name)
                && pos >= ctx.index
            {
                self.error_hint(
                            format!("`{name}` is read before it is defined"),
                            at(range.clone()),
                            format!("move the step defining `{name}` above this one (steps may read only the steps above them)"),
                        );
                ok = false;
            } else if self.message.failed.contains(&name) {
                // The step is in error, reported where it is; its value has no type to check.
                ok = false;
            }
        }
        // An argument in error in every caller (reported there) has no type to check.
        if !self.message.failed_args.is_empty()
            && reads_input_field(parsed.root(), &self.message.failed_args)
        {
            ok = false;
        }
        if !ok {
            return None;
        }
        let hint = self.binding_hint.take();
        match expr::check_expecting(&parsed, scope, &self.schema, expected.or(hint.as_ref())) {
            Ok(checked) => {
                if let Some(expected) = expected
                    && checked.ty != *expected
                    && checked.ty != Type::Error
                {
                    self.error(
                        format!("{what} must be {expected}, found {}", checked.ty),
                        span,
                    );
                    return None;
                }
                // `has(step)` evaluates the step's guard here, reading its names.
                reads.extend(checked.guard_reads.iter().cloned());
                Some(Expression {
                    text: text.to_owned(),
                    checked: Box::new(checked),
                })
            }
            Err(errors) => {
                for err in errors {
                    let d = Diagnostic::error(readable(&err.message), at(err.span));
                    self.diagnostics.push(match err.hint {
                        Some(h) => d.with_hint(h),
                        None => d,
                    });
                }
                None
            }
        }
    }
}

/// `message` with the synthetic argument messages of the schema (`` `pkg.Msg#args` ``) named
/// as users know them (`` the arguments of `pkg.Msg` ``).
pub(super) fn readable(message: &str) -> String {
    let marker = format!("{ARGS_SUFFIX}`");
    let mut out = String::new();
    let mut rest = message;
    while let Some(end) = rest.find(&marker) {
        match rest[..end].rfind('`') {
            Some(start) if start + 1 < end => {
                out.push_str(&rest[..start]);
                out.push_str("the arguments of `");
                out.push_str(&rest[start + 1..end]);
                out.push('`');
            }
            _ => out.push_str(&rest[..end + marker.len()]),
        }
        rest = &rest[end + marker.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether `node` reads `$.<name>` for one of `names`.
pub(super) fn reads_input_field(node: &expr::Node, names: &HashSet<String>) -> bool {
    if let expr::NodeKind::Select { operand, field } = &node.kind
        && matches!(&operand.kind, expr::NodeKind::Name(ident) if ident.name == "$")
        && names.contains(&field.name)
    {
        return true;
    }
    node.kind
        .children()
        .into_iter()
        .any(|child| reads_input_field(child, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_messages_read_as_arguments() {
        assert_eq!(
            readable("no field `x` on `a.B#args`; `c.D#args` too"),
            "no field `x` on the arguments of `a.B`; the arguments of `c.D` too"
        );
        assert_eq!(readable("no `#args` here"), "no `#args` here");
        assert_eq!(readable("plain #args`"), "plain #args`");
    }
}
