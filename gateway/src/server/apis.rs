//! `GET /apis` on the admin listener: every published API for people, in small (the seed's
//! "API publishing portal"). One server-rendered HTML page, no script and no build step:
//! each service with its proto comments, each method with its request and response types, an
//! example `buf curl` for the gRPC call and an example `curl` for every HTTP route, the
//! messages involved with their fields, and a link to `/openapi.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use super::snapshot::Snapshot;

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The leading comment of the element at `path` in `message`'s file.
fn comment(file: &prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location.leading_comments.as_deref()?.trim();
    (!text.is_empty()).then(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

fn type_name(field: &FieldDescriptor) -> String {
    let base = match field.kind() {
        Kind::Message(message) => message.full_name().to_owned(),
        Kind::Enum(descriptor) => descriptor.full_name().to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    if field.is_map() {
        let value = match field.kind() {
            Kind::Message(entry) => entry
                .get_field_by_name("value")
                .map(|v| type_name(&v))
                .unwrap_or_default(),
            _ => String::new(),
        };
        format!("map&lt;string, {value}&gt;")
    } else if field.is_list() {
        format!("repeated {base}")
    } else {
        base
    }
}

/// A small example request in proto3 JSON: one placeholder per top-level scalar field.
fn example(message: &MessageDescriptor) -> String {
    let mut parts = Vec::new();
    for field in message.fields().take(4) {
        let value = match field.kind() {
            _ if field.is_list() || field.is_map() => continue,
            Kind::Int64 | Kind::Uint64 | Kind::Sint64 | Kind::Fixed64 | Kind::Sfixed64 => {
                "\"1\"".into()
            }
            Kind::Int32 | Kind::Uint32 | Kind::Sint32 | Kind::Fixed32 | Kind::Sfixed32 => {
                "1".into()
            }
            Kind::Float | Kind::Double => "1.5".into(),
            Kind::Bool => "true".into(),
            Kind::String => "\"text\"".into(),
            Kind::Enum(descriptor) => format!(
                "\"{}\"",
                descriptor
                    .values()
                    .nth(1)
                    .or_else(|| descriptor.values().next())
                    .map(|v| v.name().to_owned())
                    .unwrap_or_default()
            ),
            _ => continue,
        };
        parts.push(format!("\"{}\": {value}", field.json_name()));
    }
    format!("{{{}}}", parts.join(", "))
}

/// A path template with its variables filled in by example values.
fn example_path(template: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in template.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push('1');
                }
            }
            '}' => depth -= 1,
            _ if depth > 0 => {}
            other => out.push(other),
        }
    }
    out
}

/// The page.
pub(super) fn page(snapshot: &Snapshot, edge: Option<SocketAddr>) -> String {
    let edge = edge.map_or_else(
        || snapshot.config.listener.address.to_string(),
        |a| a.to_string(),
    );
    let router = &snapshot.router;
    let methods = router.described_methods();
    let mut by_service: BTreeMap<String, Vec<MethodDescriptor>> = BTreeMap::new();
    for method in methods {
        by_service
            .entry(method.parent_service().full_name().to_owned())
            .or_default()
            .push(method);
    }
    let mut messages: BTreeMap<String, MessageDescriptor> = BTreeMap::new();
    let mut out = String::new();
    out.push_str(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>APIs · Mosaic</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}",
        "h2{border-bottom:1px solid #ccc;margin-top:2em}code,pre{background:#f4f4f4;border-radius:3px}",
        "pre{padding:.6em;white-space:pre-wrap;word-break:break-all}.method{margin:1em 0 1.5em 1em}.route{color:#06c;font-weight:600}",
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}</style>",
        "</head><body><h1>Published APIs</h1>",
    ));
    let _ = write!(
        out,
        "<p>Every API this gateway serves, over gRPC, gRPC-Web and Connect on <code>{}</code>, and over HTTP/JSON where a method has a route. \
         The HTTP/JSON API is also described in <a href=\"/openapi.json\">OpenAPI 3.1</a>.</p><ul>",
        escape(&edge)
    );
    for service in by_service.keys() {
        let _ = write!(out, "<li><a href=\"#{0}\">{0}</a></li>", escape(service));
    }
    out.push_str("</ul>");
    for (service, methods) in &by_service {
        let descriptor = methods[0].parent_service();
        let _ = write!(out, "<h2 id=\"{0}\">{0}</h2>", escape(service));
        if let Some(text) = comment(&descriptor.parent_file(), descriptor.path()) {
            let _ = write!(out, "<p>{}</p>", escape(&text));
        }
        for method in methods {
            let input = method.input();
            let output = method.output();
            let streaming = match (method.is_client_streaming(), method.is_server_streaming()) {
                (false, false) => "",
                (true, false) => " (client streaming)",
                (false, true) => " (server streaming)",
                (true, true) => " (bidirectional streaming)",
            };
            let _ = write!(
                out,
                "<div class=\"method\" id=\"{service}.{name}\"><h3>{name}{streaming}</h3>",
                service = escape(service),
                name = escape(method.name())
            );
            if let Some(text) = comment(&method.parent_file(), method.path()) {
                let _ = write!(out, "<p>{}</p>", escape(&text));
            }
            let _ = write!(
                out,
                "<p><code>{}</code> → <code>{}</code></p>",
                escape(input.full_name()),
                escape(output.full_name())
            );
            let body = example(&input);
            let _ = write!(
                out,
                "<p>gRPC (also <code>--protocol grpcweb</code> or <code>connect</code>):</p><pre>buf curl --protocol grpc --http2-prior-knowledge -d '{}' http://{}/{}/{}</pre>",
                escape(&body),
                escape(&edge),
                escape(service),
                escape(method.name())
            );
            let grpc_path = format!("/{service}/{}", method.name());
            for (http_method, path) in router.bindings_of(&grpc_path) {
                let url = format!("http://{edge}{}", example_path(&path));
                let command = match http_method.as_str() {
                    "GET" => format!("curl -s '{url}'"),
                    other => format!(
                        "curl -s -X {other} -H 'content-type: application/json' -d '{body}' '{url}'"
                    ),
                };
                let _ = write!(
                    out,
                    "<p><span class=\"route\">{} {}</span></p><pre>{}</pre>",
                    escape(&http_method),
                    escape(&path),
                    escape(&command)
                );
            }
            out.push_str("</div>");
            for message in [input, output] {
                collect(&message, &mut messages, 0);
            }
        }
    }
    out.push_str("<h2 id=\"messages\">Messages</h2>");
    for (name, message) in &messages {
        let _ = write!(out, "<h3 id=\"{0}\">{0}</h3>", escape(name));
        if let Some(text) = comment(&message.parent_file(), message.path()) {
            let _ = write!(out, "<p>{}</p>", escape(&text));
        }
        if message.fields().len() == 0 {
            out.push_str("<p>No fields.</p>");
            continue;
        }
        out.push_str("<table><tr><th>Field (JSON)</th><th>Type</th><th>Description</th></tr>");
        for field in message.fields() {
            let description = comment(&field.parent_file(), field.path()).unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                escape(field.json_name()),
                type_name(&field),
                escape(&description)
            );
        }
        out.push_str("</table>");
    }
    let unlisted: BTreeSet<&String> = snapshot
        .routes
        .keys()
        .filter(|service| {
            !by_service.contains_key(*service) && !service.starts_with("grpc.reflection.")
        })
        .collect();
    if !unlisted.is_empty() {
        out.push_str("<h2>Also routed</h2><p>No descriptor describes these services; they are passed through as they are.</p><ul>");
        for service in unlisted {
            let _ = write!(out, "<li><code>{}</code></li>", escape(service));
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
}

/// `message` and the messages its fields use (not the well-known types), to `depth` 4.
fn collect(
    message: &MessageDescriptor,
    into: &mut BTreeMap<String, MessageDescriptor>,
    depth: usize,
) {
    let name = message.full_name();
    if depth > 4
        || name.starts_with("google.protobuf.")
        || message.is_map_entry()
        || into.contains_key(name)
    {
        return;
    }
    into.insert(name.to_owned(), message.clone());
    for field in message.fields() {
        if let Kind::Message(inner) = field.kind() {
            let inner = if inner.is_map_entry() {
                match inner.get_field_by_name("value").map(|v| v.kind()) {
                    Some(Kind::Message(value)) => value,
                    _ => continue,
                }
            } else {
                inner
            };
            collect(&inner, into, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_paths_get_examples() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            example_path("/v1/{name=shelves/*}/books/{id}:read"),
            "/v1/1/books/1:read"
        );
    }
}
