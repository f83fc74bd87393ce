//! One method's HTTP bindings: the rule as written, and each binding checked against the
//! method's request and response messages.

use std::ops::Range;

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value,
};

use crate::template::{Template, TemplateError};

/// The HTTP method a binding answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    Get,
    Put,
    Post,
    Delete,
    Patch,
    /// `custom { kind: "HEAD" }`: any other method, upper case.
    Custom(String),
    /// `custom { kind: "*" }`: every method.
    Any,
}

impl HttpMethod {
    /// The method's name, `*` for [`HttpMethod::Any`].
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Post => "POST",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
            Self::Custom(kind) => kind,
            Self::Any => "*",
        }
    }

    /// Whether a request with `method` is answered by this binding.
    pub fn accepts(&self, method: &str) -> bool {
        match self {
            Self::Any => true,
            other => other.as_str() == method,
        }
    }

    /// Whether two bindings would answer some of the same requests.
    pub fn overlaps(&self, other: &Self) -> bool {
        *self == Self::Any || *other == Self::Any || self == other
    }
}

/// A `google.api.HttpRule`, from an annotation or from `gateway.toml`, before checking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// The method it is for, in configuration (`pkg.Service.Method`); empty in annotations.
    pub selector: String,
    /// `None` when no pattern is set.
    pub method: Option<HttpMethod>,
    /// The path template, as written.
    pub path: String,
    /// `""` (no body), `"*"`, or a top-level request field.
    pub body: String,
    /// `""` (the whole response), or a top-level response field.
    pub response_body: String,
    pub additional_bindings: Vec<Rule>,
}

/// Which part of a rule an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RulePart {
    /// The pattern: `get`, `post`, ..., `custom`.
    Pattern,
    Body,
    ResponseBody,
    AdditionalBindings,
}

/// A mistake in a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub message: String,
    /// `None` for the rule itself, `Some(i)` for its `additional_bindings[i]`.
    pub binding: Option<usize>,
    pub part: RulePart,
    /// For pattern errors, the byte range of the template text at fault.
    pub at: Option<Range<usize>>,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A field path from a message down to a leaf: `book.name` as two field descriptors.
pub type FieldPath = Vec<FieldDescriptor>;

/// What of the request the body carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyRule {
    /// No body: every field not in the path comes from the query.
    None,
    /// `*`: every field not in the path; no query parameters.
    All,
    /// One top-level field; the others not in the path come from the query.
    Field(FieldDescriptor),
}

/// One checked binding of one method.
#[derive(Clone, Debug)]
pub struct Binding {
    pub method: HttpMethod,
    pub template: Template,
    /// The template as written.
    pub path: String,
    /// The field each of `template.variables` binds.
    pub variables: Vec<FieldPath>,
    pub body: BodyRule,
    pub response_body: Option<FieldDescriptor>,
    /// 0 for the rule itself, `i + 1` for `additional_bindings[i]`.
    pub index: usize,
}

/// Well-known message types that path variables and query parameters take in their JSON
/// string form.
pub const SCALAR_MESSAGES: &[&str] = &[
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

/// Whether a field holds one value a path or query parameter can give.
pub fn is_scalar_leaf(field: &FieldDescriptor) -> bool {
    match field.kind() {
        Kind::Message(message) => SCALAR_MESSAGES.contains(&message.full_name()),
        _ => true,
    }
}

impl Rule {
    /// Reads a `google.api.HttpRule` message.
    pub fn from_message(rule: &DynamicMessage) -> Self {
        let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
            Some(Value::String(text)) => text.clone(),
            _ => String::new(),
        };
        let set = |name: &str| rule.has_field_by_name(name);
        let (method, path) = if set("get") {
            (Some(HttpMethod::Get), text("get"))
        } else if set("put") {
            (Some(HttpMethod::Put), text("put"))
        } else if set("post") {
            (Some(HttpMethod::Post), text("post"))
        } else if set("delete") {
            (Some(HttpMethod::Delete), text("delete"))
        } else if set("patch") {
            (Some(HttpMethod::Patch), text("patch"))
        } else if let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref()
            && set("custom")
        {
            let field = |name: &str| match custom.get_field_by_name(name).as_deref() {
                Some(Value::String(text)) => text.clone(),
                _ => String::new(),
            };
            let kind = field("kind");
            let method = match kind.as_str() {
                "*" => HttpMethod::Any,
                kind => HttpMethod::Custom(kind.to_owned()),
            };
            (Some(method), field("path"))
        } else {
            (None, String::new())
        };
        let additional_bindings = match rule.get_field_by_name("additional_bindings").as_deref() {
            Some(Value::List(list)) => list
                .iter()
                .filter_map(|value| value.as_message().map(Self::from_message))
                .collect(),
            _ => Vec::new(),
        };
        Self {
            selector: text("selector"),
            method,
            path,
            body: text("body"),
            response_body: text("response_body"),
            additional_bindings,
        }
    }

    /// The `google.api.http` annotation of `method`, if it has one (the extension must be in
    /// the method's pool, which it is whenever the file imports `google/api/annotations.proto`).
    pub fn of_method(method: &MethodDescriptor) -> Option<Self> {
        let extension = method
            .parent_pool()
            .get_extension_by_name("google.api.http")?;
        let options = method.options();
        if !options.has_extension(&extension) {
            return None;
        }
        match &*options.get_extension(&extension) {
            Value::Message(rule) => Some(Self::from_message(rule)),
            _ => None,
        }
    }

    /// Checks the rule and its additional bindings against `method`; returns every binding
    /// that checks out and every mistake.
    pub fn bindings(&self, method: &MethodDescriptor) -> (Vec<Binding>, Vec<RuleError>) {
        let mut bindings = Vec::new();
        let mut errors = Vec::new();
        let all = std::iter::once(self).chain(&self.additional_bindings);
        for (index, rule) in all.enumerate() {
            let which = index.checked_sub(1);
            if index > 0 && !rule.additional_bindings.is_empty() {
                errors.push(RuleError {
                    message: "additional bindings do not nest: list them all in the top rule"
                        .into(),
                    binding: which,
                    part: RulePart::AdditionalBindings,
                    at: None,
                });
            }
            match rule.check(method, which) {
                Ok(mut binding) => {
                    binding.index = index;
                    bindings.push(binding);
                }
                Err(mut found) => errors.append(&mut found),
            }
        }
        (bindings, errors)
    }

    fn check(
        &self,
        method: &MethodDescriptor,
        which: Option<usize>,
    ) -> Result<Binding, Vec<RuleError>> {
        let error = |part, message: String, at| RuleError {
            message,
            binding: which,
            part,
            at,
        };
        let mut errors = Vec::new();
        let Some(http_method) = self.method.clone() else {
            return Err(vec![error(
                RulePart::Pattern,
                "the rule sets no pattern: one of `get`, `put`, `post`, `delete`, `patch` or \
                 `custom`"
                    .into(),
                None,
            )]);
        };
        if let HttpMethod::Custom(kind) = &http_method
            && (kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_uppercase()))
        {
            errors.push(error(
                RulePart::Pattern,
                format!("custom kind `{kind}` is not an HTTP method: write it in capitals (`HEAD`), or `*` for any"),
                None,
            ));
        }
        let template = match Template::parse(&self.path) {
            Ok(template) => Some(template),
            Err(TemplateError { message, at }) => {
                errors.push(error(RulePart::Pattern, message, Some(at)));
                None
            }
        };
        let input = method.input();
        let output = method.output();
        let mut variables = Vec::new();
        if let Some(template) = &template {
            for variable in &template.variables {
                match path_variable(&input, &variable.field_path) {
                    Ok(path) => variables.push(path),
                    Err(message) => {
                        errors.push(error(RulePart::Pattern, message, Some(variable.at.clone())))
                    }
                }
            }
        }
        let body = match self.body.as_str() {
            "" => BodyRule::None,
            "*" => BodyRule::All,
            name => match input.get_field_by_name(name) {
                Some(field) => BodyRule::Field(field),
                None => {
                    errors.push(error(
                        RulePart::Body,
                        format!(
                            "body `{name}` is not a field of `{}`{}",
                            input.full_name(),
                            field_list(&input)
                        ),
                        None,
                    ));
                    BodyRule::None
                }
            },
        };
        if http_method == HttpMethod::Get && body != BodyRule::None {
            errors.push(error(
                RulePart::Body,
                "a GET binding has no body: drop `body`, or bind another method".into(),
                None,
            ));
        }
        if method.is_client_streaming() && body != BodyRule::All {
            errors.push(error(
                RulePart::Body,
                "a client-streaming method reads its messages from the body: set `body: \"*\"`"
                    .into(),
                None,
            ));
        }
        let response_body = match self.response_body.as_str() {
            "" => None,
            name => match output.get_field_by_name(name) {
                Some(field) => Some(field),
                None => {
                    errors.push(error(
                        RulePart::ResponseBody,
                        format!(
                            "response_body `{name}` is not a field of `{}`{}",
                            output.full_name(),
                            field_list(&output)
                        ),
                        None,
                    ));
                    None
                }
            },
        };
        match template {
            Some(template) if errors.is_empty() => Ok(Binding {
                method: http_method,
                template,
                path: self.path.clone(),
                variables,
                body,
                response_body,
                index: 0,
            }),
            _ => Err(errors),
        }
    }
}

/// Resolves a path variable's field path in `input`: singular messages down to a singular
/// scalar (or scalar well-known type) leaf.
fn path_variable(input: &MessageDescriptor, names: &[String]) -> Result<FieldPath, String> {
    let mut message = input.clone();
    let mut path = Vec::with_capacity(names.len());
    for (depth, name) in names.iter().enumerate() {
        let Some(field) = message.get_field_by_name(name) else {
            return Err(format!(
                "`{name}` is not a field of `{}`{}",
                message.full_name(),
                field_list(&message)
            ));
        };
        let last = depth + 1 == names.len();
        if field.is_list() || field.is_map() {
            return Err(format!(
                "`{}` is repeated: a path variable binds one value",
                names[..=depth].join(".")
            ));
        }
        match field.kind() {
            Kind::Message(inner) if !last => message = inner,
            _ if last => {
                if !is_scalar_leaf(&field) {
                    return Err(format!(
                        "`{}` is a message: a path variable binds a scalar field (or a well-known scalar type such as Timestamp)",
                        names.join(".")
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "`{}` is not a message, so it has no field `{}`",
                    names[..=depth].join("."),
                    names[depth + 1]
                ));
            }
        }
        path.push(field);
    }
    Ok(path)
}

/// `" (fields: a, b, c)"`, or nothing for a message without fields.
fn field_list(message: &MessageDescriptor) -> String {
    let names: Vec<String> = message.fields().map(|f| f.name().to_owned()).collect();
    if names.is_empty() {
        return " (it has no fields)".into();
    }
    format!(" (fields: {})", names.join(", "))
}
