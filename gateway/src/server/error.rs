//! Why a gateway could not be assembled, started or reloaded.

use std::net::SocketAddr;

/// Why a gateway could not be assembled or started.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A socket could not be bound.
    #[error("cannot listen on {address} ({role}): {source}")]
    Bind {
        /// `listener` or `admin`.
        role: &'static str,
        /// The address from the configuration.
        address: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A descriptor set could not be read or decoded.
    #[error("cannot load descriptor set {origin}: {reason}")]
    DescriptorSet {
        /// File path, or the name given by the caller.
        origin: String,
        /// What went wrong.
        reason: String,
    },
    /// The listener's TLS certificate or key could not be loaded.
    #[error("cannot set up TLS on the listener: {reason}")]
    Tls {
        /// What went wrong, naming the file.
        reason: String,
    },
    /// An upstream's TLS files (`[upstreams.NAME.tls]`) could not be loaded.
    #[error("cannot set up TLS to upstream `{upstream}`: {reason}")]
    UpstreamTls {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// What went wrong, naming the file.
        reason: String,
    },
    /// HTTP bindings that cannot be routed: bad rules, conflicts, unknown selectors.
    #[error("the HTTP routes have problems:\n  - {}", problems.join("\n  - "))]
    HttpRoutes {
        /// Each problem, naming the method and the rule.
        problems: Vec<String>,
    },
    /// Two routes claim the same gRPC service.
    #[error("gRPC service `{service}` is routed twice: {first} and {second}")]
    DuplicateService {
        /// The service name.
        service: String,
        /// The route registered first.
        first: String,
        /// The route registered second.
        second: String,
    },
    /// A hosted service calls a downstream service that no upstream serves.
    #[error(
        "the composed services call `{service}`, but no upstream in gateway.toml serves it; \
         add it to the `services` of the upstream that runs it"
    )]
    MissingUpstream {
        /// The downstream gRPC service.
        service: String,
    },
    /// `gateway.toml`'s `[env]` sets values no hosted edge service reads: most likely a typo.
    #[error(
        "gateway.toml's `[env]` sets {}, which no hosted edge service reads (they read: {})",
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        if read.is_empty() { "nothing".to_owned() } else { read.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ") }
    )]
    UnreadDeploymentValues {
        /// The keys nobody reads.
        names: Vec<String>,
        /// The names the hosted services read.
        read: Vec<&'static str>,
    },
    /// The span exporter could not be set up.
    #[error("cannot set up access control: {reason}")]
    Access {
        /// What failed: a key set that does not load, a Redis URL that does not parse.
        reason: String,
    },
    /// The tracer could not be started.
    #[error("cannot set up tracing: {reason}")]
    Tracing {
        /// What went wrong.
        reason: String,
    },
    /// The access log's file could not be opened.
    #[error("cannot open the access log {target}: {source}")]
    AccessLog {
        /// Where the log was to go.
        target: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptor sets.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}
