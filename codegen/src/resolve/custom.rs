//! Custom items: a step, a field or a whole message computed by Rust the deployment writes,
//! as a method of the edge service's generated `<Service>Resolvers` trait. Checked here: the
//! declared type, the steps each one reads, and that every message with custom items (or
//! building one) is reached from one edge service only, whose trait then holds its methods.

use std::collections::{HashMap, HashSet};

use prost_reflect::{DynamicMessage, MessageDescriptor, ServiceDescriptor};

use super::Resolver;
use super::options::list;
use crate::diagnostic::Span;
use crate::expr::Type;
use crate::model::*;
use crate::suggest::suggest;

impl Resolver<'_> {
    /// The type a custom step declares: a scalar, an enum or a message, or `repeated` one.
    pub(super) fn custom_type(
        &mut self,
        text: &str,
        message: &MessageDescriptor,
        span: Option<Span>,
    ) -> Option<Type> {
        let text = text.trim();
        if text.is_empty() {
            self.error_hint(
                "a `custom` step needs the `type` of its value",
                span,
                "write a scalar (`int64`, `string`, ...), a message or enum name, or `repeated` one",
            );
            return None;
        }
        if let Some(element) = text.strip_prefix("repeated ") {
            return self
                .custom_type(element, message, span)
                .map(|t| Type::List(Box::new(t)));
        }
        let scalar = match text {
            "double" | "float" => Some(Type::Double),
            "int32" | "int64" | "sint32" | "sint64" | "sfixed32" | "sfixed64" => Some(Type::Int),
            "uint32" | "uint64" | "fixed32" | "fixed64" => Some(Type::Uint),
            "bool" => Some(Type::Bool),
            "string" => Some(Type::String),
            "bytes" => Some(Type::Bytes),
            _ => None,
        };
        if scalar.is_some() {
            return scalar;
        }
        if let Some(found) = self.find_message(text, message) {
            return Some(Type::Message(found.full_name().to_owned()));
        }
        let name = text.trim_start_matches('.');
        let package = message.package_name();
        let pool = &self.loaded.pool;
        let enumeration = pool
            .get_enum_by_name(&format!("{package}.{name}"))
            .or_else(|| pool.get_enum_by_name(name));
        if let Some(found) = enumeration {
            return Some(Type::Enum(found.full_name().to_owned()));
        }
        let hint = match self.suggest_message(text, message) {
            Some(s) => format!("did you mean `{s}`?"),
            None => {
                "write a scalar (`int64`, `string`, ...), a message or enum name, or `repeated` one"
                    .to_owned()
            }
        };
        self.error_hint(format!("unknown type `{text}`"), span, hint);
        None
    }

    /// The steps a custom item reads (`reads` of `rule`), each a step defined above it (for a
    /// step: `defined`; for a field or message: every step). Adds them to `reads`.
    /// `span_of(i)` is where the `i`th name is written; `below` are the steps defined after
    /// this one.
    pub(super) fn custom_reads(
        &mut self,
        rule: &DynamicMessage,
        defined: &HashMap<String, usize>,
        below: &[String],
        span_of: impl Fn(usize) -> Option<Span>,
        reads: &mut HashSet<String>,
    ) -> Option<Vec<usize>> {
        let mut indices = Vec::new();
        let mut ok = true;
        for (i, value) in list(rule, "reads").iter().enumerate() {
            let Some(name) = value.as_str() else {
                continue;
            };
            let span = span_of(i);
            if below.iter().any(|b| b == name) {
                self.error_hint(
                    format!("`{name}` is read before it is defined"),
                    span,
                    format!("move the step defining `{name}` above this one (steps may read only the steps above them)"),
                );
                ok = false;
                continue;
            }
            match defined.get(name) {
                Some(&index) => {
                    if indices.contains(&index) {
                        self.error(format!("`reads` names `{name}` twice"), span);
                        ok = false;
                    }
                    indices.push(index);
                    reads.insert(name.to_owned());
                }
                None if self.message.failed.contains(name) => ok = false,
                None => {
                    let names: Vec<String> = defined.keys().cloned().collect();
                    let hint = match suggest(name, &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => "no step is defined above".to_owned(),
                        None => {
                            let mut names = names;
                            names.sort();
                            format!("steps defined above: {}", names.join(", "))
                        }
                    };
                    self.error_hint(
                        format!("`reads` names `{name}`, which is no step defined above"),
                        span,
                        hint,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(indices)
    }

    /// Gives every message with custom items, or building one, the edge service whose trait
    /// provides them; a message reached from two edge services is a diagnostic.
    pub(super) fn assign_custom_services(&mut self, model: &mut Model) {
        // Callees come first: whether a message needs an implementation is known before its
        // callers ask.
        let mut needs: HashSet<String> = HashSet::new();
        for plan in &model.messages {
            if has_custom_items(plan) || callees(plan).iter().any(|c| needs.contains(c)) {
                needs.insert(plan.descriptor.full_name().to_owned());
            }
        }
        if needs.is_empty() {
            return;
        }
        let edges: HashMap<String, Vec<String>> = model
            .messages
            .iter()
            .map(|p| (p.descriptor.full_name().to_owned(), callees(p)))
            .collect();
        let mut reached: HashMap<String, Vec<ServiceDescriptor>> = HashMap::new();
        for service in &model.services {
            let mut seen: HashSet<String> = HashSet::new();
            let mut queue: Vec<String> = service
                .methods
                .iter()
                .map(|m| m.composed.full_name().to_owned())
                .collect();
            while let Some(name) = queue.pop() {
                if !seen.insert(name.clone()) {
                    continue;
                }
                queue.extend(edges.get(&name).cloned().unwrap_or_default());
            }
            for name in seen {
                reached
                    .entry(name)
                    .or_default()
                    .push(service.descriptor.clone());
            }
        }
        for plan in &mut model.messages {
            let name = plan.descriptor.full_name().to_owned();
            if !needs.contains(&name) {
                continue;
            }
            let services = reached.get(&name).cloned().unwrap_or_default();
            match services.as_slice() {
                [service] => plan.custom_service = Some(service.clone()),
                [] => {}
                many => {
                    let names: Vec<String> = many
                        .iter()
                        .map(|s| format!("`{}`", s.full_name()))
                        .collect();
                    let site = self.message_site(&plan.descriptor);
                    self.error_hint(
                        format!(
                            "`{name}` has custom items (or builds a message that does) and is built for edge services {}: each service's `Resolvers` trait would need them",
                            names.join(" and ")
                        ),
                        Self::span_of_site(&site),
                        "build it for one edge service, or give each service its own message",
                    );
                }
            }
        }
    }
}

/// Whether a message has a custom step, field or body.
fn has_custom_items(plan: &MessagePlan) -> bool {
    plan.custom.is_some()
        || plan
            .steps
            .iter()
            .any(|s| matches!(s.body, StepBody::Custom(_)))
        || plan
            .fields
            .iter()
            .any(|f| matches!(f.source, FieldSource::Custom(_)))
}

/// The messages a message's steps build.
fn callees(plan: &MessagePlan) -> Vec<String> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.body {
            StepBody::Message(m) => Some(m.target.full_name().to_owned()),
            StepBody::Map(map) => match &map.body {
                MapBody::Message(m) => Some(m.target.full_name().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
