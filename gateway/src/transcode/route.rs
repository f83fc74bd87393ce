//! One HTTP binding of one gRPC method, as the matcher hands it out.

use std::sync::Arc;

use mosaic_http_rule::Binding;
use prost_reflect::MethodDescriptor;

/// One HTTP binding of one gRPC method.
#[derive(Debug)]
pub(crate) struct HttpRoute {
    /// The gRPC path the call goes to: `/package.Service/Method`.
    pub(crate) grpc_path: Arc<str>,
    pub(crate) method: MethodDescriptor,
    pub(crate) binding: Binding,
    /// The request (or its body field) is a `google.api.HttpBody`, taken raw.
    pub(crate) http_body_request: bool,
    /// The response (or its `response_body`) is a `google.api.HttpBody`, sent raw.
    pub(crate) http_body_response: bool,
    /// Where the binding comes from: `annotation` or `gateway.toml`.
    pub(crate) origin: &'static str,
}
