//! `[http]`: the HTTP/JSON edge.
//!
//! ```toml
//! [http]
//! enabled = true                     # transcode HTTP/JSON requests (the default)
//! field_names = "json"               # or "proto": the names responses use
//! emit_defaults = false              # write fields at their default value too
//! enum_numbers = false               # enums as numbers instead of names
//! unknown_query_parameters = "reject"  # or "ignore"
//! unknown_fields = "reject"          # JSON body fields the message lacks; or "ignore"
//! max_request_bytes = 4194304        # larger bodies get 413
//!
//! [http.cors]                        # for gRPC-Web and HTTP/JSON callers in browsers
//! allow_origins = ["https://app.example.com"]   # or ["*"]
//! allow_methods = ["GET", "POST"]    # default: GET, POST, PUT, PATCH, DELETE
//! allow_headers = ["x-tenant"]       # added to content-type, x-grpc-web, grpc-timeout, ...
//! expose_headers = ["x-request-id"]  # added to grpc-status, grpc-message and the response's
//! max_age = "10m"
//! allow_credentials = false
//!
//! [[http.rules]]                     # for protos without annotations (and over them)
//! selector = "grpc.health.v1.Health.Check"
//! get = "/v1/health"
//! additional_bindings = [{ post = "/v1/health:check", body = "*" }]
//! ```

use serde::Deserialize;

use super::Problems;
use crate::transcode::{CorsConfig, DEFAULT_MAX_REQUEST_BYTES, HttpConfig, JsonOptions};
use mosaic_http_rule::{HttpMethod, Rule, Template};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    enabled: Option<bool>,
    field_names: Option<String>,
    emit_defaults: Option<bool>,
    enum_numbers: Option<bool>,
    unknown_query_parameters: Option<String>,
    unknown_fields: Option<String>,
    max_request_bytes: Option<usize>,
    #[serde(default)]
    rules: Vec<RawRule>,
    cors: Option<RawCors>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCors {
    #[serde(default)]
    allow_origins: Vec<String>,
    allow_methods: Option<Vec<String>>,
    #[serde(default)]
    allow_headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    max_age: Option<String>,
    allow_credentials: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(default)]
    selector: String,
    get: Option<String>,
    put: Option<String>,
    post: Option<String>,
    delete: Option<String>,
    patch: Option<String>,
    custom: Option<RawCustom>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    response_body: String,
    #[serde(default)]
    additional_bindings: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCustom {
    kind: String,
    path: String,
}

/// Validates `[http]` (absent: the defaults).
pub(super) fn http(raw: Option<&RawHttp>, problems: &mut Problems) -> HttpConfig {
    let mut config = HttpConfig::default();
    let Some(raw) = raw else { return config };
    config.enabled = raw.enabled.unwrap_or(true);
    let mut choice = |key: &str, value: Option<&str>, yes: &str, no: &str| match value {
        None => false,
        Some(value) if value == yes => true,
        Some(value) if value == no => false,
        Some(other) => {
            problems.push(
                format!("http.{key}"),
                format!("unknown value `{other}`; expected \"{no}\" or \"{yes}\""),
            );
            false
        }
    };
    config.json = JsonOptions {
        proto_field_names: choice("field_names", raw.field_names.as_deref(), "proto", "json"),
        emit_defaults: raw.emit_defaults.unwrap_or(false),
        enum_numbers: raw.enum_numbers.unwrap_or(false),
    };
    config.reject_unknown_query_parameters = !choice(
        "unknown_query_parameters",
        raw.unknown_query_parameters.as_deref(),
        "ignore",
        "reject",
    );
    config.reject_unknown_fields = !choice(
        "unknown_fields",
        raw.unknown_fields.as_deref(),
        "ignore",
        "reject",
    );
    match raw.max_request_bytes {
        Some(0) => problems.push("http.max_request_bytes", "must be at least 1"),
        Some(limit) => config.max_request_bytes = limit,
        None => config.max_request_bytes = DEFAULT_MAX_REQUEST_BYTES,
    }
    config.cors = raw.cors.as_ref().map(|raw| cors(raw, problems));
    for (index, raw) in raw.rules.iter().enumerate() {
        let key = format!("http.rules[{index}]");
        if raw.selector.is_empty() {
            problems.push(
                format!("{key}.selector"),
                "names the method the rule binds, such as `demo.users.v1.UserService.GetUser`",
            );
        }
        let mut checked = rule(raw, &key, problems);
        checked.additional_bindings = raw
            .additional_bindings
            .iter()
            .enumerate()
            .map(|(i, extra)| {
                let key = format!("{key}.additional_bindings[{i}]");
                if !extra.additional_bindings.is_empty() || !extra.selector.is_empty() {
                    problems.push(
                        key.clone(),
                        "an additional binding has neither a selector nor bindings of its own",
                    );
                }
                rule(extra, &key, problems)
            })
            .collect();
        config.rules.push(checked);
    }
    config
}

/// `[http.cors]`: origins are `*` or `scheme://host[:port]`; the default headers stay allowed.
fn cors(raw: &RawCors, problems: &mut Problems) -> CorsConfig {
    let mut config = CorsConfig::default();
    if raw.allow_origins.is_empty() {
        problems.push(
            "http.cors.allow_origins",
            "names the origins that may call, such as [\"https://app.example.com\"], or [\"*\"]",
        );
    }
    for (i, origin) in raw.allow_origins.iter().enumerate() {
        let well_formed = origin == "*"
            || origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains('/')
            });
        if !well_formed {
            problems.push(
                format!("http.cors.allow_origins[{i}]"),
                format!(
                    "`{origin}` is not an origin; write `https://host[:port]` (no path), or `*`"
                ),
            );
        }
    }
    config.allow_origins = raw.allow_origins.clone();
    if let Some(methods) = &raw.allow_methods {
        config.allow_methods = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
    }
    for name in &raw.allow_headers {
        let name = name.to_ascii_lowercase();
        if !config.allow_headers.contains(&name) {
            config.allow_headers.push(name);
        }
    }
    config.expose_headers = raw
        .expose_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    config.max_age = problems.duration("http.cors.max_age", raw.max_age.as_deref(), config.max_age);
    config.allow_credentials = raw.allow_credentials.unwrap_or(false);
    if config.allow_credentials && config.allow_origins.iter().any(|o| o == "*") {
        problems.push(
            "http.cors.allow_credentials",
            "browsers refuse credentials with a wildcard origin: list the origins",
        );
    }
    config
}

/// One rule's pattern, body and response body; its template is parsed here so that a typo is
/// reported against its key.
fn rule(raw: &RawRule, key: &str, problems: &mut Problems) -> Rule {
    let patterns = [
        ("get", HttpMethod::Get, &raw.get),
        ("put", HttpMethod::Put, &raw.put),
        ("post", HttpMethod::Post, &raw.post),
        ("delete", HttpMethod::Delete, &raw.delete),
        ("patch", HttpMethod::Patch, &raw.patch),
    ];
    let mut set: Vec<(String, HttpMethod, String)> = patterns
        .into_iter()
        .filter_map(|(name, method, path)| {
            path.as_ref()
                .map(|path| (name.to_owned(), method, path.clone()))
        })
        .collect();
    if let Some(custom) = &raw.custom {
        let method = match custom.kind.as_str() {
            "*" => HttpMethod::Any,
            kind => HttpMethod::Custom(kind.to_owned()),
        };
        set.push(("custom.path".to_owned(), method, custom.path.clone()));
    }
    let mut rule = Rule {
        selector: raw.selector.clone(),
        body: raw.body.clone(),
        response_body: raw.response_body.clone(),
        ..Rule::default()
    };
    match set.as_slice() {
        [] => problems.push(
            key,
            "sets no pattern: one of `get`, `put`, `post`, `delete`, `patch` or `custom`",
        ),
        [(name, method, path)] => {
            if let Err(error) = Template::parse(path) {
                problems.push(
                    format!("{key}.{name}"),
                    format!("`{path}`: {} (at byte {})", error.message, error.at.start),
                );
            }
            rule.method = Some(method.clone());
            rule.path = path.clone();
        }
        several => {
            let names: Vec<&str> = several.iter().map(|(name, ..)| name.as_str()).collect();
            problems.push(
                key,
                format!("sets {} patterns; a rule has one", names.join(" and ")),
            );
        }
    }
    rule
}
