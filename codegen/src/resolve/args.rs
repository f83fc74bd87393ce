//! The arguments of messages built by `message` steps, inferred from every step that builds
//! them: each caller passes the same names with the same types.

use prost_reflect::MessageDescriptor;

use super::Resolver;
use crate::diagnostic::Span;
use crate::expr::Type;

impl Resolver<'_> {
    /// The arguments of a built message: every caller passes the same names with the same
    /// types. Arguments whose expressions have errors in every caller are left out and listed
    /// in `failed_args`.
    pub(super) fn infer_args(&mut self, message: &MessageDescriptor) -> Vec<(String, Type)> {
        let callers = self.callers.remove(message.full_name()).unwrap_or_default();
        let Some(first) = callers.first() else {
            // Every step building it is in error.
            self.message.failed_input = true;
            return Vec::new();
        };
        let names = |caller: &CallerArgs| {
            let mut names: Vec<String> = caller.args.iter().map(|(n, ..)| n.clone()).collect();
            names.sort();
            names
        };
        let where_built = |step: &str| match step {
            "" => "in another step".to_owned(),
            step => format!("where step `{step}` builds it"),
        };
        let expected = names(first);
        let agreeing: Vec<&CallerArgs> = callers.iter().filter(|c| names(c) == expected).collect();
        // Each argument's type: the first agreeing caller's without an error there (and which
        // step that is); none when every caller's expression has an error.
        let reference: Vec<(String, Option<(Type, String)>)> = first
            .args
            .iter()
            .map(|(name, ..)| {
                let found = agreeing.iter().find_map(|c| {
                    c.args
                        .iter()
                        .find(|(n, ty, _)| n == name && *ty != Type::Error)
                        .map(|(_, ty, _)| (ty.clone(), c.step.clone()))
                });
                (name.clone(), found)
            })
            .collect();
        for caller in &callers {
            if names(caller) != expected {
                self.error(
                    format!(
                        "`{}` is built with arguments ({}) here, but ({}) {}",
                        message.full_name(),
                        names(caller).join(", "),
                        expected.join(", "),
                        where_built(&first.step)
                    ),
                    caller.span.clone(),
                );
                continue;
            }
            for (name, ty, span) in &caller.args {
                if let Some((_, Some((reference_ty, step)))) =
                    reference.iter().find(|(n, _)| n == name)
                    && ty != reference_ty
                    && *ty != Type::Error
                {
                    self.error_hint(
                        format!(
                            "argument `{name}` of `{}` is {ty} here, but {reference_ty} {}",
                            message.full_name(),
                            where_built(step)
                        ),
                        span.clone(),
                        "every step building a message passes each argument with one type",
                    );
                }
            }
        }
        let mut args = Vec::new();
        for (name, found) in reference {
            match found {
                Some((ty, _)) => args.push((name, ty)),
                None => {
                    self.message.failed_args.insert(name);
                }
            }
        }
        args
    }
}

/// The arguments one `message` step passes, and where it is.
pub(super) struct CallerArgs {
    /// Name, type ([`Type::Error`] when its expression has an error, reported already) and
    /// the span of its `by`, for each argument.
    pub(super) args: Vec<(String, Type, Option<Span>)>,
    /// The message name in the `message` step.
    pub(super) span: Option<Span>,
    /// The name of the step, when it has one.
    pub(super) step: String,
}
