//! Deployment values: an edge service's `env` variables and the `def` values computed once
//! from them, all read as `$env.<name>`; and which edge service's values a message reads.

use std::collections::{HashMap, HashSet};

use prost_reflect::{MessageDescriptor, ServiceDescriptor};

use super::Resolver;
use super::names::{check_name, is_identifier};
use super::options::{EXTENSION_NUMBER, get_message, get_str, has_field, list};
use super::sites::with;
use crate::expr::{self, Type};
use crate::model::*;
use crate::source::PathSegment;

/// How expressions spell a deployment value: `$env.<name>`.
pub const ENV_PREFIX: &str = "$env.";

/// Source-info path number of `ServiceDescriptorProto.options`.
const SERVICE_OPTIONS: i32 = 3;

impl Resolver<'_> {
    /// The `env` variables and `def` values of an edge service, checked; `None` when it
    /// declares neither.
    pub(super) fn service_deployment(
        &mut self,
        service: &ServiceDescriptor,
    ) -> Option<DeploymentPlan> {
        let options = service.options();
        let rule = options.get_extension(&self.ext.service);
        let rule = rule.as_message()?.clone();
        let variables = list(&rule, "env");
        let defs = list(&rule, "def");
        if variables.is_empty() && defs.is_empty() {
            return None;
        }
        let mut path = service.path().to_vec();
        path.extend([SERVICE_OPTIONS, EXTENSION_NUMBER]);
        let site = self.site(service.parent_file().name(), &path, true);
        let mut plan = DeploymentPlan::default();
        let mut names: HashSet<String> = HashSet::new();
        for (i, variable) in variables.iter().enumerate() {
            let Some(variable) = variable.as_message() else {
                continue;
            };
            let base: Vec<PathSegment> = vec![("env".to_owned(), i)];
            let span = |field: &str| Self::value_span(&site, &with(&base, field)).0;
            let name = get_str(variable, "name");
            if let Err((message, hint)) = check_name(&name, "deployment variable", &[]) {
                self.error_hint(message, span("name"), hint);
                continue;
            }
            if !names.insert(name.clone()) {
                self.error_hint(
                    format!("`$env.{name}` is declared twice"),
                    span("name"),
                    "give each deployment value its own name",
                );
                continue;
            }
            let type_text = get_str(variable, "type");
            let Some(ty) = env_type(&type_text) else {
                self.error_hint(
                    format!("`{type_text}` is not a type a deployment variable can have"),
                    span("type"),
                    "write `string`, `bool`, `int64`, `uint64`, `double`, or `repeated` one of them",
                );
                continue;
            };
            let default = has_field(variable, "default").then(|| get_str(variable, "default"));
            if let Some(text) = &default
                && let Err(problem) = parse_text(&ty, text)
            {
                self.error_hint(
                    format!(
                        "the default of `$env.{name}` is not {}: {problem}",
                        type_text.trim()
                    ),
                    span("default"),
                    "write it as an environment variable holds it: `30`, `true`, `a,b`",
                );
            }
            let from = match get_str(variable, "from") {
                from if from.is_empty() => name.to_uppercase(),
                from if is_identifier(&from) => from,
                from => {
                    self.error_hint(
                        format!("`{from}` is not an environment variable name"),
                        span("from"),
                        "use letters, digits and `_`, starting with a letter or `_`",
                    );
                    continue;
                }
            };
            plan.variables.push(EnvVariable {
                name,
                ty,
                default,
                from,
            });
        }

        // The `def` values, each in the scope of the variables and the values above it.
        self.message = super::MessageState::default();
        let mut scope = expr::Scope::new().in_package(service.package_name());
        for variable in &plan.variables {
            scope.insert(
                format!("{ENV_PREFIX}{}", variable.name),
                variable.ty.clone(),
            );
        }
        for (i, step) in defs.iter().enumerate() {
            let Some(step) = step.as_message() else {
                continue;
            };
            let base: Vec<PathSegment> = vec![("def".to_owned(), i)];
            let at = |path: &[PathSegment]| Self::value_span(&site, path);
            let name = get_str(step, "name");
            let by = get_str(step, "by");
            let mut reads = HashSet::new();
            if !get_str(step, "if").is_empty() {
                self.error_hint(
                    "a service's `def` step cannot have an `if`",
                    at(&with(&base, "if")).0,
                    "a value computed once has one value: write the condition into its `by` as `c ? x : y`",
                );
                continue;
            }
            if let Some(validation) = get_message(step, "validation") {
                let path = with(&base, "validation");
                let condition_text = get_str(&validation, "if");
                let message_text = get_str(&validation, "message");
                let (span, value) = at(&with(&path, "if"));
                let condition = self.checked_expression(
                    &scope,
                    &condition_text,
                    span,
                    value,
                    &mut reads,
                    Some(&Type::Bool),
                    "a validation's `if`",
                    None,
                );
                let (span, value) = at(&with(&path, "message"));
                let message = self.checked_expression(
                    &scope,
                    &message_text,
                    span,
                    value,
                    &mut reads,
                    Some(&Type::String),
                    "a validation's `message`",
                    None,
                );
                if let (Some(condition), Some(message)) = (condition, message) {
                    plan.values
                        .push(DeploymentValue::Validation { condition, message });
                }
                continue;
            }
            if by.is_empty() || has_other_body(step) {
                self.error_hint(
                    "a service's `def` step is a `by` value or a `validation`",
                    Self::span_of_site(&site),
                    "compute per-call values in the messages' own `def` steps",
                );
                continue;
            }
            let name_span = at(&with(&base, "name")).0;
            if let Err((message, hint)) = check_name(&name, "deployment value", &[]) {
                self.error_hint(message, name_span, hint);
                continue;
            }
            if !names.insert(name.clone()) {
                self.error_hint(
                    format!("`$env.{name}` is declared twice"),
                    name_span,
                    "give each deployment value its own name",
                );
                continue;
            }
            let (span, value) = at(&with(&base, "by"));
            let Some(value) = self.checked_expression(
                &scope,
                &by,
                span,
                value,
                &mut reads,
                None,
                "a deployment value (`by`)",
                None,
            ) else {
                continue;
            };
            scope.insert(format!("{ENV_PREFIX}{name}"), value.checked.ty.clone());
            plan.values.push(DeploymentValue::Value { name, value });
        }
        Some(plan)
    }

    /// For every message, the edge services whose methods build it (directly or through
    /// `message` steps).
    pub(super) fn reaching_services(
        &mut self,
        services: &[EdgeService],
    ) -> HashMap<String, Vec<ServiceDescriptor>> {
        let mut reached: HashMap<String, Vec<ServiceDescriptor>> = HashMap::new();
        for service in services {
            let mut seen: HashSet<String> = HashSet::new();
            let mut queue: Vec<MessageDescriptor> =
                service.methods.iter().map(|m| m.composed.clone()).collect();
            while let Some(message) = queue.pop() {
                if !seen.insert(message.full_name().to_owned()) {
                    continue;
                }
                queue.extend(self.built_messages(&message).into_iter().map(|(m, _)| m));
                reached
                    .entry(message.full_name().to_owned())
                    .or_default()
                    .push(service.descriptor.clone());
            }
        }
        reached
    }

    /// The `$env` names in scope in `message`: those of the services building it.
    pub(super) fn deployment_scope(&self, message: &MessageDescriptor) -> Vec<(String, Type)> {
        let mut names: Vec<(String, Type)> = Vec::new();
        for service in self.reach.get(message.full_name()).into_iter().flatten() {
            for (name, ty) in self
                .deployments
                .get(service.full_name())
                .into_iter()
                .flatten()
            {
                if !names.iter().any(|(n, _)| n == name) {
                    names.push((name.clone(), ty.clone()));
                }
            }
        }
        names
    }

    /// The edge service whose values a message reading `$env` reads: the one service building
    /// it. Built for several, it is a diagnostic, since each call must know whose values.
    pub(super) fn deployment_service(
        &mut self,
        message: &MessageDescriptor,
    ) -> Option<ServiceDescriptor> {
        let services = self
            .reach
            .get(message.full_name())
            .cloned()
            .unwrap_or_default();
        match services.as_slice() {
            [service] => Some(service.clone()),
            [] => None,
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|s| format!("`{}`", s.full_name()))
                    .collect();
                let site = self.site(message.parent_file().name(), message.path(), false);
                self.error_hint(
                    format!(
                        "`{}` reads `$env` and is built for edge services {}: whose deployment values it reads would depend on the call",
                        message.full_name(),
                        names.join(" and ")
                    ),
                    Self::span_of_site(&site),
                    "pass the values it needs as arguments of a `message` step, from each service's own messages",
                );
                None
            }
        }
    }
}

/// Whether a step has a body other than `by`.
fn has_other_body(step: &prost_reflect::DynamicMessage) -> bool {
    [
        "call",
        "message",
        "map",
        "validation",
        "log",
        "custom",
        "switch",
    ]
    .iter()
    .any(|field| has_field(step, field))
}

/// The type a deployment variable's `type` names.
fn env_type(text: &str) -> Option<Type> {
    let text = text.trim();
    if let Some(element) = text.strip_prefix("repeated ") {
        return match env_type(element)? {
            Type::List(_) => None,
            element => Some(Type::List(Box::new(element))),
        };
    }
    Some(match text {
        "string" => Type::String,
        "bool" => Type::Bool,
        "int64" => Type::Int,
        "uint64" => Type::Uint,
        "double" => Type::Double,
        _ => return None,
    })
}

/// Checks `text` as the runtime reads an environment variable of type `ty`
/// (`compose::EnvValue::from_text`).
fn parse_text(ty: &Type, text: &str) -> Result<(), String> {
    let ok = match ty {
        Type::String => true,
        Type::Bool => matches!(text.trim(), "true" | "false"),
        Type::Int => text.trim().parse::<i64>().is_ok(),
        Type::Uint => text.trim().parse::<u64>().is_ok(),
        Type::Double => text.trim().parse::<f64>().is_ok(),
        Type::List(element) => {
            if text.trim().is_empty() {
                return Ok(());
            }
            for (i, item) in text.split(',').enumerate() {
                parse_text(element, item.trim()).map_err(|p| format!("item {i}: {p}"))?;
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{}` does not parse", text.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_defaults() {
        assert_eq!(env_type("int64"), Some(Type::Int));
        assert_eq!(
            env_type("repeated string"),
            Some(Type::List(Box::new(Type::String)))
        );
        assert_eq!(env_type("repeated repeated string"), None);
        assert_eq!(env_type("int32"), None);
        assert!(parse_text(&Type::Int, " 30 ").is_ok());
        assert!(parse_text(&Type::Bool, "yes").is_err());
        let list = Type::List(Box::new(Type::Uint));
        assert!(parse_text(&list, "1, 2").is_ok());
        assert_eq!(
            parse_text(&list, "1,-2"),
            Err("item 1: `-2` does not parse".to_owned())
        );
    }
}
