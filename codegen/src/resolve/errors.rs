//! A call step's `error` handlers: conditions over the failed call's `error`, and what each
//! one makes of the failure (ignore it, a fallback value, another status, or fail as is).

use std::collections::HashSet;

use prost_reflect::{DynamicMessage, MapKey};

use super::Resolver;
use super::message::StepCtx;
use super::options::{get_bool, get_message, get_str, has_field, list};
use super::sites::{with, with_index};
use crate::expr::{self, Type};
use crate::model::*;
use crate::source::PathSegment;

/// The message `error` is in handlers' expressions.
pub(super) const CALL_ERROR: &str = "mosaic.v1.CallError";

impl Resolver<'_> {
    /// The handlers of the call at `path` (a `CallStep`), whose value is of type `value`.
    pub(super) fn error_handlers(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        call: &DynamicMessage,
        path: &[PathSegment],
        value: &Type,
        reads: &mut HashSet<String>,
    ) -> Vec<ErrorHandlerPlan> {
        let scope = scope
            .clone()
            .with("error", Type::Message(CALL_ERROR.to_owned()));
        let mut handlers = Vec::new();
        for (i, handler) in list(call, "error").iter().enumerate() {
            let Some(handler) = handler.as_message() else {
                continue;
            };
            let path = with_index(path, "error", i);
            if handlers
                .last()
                .is_some_and(|h: &ErrorHandlerPlan| h.condition.is_none())
            {
                self.error_hint(
                    "this error handler never runs: the one above it has no `if`, so it handles every failure",
                    Self::value_span(ctx.site, &path).0,
                    "give the handler above an `if`, or put this one first",
                );
                break;
            }
            let condition_text = get_str(handler, "if");
            let mut condition_reads = HashSet::new();
            let mut action_reads = HashSet::new();
            let condition = if condition_text.trim().is_empty() {
                None
            } else {
                match self.expression(
                    ctx,
                    &scope,
                    &with(&path, "if"),
                    &condition_text,
                    &mut condition_reads,
                    Some(&Type::Bool),
                    "an error handler's `if`",
                ) {
                    Some(condition) => Some(condition),
                    None => continue,
                }
            };
            let action = if get_bool(handler, "ignore") {
                ErrorAction::Ignore
            } else if has_field(handler, "fallback") {
                let text = get_str(handler, "fallback");
                match self.expression(
                    ctx,
                    &scope,
                    &with(&path, "fallback"),
                    &text,
                    &mut action_reads,
                    Some(value),
                    "a `fallback`",
                ) {
                    Some(fallback) => ErrorAction::Fallback(fallback),
                    None => continue,
                }
            } else if let Some(status) = get_message(handler, "status") {
                match self.error_status(
                    ctx,
                    &scope,
                    &status,
                    &with(&path, "status"),
                    &mut action_reads,
                ) {
                    Some(status) => ErrorAction::Status(status),
                    None => continue,
                }
            } else if get_bool(handler, "fail") {
                ErrorAction::Fail
            } else {
                self.error_hint(
                    "this error handler does nothing",
                    Self::value_span(ctx.site, &path).0,
                    "give it one of `ignore: true`, `fallback`, `status` or `fail: true`",
                );
                continue;
            };
            let sorted = |set: &HashSet<String>| {
                let mut names: Vec<String> = set.iter().cloned().collect();
                names.sort();
                names
            };
            reads.extend(condition_reads.iter().cloned());
            reads.extend(action_reads.iter().cloned());
            handlers.push(ErrorHandlerPlan {
                condition,
                action,
                condition_reads: sorted(&condition_reads),
                action_reads: sorted(&action_reads),
            });
        }
        handlers
    }

    fn error_status(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        status: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Option<StatusPlan> {
        let code = status
            .get_field_by_name("code")
            .and_then(|c| c.as_enum_number())
            .filter(|&c| c != 0)
            .unwrap_or(13);
        let message_text = get_str(status, "message");
        let message = if message_text.trim().is_empty() {
            None
        } else {
            Some(self.expression(
                ctx,
                scope,
                &with(path, "message"),
                &message_text,
                reads,
                Some(&Type::String),
                "a status's `message`",
            )?)
        };
        let details = self.error_details(ctx, scope, status, path, reads)?;
        Some(StatusPlan {
            code,
            message,
            details,
        })
    }

    /// The `details` of a status or a validation (the message at `path`).
    pub(super) fn error_details(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        status: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Option<Vec<DetailPlan>> {
        let mut ok = true;
        let mut details = Vec::new();
        for (i, detail) in list(status, "details").iter().enumerate() {
            let Some(detail) = detail.as_message() else {
                continue;
            };
            let path = with_index(path, "details", i);
            let text = |resolver: &mut Self,
                        message: &DynamicMessage,
                        path: &[PathSegment],
                        field: &str,
                        reads: &mut HashSet<String>| {
                let source = get_str(message, field);
                if source.trim().is_empty() {
                    return Some(None);
                }
                resolver
                    .expression(
                        ctx,
                        scope,
                        &with(path, field),
                        &source,
                        reads,
                        Some(&Type::String),
                        &format!("`{field}`"),
                    )
                    .map(Some)
            };
            let strings = |resolver: &mut Self,
                           message: &DynamicMessage,
                           path: &[PathSegment],
                           fields: &[&str],
                           reads: &mut HashSet<String>|
             -> Option<Vec<Option<Expression>>> {
                let mut out = Vec::new();
                let mut all = true;
                for field in fields {
                    match text(resolver, message, path, field, reads) {
                        Some(e) => out.push(e),
                        None => all = false,
                    }
                }
                all.then_some(out)
            };
            let plan = if let Some(info) = get_message(detail, "error_info") {
                let p = with(&path, "error_info");
                let fields = strings(self, &info, &p, &["reason", "domain"], reads);
                let mut metadata = Vec::new();
                if let Some(map) = info.get_field_by_name("metadata")
                    && let Some(map) = map.as_map()
                {
                    let mut entries: Vec<(&MapKey, _)> = map.iter().collect();
                    entries.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
                    for (key, value) in entries {
                        let (Some(key), Some(value)) = (key.as_str(), value.as_str()) else {
                            continue;
                        };
                        let span = Self::value_span(ctx.site, &with(&p, "metadata")).0;
                        match self.checked_expression(
                            scope,
                            value,
                            span,
                            None,
                            reads,
                            Some(&Type::String),
                            "a metadata value",
                            Some(ctx),
                        ) {
                            Some(e) => metadata.push((key.to_owned(), e)),
                            None => ok = false,
                        }
                    }
                }
                fields.map(|f| {
                    let mut f = f.into_iter();
                    DetailPlan::ErrorInfo {
                        reason: f.next().flatten(),
                        domain: f.next().flatten(),
                        metadata,
                    }
                })
            } else if let Some(localized) = get_message(detail, "localized_message") {
                let p = with(&path, "localized_message");
                strings(self, &localized, &p, &["locale", "message"], reads).map(|f| {
                    let mut f = f.into_iter();
                    DetailPlan::LocalizedMessage {
                        locale: f.next().flatten(),
                        message: f.next().flatten(),
                    }
                })
            } else if let Some(bad) = get_message(detail, "bad_request") {
                let p = with(&path, "bad_request");
                let mut violations = Vec::new();
                for (j, v) in list(&bad, "field_violations").iter().enumerate() {
                    let Some(v) = v.as_message() else { continue };
                    let vp = with_index(&p, "field_violations", j);
                    match strings(self, v, &vp, &["field", "description"], reads) {
                        Some(f) => {
                            let mut f = f.into_iter();
                            violations.push((f.next().flatten(), f.next().flatten()));
                        }
                        None => ok = false,
                    }
                }
                Some(DetailPlan::BadRequest(violations))
            } else if let Some(pre) = get_message(detail, "precondition_failure") {
                let p = with(&path, "precondition_failure");
                let mut violations = Vec::new();
                for (j, v) in list(&pre, "violations").iter().enumerate() {
                    let Some(v) = v.as_message() else { continue };
                    let vp = with_index(&p, "violations", j);
                    match strings(self, v, &vp, &["type", "subject", "description"], reads) {
                        Some(f) => {
                            let mut f = f.into_iter();
                            violations.push((
                                f.next().flatten(),
                                f.next().flatten(),
                                f.next().flatten(),
                            ));
                        }
                        None => ok = false,
                    }
                }
                Some(DetailPlan::PreconditionFailure(violations))
            } else if let Some(resource) = get_message(detail, "resource_info") {
                let p = with(&path, "resource_info");
                strings(
                    self,
                    &resource,
                    &p,
                    &["resource_type", "resource_name", "owner", "description"],
                    reads,
                )
                .map(|f| {
                    let mut f = f.into_iter();
                    DetailPlan::ResourceInfo {
                        resource_type: f.next().flatten(),
                        resource_name: f.next().flatten(),
                        owner: f.next().flatten(),
                        description: f.next().flatten(),
                    }
                })
            } else {
                self.error(
                    "an empty detail: give it one of `error_info`, `localized_message`, `bad_request`, `precondition_failure` or `resource_info`",
                    Self::value_span(ctx.site, &path).0,
                );
                None
            };
            match plan {
                Some(plan) => details.push(plan),
                None => ok = false,
            }
        }
        ok.then_some(details)
    }
}
