//! A call step's own retry policy (`call { retry }`): attempts, codes, backoff and a condition
//! over the failed attempt's `error`, checked so that the runtime never meets a policy it must
//! correct.

use std::collections::HashSet;

use prost_reflect::DynamicMessage;

use super::Resolver;
use super::errors::CALL_ERROR;
use super::message::StepCtx;
use super::options::{get_message, get_str, list};
use super::sites::with;
use crate::expr::{self, Type};
use crate::model::*;
use crate::source::PathSegment;

/// The most attempts a call may make (gRFC A6), the first included.
const MAX_ATTEMPTS: u32 = 5;

impl Resolver<'_> {
    /// The `retry` of the call at `path` (a `CallStep`), checked.
    pub(super) fn call_retry(
        &mut self,
        ctx: &StepCtx<'_>,
        call: &DynamicMessage,
        path: &[PathSegment],
    ) -> Option<RetryPlan> {
        let rule = get_message(call, "retry")?;
        let path = with(path, "retry");
        let span = |field: &str| Self::value_span(ctx.site, &with(&path, field)).0;
        let attempts = rule
            .get_field_by_name("attempts")
            .and_then(|v| v.as_u32())
            .unwrap_or(0);
        let mut ok = true;
        if !(1..=MAX_ATTEMPTS).contains(&attempts) {
            let message = if attempts == 0 {
                "a retry policy needs `attempts`".to_owned()
            } else {
                format!(
                    "a retry policy of {attempts} attempts: a call makes at most {MAX_ATTEMPTS}"
                )
            };
            self.error_hint(
                message,
                span("attempts").or_else(|| Self::value_span(ctx.site, &path).0),
                "write `attempts` from 1 (no retries) to 5, the first attempt included",
            );
            ok = false;
        }
        let codes: Vec<i32> = list(&rule, "codes")
            .iter()
            .filter_map(|v| v.as_enum_number())
            .collect();
        if codes.contains(&0) {
            self.error_hint(
                "a retry policy cannot retry `OK`",
                span("codes"),
                "list the failure codes to retry, such as `UNAVAILABLE` or `ABORTED`",
            );
            ok = false;
        }
        let backoff = |field: &str, resolver: &mut Self| {
            let text = get_str(&rule, field);
            if text.is_empty() {
                return Ok(None);
            }
            resolver.duration(&text, span(field)).map(Some).ok_or(())
        };
        let initial_backoff = backoff("initial_backoff", self);
        let max_backoff = backoff("max_backoff", self);
        let (Ok(initial_backoff), Ok(max_backoff)) = (initial_backoff, max_backoff) else {
            return None;
        };
        if let (Some(initial), Some(max)) = (initial_backoff, max_backoff)
            && initial > max
        {
            self.error_hint(
                format!(
                    "the first backoff ({}) is longer than the longest ({})",
                    get_str(&rule, "initial_backoff"),
                    get_str(&rule, "max_backoff")
                ),
                span("initial_backoff"),
                "make `max_backoff` at least `initial_backoff`",
            );
            ok = false;
        }
        let multiplier = rule
            .get_field_by_name("multiplier")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let multiplier = if multiplier == 0.0 {
            None
        } else if multiplier.is_finite() && multiplier >= 1.0 {
            Some(multiplier)
        } else {
            self.error_hint(
                format!("a backoff multiplier of {multiplier}"),
                span("multiplier"),
                "write a multiplier of at least 1 (each backoff as long as the one before, or longer)",
            );
            ok = false;
            None
        };
        let condition_text = get_str(&rule, "if");
        let condition = if condition_text.trim().is_empty() {
            None
        } else {
            // The condition runs per failed attempt, outside the step: it reads `error` only.
            if let Ok(parsed) = expr::parse(&condition_text)
                && let Some((name, _)) = parsed
                    .names()
                    .into_iter()
                    .find(|(name, _)| ctx.defined.contains_key(name) || name == "$")
            {
                let what = if name == "$" {
                    "the input `$`".to_owned()
                } else {
                    format!("step `{name}`")
                };
                self.error_hint(
                    format!("a retry policy's `if` reads only `error`, not {what}"),
                    Self::value_span(ctx.site, &with(&path, "if")).0,
                    "decide from the failed attempt alone; a value known before the call belongs in a guard (`if`) of the step",
                );
                return None;
            }
            let scope = expr::Scope::new()
                .in_package(ctx.message.package_name())
                .with("error", Type::Message(CALL_ERROR.to_owned()));
            let mut reads = HashSet::new();
            match self.expression(
                ctx,
                &scope,
                &with(&path, "if"),
                &condition_text,
                &mut reads,
                Some(&Type::Bool),
                "a retry policy's `if`",
            ) {
                Some(condition) => Some(condition),
                None => return None,
            }
        };
        ok.then_some(RetryPlan {
            attempts,
            codes,
            initial_backoff,
            max_backoff,
            multiplier,
            condition,
        })
    }
}
