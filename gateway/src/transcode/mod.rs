//! HTTP/JSON in front of gRPC: `google.api.http` bindings turned into gRPC calls and back.
//!
//! The transcoder sits in front of the gRPC router, as Envoy's does: a request that is not gRPC
//! is matched against every binding ([`routes`]), its path variables, query parameters and body
//! are decoded into the method's request message ([`request`], proto3 JSON by prost-reflect),
//! and the message goes to the gRPC route as a call in gRPC framing, so that composed methods,
//! pass-through services and health are reached the same way, through the same limits,
//! deadlines and records. The gRPC answer is turned back ([`response`]): proto3 JSON for a
//! unary call, NDJSON or Server-Sent Events for a server stream, the HTTP status of the
//! standard table and a `google.rpc.Status` body for an error ([`status`]).
//!
//! The mapping of headers:
//!
//! - request headers pass as metadata, except hop-by-hop headers, `host`, `content-type`,
//!   `content-length`, `accept`, `accept-encoding` and `grpc-*` other than `grpc-timeout`
//!   (which sets the call's deadline, as it does for gRPC callers);
//! - response headers come back as headers, and so do a unary call's trailers, under their own
//!   names, except `grpc-status`, `grpc-message`, `grpc-status-details-bin` (they make the
//!   HTTP status and the error body), `content-type` and `content-length`. A stream's trailers
//!   are not sent: its status, when not OK, is the stream's last element.

pub(crate) mod connect;
pub(crate) mod cors;
mod descriptors;
pub(crate) mod grpc_web;
mod read;
mod request;
mod response;
mod route;
mod routes;
mod status;
#[cfg(test)]
mod tests;
mod value;

pub use cors::CorsConfig;
pub(crate) use descriptors::edge_pool;
pub(crate) use response::HttpBody;
pub(crate) use routes::{HttpRoutes, Prepared};

/// `[http]` in `gateway.toml`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// Whether HTTP/JSON requests are transcoded (on by default).
    pub enabled: bool,
    /// Bindings for methods whose protos carry none (or to replace theirs), by selector.
    pub rules: Vec<mosaic_http_rule::Rule>,
    pub json: JsonOptions,
    /// A query parameter that names no field is a 400 (the default), or is ignored.
    pub reject_unknown_query_parameters: bool,
    /// A JSON body field the message lacks is a 400 (the default), or is ignored.
    pub reject_unknown_fields: bool,
    /// The largest request body read; larger ones get 413.
    pub max_request_bytes: usize,
    /// CORS for gRPC-Web and HTTP/JSON callers in browsers; none without `[http.cors]`.
    pub cors: Option<CorsConfig>,
}

/// How responses are written in JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonOptions {
    /// Field names as in the proto (`product_id`) instead of lowerCamelCase (`productId`).
    /// Requests accept both either way.
    pub proto_field_names: bool,
    /// Fields at their default value are written too (by default they are left out).
    pub emit_defaults: bool,
    /// Enum values as numbers instead of names.
    pub enum_numbers: bool,
}

/// The request body limit when `[http]` names none: 4 MiB, gRPC's usual message limit.
pub(crate) const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: Vec::new(),
            json: JsonOptions::default(),
            reject_unknown_query_parameters: true,
            reject_unknown_fields: true,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            cors: None,
        }
    }
}

/// Shared by every route of one configuration.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: HttpConfig,
    pub(crate) status: prost_reflect::MessageDescriptor,
}
