//! An HTTP request as the method's request message(s).
//!
//! Order, so that path values win: the body first (all of the message with `body: "*"`, one
//! field with `body: "field"`), then the query parameters (into the fields neither the path
//! nor a `*` body covers), then the path variables. A client-streaming method reads a JSON
//! array or NDJSON (one message per line) and gets the path values in every message.
//! `google.api.HttpBody` bodies are taken raw, with their content type.

use std::collections::HashSet;

use bytes::Bytes;
use mosaic_http_rule::escape::{self, Mode};
use mosaic_http_rule::{BodyRule, FieldPath};
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    Value,
};

use super::HttpConfig;
use super::route::HttpRoute;
use super::value;

/// A request that cannot be turned into a message: the 400 (or 415) it gets, and why.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) status: http::StatusCode,
    pub(crate) message: String,
}

impl Rejection {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self {
            status: http::StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// The parts of an HTTP request the message is made of.
pub(crate) struct Parts<'a> {
    pub(crate) captures: Vec<String>,
    pub(crate) query: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: Bytes,
}

/// Builds the request message(s) for `route`.
pub(crate) fn messages(
    route: &HttpRoute,
    parts: Parts<'_>,
    config: &HttpConfig,
) -> Result<Vec<DynamicMessage>, Rejection> {
    let input = route.method.input();
    let binding = &route.binding;
    let mut messages = match &binding.body {
        BodyRule::None => vec![DynamicMessage::new(input.clone())],
        BodyRule::All if route.http_body_request => {
            vec![http_body(&input, parts.content_type, parts.body)]
        }
        BodyRule::All if route.method.is_client_streaming() => json_stream(&input, &parts, config)?,
        BodyRule::All => vec![json_message(&input, &parts, config)?],
        BodyRule::Field(field) => {
            let mut message = DynamicMessage::new(input.clone());
            let value = field_body(&input, field, &parts, config)?;
            message.set_field(field, value);
            vec![message]
        }
    };
    let bound: Vec<&FieldPath> = binding.variables.iter().collect();
    if binding.body != BodyRule::All
        && let Some(query) = parts.query
    {
        let covered = match &binding.body {
            BodyRule::Field(field) => Some(field),
            _ => None,
        };
        for message in &mut messages {
            apply_query(message, query, &bound, covered, config)?;
        }
    } else if let Some(query) = parts.query.filter(|q| !q.is_empty())
        && config.reject_unknown_query_parameters
    {
        let first = query.split('&').next().unwrap_or_default();
        let name = first.split_once('=').map_or(first, |(name, _)| name);
        return Err(Rejection::bad(format!(
            "query parameter `{}` is not taken: this route reads every field from the body",
            escape::decode(name, Mode::Query).unwrap_or_else(|_| name.to_owned())
        )));
    }
    for message in &mut messages {
        for ((variable, path), text) in binding
            .template
            .variables
            .iter()
            .zip(&binding.variables)
            .zip(&parts.captures)
        {
            let name = variable.field_path.join(".");
            let leaf = path
                .last()
                .ok_or_else(|| Rejection::bad("empty field path"))?;
            let value = value::parse(leaf, &name, text)
                .map_err(|message| Rejection::bad(format!("path variable {message}")))?;
            value::set(message, path, &name, value).map_err(Rejection::bad)?;
        }
    }
    Ok(messages)
}

fn deserialize_options(config: &HttpConfig) -> DeserializeOptions {
    DeserializeOptions::new().deny_unknown_fields(config.reject_unknown_fields)
}

fn json_message(
    input: &MessageDescriptor,
    parts: &Parts<'_>,
    config: &HttpConfig,
) -> Result<DynamicMessage, Rejection> {
    json_content(parts.content_type)?;
    if parts.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(input.clone()));
    }
    parse_json(input, &parts.body, config).map_err(|error| {
        Rejection::bad(format!(
            "the request body is not a valid `{}`: {error}",
            input.full_name()
        ))
    })
}

fn parse_json(
    input: &MessageDescriptor,
    json: &[u8],
    config: &HttpConfig,
) -> Result<DynamicMessage, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let message = DynamicMessage::deserialize_with_options(
        input.clone(),
        &mut deserializer,
        &deserialize_options(config),
    )?;
    deserializer.end()?;
    Ok(message)
}

/// A field's value from the body: the body is that field's JSON value (a message, a list, a
/// map or a scalar), read as the value of a one-field object.
fn field_body(
    input: &MessageDescriptor,
    field: &FieldDescriptor,
    parts: &Parts<'_>,
    config: &HttpConfig,
) -> Result<Value, Rejection> {
    if let Kind::Message(message) = field.kind()
        && message.full_name() == "google.api.HttpBody"
        && !field.is_list()
    {
        return Ok(Value::Message(http_body(
            &message,
            parts.content_type,
            parts.body.clone(),
        )));
    }
    json_content(parts.content_type)?;
    if parts.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::default_value_for_field(field));
    }
    let mut wrapped = Vec::with_capacity(parts.body.len() + field.name().len() + 8);
    wrapped.extend_from_slice(b"{\"");
    wrapped.extend_from_slice(field.name().as_bytes());
    wrapped.extend_from_slice(b"\":");
    wrapped.extend_from_slice(&parts.body);
    wrapped.extend_from_slice(b"\n}");
    let message = parse_json(input, &wrapped, config).map_err(|error| {
        Rejection::bad(format!(
            "the request body is not a valid `{}` (the `{}` field): {error}",
            field_type(field),
            field.name()
        ))
    })?;
    Ok(message.get_field(field).into_owned())
}

fn field_type(field: &FieldDescriptor) -> String {
    match field.kind() {
        Kind::Message(message) => message.full_name().to_owned(),
        Kind::Enum(descriptor) => descriptor.full_name().to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A client stream's messages: a JSON array of objects, or one object per line (NDJSON,
/// blank lines skipped).
fn json_stream(
    input: &MessageDescriptor,
    parts: &Parts<'_>,
    config: &HttpConfig,
) -> Result<Vec<DynamicMessage>, Rejection> {
    let ndjson = parts
        .content_type
        .is_some_and(|ct| essence(ct) == "application/x-ndjson");
    if !ndjson {
        json_content(parts.content_type)?;
    }
    let bad = |at: usize, error: serde_json::Error| {
        Rejection::bad(format!(
            "message {at} of the request stream is not a valid `{}`: {error}",
            input.full_name()
        ))
    };
    let first = parts.body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') && !ndjson {
        let values: Vec<serde_json::Value> =
            serde_json::from_slice(&parts.body).map_err(|error| {
                Rejection::bad(format!(
                    "the request body is not a JSON array of `{}`: {error}",
                    input.full_name()
                ))
            })?;
        return values
            .into_iter()
            .enumerate()
            .map(|(at, value)| {
                DynamicMessage::deserialize_with_options(
                    input.clone(),
                    value,
                    &deserialize_options(config),
                )
                .map_err(|e| bad(at, e))
            })
            .collect();
    }
    parts
        .body
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .enumerate()
        .map(|(at, line)| parse_json(input, line, config).map_err(|e| bad(at, e)))
        .collect()
}

/// A `google.api.HttpBody` holding the raw body and its content type.
fn http_body(
    descriptor: &MessageDescriptor,
    content_type: Option<&str>,
    body: Bytes,
) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    if let Some(content_type) = content_type {
        message.set_field_by_name("content_type", Value::String(content_type.to_owned()));
    }
    message.set_field_by_name("data", Value::Bytes(body));
    message
}

/// The media type without parameters, lower case.
pub(crate) fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A JSON body is declared `application/json` (or a `+json` type) or carries no content type;
/// anything else is a 415. (`curl -d` sends `application/x-www-form-urlencoded` unless told
/// otherwise, hence the hint.)
fn json_content(content_type: Option<&str>) -> Result<(), Rejection> {
    let Some(content_type) = content_type else {
        return Ok(());
    };
    let essence = essence(content_type);
    if essence == "application/json" || essence.ends_with("+json") {
        return Ok(());
    }
    Err(Rejection {
        status: http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message: format!(
            "content type `{content_type}` is not taken here: send the body as JSON with `content-type: application/json`"
        ),
    })
}

/// Sets the query parameters into `message`. A name is a field path (`a.b`) in proto or JSON
/// names; repeated fields take every occurrence.
fn apply_query(
    message: &mut DynamicMessage,
    query: &str,
    bound: &[&FieldPath],
    body: Option<&FieldDescriptor>,
    config: &HttpConfig,
) -> Result<(), Rejection> {
    let mut seen: HashSet<String> = HashSet::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = escape::decode(raw_name, Mode::Query)
            .map_err(|error| Rejection::bad(format!("query parameter name: {error}")))?;
        let text = escape::decode(raw_value, Mode::Query)
            .map_err(|error| Rejection::bad(format!("query parameter `{name}`: {error}")))?;
        let path = match field_path(&message.descriptor(), &name) {
            Ok(path) => path,
            Err(_) if !config.reject_unknown_query_parameters => continue,
            Err(message) => return Err(Rejection::bad(message)),
        };
        let covered = body.is_some_and(|field| path.first() == Some(field))
            || bound
                .iter()
                .any(|bound| path.starts_with(bound) || bound.starts_with(&path));
        if covered {
            return Err(Rejection::bad(format!(
                "query parameter `{name}` sets a field the path or the body already gives"
            )));
        }
        let leaf = path
            .last()
            .ok_or_else(|| Rejection::bad("empty query parameter name"))?;
        if leaf.is_map() {
            return Err(Rejection::bad(format!(
                "query parameter `{name}` is a map, which the query cannot set: send it in a body"
            )));
        }
        if !leaf.is_list() && !seen.insert(name.clone()) {
            return Err(Rejection::bad(format!(
                "query parameter `{name}` is given twice but is not repeated"
            )));
        }
        let value = value::parse(leaf, &name, &text)
            .map_err(|message| Rejection::bad(format!("query parameter {message}")))?;
        value::set(message, &path, &name, value).map_err(Rejection::bad)?;
    }
    Ok(())
}

/// Resolves `a.b.c` from `message`: each part a field's proto or JSON name; every part but
/// the last a singular message.
fn field_path(message: &MessageDescriptor, name: &str) -> Result<FieldPath, String> {
    let mut current = message.clone();
    let mut path = Vec::new();
    let parts: Vec<&str> = name.split('.').collect();
    for (depth, part) in parts.iter().enumerate() {
        let field = current
            .get_field_by_name(part)
            .or_else(|| current.get_field_by_json_name(part))
            .ok_or_else(|| {
                format!(
                    "query parameter `{name}` names no field of `{}`",
                    current.full_name()
                )
            })?;
        let last = depth + 1 == parts.len();
        if !last {
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
                _ => {
                    return Err(format!(
                        "query parameter `{name}`: `{part}` is not a singular message, so `{}` cannot follow it",
                        parts[depth + 1]
                    ));
                }
            }
        } else if let Kind::Message(inner) = field.kind()
            && !field.is_map()
            && !mosaic_http_rule::binding::is_scalar_leaf(&field)
        {
            return Err(format!(
                "query parameter `{name}` is a `{}`: set its fields one by one (`{name}.field=...`)",
                inner.full_name()
            ));
        }
        path.push(field);
    }
    Ok(path)
}
