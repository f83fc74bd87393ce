//! The bottom layer: gRPC's wire conventions the gateway reads and writes, and the one
//! mapping of local failures to statuses. It imports nothing else of the crate.

pub(crate) mod body;
pub(crate) mod context;
pub(crate) mod deadline;
pub(crate) mod shared;
pub(crate) mod status;

pub(crate) use deadline::{Deadline, grpc_timeout_value, parse_grpc_timeout};

/// The header names the gateway reads or writes, each in one place.
pub(crate) mod headers {
    /// A call's timeout (gRPC over HTTP/2).
    pub(crate) const GRPC_TIMEOUT: &str = "grpc-timeout";
    /// A call's status code, in the trailers or a trailers-only head.
    pub(crate) const GRPC_STATUS: &str = "grpc-status";
    /// How many attempts of a call came before this one (gRFC A6).
    pub(crate) const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";
    /// A downstream's requested delay before a retry, or none (gRFC A6).
    pub(crate) const RETRY_PUSHBACK: &str = "grpc-retry-pushback-ms";
    /// The caller's W3C trace context.
    pub(crate) const TRACEPARENT: &str = "traceparent";
    /// Vendor trace state that goes with `traceparent`.
    pub(crate) const TRACESTATE: &str = "tracestate";
}

/// The path (`/package.Service/Method`) of every method of the services in `sets` that
/// `wanted` accepts (by fully qualified service name).
pub(crate) fn method_paths(
    sets: &[prost_types::FileDescriptorSet],
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut paths = Vec::new();
    for file in sets.iter().flat_map(|set| &set.file) {
        for service in &file.service {
            let name = service_name(file, service);
            if wanted(&name) {
                paths.extend(
                    service
                        .method
                        .iter()
                        .map(|method| format!("/{name}/{}", method.name())),
                );
            }
        }
    }
    paths.sort_unstable();
    paths.dedup();
    paths
}

/// The fully qualified name of `service`, declared in `file`.
pub(crate) fn service_name(
    file: &prost_types::FileDescriptorProto,
    service: &prost_types::ServiceDescriptorProto,
) -> String {
    match file.package() {
        "" => service.name().to_owned(),
        package => format!("{package}.{}", service.name()),
    }
}
