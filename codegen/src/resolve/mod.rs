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

//!
//! The stages, one module each: [`order`] (which messages, callers before callees) →
//! [`message`] (one message's steps, in written order) → [`steps`] (each step's body) and
//! [`exprs`] (each expression, in its scope) → [`args`] (the arguments a built message gets
//! from its callers) → [`bind`] (how every field gets its value). [`options`] reads the option
//! values, [`sites`] finds where they are written, and [`names`] says which names are allowed.

mod aliases;
mod args;
mod bind;
mod custom;
mod deployment;
mod enums;
mod errors;
mod exprs;
mod message;
mod metadata;
mod names;
mod options;
mod order;
mod retry;
mod sites;
mod steps;

use std::collections::{HashMap, HashSet};

use prost_reflect::{DynamicMessage, MessageDescriptor};

use crate::diagnostic::{Diagnostic, Span};
use crate::load::Loaded;
use crate::model::*;
use crate::schema::PoolSchema;
use crate::suggest::suggest;

pub use bind::binding_allowed;
pub use deployment::ENV_PREFIX;
pub use names::{CALLER, step_ident, unnamed_step};
pub use options::{EXTENSION_NUMBER, parse_duration};
pub(crate) use sites::{OptionSite, option_site};

use args::CallerArgs;
use options::Extensions;
use order::Pending;

/// Resolves and checks; returns the model and its schema, or every diagnostic.
pub fn resolve(loaded: &Loaded) -> Result<(Model, PoolSchema), Vec<Diagnostic>> {
    // Protos that never import the options have no rules: nothing to generate.
    if loaded
        .pool
        .get_extension_by_name("mosaic.v1.service")
        .is_none()
    {
        return Ok((Model::default(), PoolSchema::new(loaded.pool.clone())));
    }
    let mut resolver = Resolver::new(loaded)?;
    let model = resolver.run();
    if resolver.diagnostics.is_empty() {
        Ok((model, resolver.schema))
    } else {
        Err(resolver.diagnostics)
    }
}

struct Resolver<'a> {
    loaded: &'a Loaded,
    ext: Extensions,
    schema: PoolSchema,
    diagnostics: Vec<Diagnostic>,
    /// Argument sets passed to each built message, by caller site.
    callers: HashMap<String, Vec<CallerArgs>>,
    /// Resilience defaults of downstream methods, read (and checked) once per method.
    call_defaults: HashMap<String, CallDefaults>,
    /// What is known while one message is resolved; a fresh one per message.
    message: MessageState,
    /// The enum conversions bindings need, each once.
    enum_conversions: Vec<EnumConversion>,
    /// Every declared alias pair (source, alias), as full names, planned or not.
    alias_pairs: Vec<(String, String)>,
    /// The conversions of the alias pairs planned without error.
    message_conversions: Vec<MessageConversion>,
    /// The type of the field the next expression is bound to: a hint that types `[]` and `{}`,
    /// not a requirement (binding checks the type). Taken by the next check.
    binding_hint: Option<crate::expr::Type>,
    /// For every message, the edge services building it.
    reach: HashMap<String, Vec<prost_reflect::ServiceDescriptor>>,
    /// The `$env` names of each edge service declaring deployment values, with their types.
    deployments: HashMap<String, Vec<(String, crate::expr::Type)>>,
}

/// The state of resolving one message, which decides what is reported about the names it
/// reads: a mistake is reported once, where it is, and not again by everything reading it.
#[derive(Default)]
struct MessageState {
    /// Names of its steps that failed with a reported error.
    failed: HashSet<String>,
    /// Its arguments whose every caller's expression has an error: reading `$.<name>`
    /// reports nothing more.
    failed_args: HashSet<String>,
    /// Whether it is built only by steps in error (reported there), so that its arguments are
    /// unknown: reading `$` reports nothing more.
    failed_input: bool,
    /// Whether an expression read `$env`.
    reads_env: bool,
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
            call_defaults: HashMap::new(),
            message: MessageState::default(),
            enum_conversions: Vec::new(),
            alias_pairs: Vec::new(),
            message_conversions: Vec::new(),
            binding_hint: None,
            reach: HashMap::new(),
            deployments: HashMap::new(),
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

    fn run(&mut self) -> Model {
        let mut model = Model::default();
        // Before any binding, so that each knows the alias pairs.
        self.plan_aliases();
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
                let site = self.site(service.parent_file().name(), method.path(), false);
                let span = Self::span_of_site(&site);
                let Some((output, response_field)) = self.composed_message(&method, &span) else {
                    continue;
                };
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
                    composed: output,
                    response_field,
                });
            }
            let deployment = self.service_deployment(&service);
            if let Some(deployment) = &deployment {
                let names = deployment
                    .names()
                    .map(|(name, ty)| (format!("{ENV_PREFIX}{name}"), ty.clone()))
                    .collect();
                self.deployments
                    .insert(service.full_name().to_owned(), names);
            }
            model.services.push(EdgeService {
                descriptor: service,
                methods,
                deployment,
            });
        }
        self.reach = self.reaching_services(&model.services);

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
        self.assign_custom_services(&mut model);
        self.check_module_names(&model);
        model.enum_conversions = std::mem::take(&mut self.enum_conversions);
        model.message_conversions = std::mem::take(&mut self.message_conversions);
        model
    }

    /// Generated code lives in a `composition` module beside prost's types: a message or a
    /// package that prost would give the same module name clashes with it.
    fn check_module_names(&mut self, model: &Model) {
        let module = crate::emit::COMPOSITION_MODULE;
        for package in crate::emit::packages(model) {
            let clashes: Vec<_> = self
                .loaded
                .pool
                .all_messages()
                .filter(|m| m.package_name() == package && m.parent_message().is_none())
                .filter(|m| heck::ToSnakeCase::to_snake_case(m.name()) == module)
                .collect();
            for message in clashes {
                let site = self.site(message.parent_file().name(), message.path(), false);
                self.error_hint(
                    format!(
                        "message `{}` clashes with the `{module}` module Mosaic generates in package `{package}`",
                        message.full_name()
                    ),
                    Self::span_of_site(&site),
                    "rename the message",
                );
            }
            // Composers (and `Resolvers` traits) are re-exported beside prost's types.
            let types: Vec<(String, String, Vec<i32>, String)> = self
                .loaded
                .pool
                .all_messages()
                .filter(|m| m.parent_message().is_none() && m.package_name() == package)
                .map(|m| {
                    let file = m.parent_file().name().to_owned();
                    (
                        m.full_name().to_owned(),
                        m.name().to_owned(),
                        m.path().to_vec(),
                        file,
                    )
                })
                .chain(
                    self.loaded
                        .pool
                        .all_enums()
                        .filter(|e| e.parent_message().is_none() && e.package_name() == package)
                        .map(|e| {
                            let file = e.parent_file().name().to_owned();
                            (
                                e.full_name().to_owned(),
                                e.name().to_owned(),
                                e.path().to_vec(),
                                file,
                            )
                        }),
                )
                .collect();
            for service in model
                .services
                .iter()
                .filter(|s| s.descriptor.package_name() == package)
            {
                let name = service.descriptor.name();
                let mut generated = vec![(crate::names::composer_name(name), "composer")];
                if model.messages.iter().any(|p| {
                    p.custom_service
                        .as_ref()
                        .is_some_and(|s| s.full_name() == service.descriptor.full_name())
                }) {
                    generated.push((
                        crate::names::resolvers_trait_name(name),
                        "`Resolvers` trait",
                    ));
                }
                if service.deployment.is_some() {
                    generated.push((
                        crate::names::deployment_struct_name(name),
                        "deployment values struct",
                    ));
                }
                for (item, what) in generated {
                    for (full_name, type_name, path, file) in &types {
                        if crate::names::rust_type_ident(type_name) != item {
                            continue;
                        }
                        let site = self.site(file, path, false);
                        self.error_hint(
                            format!(
                                "`{full_name}` clashes with `{item}`, the {what} Mosaic generates for service `{}`",
                                service.descriptor.full_name()
                            ),
                            Self::span_of_site(&site),
                            "rename the type",
                        );
                    }
                }
            }
            let nested = format!("{package}.{module}");
            if self.loaded.pool.files().any(|f| f.package_name() == nested) {
                self.error_hint(
                    format!(
                        "package `{nested}` clashes with the `{module}` module Mosaic generates in package `{package}`"
                    ),
                    None,
                    "rename the package",
                );
            }
        }
    }

    /// The message composed for an edge method, and the field of it the method answers with:
    /// its response, or `(mosaic.v1.method).response` and `response_field`.
    fn composed_message(
        &mut self,
        method: &prost_reflect::MethodDescriptor,
        span: &Option<Span>,
    ) -> Option<(MessageDescriptor, Option<prost_reflect::FieldDescriptor>)> {
        let output = method.output();
        let options = method.options();
        let rule = options
            .has_extension(&self.ext.method)
            .then(|| {
                options
                    .get_extension(&self.ext.method)
                    .as_message()
                    .cloned()
            })
            .flatten();
        let (name, field) = rule
            .map(|r| {
                (
                    options::get_str(&r, "response"),
                    options::get_str(&r, "response_field"),
                )
            })
            .unwrap_or_default();
        if name.is_empty() {
            if !field.is_empty() {
                self.error_hint(
                    format!(
                        "`{}` has a `response_field` but no `response`",
                        method.full_name()
                    ),
                    span.clone(),
                    "name the composed message in `response`",
                );
                return None;
            }
            return Some((output, None));
        }
        let package = method.parent_service().package_name().to_owned();
        let pool = &self.loaded.pool;
        let bare = name.strip_prefix('.').unwrap_or(&name);
        let found = (!package.is_empty())
            .then(|| pool.get_message_by_name(&format!("{package}.{bare}")))
            .flatten()
            .or_else(|| pool.get_message_by_name(bare));
        let Some(composed) = found else {
            let hint = match self.suggest_message(&name, &method.input()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "name a message of this package, or give its full name".to_owned(),
            };
            self.error_hint(format!("unknown message `{name}`"), span.clone(), hint);
            return None;
        };
        if field.is_empty() {
            if output.full_name() != "google.protobuf.Empty" {
                self.error_hint(
                    format!(
                        "`{}` answers `{}`, but composes `{}` without a `response_field`",
                        method.full_name(),
                        output.full_name(),
                        composed.full_name()
                    ),
                    span.clone(),
                    "name the field of the composed message to answer with, or answer `google.protobuf.Empty`",
                );
                return None;
            }
            return Some((composed, None));
        }
        let Some(answer) = composed.get_field_by_name(&field) else {
            let fields: Vec<String> = composed.fields().map(|f| f.name().to_owned()).collect();
            let hint = match suggest(&field, &fields) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("its fields are: {}", fields.join(", ")),
            };
            self.error_hint(
                format!("no field `{field}` on `{}`", composed.full_name()),
                span.clone(),
                hint,
            );
            return None;
        };
        let same_type = matches!(answer.kind(), prost_reflect::Kind::Message(m) if m.full_name() == output.full_name())
            && !answer.is_list()
            && !answer.is_map();
        if !same_type {
            self.error(
                format!(
                    "field `{field}` of `{}` is not a `{}`, which `{}` answers",
                    composed.full_name(),
                    output.full_name(),
                    method.full_name()
                ),
                span.clone(),
            );
            return None;
        }
        Some((composed, Some(answer)))
    }

    fn has_rules(&self, message: &MessageDescriptor) -> bool {
        message.options().has_extension(&self.ext.message)
            || message
                .fields()
                .any(|f| f.options().has_extension(&self.ext.field))
    }

    fn field_rule(&self, field: &prost_reflect::FieldDescriptor) -> Option<DynamicMessage> {
        let options = field.options();
        if !options.has_extension(&self.ext.field) {
            return None;
        }
        options.get_extension(&self.ext.field).as_message().cloned()
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
}
