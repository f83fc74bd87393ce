//! A call's `metadata`: keys checked as gRPC metadata keys (and kept off the gateway's own),
//! values as string or bytes expressions, or edge request headers to forward.

use std::collections::HashSet;

use prost_reflect::DynamicMessage;

use super::Resolver;
use super::message::StepCtx;
use super::options::{get_str, has_field, list};
use super::sites::{with, with_index};
use crate::expr::{self, Type};
use crate::model::*;
use crate::source::PathSegment;

/// Keys the gateway or HTTP/2 owns: a call cannot set them.
const RESERVED_KEYS: &[&str] = &[
    "te",
    "content-type",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "user-agent",
];

/// Why `name` cannot be a metadata key of a downstream call, if it cannot.
pub(super) fn key_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a metadata entry needs a `name`".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
    {
        return Some(if bad.is_ascii_uppercase() {
            format!(
                "metadata key `{name}` has upper-case letters; gRPC keys are lower-case: `{}`",
                name.to_ascii_lowercase()
            )
        } else {
            format!(
                "metadata key `{name}` holds `{bad}`; keys are lower-case letters, digits, `-`, `_` and `.`"
            )
        });
    }
    if name.starts_with("grpc-") {
        return Some(format!(
            "metadata key `{name}` is reserved: `grpc-` keys belong to gRPC itself"
        ));
    }
    if RESERVED_KEYS.contains(&name) {
        return Some(format!(
            "metadata key `{name}` is reserved: the gateway sets it for every call"
        ));
    }
    None
}

impl Resolver<'_> {
    /// The `metadata` entries of a call, each checked; reads are added to `reads`.
    pub(super) fn call_metadata(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        call: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Vec<MetadataPlan> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (j, entry) in list(call, "metadata").iter().enumerate() {
            let Some(entry) = entry.as_message() else {
                continue;
            };
            let entry_path = with_index(path, "metadata", j);
            let name = get_str(entry, "name");
            let name_span = Self::value_span(ctx.site, &with(&entry_path, "name")).0;
            if let Some(problem) = key_problem(&name) {
                let span = if name.is_empty() {
                    Self::value_span(ctx.site, &entry_path).0
                } else {
                    name_span
                };
                self.error_hint(
                    problem,
                    span,
                    "name the key as the downstream reads it, such as `x-request-source`",
                );
                continue;
            }
            if !seen.insert(name.clone()) {
                self.error_hint(
                    format!("metadata key `{name}` is set twice"),
                    name_span,
                    "set each key once",
                );
                continue;
            }
            let binary = name.ends_with("-bin");
            let value = if has_field(entry, "forward") {
                let from = get_str(entry, "forward");
                let span = Self::value_span(ctx.site, &with(&entry_path, "forward")).0;
                match key_problem(&from) {
                    Some(problem) => {
                        let problem = problem.replace("metadata key", "forwarded header");
                        self.error(problem, span);
                        continue;
                    }
                    None if from.ends_with("-bin") != binary => {
                        self.error_hint(
                            format!(
                                "`{name}` and `{from}` do not carry the same kind of value: a key ending in `-bin` carries bytes, any other text"
                            ),
                            span,
                            "forward a `-bin` header under a `-bin` key, and text under text",
                        );
                        continue;
                    }
                    None => MetadataSource::Forward(from),
                }
            } else if has_field(entry, "by") {
                let expected = if binary { Type::Bytes } else { Type::String };
                let what = if binary {
                    "the value of a `-bin` metadata key"
                } else {
                    "a metadata value"
                };
                let Some(e) = self.expression(
                    ctx,
                    scope,
                    &with(&entry_path, "by"),
                    &get_str(entry, "by"),
                    reads,
                    Some(&expected),
                    what,
                ) else {
                    continue;
                };
                MetadataSource::Expression(e)
            } else {
                self.error_hint(
                    format!("metadata `{name}` has no value"),
                    name_span,
                    "give it `by` (an expression) or `forward` (an edge request header)",
                );
                continue;
            };
            out.push(MetadataPlan { name, value });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::key_problem;

    #[test]
    fn keys_are_lower_case_tokens_off_the_gateways_own() {
        assert_eq!(key_problem("x-request-source"), None);
        assert_eq!(key_problem("x-trace-bin"), None);
        assert_eq!(key_problem("authorization"), None);
        for reserved in ["grpc-timeout", "te", "content-type", "host", "connection"] {
            assert!(
                key_problem(reserved).is_some_and(|p| p.contains("reserved")),
                "{reserved}"
            );
        }
        assert!(key_problem("X-Source").is_some_and(|p| p.contains("`x-source`")));
        assert!(key_problem("x source").is_some_and(|p| p.contains("holds ` `")));
        assert!(key_problem(":path").is_some());
        assert!(key_problem("").is_some());
    }
}
