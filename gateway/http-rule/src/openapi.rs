//! OpenAPI 3.1 for HTTP bindings, from the same bindings the gateway routes by, with the JSON
//! names and types the gateway emits: 64-bit integers as strings with `format: int64`, enums
//! as string enums, well-known types in their JSON forms (Timestamp as `date-time`, wrappers
//! as nullable scalars, `Struct` as an object, `Any` with `@type`), `google.rpc.Status` for
//! every error, proto comments as descriptions.
//!
//! Each binding is one operation: path parameters from the template (a multi-segment variable
//! such as `{name=shelves/*}` is one parameter whose description gives its pattern; OpenAPI
//! has no way to say a parameter may hold `/`), query parameters for the fields neither the
//! path nor the body binds (nested ones as `a.b`, repeated ones exploded), and the request
//! body when the binding has one.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost_reflect::{FieldDescriptor, FileDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::{Map, Value, json};

use crate::binding::{Binding, BodyRule, SCALAR_MESSAGES};
use crate::template::Segment;

/// How the document names things.
#[derive(Clone, Debug)]
pub struct Options {
    pub title: String,
    pub version: String,
    /// Proto field names instead of lowerCamelCase JSON names (as the gateway's
    /// `field_names = "proto"`).
    pub proto_field_names: bool,
}

/// The OpenAPI 3.1 document of `operations` (each a method and one of its bindings).
pub fn document(operations: &[(MethodDescriptor, Binding)], options: &Options) -> Value {
    let mut writer = Writer {
        options,
        schemas: BTreeMap::new(),
        pending: Vec::new(),
        comments: HashMap::new(),
    };
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut operation_ids: HashSet<String> = HashSet::new();
    let mut tags: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (method, binding) in operations {
        let path = openapi_path(binding);
        let service = method.parent_service();
        tags.entry(service.full_name().to_owned())
            .or_insert_with(|| writer.comment(&service.parent_file(), service.path()));
        let mut id = format!("{}.{}", service.full_name(), method.name());
        if !operation_ids.insert(id.clone()) {
            id = format!("{id}_{}", binding.index);
            operation_ids.insert(id.clone());
        }
        let operation = writer.operation(method, binding, id);
        let verb = match binding.method.as_str() {
            "*" => "post".to_owned(),
            other => other.to_ascii_lowercase(),
        };
        paths.entry(path).or_default().insert(verb, operation);
    }
    writer.drain();
    // Every error body, whatever the operations' messages are.
    writer.schemas.insert(
        "google.rpc.Status".into(),
        json!({
            "type": "object",
            "description": "The error: the gRPC code, a message, and details such as google.rpc.ErrorInfo or BadRequest.",
            "properties": {
                "code": {"type": "integer", "format": "int32"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"$ref": "#/components/schemas/google.protobuf.Any"}},
            },
        }),
    );
    writer
        .schemas
        .entry("google.protobuf.Any".into())
        .or_insert_with(|| well_known("google.protobuf.Any").unwrap_or_default());
    let tags: Vec<Value> = tags
        .into_iter()
        .map(|(name, description)| match description {
            Some(description) => json!({"name": name, "description": description}),
            None => json!({"name": name}),
        })
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {"title": options.title, "version": options.version},
        "tags": tags,
        "paths": paths,
        "components": {"schemas": writer.schemas},
    })
}

/// The template as an OpenAPI path: each variable one `{name}` parameter.
fn openapi_path(binding: &Binding) -> String {
    let template = &binding.template;
    let mut out = String::new();
    let mut at = 0;
    while at < template.segments.len() {
        out.push('/');
        if let Some(variable) = template.variables.iter().find(|v| v.start == at) {
            out.push('{');
            out.push_str(&variable.field_path.join("."));
            out.push('}');
            at = variable.end;
            continue;
        }
        match &template.segments[at] {
            Segment::Literal(text) => out.push_str(text),
            Segment::Single => out.push('*'),
            Segment::Multi => out.push_str("**"),
        }
        at += 1;
    }
    if let Some(verb) = &template.verb {
        out.push(':');
        out.push_str(verb);
    }
    out
}

struct Writer<'a> {
    options: &'a Options,
    schemas: BTreeMap<String, Value>,
    /// Messages referred to and not yet written.
    pending: Vec<MessageDescriptor>,
    /// Leading comments by file and source path.
    comments: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Writer<'_> {
    fn comment(&mut self, file: &FileDescriptor, path: &[i32]) -> Option<String> {
        let by_path = self
            .comments
            .entry(file.name().to_owned())
            .or_insert_with(|| {
                let mut map = HashMap::new();
                if let Some(info) = &file.file_descriptor_proto().source_code_info {
                    for location in &info.location {
                        if let Some(text) = &location.leading_comments {
                            let text = text
                                .lines()
                                .map(str::trim)
                                .collect::<Vec<_>>()
                                .join("\n")
                                .trim()
                                .to_owned();
                            if !text.is_empty() {
                                map.insert(location.path.clone(), text);
                            }
                        }
                    }
                }
                map
            });
        by_path.get(path).cloned()
    }

    fn name<'f>(&self, field: &'f FieldDescriptor) -> &'f str {
        if self.options.proto_field_names {
            field.name()
        } else {
            field.json_name()
        }
    }

    fn operation(&mut self, method: &MethodDescriptor, binding: &Binding, id: String) -> Value {
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(id));
        operation.insert("tags".into(), json!([method.parent_service().full_name()]));
        if let Some(description) = self.comment(&method.parent_file(), method.path()) {
            let summary = description.lines().next().unwrap_or_default().to_owned();
            operation.insert("summary".into(), json!(summary));
            operation.insert("description".into(), json!(description));
        }
        let mut parameters = Vec::new();
        for (variable, path) in binding.template.variables.iter().zip(&binding.variables) {
            let name = variable.field_path.join(".");
            let leaf = path.last();
            let mut schema = leaf
                .map(|f| self.field_schema(f, false))
                .unwrap_or(json!({}));
            let multi = variable.is_multi_segment(&binding.template);
            let mut description = leaf
                .and_then(|f| self.comment(&f.parent_file(), f.path()))
                .unwrap_or_default();
            if multi {
                let pattern: Vec<String> = binding.template.segments[variable.start..variable.end]
                    .iter()
                    .map(|segment| match segment {
                        Segment::Literal(text) => text.clone(),
                        Segment::Single => "*".into(),
                        Segment::Multi => "**".into(),
                    })
                    .collect();
                if !description.is_empty() {
                    description.push_str("\n\n");
                }
                description.push_str(&format!(
                    "Matches `{}`; the value may contain `/`.",
                    pattern.join("/")
                ));
                schema = json!({"type": "string"});
            }
            let mut parameter =
                json!({"name": name, "in": "path", "required": true, "schema": schema});
            if !description.is_empty() {
                parameter["description"] = json!(description);
            }
            parameters.push(parameter);
        }
        let input = method.input();
        let http_body = |m: &MessageDescriptor| m.full_name() == "google.api.HttpBody";
        match &binding.body {
            BodyRule::All => {
                let content = if http_body(&input) {
                    json!({"*/*": {"schema": {"type": "string", "format": "binary"}}})
                } else if method.is_client_streaming() {
                    let schema = self.reference(&input);
                    json!({
                        "application/json": {"schema": {"type": "array", "items": schema}},
                        "application/x-ndjson": {"schema": schema},
                    })
                } else {
                    let schema = self.reference(&input);
                    json!({"application/json": {"schema": schema}})
                };
                operation.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": content}),
                );
            }
            BodyRule::Field(field) => {
                let content = match field.kind() {
                    Kind::Message(m) if http_body(&m) && !field.is_list() => {
                        json!({"*/*": {"schema": {"type": "string", "format": "binary"}}})
                    }
                    _ => json!({"application/json": {"schema": self.field_schema(field, true)}}),
                };
                operation.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": content}),
                );
            }
            BodyRule::None => {}
        }
        if binding.body != BodyRule::All {
            let skip_top = match &binding.body {
                BodyRule::Field(field) => Some(field.clone()),
                _ => None,
            };
            let mut prefix = Vec::new();
            self.query_parameters(
                &input,
                &mut prefix,
                binding,
                skip_top.as_ref(),
                &mut parameters,
                0,
            );
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        let output = method.output();
        let response_schema = match &binding.response_body {
            Some(field) => match field.kind() {
                Kind::Message(m) if http_body(&m) && !field.is_list() => None,
                _ => Some(self.field_schema(field, true)),
            },
            None if http_body(&output) => None,
            None => Some(self.reference(&output)),
        };
        let streaming = method.is_server_streaming();
        let content = match (response_schema, streaming) {
            (None, _) => json!({"*/*": {"schema": {"type": "string", "format": "binary"}}}),
            (Some(schema), false) => json!({"application/json": {"schema": schema}}),
            (Some(schema), true) => json!({
                "application/x-ndjson": {"schema": schema},
                "text/event-stream": {"schema": {"type": "string"}},
            }),
        };
        let description = if streaming {
            "A stream of messages: NDJSON, one JSON value per line, a failure ending it with \
             `{\"error\": Status}`; or, on `Accept: text/event-stream`, Server-Sent Events, \
             each message as `data: <json>` and a failure as `event: error`"
        } else {
            "OK"
        };
        let status_ref = json!({"$ref": "#/components/schemas/google.rpc.Status"});
        operation.insert(
            "responses".into(),
            json!({
                "200": {"description": description, "content": content},
                "default": {
                    "description": "An error: the HTTP status of the gRPC code, and the status",
                    "content": {"application/json": {"schema": status_ref}},
                },
            }),
        );
        Value::Object(operation)
    }

    /// The query parameters of `message`'s fields not bound by the path or the body.
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: &mut Vec<FieldDescriptor>,
        binding: &Binding,
        skip_top: Option<&FieldDescriptor>,
        out: &mut Vec<Value>,
        depth: usize,
    ) {
        for field in message.fields() {
            if depth == 0 && skip_top == Some(&field) {
                continue;
            }
            prefix.push(field.clone());
            let scalar = match field.kind() {
                Kind::Message(inner) => SCALAR_MESSAGES.contains(&inner.full_name()),
                _ => true,
            };
            if binding.variables.iter().any(|path| path == prefix) {
                // Given by the path.
            } else if let Kind::Message(inner) = field.kind()
                && !scalar
                && !field.is_list()
                && !field.is_map()
                && depth < 4
            {
                self.query_parameters(&inner, prefix, binding, None, out, depth + 1);
            } else if scalar && !field.is_map() {
                let name: Vec<&str> = prefix.iter().map(|f| self.name(f)).collect();
                let mut parameter = json!({
                    "name": name.join("."),
                    "in": "query",
                    "schema": self.field_schema(&field, true),
                });
                if field.is_list() {
                    parameter["explode"] = json!(true);
                    parameter["style"] = json!("form");
                }
                if let Some(description) = self.comment(&field.parent_file(), field.path()) {
                    parameter["description"] = json!(description);
                }
                out.push(parameter);
            }
            prefix.pop();
        }
    }

    fn reference(&mut self, message: &MessageDescriptor) -> Value {
        self.ensure(message);
        json!({"$ref": format!("#/components/schemas/{}", message.full_name())})
    }

    fn ensure(&mut self, message: &MessageDescriptor) {
        let name = message.full_name();
        if !self.schemas.contains_key(name) && !self.pending.iter().any(|m| m.full_name() == name) {
            self.pending.push(message.clone());
        }
    }

    fn drain(&mut self) {
        while let Some(message) = self.pending.pop() {
            if self.schemas.contains_key(message.full_name()) {
                continue;
            }
            // A placeholder first, so recursive messages terminate.
            self.schemas
                .insert(message.full_name().to_owned(), json!({}));
            let schema = self.message_schema(&message);
            self.schemas.insert(message.full_name().to_owned(), schema);
        }
    }

    fn message_schema(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message.full_name()) {
            return schema;
        }
        let mut properties = Map::new();
        for field in message.fields() {
            let mut schema = self.field_schema(&field, true);
            if let Some(description) = self.comment(&field.parent_file(), field.path())
                && let Value::Object(map) = &mut schema
            {
                if map.contains_key("$ref") {
                    schema = json!({"allOf": [schema], "description": description});
                } else {
                    map.insert("description".into(), json!(description));
                }
            }
            properties.insert(self.name(&field).to_owned(), schema);
        }
        let mut schema = json!({"type": "object", "properties": properties});
        if let Some(description) = self.comment(&message.parent_file(), message.path()) {
            schema["description"] = json!(description);
        }
        schema
    }

    /// A field's schema; `whole` false gives the element of a repeated field's value as a
    /// path parameter would (never repeated).
    fn field_schema(&mut self, field: &FieldDescriptor, whole: bool) -> Value {
        if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => entry
                    .get_field_by_name("value")
                    .map(|v| self.single(&v))
                    .unwrap_or(json!({})),
                _ => json!({}),
            };
            return json!({"type": "object", "additionalProperties": value});
        }
        let single = self.single(field);
        if field.is_list() && whole {
            json!({"type": "array", "items": single})
        } else {
            single
        }
    }

    fn single(&mut self, field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 4_294_967_295u64})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Enum(descriptor) => {
                let names: Vec<String> = descriptor.values().map(|v| v.name().to_owned()).collect();
                json!({"type": "string", "enum": names})
            }
            Kind::Message(message) => self.reference(&message),
        }
    }
}

/// The JSON form of a well-known type.
fn well_known(name: &str) -> Option<Value> {
    let nullable = |t: &str, format: Option<&str>| {
        let mut schema = json!({"type": [t, "null"]});
        if let Some(format) = format {
            schema["format"] = json!(format);
        }
        schema
    };
    Some(match name {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "description": "seconds with an `s` suffix, such as `1.5s`"})
        }
        "google.protobuf.FieldMask" => {
            json!({"type": "string", "description": "field paths separated by commas"})
        }
        "google.protobuf.Struct" => json!({"type": "object"}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": true,
        }),
        "google.protobuf.DoubleValue" => nullable("number", Some("double")),
        "google.protobuf.FloatValue" => nullable("number", Some("float")),
        "google.protobuf.Int64Value" => nullable("string", Some("int64")),
        "google.protobuf.UInt64Value" => nullable("string", Some("uint64")),
        "google.protobuf.Int32Value" => nullable("integer", Some("int32")),
        "google.protobuf.UInt32Value" => nullable("integer", None),
        "google.protobuf.BoolValue" => nullable("boolean", None),
        "google.protobuf.StringValue" => nullable("string", None),
        "google.protobuf.BytesValue" => nullable("string", Some("byte")),
        _ => return None,
    })
}
