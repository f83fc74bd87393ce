//! Checking: descriptors and `mosaic.v1` options to the checked IR, or every problem found.
//!
//! The resolver reads the options of every edge service and of every message reachable from
//! them, resolves names (methods, messages, fields, steps), parses and type-checks every
//! expression, infers the arguments of messages built by `message` steps from their callers,
//! finds cycles, and checks that every field of a message with rules gets a value. Problems are
//! collected, never thrown: a run reports all of them at once, each pointing at the exact bytes
//! of the proto that caused it.
//!
//! **Architecture Invariant:** all checks happen here, before anything is emitted; emission may
//! assume a consistent model.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use prost_reflect::{
    DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ReflectMessage, Value,
};
use quote::format_ident;

use crate::diagnostic::{Diagnostic, SourceFile, Span};
use crate::expr::{self, Type};
use crate::load::Loaded;
use crate::model::*;
use crate::schema::{ARGS_SUFFIX, PoolSchema, field_info};
use crate::source::{OptionTree, PathSegment, ValueSpan, option_value};

/// The extension number every `mosaic.v1` option uses.
pub const EXTENSION_NUMBER: i32 = 52731;

/// Resolves and checks; returns the model and its schema, or every diagnostic.
pub fn resolve(loaded: &Loaded) -> Result<(Model, PoolSchema), Vec<Diagnostic>> {
    let mut resolver = Resolver::new(loaded)?;
    let model = resolver.run();
    if resolver.diagnostics.is_empty() {
        Ok((model, resolver.schema))
    } else {
        Err(resolver.diagnostics)
    }
}

struct Extensions {
    service: ExtensionDescriptor,
    method: ExtensionDescriptor,
    message: ExtensionDescriptor,
    field: ExtensionDescriptor,
}

/// A message waiting to be resolved, with who builds it.
struct Pending {
    descriptor: MessageDescriptor,
    /// For response messages: the request type. For built messages: `None`.
    request: Option<MessageDescriptor>,
}

/// The arguments one `message` step passes, and where it is.
struct CallerArgs {
    /// Name, type ([`Type::Error`] when its expression has an error, reported already) and
    /// the span of its `by`, for each argument.
    args: Vec<(String, Type, Option<Span>)>,
    /// The message name in the `message` step.
    span: Option<Span>,
    /// The name of the step, when it has one.
    step: String,
}

struct Resolver<'a> {
    loaded: &'a Loaded,
    ext: Extensions,
    schema: PoolSchema,
    diagnostics: Vec<Diagnostic>,
    /// Argument sets passed to each built message, by caller site.
    callers: HashMap<String, Vec<CallerArgs>>,
    /// Names of the steps of the message being resolved that failed with a reported error:
    /// reading one reports nothing more (the mistake is reported once, where it is).
    failed: HashSet<String>,
    /// Arguments of the message being resolved whose every caller's expression has an error:
    /// reading `$.<name>` reports nothing more.
    failed_args: HashSet<String>,
    /// Whether the message being resolved is built only by steps in error (reported there), so
    /// that its arguments are unknown: reading `$` reports nothing more.
    failed_input: bool,
    /// Whether a field binding of the message being resolved reads `caller`.
    reads_caller: bool,
    /// Resilience defaults of downstream methods, read (and checked) once per method.
    call_defaults: HashMap<String, CallDefaults>,
}

impl<'a> Resolver<'a> {
    fn new(loaded: &'a Loaded) -> Result<Self, Vec<Diagnostic>> {
        let pool = &loaded.pool;
        let get = |name: &str| {
            pool.get_extension_by_name(name).ok_or_else(|| {
                vec![Diagnostic::error(
                    format!("the built-in option `{name}` is missing"),
                    None,
                )]
            })
        };
        let ext = Extensions {
            service: get("mosaic.v1.service")?,
            method: get("mosaic.v1.method")?,
            message: get("mosaic.v1.message")?,
            field: get("mosaic.v1.field")?,
        };
        Ok(Self {
            loaded,
            ext,
            schema: PoolSchema::new(pool.clone()),
            diagnostics: Vec::new(),
            callers: HashMap::new(),
            failed: HashSet::new(),
            failed_args: HashSet::new(),
            failed_input: false,
            reads_caller: false,
            call_defaults: HashMap::new(),
        })
    }

    fn error(&mut self, message: impl Into<String>, span: Option<Span>) {
        self.diagnostics.push(Diagnostic::error(message, span));
    }

    fn error_hint(
        &mut self,
        message: impl Into<String>,
        span: Option<Span>,
        hint: impl Into<String>,
    ) {
        self.diagnostics
            .push(Diagnostic::error(message, span).with_hint(hint));
    }

    // --- source positions ---

    /// The location of the element at `path` in `file` (a protobuf source-info path).
    fn site(&self, file_name: &str, path: &[i32], aggregate: bool) -> Option<OptionSite> {
        option_site(self.loaded, file_name, path, aggregate)
    }

    fn span_of_site(site: &Option<OptionSite>) -> Option<Span> {
        site.as_ref().map(|s| Span::new(&s.file, s.whole.clone()))
    }

    /// The span of a value inside an aggregate option, falling back to the whole option.
    fn value_span(
        site: &Option<OptionSite>,
        path: &[PathSegment],
    ) -> (Option<Span>, Option<ValueSpan>) {
        let Some(site) = site else {
            return (None, None);
        };
        let value = site.tree.as_ref().and_then(|t| t.value(path)).cloned();
        match &value {
            Some(v) => (Some(Span::new(&site.file, v.range.clone())), value),
            None => {
                let name = site.tree.as_ref().and_then(|t| t.name(path));
                let range = name.unwrap_or_else(|| site.whole.clone());
                (Some(Span::new(&site.file, range)), None)
            }
        }
    }

    // --- the run ---

    fn run(&mut self) -> Model {
        let mut model = Model::default();
        let mut pending: Vec<Pending> = Vec::new();
        let mut responses: HashMap<String, (MessageDescriptor, Option<Span>)> = HashMap::new();

        let services: Vec<_> = self
            .loaded
            .roots
            .iter()
            .filter_map(|name| self.loaded.pool.get_file_by_name(name))
            .flat_map(|file| file.services().collect::<Vec<_>>())
            .collect();
        for service in services {
            if !service.options().has_extension(&self.ext.service) {
                continue;
            }
            let mut methods = Vec::new();
            for method in service.methods() {
                if method.is_client_streaming() || method.is_server_streaming() {
                    let site = self.site(service.parent_file().name(), method.path(), false);
                    self.error(
                        format!(
                            "`{}` streams; generated edge methods are unary",
                            method.full_name()
                        ),
                        Self::span_of_site(&site),
                    );
                    continue;
                }
                let timeout = self.method_timeout(&method);
                let output = method.output();
                let site = self.site(service.parent_file().name(), method.path(), false);
                let span = Self::span_of_site(&site);
                if !self.has_rules(&output) {
                    self.error_hint(
                        format!(
                            "`{}` returns `{}`, which has no composition rules",
                            method.full_name(),
                            output.full_name()
                        ),
                        span.clone(),
                        "add `option (mosaic.v1.message)` steps or `(mosaic.v1.field).by` to its fields",
                    );
                    continue;
                }
                match responses.get(output.full_name()) {
                    Some((request, _)) if request.full_name() != method.input().full_name() => {
                        let first = request.full_name().to_owned();
                        self.error(
                            format!(
                                "`{}` is the response of methods with different requests (`{first}` and `{}`); `$` must have one type",
                                output.full_name(),
                                method.input().full_name()
                            ),
                            span,
                        );
                    }
                    Some(_) => {}
                    None => {
                        responses.insert(output.full_name().to_owned(), (method.input(), span));
                        pending.push(Pending {
                            descriptor: output.clone(),
                            request: Some(method.input()),
                        });
                    }
                }
                methods.push(EdgeMethod {
                    descriptor: method,
                    timeout,
                });
            }
            model.services.push(EdgeService {
                descriptor: service,
                methods,
            });
        }

        // Discover every message built by `message` steps, and order callers before callees.
        let order = self.order_messages(pending);
        let mut plans = Vec::new();
        for item in order {
            if let Some(plan) = self.resolve_message(&item) {
                plans.push(plan);
            }
        }
        // Emission wants callees first.
        plans.reverse();
        model.messages = plans;
        model
    }

    fn has_rules(&self, message: &MessageDescriptor) -> bool {
        message.options().has_extension(&self.ext.message)
            || message
                .fields()
                .any(|f| f.options().has_extension(&self.ext.field))
    }

    fn method_timeout(&mut self, method: &MethodDescriptor) -> Option<Duration> {
        let options = method.options();
        if !options.has_extension(&self.ext.method) {
            return None;
        }
        let rule = options.get_extension(&self.ext.method);
        let text = rule
            .as_message()?
            .get_field_by_name("timeout")?
            .as_str()?
            .to_owned();
        if text.is_empty() {
            return None;
        }
        let mut path = method.path().to_vec();
        path.extend([4, EXTENSION_NUMBER]);
        let site = self.site(method.parent_file().name(), &path, true);
        let (span, _) = Self::value_span(&site, &[("timeout".into(), 0)]);
        self.duration(&text, span)
    }

    /// A downstream method's resilience defaults: `idempotency_level` and the `mosaic.v1.method`
    /// annotation's `timeout`, `idempotent`, `retry_attempts` and `hedge_delay`.
    fn call_defaults(&mut self, method: &MethodDescriptor) -> CallDefaults {
        if let Some(known) = self.call_defaults.get(method.full_name()) {
            return *known;
        }
        // NO_SIDE_EFFECTS = 1, IDEMPOTENT = 2 (descriptor.proto).
        let level = method
            .method_descriptor_proto()
            .options
            .as_ref()
            .and_then(|options| options.idempotency_level)
            .unwrap_or_default();
        let mut defaults = CallDefaults {
            idempotent: matches!(level, 1 | 2),
            ..CallDefaults::default()
        };
        let options = method.options();
        if options.has_extension(&self.ext.method) {
            let rule = options.get_extension(&self.ext.method);
            if let Some(rule) = rule.as_message() {
                let mut path = method.path().to_vec();
                path.extend([4, EXTENSION_NUMBER]);
                let site = self.site(method.parent_file().name(), &path, true);
                let span_of = |field: &str| Self::value_span(&site, &[(field.to_owned(), 0)]).0;
                defaults.timeout = self.method_timeout(method);
                if rule
                    .get_field_by_name("idempotent")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false)
                {
                    defaults.idempotent = true;
                }
                let attempts = rule
                    .get_field_by_name("retry_attempts")
                    .and_then(|v| v.as_u32())
                    .unwrap_or(0);
                match attempts {
                    0 => {}
                    1..=5 => defaults.max_attempts = Some(attempts),
                    _ => self.error_hint(
                        format!("`retry_attempts` of {attempts} is more than 5"),
                        span_of("retry_attempts"),
                        "gRPC caps attempts at 5 (the first included); write 1 to 5",
                    ),
                }
                let hedge = rule
                    .get_field_by_name("hedge_delay")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                if !hedge.is_empty() {
                    let span = span_of("hedge_delay");
                    defaults.hedge_delay = self.duration(&hedge, span.clone());
                    if !defaults.idempotent {
                        self.error_hint(
                            format!(
                                "`{}/{}` is hedged but not declared idempotent; a hedge repeats the call",
                                method.parent_service().full_name(),
                                method.name()
                            ),
                            span,
                            "add `idempotent: true` to its `mosaic.v1.method`, or \
                             `option idempotency_level = IDEMPOTENT;`",
                        );
                        defaults.hedge_delay = None;
                    }
                }
            }
        }
        self.call_defaults
            .insert(method.full_name().to_owned(), defaults);
        defaults
    }

    fn duration(&mut self, text: &str, span: Option<Span>) -> Option<Duration> {
        match parse_duration(text) {
            Ok(duration) => Some(duration),
            Err(problem) => {
                self.error_hint(
                    format!("malformed duration `{text}`: {problem}"),
                    span,
                    "write a number and a unit: `800ms`, `2s`, `1.5s`, `1m` (units: ns, us, ms, s, m, h)",
                );
                None
            }
        }
    }

    /// Breadth-first from the response messages through `message` steps; callers come before
    /// callees. Cycles are reported with their path.
    fn order_messages(&mut self, roots: Vec<Pending>) -> Vec<Pending> {
        let mut edges: BTreeMap<String, Vec<(MessageDescriptor, Option<Span>)>> = BTreeMap::new();
        let mut known: HashMap<String, Pending> = HashMap::new();
        let mut queue: Vec<MessageDescriptor> = Vec::new();
        for root in roots {
            queue.push(root.descriptor.clone());
            known.insert(root.descriptor.full_name().to_owned(), root);
        }
        let mut i = 0;
        while i < queue.len() {
            let message = queue[i].clone();
            i += 1;
            for (target, span) in self.built_messages(&message) {
                edges
                    .entry(message.full_name().to_owned())
                    .or_default()
                    .push((target.clone(), span));
                if !known.contains_key(target.full_name()) {
                    known.insert(
                        target.full_name().to_owned(),
                        Pending {
                            descriptor: target.clone(),
                            request: None,
                        },
                    );
                    queue.push(target);
                }
            }
        }
        // Topological order by depth-first search; a back edge is a cycle.
        let mut state: HashMap<String, u8> = HashMap::new(); // 1 = on stack, 2 = done
        let mut post: Vec<String> = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        let names: Vec<String> = queue.iter().map(|m| m.full_name().to_owned()).collect();
        for name in &names {
            self.visit(name, &edges, &mut state, &mut post, &mut stack);
        }
        post.reverse();
        post.into_iter()
            .filter_map(|name| known.remove(&name))
            .collect()
    }

    fn visit(
        &mut self,
        name: &str,
        edges: &BTreeMap<String, Vec<(MessageDescriptor, Option<Span>)>>,
        state: &mut HashMap<String, u8>,
        post: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) {
        match state.get(name) {
            Some(2) => return,
            Some(_) => return,
            None => {}
        }
        state.insert(name.to_owned(), 1);
        stack.push(name.to_owned());
        for (target, span) in edges.get(name).into_iter().flatten() {
            let target_name = target.full_name().to_owned();
            if state.get(&target_name) == Some(&1) {
                let start = stack.iter().position(|n| *n == target_name).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
                cycle.push(&target_name);
                self.error_hint(
                    format!(
                        "messages build each other in a cycle: {}",
                        cycle.join(" => ")
                    ),
                    span.clone(),
                    "a message cannot be built, directly or through others, from its own rules",
                );
                continue;
            }
            self.visit(&target_name, edges, state, post, stack);
        }
        stack.pop();
        state.insert(name.to_owned(), 2);
        post.push(name.to_owned());
    }

    /// The messages a message's steps build (`message` bodies, directly or in `map`).
    fn built_messages(
        &mut self,
        message: &MessageDescriptor,
    ) -> Vec<(MessageDescriptor, Option<Span>)> {
        let mut found = Vec::new();
        let Some(rule) = self.message_rule(message) else {
            return found;
        };
        let site = self.message_site(message);
        for (i, step) in list(&rule, "def").iter().enumerate() {
            let Some(step) = step.as_message() else {
                continue;
            };
            let (body, prefix) = if let Some(m) = get_message(step, "message") {
                (m, vec![("def".to_owned(), i), ("message".to_owned(), 0)])
            } else if let Some(map) = get_message(step, "map") {
                match get_message(&map, "message") {
                    Some(m) => (
                        m,
                        vec![
                            ("def".to_owned(), i),
                            ("map".to_owned(), 0),
                            ("message".to_owned(), 0),
                        ],
                    ),
                    None => continue,
                }
            } else {
                continue;
            };
            let name = get_str(&body, "name");
            let mut path = prefix.clone();
            path.push(("name".to_owned(), 0));
            let (span, _) = Self::value_span(&site, &path);
            // An unknown message, or one without rules, is reported (once) when the step
            // itself is resolved; there is nothing to build.
            if let Some(target) = self.find_message(&name, message)
                && self.has_rules(&target)
            {
                found.push((target, span));
            }
        }
        found
    }

    fn message_rule(&self, message: &MessageDescriptor) -> Option<DynamicMessage> {
        let options = message.options();
        if !options.has_extension(&self.ext.message) {
            return None;
        }
        options
            .get_extension(&self.ext.message)
            .as_message()
            .cloned()
    }

    fn message_site(&self, message: &MessageDescriptor) -> Option<OptionSite> {
        let mut path = message.path().to_vec();
        path.extend([7, EXTENSION_NUMBER]);
        self.site(message.parent_file().name(), &path, true)
    }

    /// A message by name: relative to the referring message's package, or fully qualified.
    fn find_message(&self, name: &str, from: &MessageDescriptor) -> Option<MessageDescriptor> {
        let pool = &self.loaded.pool;
        let name = name.strip_prefix('.').unwrap_or(name);
        let package = from.package_name();
        if !package.is_empty()
            && let Some(found) = pool.get_message_by_name(&format!("{package}.{name}"))
        {
            return Some(found);
        }
        pool.get_message_by_name(name)
    }

    // --- one message ---

    fn resolve_message(&mut self, item: &Pending) -> Option<MessagePlan> {
        let message = &item.descriptor;
        self.failed_args.clear();
        self.failed_input = false;
        let site = self.message_site(message);
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

        let mut scope = expr::Scope::new();
        scope.insert("$", input_type, quote::quote!(input));
        scope.insert(
            CALLER,
            Type::Map(Box::new(Type::String), Box::new(Type::String)),
            quote::quote!(caller),
        );
        self.reads_caller = false;
        let mut defined: HashMap<String, usize> = HashMap::new();
        // Rust identifiers of the names defined so far, to catch two names mapping to one.
        let mut idents: HashMap<String, String> = HashMap::new();
        self.failed.clear();
        let mut steps: Vec<StepPlan> = Vec::new();
        let rule = self.message_rule(message);
        let step_values = rule.as_ref().map(|r| list(r, "def")).unwrap_or_default();
        // Names defined anywhere, to tell "read before defined" from "unknown".
        let all_names: Vec<String> = step_values
            .iter()
            .filter_map(|v| v.as_message().map(|m| get_str(m, "name")))
            .collect();

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
                    self.failed.insert(name.clone());
                    definable = false;
                } else if defined.contains_key(&name) || self.failed.contains(&name) {
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
                    self.failed.insert(name.clone());
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
                    self.failed.insert(name);
                }
                continue;
            };
            let reads_caller = reads.contains(CALLER) && !defined.contains_key(CALLER);
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
                defined.insert(name.clone(), index);
                let ident = format_ident!("{}", step_ident(&name));
                scope.insert(&name, ty.clone(), quote::quote!(#ident));
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
            });
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

        self.reads_caller = false;
        let fields = self.bind_fields(message, &scope, &steps, &site);
        Some(MessagePlan {
            descriptor: message.clone(),
            input,
            steps,
            fields,
            reads_caller: self.reads_caller,
        })
    }

    /// The arguments of a built message: every caller passes the same names with the same
    /// types. Arguments whose expressions have errors in every caller are left out and listed
    /// in `failed_args`.
    fn infer_args(&mut self, message: &MessageDescriptor) -> Vec<(String, Type)> {
        let callers = self.callers.remove(message.full_name()).unwrap_or_default();
        let Some(first) = callers.first() else {
            // Every step building it is in error.
            self.failed_input = true;
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
                    self.failed_args.insert(name);
                }
            }
        }
        args
    }

    fn step_body(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        step: &DynamicMessage,
        reads: &mut HashSet<String>,
    ) -> Option<(StepBody, Type)> {
        let base = &ctx.base;
        let bodies: Vec<&str> = ["by", "call", "message", "map", "validation"]
            .into_iter()
            .filter(|f| has_field(step, f))
            .collect();
        match bodies.as_slice() {
            ["by"] => {
                let text = get_str(step, "by");
                let e =
                    self.expression(ctx, scope, &with(base, "by"), &text, reads, None, "`by`")?;
                let ty = e.checked.ty.clone();
                Some((StepBody::By(e), ty))
            }
            ["call"] => {
                let call = get_message(step, "call")?;
                let plan = self.call(ctx, scope, &call, &with(base, "call"), reads)?;
                let ty = Type::Message(plan.method.output().full_name().to_owned());
                Some((StepBody::Call(plan), ty))
            }
            ["message"] => {
                let m = get_message(step, "message")?;
                let call = self.message_call(ctx, scope, &m, &with(base, "message"), reads)?;
                let ty = Type::Message(call.target.full_name().to_owned());
                Some((StepBody::Message(call), ty))
            }
            ["map"] => {
                let map = get_message(step, "map")?;
                let plan = self.map(ctx, scope, &map, &with(base, "map"), reads)?;
                let element = match &plan.body {
                    MapBody::By(e) => e.checked.ty.clone(),
                    MapBody::Call(c) => Type::Message(c.method.output().full_name().to_owned()),
                    MapBody::Message(m) => Type::Message(m.target.full_name().to_owned()),
                };
                Some((StepBody::Map(plan), Type::List(Box::new(element))))
            }
            ["validation"] => {
                let v = get_message(step, "validation")?;
                let path = with(base, "validation");
                let condition_text = get_str(&v, "if");
                if condition_text.is_empty() {
                    self.error(
                        "a validation needs an `if` condition",
                        Self::value_span(ctx.site, &path).0,
                    );
                    return None;
                }
                let condition = self.expression(
                    ctx,
                    scope,
                    &with(&path, "if"),
                    &condition_text,
                    reads,
                    Some(&Type::Bool),
                    "a validation's `if`",
                );
                let message_text = get_str(&v, "message");
                let message_text = if message_text.is_empty() {
                    format!(
                        "'request rejected: {}'",
                        condition_text.replace('\'', "\\'")
                    )
                } else {
                    message_text
                };
                let message = self.expression(
                    ctx,
                    scope,
                    &with(&path, "message"),
                    &message_text,
                    reads,
                    Some(&Type::String),
                    "a validation's `message`",
                );
                let code = v
                    .get_field_by_name("code")
                    .and_then(|c| c.as_enum_number())
                    .filter(|&c| c != 0)
                    .unwrap_or(3);
                Some((
                    StepBody::Validation(ValidationPlan {
                        condition: condition?,
                        code,
                        message: message?,
                    }),
                    Type::Bool,
                ))
            }
            [] => {
                let message = match ctx.all_names.get(ctx.index) {
                    Some(name) if !name.is_empty() => format!("step `{name}` computes nothing"),
                    _ => "this step computes nothing".to_owned(),
                };
                self.error_hint(
                    message,
                    Self::value_span(ctx.site, base).0,
                    "give it one of `by`, `call`, `message`, `map` or `validation`",
                );
                None
            }
            _ => None, // a oneof: protox already rejects two bodies
        }
    }

    fn call(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        call: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Option<CallPlan> {
        let method_name = get_str(call, "method");
        if method_name.is_empty() {
            self.error_hint(
                "a `call` needs a `method`",
                Self::value_span(ctx.site, path).0,
                "name the downstream method as `package.Service/Method`",
            );
            return None;
        }
        let (method_span, method_value) = Self::value_span(ctx.site, &with(path, "method"));
        let method = self.find_method(&method_name, method_span, method_value)?;
        let timeout_text = get_str(call, "timeout");
        let timeout = if timeout_text.is_empty() {
            None
        } else {
            let span = Self::value_span(ctx.site, &with(path, "timeout")).0;
            self.duration(&timeout_text, span)
        };
        let input = method.input();
        let mut request = Vec::new();
        let mut seen = HashSet::new();
        for (j, field_value) in list(call, "request").iter().enumerate() {
            let Some(field_rule) = field_value.as_message() else {
                continue;
            };
            let field_path = with_index(path, "request", j);
            let name = get_str(field_rule, "field");
            let name_span = Self::value_span(ctx.site, &with(&field_path, "field")).0;
            let Some(field) = input.get_field_by_name(&name) else {
                let names: Vec<String> = input.fields().map(|f| f.name().to_owned()).collect();
                let message = format!(
                    "no field `{name}` on `{}`, the request of `{method_name}`",
                    input.full_name()
                );
                match suggest(&name, &names) {
                    Some(s) => self.error_hint(message, name_span, format!("did you mean `{s}`?")),
                    None => self.error_hint(
                        message,
                        name_span,
                        format!("its fields are: {}", names.join(", ")),
                    ),
                }
                continue;
            };
            if !seen.insert(name.clone()) {
                self.error_hint(
                    format!("request field `{name}` is set twice"),
                    name_span,
                    "set each request field once",
                );
                continue;
            }
            let text = get_str(field_rule, "by");
            let target = field_info(&field).ty;
            if let Some(e) = self.expression(
                ctx,
                scope,
                &with(&field_path, "by"),
                &text,
                reads,
                None,
                "a request field's `by`",
            ) {
                let by_span = Self::value_span(ctx.site, &with(&field_path, "by")).0;
                self.check_binding(&e.checked.ty, &field, &target, by_span);
                request.push((field, e));
            }
        }
        let defaults = self.call_defaults(&method);
        Some(CallPlan {
            method,
            request,
            timeout,
            defaults,
        })
    }

    fn find_method(
        &mut self,
        name: &str,
        span: Option<Span>,
        value: Option<ValueSpan>,
    ) -> Option<MethodDescriptor> {
        let Some((service_name, method_name)) = name.split_once('/') else {
            // `pkg.Service.Method` for `pkg.Service/Method` is the likely slip.
            let slashed = name.rsplit_once('.').and_then(|(service, method)| {
                let found = self.loaded.pool.get_service_by_name(service)?;
                found
                    .methods()
                    .any(|m| m.name() == method)
                    .then(|| format!("{service}/{method}"))
            });
            let hint = match slashed {
                Some(fixed) => format!("a `/` separates the service from the method: `{fixed}`"),
                None => "write it as `package.Service/Method`, such as `demo.users.v1.UserService/GetUser`".to_owned(),
            };
            self.error_hint(format!("`{name}` is not a method reference"), span, hint);
            return None;
        };
        let service_span = sub_span(&span, &value, 0..service_name.len());
        let method_span = sub_span(&span, &value, service_name.len() + 1..name.len());
        let Some(service) = self.loaded.pool.get_service_by_name(service_name) else {
            let services: Vec<String> = self
                .loaded
                .pool
                .services()
                .map(|s| s.full_name().to_owned())
                .collect();
            let hint = match suggest(service_name, &services) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "is the proto that defines it imported?".to_owned(),
            };
            self.error_hint(
                format!("unknown service `{service_name}`"),
                service_span,
                hint,
            );
            return None;
        };
        let Some(method) = service.methods().find(|m| m.name() == method_name) else {
            let methods: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
            let message = format!("no method `{method_name}` on `{service_name}`");
            match suggest(method_name, &methods) {
                Some(s) => self.error_hint(message, method_span, format!("did you mean `{s}`?")),
                None => self.error_hint(
                    message,
                    method_span,
                    format!("its methods are: {}", methods.join(", ")),
                ),
            }
            return None;
        };
        if method.is_client_streaming() || method.is_server_streaming() {
            self.error(
                format!("`{name}` streams; `call` takes unary methods only"),
                span,
            );
            return None;
        }
        Some(method)
    }

    fn message_call(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        m: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Option<MessageCall> {
        let name = get_str(m, "name");
        let span = Self::value_span(ctx.site, &with(path, "name")).0;
        let Some(target) = self.find_message(&name, ctx.message) else {
            let hint = match self.suggest_message(&name, ctx.message) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "name a message of this package, or give its full name".to_owned(),
            };
            self.error_hint(format!("unknown message `{name}`"), span, hint);
            return None;
        };
        if !self.has_rules(&target) {
            self.error_hint(
                format!(
                    "`{}` has no composition rules, so it cannot be built by a `message` step",
                    target.full_name()
                ),
                span.clone(),
                "add `(mosaic.v1.field).by` to its fields",
            );
        }
        let mut args = Vec::new();
        let mut types = Vec::new();
        let mut arg_idents: HashMap<String, String> = HashMap::new();
        for (j, arg) in list(m, "args").iter().enumerate() {
            let Some(arg) = arg.as_message() else {
                continue;
            };
            let arg_path = with_index(path, "args", j);
            let arg_name = get_str(arg, "name");
            let arg_span = Self::value_span(ctx.site, &with(&arg_path, "name")).0;
            if let Err((message, hint)) = check_name(&arg_name, "argument", &[]) {
                self.error_hint(message, arg_span, hint);
                continue;
            }
            if let Some(other) = arg_idents.insert(step_ident(&arg_name), arg_name.clone()) {
                let message = if other == arg_name {
                    format!("argument `{arg_name}` is passed twice")
                } else {
                    format!(
                        "arguments `{other}` and `{arg_name}` are the same Rust identifier `{}`",
                        step_ident(&arg_name)
                    )
                };
                self.error(message, arg_span);
                continue;
            }
            let text = get_str(arg, "by");
            let by_path = with(&arg_path, "by");
            let by_span = Self::value_span(ctx.site, &by_path).0;
            match self.expression(
                ctx,
                scope,
                &by_path,
                &text,
                reads,
                None,
                "an argument's `by`",
            ) {
                Some(e) => {
                    types.push((arg_name.clone(), e.checked.ty.clone(), by_span));
                    args.push((arg_name, e));
                }
                None => types.push((arg_name, Type::Error, by_span)),
            }
        }
        let step = ctx.all_names.get(ctx.index).cloned().unwrap_or_default();
        self.callers
            .entry(target.full_name().to_owned())
            .or_default()
            .push(CallerArgs {
                args: types,
                span,
                step,
            });
        Some(MessageCall { target, args })
    }

    fn map(
        &mut self,
        ctx: &StepCtx<'_>,
        scope: &expr::Scope,
        map: &DynamicMessage,
        path: &[PathSegment],
        reads: &mut HashSet<String>,
    ) -> Option<MapPlan> {
        let Some(iterator) = get_message(map, "iterator") else {
            self.error(
                "a `map` needs an `iterator { name src }`",
                Self::value_span(ctx.site, path).0,
            );
            return None;
        };
        let iter_path = with(path, "iterator");
        let name = get_str(&iterator, "name");
        if let Err((message, hint)) = check_name(&name, "iterator", RESERVED_NAMES) {
            self.error_hint(
                message,
                Self::value_span(ctx.site, &with(&iter_path, "name")).0,
                hint,
            );
            return None;
        }
        let src_text = get_str(&iterator, "src");
        let src = self.expression(
            ctx,
            scope,
            &with(&iter_path, "src"),
            &src_text,
            reads,
            None,
            "an iterator's `src`",
        )?;
        let element = match &src.checked.ty {
            Type::List(element) => (**element).clone(),
            Type::Error => Type::Error,
            other => {
                let lists: Vec<String> = match other {
                    Type::Message(name) => self
                        .loaded
                        .pool
                        .get_message_by_name(name)
                        .map(|m| {
                            m.fields()
                                .filter(|f| f.is_list())
                                .map(|f| format!("`{}.{}`", src_text.trim(), f.name()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                let message = format!("an iterator's `src` must be a list, found {other}");
                let span = Self::value_span(ctx.site, &with(&iter_path, "src")).0;
                match lists.as_slice() {
                    [] => self.error(message, span),
                    [one] => self.error_hint(message, span, format!("did you mean {one}?")),
                    _ => self.error_hint(
                        message,
                        span,
                        format!("iterate over one of its lists: {}", lists.join(", ")),
                    ),
                }
                return None;
            }
        };
        let mut inner = scope.clone();
        let ident = format_ident!("{}", step_ident(&name));
        inner.insert(&name, element.clone(), quote::quote!(#ident));
        let mut inner_reads = HashSet::new();
        let body = if has_field(map, "by") {
            let text = get_str(map, "by");
            MapBody::By(self.expression(
                ctx,
                &inner,
                &with(path, "by"),
                &text,
                &mut inner_reads,
                None,
                "`by`",
            )?)
        } else if let Some(call) = get_message(map, "call") {
            MapBody::Call(Box::new(self.call(
                ctx,
                &inner,
                &call,
                &with(path, "call"),
                &mut inner_reads,
            )?))
        } else if let Some(m) = get_message(map, "message") {
            MapBody::Message(Box::new(self.message_call(
                ctx,
                &inner,
                &m,
                &with(path, "message"),
                &mut inner_reads,
            )?))
        } else {
            self.error_hint(
                "this `map` computes nothing per element",
                Self::value_span(ctx.site, path).0,
                "give it one of `by`, `call` or `message`",
            );
            return None;
        };
        inner_reads.remove(&name);
        reads.extend(inner_reads);
        Some(MapPlan {
            iterator: name,
            element,
            src,
            body,
        })
    }

    /// A message by name, or the closest name to suggest: messages of `from`'s package by
    /// their relative name, others by their full name.
    fn suggest_message(&self, name: &str, from: &MessageDescriptor) -> Option<String> {
        let package = from.package_name();
        let candidates: Vec<String> = self
            .loaded
            .pool
            .all_messages()
            .filter(|m| !m.is_map_entry())
            .map(|m| {
                let full = m.full_name();
                match full.strip_prefix(package).and_then(|r| r.strip_prefix('.')) {
                    Some(relative) if !package.is_empty() => relative.to_owned(),
                    _ => full.to_owned(),
                }
            })
            .collect();
        suggest(name, &candidates)
    }

    /// Parses and checks one expression; reports problems at their exact place.
    #[allow(clippy::too_many_arguments)]
    fn expression(
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
    fn checked_expression(
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
            if name == "$" && self.failed_input {
                ok = false;
                continue;
            }
            if scope.get(&name).is_some() {
                if name == CALLER {
                    self.reads_caller = true;
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
            } else if self.failed.contains(&name) {
                // The step is in error, reported where it is; its value has no type to check.
                ok = false;
            }
        }
        // An argument in error in every caller (reported there) has no type to check.
        if !self.failed_args.is_empty() && reads_input_field(parsed.root(), &self.failed_args) {
            ok = false;
        }
        if !ok {
            return None;
        }
        match expr::check(&parsed, scope, &self.schema) {
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

    /// Checks that a value of type `ty` can be stored in `field` (whose expression type is
    /// `target`).
    fn check_binding(
        &mut self,
        ty: &Type,
        field: &FieldDescriptor,
        target: &Type,
        span: Option<Span>,
    ) {
        if let Err(problem) = binding_allowed(ty, field, target) {
            let (message, hint) = problem;
            let d = Diagnostic::error(readable(&message), span);
            self.diagnostics.push(match hint {
                Some(h) => d.with_hint(h),
                None => d,
            });
        }
    }

    /// Where the `by` of a field's rule lies: the string of `(mosaic.v1.field).by = "..."`
    /// (`path` is that option's source path), or the `by` inside the aggregate form
    /// `(mosaic.v1.field) = { by: "..." }`.
    fn field_rule_span(
        &self,
        field: &FieldDescriptor,
        path: &[i32],
    ) -> (Option<Span>, Option<ValueSpan>) {
        let file_name = field.parent_file().name().to_owned();
        if let Some(site) = self.site(&file_name, path, false) {
            return match option_value(&site.file.text, site.whole.start) {
                Some(value) => (
                    Some(Span::new(&site.file, value.range.clone())),
                    Some(value),
                ),
                None => (Some(Span::new(&site.file, site.whole.clone())), None),
            };
        }
        let aggregate = &path[..path.len().saturating_sub(1)];
        let site = self.site(&file_name, aggregate, true);
        if site.is_some() {
            return Self::value_span(&site, &[("by".to_owned(), 0)]);
        }
        let site = self.site(&file_name, field.path(), false);
        (Self::span_of_site(&site), None)
    }

    fn bind_fields(
        &mut self,
        message: &MessageDescriptor,
        scope: &expr::Scope,
        steps: &[StepPlan],
        site: &Option<OptionSite>,
    ) -> Vec<FieldPlan> {
        // Autobind candidates: field name → (step index, source field).
        let mut autobound: HashMap<String, Vec<(usize, FieldDescriptor)>> = HashMap::new();
        for (index, step) in steps.iter().enumerate() {
            if !step.autobind {
                continue;
            }
            if let Type::Message(name) = &step.ty
                && let Some(source) = self.loaded.pool.get_message_by_name(name)
            {
                for f in source.fields() {
                    autobound
                        .entry(f.name().to_owned())
                        .or_default()
                        .push((index, f));
                }
            }
        }

        let mut fields = Vec::new();
        for field in message.fields() {
            let target = field_info(&field).ty;
            let mut path = field.path().to_vec();
            path.extend([8, EXTENSION_NUMBER, 1]);
            let options = field.options();
            if options.has_extension(&self.ext.field) {
                let rule = options.get_extension(&self.ext.field);
                let text = rule
                    .as_message()
                    .map(|m| get_str(m, "by"))
                    .unwrap_or_default();
                let (span, value) = self.field_rule_span(&field, &path);
                let mut reads = HashSet::new();
                if let Some(e) = self.checked_expression(
                    scope,
                    &text,
                    span.clone(),
                    value,
                    &mut reads,
                    None,
                    "a field's `by`",
                    None,
                ) {
                    self.check_binding(&e.checked.ty, &field, &target, span);
                    fields.push(FieldPlan {
                        field,
                        source: FieldSource::By(e),
                    });
                }
                continue;
            }
            match autobound.get(field.name()).map(Vec::as_slice) {
                Some([(step, from)]) => {
                    let from_ty = field_info(from).ty;
                    if binding_allowed(&from_ty, &field, &target).is_ok() {
                        fields.push(FieldPlan {
                            field,
                            source: FieldSource::Autobind {
                                step: *step,
                                from: Box::new(from.clone()),
                            },
                        });
                    } else {
                        let field_site =
                            self.site(message.parent_file().name(), field.path(), false);
                        let step_name = steps[*step].name.clone().unwrap_or_default();
                        self.error_hint(
                            format!(
                                "autobind cannot fill field `{}`, which is {}: `{step_name}.{}` is {}",
                                field.name(),
                                proto_type(&field),
                                from.name(),
                                proto_type(from),
                            ),
                            Self::span_of_site(&field_site),
                            "bind it explicitly with `(mosaic.v1.field).by`",
                        );
                    }
                }
                Some(many) if many.len() > 1 => {
                    let names: Vec<String> = many
                        .iter()
                        .filter_map(|(i, _)| steps[*i].name.clone())
                        .collect();
                    let field_site = self.site(message.parent_file().name(), field.path(), false);
                    self.error_hint(
                        format!(
                            "field `{}` is ambiguous: several autobind steps have it ({})",
                            field.name(),
                            names.join(", ")
                        ),
                        Self::span_of_site(&field_site),
                        "bind it explicitly with `(mosaic.v1.field).by`",
                    );
                }
                _ => {
                    let field_site = self.site(message.parent_file().name(), field.path(), false);
                    let span = Self::span_of_site(&field_site).or_else(|| Self::span_of_site(site));
                    self.error_hint(
                        format!("field `{}` of `{}` has no value", field.name(), message.full_name()),
                        span,
                        "add `[(mosaic.v1.field).by = \"...\"]`, or an `autobind` step with a same-named field",
                    );
                }
            }
        }
        fields
    }
}

/// Context of the step being resolved, for positions and name checks.
struct StepCtx<'s> {
    site: &'s Option<OptionSite>,
    base: Vec<PathSegment>,
    all_names: &'s [String],
    index: usize,
    message: &'s MessageDescriptor,
}

/// Where an option value lies: a span in a file, and for aggregates the scanned tree.
#[derive(Clone)]
pub(crate) struct OptionSite {
    pub(crate) file: Arc<SourceFile>,
    pub(crate) tree: Option<Arc<OptionTree>>,
    pub(crate) whole: std::ops::Range<usize>,
}

/// The location of the element at `path` in `file_name` (a protobuf source-info path); for an
/// aggregate option, its value's fields are scanned too.
pub(crate) fn option_site(
    loaded: &Loaded,
    file_name: &str,
    path: &[i32],
    aggregate: bool,
) -> Option<OptionSite> {
    let file = loaded.sources.get(file_name).cloned()?;
    let descriptor = loaded.pool.get_file_by_name(file_name)?;
    let info = descriptor
        .file_descriptor_proto()
        .source_code_info
        .as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let (start_line, start_col) = (
        *location.span.first()? as usize,
        *location.span.get(1)? as usize,
    );
    let (end_line, end_col) = match location.span.len() {
        3 => (start_line, location.span[2] as usize),
        _ => (
            *location.span.get(2)? as usize,
            *location.span.get(3)? as usize,
        ),
    };
    let start = file.offset_of(start_line, start_col);
    let end = file.offset_of(end_line, end_col);
    let tree = aggregate.then(|| Arc::new(OptionTree::scan(&file.text, start)));
    Some(OptionSite {
        file,
        tree,
        whole: start..end,
    })
}

/// Whether a value of expression type `ty` may be stored in `field`.
pub fn binding_allowed(
    ty: &Type,
    field: &FieldDescriptor,
    target: &Type,
) -> Result<(), (String, Option<String>)> {
    if *ty == Type::Error || ty == target {
        return Ok(());
    }
    let message = format!(
        "cannot store {ty} in field `{}`, which is {}",
        field.name(),
        proto_type(field)
    );
    let numeric = |t: &Type| matches!(t, Type::Int | Type::Uint | Type::Double);
    let hint = match (ty, target) {
        (Type::Null, Type::Message(_)) if !field.is_list() => return Ok(()),
        (Type::Int, Type::Enum(e)) => {
            return Err((
                format!("cannot store int in enum field `{}` ({e})", field.name()),
                Some(
                    "compare or convert enum values by name; bare numbers are not accepted"
                        .to_owned(),
                ),
            ));
        }
        (Type::List(a), Type::List(b)) if **a == Type::Error || a == b => return Ok(()),
        (Type::Message(_), Type::Message(_)) => Some(
            "bind the fields one by one, or build the target message with a `message` step"
                .to_owned(),
        ),
        (Type::List(a), Type::List(b))
            if matches!(**a, Type::Message(_)) && matches!(**b, Type::Message(_)) =>
        {
            Some("build each element with a `map` step whose body is a `message`".to_owned())
        }
        (a, Type::List(b)) if a == &**b => {
            Some("a repeated field takes a list: `[...]`".to_owned())
        }
        (a, b) if numeric(a) && numeric(b) => Some(format!("convert it with `{b}(...)`")),
        (a, Type::String) if numeric(a) => Some("convert it with `string(...)`".to_owned()),
        _ => None,
    };
    Err((message, hint))
}

/// A field's type as written in the proto: `int64`, `repeated string`, `map<string, int32>`,
/// `` `demo.users.v1.User` ``.
fn proto_type(field: &FieldDescriptor) -> String {
    fn kind_name(kind: &Kind) -> String {
        match kind {
            Kind::Double => "double".to_owned(),
            Kind::Float => "float".to_owned(),
            Kind::Int32 => "int32".to_owned(),
            Kind::Int64 => "int64".to_owned(),
            Kind::Uint32 => "uint32".to_owned(),
            Kind::Uint64 => "uint64".to_owned(),
            Kind::Sint32 => "sint32".to_owned(),
            Kind::Sint64 => "sint64".to_owned(),
            Kind::Fixed32 => "fixed32".to_owned(),
            Kind::Fixed64 => "fixed64".to_owned(),
            Kind::Sfixed32 => "sfixed32".to_owned(),
            Kind::Sfixed64 => "sfixed64".to_owned(),
            Kind::Bool => "bool".to_owned(),
            Kind::String => "string".to_owned(),
            Kind::Bytes => "bytes".to_owned(),
            Kind::Message(m) => format!("`{}`", m.full_name()),
            Kind::Enum(e) => format!("`{}`", e.full_name()),
        }
    }
    match field.kind() {
        Kind::Message(entry) if field.is_map() => format!(
            "map<{}, {}>",
            kind_name(&entry.map_entry_key_field().kind()),
            kind_name(&entry.map_entry_value_field().kind())
        ),
        kind if field.is_list() => format!("repeated {}", kind_name(&kind)),
        kind => kind_name(&kind),
    }
}

/// Parses `800ms`, `2s`, `1.5s`, `1m`, `100us`, `10ns`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err("must be more than zero and at most a year".to_owned());
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| "missing a unit".to_owned())?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err("missing a number".to_owned());
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}`")),
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 365.0 * 86400.0 {
        return Err("must be more than zero and at most a year".to_owned());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The closest name within a small edit distance.
pub fn suggest(name: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The Rust identifier of a step or iterator name.
pub fn step_ident(name: &str) -> String {
    crate::schema::rust_field_ident(name)
}

/// Names the generated code gives its own values, in scope wherever steps and iterators are.
const RESERVED_NAMES: &[&str] = &["input", "call", "downstreams", CALLER];

/// The name expressions read the caller's identity by: a map of text (`caller.sub`,
/// `caller.consumer`), from the claims of its token and what the gateway knows of it.
pub const CALLER: &str = "caller";

/// Why `name` cannot name a step, an iterator or (with `reserved` empty) an argument: it must
/// be an identifier whose Rust form is one too, and not one the generated code uses itself.
fn check_name(name: &str, what: &str, reserved: &[&str]) -> Result<(), (String, String)> {
    let ident = step_ident(name);
    let bare = ident.strip_prefix("r#").unwrap_or(&ident);
    if !is_identifier(name) || !is_identifier(bare) {
        return Err((
            format!("`{name}` is not a valid {what} name"),
            "use letters, digits and `_`, starting with a letter".to_owned(),
        ));
    }
    if reserved.contains(&bare) || bare.starts_with("mosaic_") {
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return Err((
            format!(
                "`{name}` cannot name {article} {what}: the generated code uses `{bare}` itself"
            ),
            format!("rename the {what}"),
        ));
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The span of bytes `decoded` of a string value, or the whole value when they cannot be
/// mapped.
fn sub_span(
    span: &Option<Span>,
    value: &Option<ValueSpan>,
    decoded: std::ops::Range<usize>,
) -> Option<Span> {
    match (span, value) {
        (Some(s), Some(v)) => Some(Span::new(&s.file, v.sub_range(decoded))),
        (s, _) => s.clone(),
    }
}

/// `message` with the synthetic argument messages of the schema (`` `pkg.Msg#args` ``) named
/// as users know them (`` the arguments of `pkg.Msg` ``).
fn readable(message: &str) -> String {
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
fn reads_input_field(node: &expr::Node, names: &HashSet<String>) -> bool {
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

fn with(base: &[PathSegment], name: &str) -> Vec<PathSegment> {
    with_index(base, name, 0)
}

fn with_index(base: &[PathSegment], name: &str, index: usize) -> Vec<PathSegment> {
    let mut path = base.to_vec();
    path.push((name.to_owned(), index));
    path
}

fn get_str(message: &DynamicMessage, field: &str) -> String {
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn get_bool(message: &DynamicMessage, field: &str) -> bool {
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

fn has_field(message: &DynamicMessage, field: &str) -> bool {
    message
        .descriptor()
        .get_field_by_name(field)
        .is_some_and(|f| message.has_field(&f))
}

fn get_message(message: &DynamicMessage, field: &str) -> Option<DynamicMessage> {
    if !has_field(message, field) {
        return None;
    }
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_message().cloned())
}

fn list(message: &DynamicMessage, field: &str) -> Vec<Value> {
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_list().map(<[Value]>::to_vec))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("800ms"), Ok(Duration::from_millis(800)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(
            parse_duration("800")
                .unwrap_err()
                .contains("missing a unit")
        );
        assert!(
            parse_duration("8x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(
            parse_duration("ms")
                .unwrap_err()
                .contains("missing a number")
        );
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn argument_messages_read_as_arguments() {
        assert_eq!(
            readable("no field `x` on `a.B#args`; `c.D#args` too"),
            "no field `x` on the arguments of `a.B`; the arguments of `c.D` too"
        );
        assert_eq!(readable("no `#args` here"), "no `#args` here");
        assert_eq!(readable("plain #args`"), "plain #args`");
    }

    #[test]
    fn suggestions_pick_close_names() {
        let names = vec!["author_id".to_owned(), "product_id".to_owned()];
        assert_eq!(suggest("autor_id", &names).as_deref(), Some("author_id"));
        assert_eq!(suggest("zzz", &names), None);
    }
}
