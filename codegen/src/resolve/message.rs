//! One message's rules: its input, its steps in written order (names, guards, what each step
//! reads) and its fields.

use std::collections::{HashMap, HashSet};

use prost_reflect::MessageDescriptor;

use super::MessageState;
use super::Resolver;
use super::names::{CALLER, step_ident};
use super::names::{RESERVED_NAMES, check_name};
use super::options::{get_bool, get_message, get_str, list};
use super::order::Pending;
use super::sites::OptionSite;
use super::sites::with;
use crate::expr::{self, Type};
use crate::model::*;
use crate::source::PathSegment;

impl Resolver<'_> {
    pub(super) fn resolve_message(&mut self, item: &Pending) -> Option<MessagePlan> {
        let message = &item.descriptor;
        self.message = MessageState::default();
        let site = self.message_site(message);
        if let Some(source) = self.message_aliases(message).first() {
            self.error_hint(
                format!(
                    "`{}` is an alias of `{source}`: values convert into it, so it cannot also be composed",
                    message.full_name()
                ),
                Self::span_of_site(&site),
                "compose another message, and bind its fields from this one's source",
            );
            return None;
        }
        let (input, input_type) = match &item.request {
            Some(request) => {
                // Callers come first, so every `message` step building it is known by now.
                for caller in self.callers.remove(message.full_name()).unwrap_or_default() {
                    self.error_hint(
                        format!(
                            "`{}` is the response of an edge method, so its `$` is the request `{}`; a `message` step cannot build it",
                            message.full_name(),
                            request.full_name()
                        ),
                        caller.span,
                        "build a separate message with the same fields here",
                    );
                }
                (
                    Input::Request(request.clone()),
                    Type::Message(request.full_name().to_owned()),
                )
            }
            None => {
                let args = self.infer_args(message);
                let name = self.schema.declare_args(message.full_name(), args.clone());
                (
                    Input::Args(
                        args.into_iter()
                            .map(|(name, ty)| Argument { name, ty })
                            .collect(),
                    ),
                    Type::Message(name),
                )
            }
        };

        let mut scope = expr::Scope::new().in_package(message.package_name());
        scope.insert("$", input_type);
        scope.insert(
            CALLER,
            Type::Map(Box::new(Type::String), Box::new(Type::String)),
        );
        for (name, ty) in self.deployment_scope(message) {
            scope.insert(&name, ty);
        }
        let mut defined: HashMap<String, usize> = HashMap::new();
        // Rust identifiers of the names defined so far, to catch two names mapping to one.
        let mut idents: HashMap<String, String> = HashMap::new();
        let mut steps: Vec<StepPlan> = Vec::new();
        let rule = self.message_rule(message);
        let step_values = rule.as_ref().map(|r| list(r, "def")).unwrap_or_default();
        // Names defined anywhere, to tell "read before defined" from "unknown".
        let mut all_names: Vec<String> = step_values
            .iter()
            .filter_map(|v| v.as_message().map(|m| get_str(m, "name")))
            .collect();
        // Names of captured response metadata come after: read before their call, they are
        // read before they are defined.
        all_names.extend(step_values.iter().filter_map(|v| {
            let call = get_message(v.as_message()?, "call")?;
            Some(get_str(&call, "response_metadata")).filter(|n| !n.is_empty())
        }));

        for (i, value) in step_values.iter().enumerate() {
            let Some(step) = value.as_message() else {
                continue;
            };
            let base = vec![("def".to_owned(), i)];
            let name = get_str(step, "name");
            let name_span = Self::value_span(&site, &with(&base, "name")).0;
            // Whether this step's value can be read by the name: a bad or repeated name is
            // reported here, and the step is still checked for its own mistakes.
            let mut definable = !name.is_empty();
            if !name.is_empty() {
                let ident = step_ident(&name);
                if let Err((message, hint)) = check_name(&name, "step", RESERVED_NAMES) {
                    self.error_hint(message, name_span.clone(), hint);
                    self.message.failed.insert(name.clone());
                    definable = false;
                } else if defined.contains_key(&name) || self.message.failed.contains(&name) {
                    self.error_hint(
                        format!("a step named `{name}` is already defined above"),
                        name_span.clone(),
                        "give each step of a message its own name",
                    );
                    definable = false;
                } else if let Some(other) = idents.get(&ident) {
                    self.error_hint(
                        format!(
                            "step names `{other}` and `{name}` are the same Rust identifier `{ident}`"
                        ),
                        name_span.clone(),
                        "rename one of them",
                    );
                    self.message.failed.insert(name.clone());
                    definable = false;
                } else {
                    idents.insert(ident, name.clone());
                }
            }
            let ctx = StepCtx {
                site: &site,
                base: base.clone(),
                all_names: &all_names,
                index: i,
                message,
                defined: &defined,
            };
            let mut reads = HashSet::new();
            let guard_text = get_str(step, "if");
            let guard = if guard_text.is_empty() {
                None
            } else {
                self.expression(
                    &ctx,
                    &scope,
                    &with(&base, "if"),
                    &guard_text,
                    &mut reads,
                    Some(&Type::Bool),
                    "a guard (`if`)",
                )
            };
            let body = self.step_body(&ctx, &scope, step, &mut reads);
            let Some((body, ty)) = body else {
                if definable {
                    self.message.failed.insert(name);
                }
                continue;
            };
            let reads_caller = reads.contains(CALLER) && !defined.contains_key(CALLER);
            let reads_input = reads.contains("$");
            let reads_env = reads.iter().any(|n| n.starts_with(super::ENV_PREFIX));
            let lazy: Vec<usize> = match &body {
                StepBody::Call(call) => {
                    let mut lazy: Vec<usize> = call
                        .lazy_reads
                        .iter()
                        .filter_map(|n| defined.get(n).copied())
                        .collect();
                    lazy.sort_unstable();
                    lazy
                }
                _ => Vec::new(),
            };
            let mut reads: Vec<usize> = reads
                .into_iter()
                .filter_map(|n| defined.get(&n).copied())
                .collect();
            // A step written after a validation waits for it: rejecting comes first.
            for (j, earlier) in steps.iter().enumerate() {
                if matches!(earlier.body, StepBody::Validation(_)) && !reads.contains(&j) {
                    reads.push(j);
                }
            }
            reads.sort_unstable();
            reads.dedup();
            let index = steps.len();
            if definable {
                match &body {
                    StepBody::Validation(_) => scope.insert_valueless(&name, "a validation"),
                    StepBody::Log(_) => scope.insert_valueless(&name, "a log step"),
                    _ => {
                        defined.insert(name.clone(), index);
                        scope.insert(&name, ty.clone());
                        if let Some(guard) = &guard {
                            scope.insert_guard(&name, (*guard.checked).clone());
                        }
                    }
                }
            }
            let autobind = get_bool(step, "autobind");
            steps.push(StepPlan {
                name: (!name.is_empty()).then_some(name),
                guard,
                body,
                reads,
                ty,
                autobind,
                reads_caller,
                reads_input,
                reads_env,
                lazy,
            });
            self.response_metadata_step(
                step,
                &site,
                &base,
                index,
                &mut steps,
                &mut defined,
                &mut idents,
                &mut scope,
            );
            if autobind && !matches!(steps[index].ty, Type::Message(_)) {
                self.error_hint(
                    format!(
                        "`autobind` needs a step whose value is a message, but this step's is {}",
                        steps[index].ty
                    ),
                    Self::value_span(&site, &with(&base, "autobind")).0,
                    "remove `autobind`, and bind fields from the step with `(mosaic.v1.field).by`",
                );
            }
        }

        let custom_rule = rule.as_ref().and_then(|r| get_message(r, "custom"));
        let (fields, reads_caller) = match custom_rule {
            Some(_) => (Vec::new(), false),
            None => self.bind_fields(message, &scope, &steps, &site),
        };
        let custom = match custom_rule {
            Some(custom) => {
                let reads_span = |i: usize| {
                    Self::value_span(&site, &[("custom".into(), 0), ("reads".into(), i)]).0
                };
                for field in message.fields() {
                    if !field.options().has_extension(&self.ext.field) {
                        continue;
                    }
                    let field_site = self.site(message.parent_file().name(), field.path(), false);
                    self.error_hint(
                        format!(
                            "field `{}` has a rule, but `{}` is `custom`: the implementation computes all of it",
                            field.name(),
                            message.full_name()
                        ),
                        Self::span_of_site(&field_site),
                        "remove the field's rule",
                    );
                }
                let mut reads = HashSet::new();
                let read_steps =
                    self.custom_reads(&custom, &defined, &[], reads_span, &mut reads)?;
                Some(CustomPlan {
                    item: CustomItem::Message,
                    reads: read_steps,
                    ty: Type::Message(message.full_name().to_owned()),
                })
            }
            None => None,
        };
        let deployment = if self.message.reads_env {
            self.deployment_service(message)
        } else {
            None
        };
        Some(MessagePlan {
            descriptor: message.clone(),
            input,
            steps,
            fields,
            reads_caller,
            custom,
            custom_service: None,
            deployment,
        })
    }
}

impl Resolver<'_> {
    /// For a call step with `response_metadata`, the step that names the call's response
    /// metadata, defined right after it; in a `map`'s call, a diagnostic.
    #[allow(clippy::too_many_arguments)]
    fn response_metadata_step(
        &mut self,
        step: &prost_reflect::DynamicMessage,
        site: &Option<OptionSite>,
        base: &[PathSegment],
        index: usize,
        steps: &mut Vec<StepPlan>,
        defined: &mut HashMap<String, usize>,
        idents: &mut HashMap<String, String>,
        scope: &mut expr::Scope,
    ) {
        if let Some(map) = get_message(step, "map")
            && let Some(call) = get_message(&map, "call")
            && !get_str(&call, "response_metadata").is_empty()
        {
            let path = with(&with(&with(base, "map"), "call"), "response_metadata");
            self.error_hint(
                "a `map`'s call cannot capture `response_metadata`: each element has its own",
                Self::value_span(site, &path).0,
                "call once in a step of its own to read its response metadata",
            );
            return;
        }
        let Some(call) = get_message(step, "call") else {
            return;
        };
        let name = get_str(&call, "response_metadata");
        if name.is_empty() {
            return;
        }
        let span = Self::value_span(site, &with(&with(base, "call"), "response_metadata")).0;
        let ident = step_ident(&name);
        if let Err((message, hint)) = check_name(&name, "step", RESERVED_NAMES) {
            self.error_hint(message, span, hint);
            return;
        }
        if defined.contains_key(&name) || idents.contains_key(&ident) {
            self.error_hint(
                format!("a step named `{name}` is already defined above"),
                span,
                "give the response metadata a name of its own",
            );
            return;
        }
        let StepBody::Call(plan) = &mut steps[index].body else {
            return;
        };
        plan.captures_metadata = true;
        let ty = Type::Map(Box::new(Type::String), Box::new(Type::String));
        idents.insert(ident, name.clone());
        defined.insert(name.clone(), steps.len());
        scope.insert(&name, ty.clone());
        steps.push(StepPlan {
            name: Some(name),
            guard: None,
            body: StepBody::ResponseMetadata(index),
            reads: vec![index],
            ty,
            autobind: false,
            reads_caller: false,
            reads_input: false,
            reads_env: false,
            lazy: Vec::new(),
        });
    }
}

/// Context of the step being resolved, for positions and name checks.
pub(super) struct StepCtx<'s> {
    pub(super) site: &'s Option<OptionSite>,
    pub(super) base: Vec<PathSegment>,
    pub(super) all_names: &'s [String],
    pub(super) index: usize,
    pub(super) message: &'s MessageDescriptor,
    /// The steps defined above this one, by name, with their indices.
    pub(super) defined: &'s HashMap<String, usize>,
}
