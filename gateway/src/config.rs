//! `gateway.toml`: the deployment configuration of one gateway.
//!
//! Addresses and policies are deployment facts, so they live here and never in protos. The file
//! is read once at start and checked completely before anything is served: a gateway that starts
//! with a half-understood configuration is worse than one that refuses to start. Every problem is
//! reported at once, each naming the key it concerns (`upstreams.users.endpoints[0]`), so an
//! operator fixes the file in one pass.
//!
//! ```toml
//! [listener]
//! address = "127.0.0.1:8080"
//! drain_timeout = "30s"
//!
//! [listener.tls]                   # optional: TLS 1.2+ with ALPN h2 and http/1.1
//! cert = "certs/edge.pem"          # the chain, PEM; read again when the file changes
//! key = "certs/edge.key"
//! reload_interval = "10s"
//! client_ca = "certs/clients-ca.pem"   # optional: mutual TLS, client certificates verified
//! client_auth = "required"         # or "optional" (no certificate: unauthenticated)
//!
//! [listener.limits]                # against slow, greedy and hostile clients; the defaults:
//! max_connections = 10000          # more are closed when accepted
//! max_concurrent_streams = 1024    # per HTTP/2 connection
//! max_header_bytes = 16384         # request head (HTTP/2 header list, HTTP/1.1 head)
//! max_headers = 100                # per HTTP/1.1 request
//! max_message_bytes = 4194304      # per gRPC request message, on every protocol
//! header_read_timeout = "10s"      # a new connection's first request, an HTTP/1.1 head
//! idle_timeout = "5m"              # no request in flight for this long: closed
//!
//! [admin]                          # /metrics, /upstreams, /routes, /config, POST /reload
//! address = "127.0.0.1:9901"       # the default: loopback, since the admin API reconfigures
//!
//! [reflection]
//! descriptor_sets = ["descriptors/upstreams.binpb"]
//!
//! [metrics]
//! enabled = true                   # record calls for the admin listener's /metrics
//!
//! [tracing]                        # OpenTelemetry spans over OTLP/gRPC; off without this table
//! endpoint = "http://127.0.0.1:4317"
//! sampling = 0.01                  # of traces started here; a caller's decision is followed
//! service_name = "mosaic-gateway"
//! resource = { "deployment.environment" = "prod" }
//! export_interval = "5s"
//!
//! [logging]                        # for the binaries; RUST_LOG, when set, wins over filter
//! filter = "info"
//! format = "text"                  # or "json"
//!
//! [http]                           # HTTP/JSON transcoding: see `config/edge.rs` for every key
//! field_names = "json"
//!
//! [access_log]                     # one JSON line per call; off without this table
//! path = "stdout"                  # or a file, appended to
//! fields = ["time", "peer", "method", "status", "duration_us"]   # default: every field
//!
//! [upstreams.users]
//! endpoints = ["http://127.0.0.1:50051"]
//! services = ["demo.users.v1.UserService"]
//! connect_timeout = "1s"
//! max_concurrent = 1024            # calls in flight; more are shed (RESOURCE_EXHAUSTED)
//! connections_per_endpoint = 2
//! ready_timeout = "1s"             # bounded wait for a ready endpoint
//! max_ejection_percent = 10
//! dns_refresh = "30s"
//! max_replay_bytes = 65536         # pass-through requests kept for a retry after a reset
//!
//! [upstreams.users.breaker]        # per endpoint
//! consecutive_failures = 5
//! failure_rate = 0.5               # optional second mode
//! failure_rate_window = "10s"
//! failure_rate_min_requests = 20
//! backoff_min = "1s"
//! backoff_max = "30s"
//!
//! [upstreams.users.retry]          # typed calls; UNAVAILABLE always, these for idempotent ones
//! max_attempts = 3
//! initial_backoff = "25ms"
//! max_backoff = "1s"
//! multiplier = 2.0
//! retryable_codes = ["DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"]
//!
//! [upstreams.users.budget]         # retries add at most 20 % (+10/s) to the upstream's load
//! percent = 20
//! min_per_second = 10
//! ttl = "10s"
//!
//! [upstreams.users.hedge]          # opt-in, idempotent methods only
//! delay = "50ms"
//! max_attempts = 2
//!
//! [upstreams.users.methods."demo.users.v1.UserService/GetUser"]
//! timeout = "200ms"
//! idempotent = true
//! retry = { max_attempts = 4 }
//! hedge = { delay = "20ms" }
//!
//! [upstreams.billing]              # TLS to the upstream: `https://` endpoints, every one
//! endpoints = ["https://10.0.0.7:8443"]
//! services = ["demo.billing.v1.BillingService"]
//!
//! [upstreams.billing.tls]          # optional; without it: the system's roots, the host's name
//! ca = "certs/billing-ca.pem"      # CA bundle (PEM) the upstream's certificate must chain to
//! cert = "certs/gateway-client.pem"   # optional: mutual TLS, the gateway's chain (PEM) ...
//! key = "certs/gateway-client.key"    # ... and its key; the two go together
//! server_name = "billing.internal" # optional: the name verified and sent as SNI
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;
use tonic::Code;

mod access;
mod edge;

/// `[auth]` and `[rate_limits]`, validated.
pub use crate::access::{
    AccessConfig, ApiKey, ApiKeysConfig, JwtConfig, KeySource, LimitStore, OnRedisError, Policy,
    Rate, RateLimitsConfig, RedisConfig, Scheme,
};
use crate::resilience::policy::MAX_ATTEMPTS;
/// The typed policy an upstream's section is validated into.
pub use crate::resilience::policy::{
    BreakerPolicy, BudgetPolicy, FailureRatePolicy, HedgePolicy, Hedging, MethodPolicy,
    RetryPolicy, UpstreamPolicy,
};
/// `[tracing]`, validated.
pub use crate::telemetry::trace::TracingConfig;
/// `[logging]`, validated.
pub use crate::telemetry::{LogFormat, LoggingConfig};
/// `[http]`, validated.
pub use crate::transcode::{CorsConfig, HttpConfig, JsonOptions};

/// Where the admin listener binds when `[admin]` names no address.
pub const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:9901";
/// Default time given to in-flight calls to finish once shutdown starts.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest duration any setting takes; longer ones are surely typos, and capping them keeps
/// every deadline computed from them far from the clock's limits.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Default bound on establishing a TCP connection to an upstream endpoint.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A validated gateway configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    /// The edge listener: gRPC (h2c) and HTTP/1.1 on one port.
    pub listener: ListenerConfig,
    /// The admin listener (`/healthz`, `/ready`); absent means none is started.
    pub admin: Option<AdminConfig>,
    /// Encoded `FileDescriptorSet` files describing pass-through services, for reflection.
    pub descriptor_sets: Vec<PathBuf>,
    /// Downstream services by name, in name order.
    pub upstreams: Vec<UpstreamConfig>,
    /// What the gateway records for `/metrics`.
    pub metrics: MetricsConfig,
    /// The access log, if one is written.
    pub access_log: Option<AccessLogConfig>,
    /// Where spans are exported, if anywhere.
    pub tracing: Option<TracingConfig>,
    /// What the process logs, and how (for binaries that set their logging from the file).
    pub logging: LoggingConfig,
    /// The HTTP/JSON edge.
    pub http: HttpConfig,
    /// `[auth]` and `[rate_limits]`: who may call what, and how often; `None`: anyone, freely.
    pub access: Option<AccessConfig>,
    /// `[env]`: deployment values that compositions read as `$env`, by name (the process
    /// environment wins over them; see `compose::Deployment`).
    pub env: BTreeMap<String, toml::Value>,
}

/// `[access_log]`: one JSON line per edge call; off when the table is absent.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessLogConfig {
    /// Where the lines go.
    pub target: AccessLogTarget,
    /// The fields of each line, in order.
    pub fields: Vec<AccessLogField>,
}

/// Where access-log lines are written.
#[derive(Clone, Debug, PartialEq)]
pub enum AccessLogTarget {
    /// The process's standard output (`path = "stdout"`, the default).
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

/// One field of an access-log line, named in `fields` as [`AccessLogField::name`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogField {
    /// When the call arrived, RFC 3339 with microseconds, UTC.
    Time,
    /// The caller's address.
    Peer,
    /// `grpc` (gRPC-Web and HTTP/JSON will have their own).
    Protocol,
    /// The call's path, `/package.Service/Method`.
    Method,
    /// The gRPC status name.
    Status,
    /// From the call's head to its last frame, in microseconds.
    DurationUs,
    /// The upstream a pass-through call went to.
    Upstream,
    /// The endpoint (`http://host:port`) that answered a pass-through call.
    Endpoint,
    /// Attempts sent to downstream endpoints for the call, retries and hedges included.
    Attempts,
    /// Bytes of the request body (gRPC framing included).
    RequestBytes,
    /// Bytes of the response body (gRPC framing included).
    ResponseBytes,
    /// The trace id of the caller's W3C `traceparent`, when it sent a valid one.
    TraceId,
    /// The consumer an admitted call was authenticated as (`[auth]`).
    Consumer,
    /// The consumer's plan.
    Plan,
}

impl AccessLogField {
    /// Every field, in the default order.
    pub const ALL: [AccessLogField; 14] = [
        Self::Time,
        Self::Peer,
        Self::Protocol,
        Self::Method,
        Self::Status,
        Self::DurationUs,
        Self::Upstream,
        Self::Endpoint,
        Self::Attempts,
        Self::RequestBytes,
        Self::ResponseBytes,
        Self::TraceId,
        Self::Consumer,
        Self::Plan,
    ];

    /// The field's name in `fields` and in each line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Time => "time",
            Self::Peer => "peer",
            Self::Protocol => "protocol",
            Self::Method => "method",
            Self::Status => "status",
            Self::DurationUs => "duration_us",
            Self::Upstream => "upstream",
            Self::Endpoint => "endpoint",
            Self::Attempts => "attempts",
            Self::RequestBytes => "request_bytes",
            Self::ResponseBytes => "response_bytes",
            Self::TraceId => "trace_id",
            Self::Consumer => "consumer",
            Self::Plan => "plan",
        }
    }
}

/// `[metrics]`: whether calls are recorded for the admin listener's `/metrics`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsConfig {
    /// On by default; off, no call records anything and `/metrics` serves no call families.
    pub enabled: bool,
    /// Consumers with their own series in the per-consumer families; later ones are counted
    /// as `other`, so a flood of identities cannot grow the scrape without bound.
    pub max_consumers: usize,
}

pub use crate::telemetry::metrics::DEFAULT_MAX_CONSUMERS;

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_consumers: DEFAULT_MAX_CONSUMERS,
        }
    }
}

/// Where the edge listener binds and how it drains.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerConfig {
    /// Socket address to bind; port 0 picks a free port.
    pub address: SocketAddr,
    /// How long in-flight calls may run after shutdown begins.
    pub drain_timeout: Duration,
    /// TLS on the listener; plain text (h2c and HTTP/1.1) without it.
    pub tls: Option<TlsConfig>,
    /// What one client may take of the listener.
    pub limits: ListenerLimits,
}

/// `[listener.limits]`: bounds against slow, greedy or hostile clients. Each has a default
/// fit for a public edge.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerLimits {
    /// Open connections; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// The largest request head: HTTP/2 header list (SETTINGS_MAX_HEADER_LIST_SIZE) and
    /// HTTP/1.1 head buffer.
    pub max_header_bytes: u32,
    /// Headers per HTTP/1.1 request.
    pub max_headers: usize,
    /// The largest gRPC request message (after the 5-byte prefix), on every protocol; a call
    /// that sends a larger one fails `RESOURCE_EXHAUSTED`.
    pub max_message_bytes: u32,
    /// A new connection must start a request within this, and an HTTP/1.1 request head must
    /// arrive whole within it.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_concurrent_streams: 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_message_bytes: 4 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// `[listener.tls]`: the certificate chain and key, PEM files read again when they change.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// How often the files' modification times are checked.
    pub reload_interval: Duration,
    /// CA certificates (PEM) that client certificates must chain to: mutual TLS.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: whether a client without a certificate is turned away (the default)
    /// or let through unauthenticated.
    pub client_cert_required: bool,
}

/// How often the TLS files are checked for changes when `[listener.tls]` says nothing.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Where the admin listener binds.
#[derive(Clone, Debug, PartialEq)]
pub struct AdminConfig {
    /// Socket address to bind; port 0 picks a free port.
    pub address: SocketAddr,
}

/// One downstream service: where it runs and which gRPC services it serves.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamConfig {
    /// The name used in logs and error messages (`upstream "users"`).
    pub name: String,
    /// Endpoints, all serving the same services: every one `http://host:port` (plain text
    /// HTTP/2, h2c) or every one `https://host:port` (TLS, see `tls`).
    pub endpoints: Vec<Uri>,
    /// Fully qualified gRPC service names (`demo.users.v1.UserService`) routed here.
    pub services: Vec<String>,
    /// Bound on establishing a connection to one endpoint (TCP connect and, with TLS, the
    /// handshake).
    pub connect_timeout: Duration,
    /// Limits, breakers, retries, hedging and their per-method overrides.
    pub policy: UpstreamPolicy,
    /// TLS to the endpoints: `Some` exactly when they are `https://` (the defaults when the
    /// file has no `[upstreams.NAME.tls]`), `None` for `http://` ones.
    pub tls: Option<UpstreamTls>,
}

/// `[upstreams.NAME.tls]`: how the gateway verifies an `https://` upstream and, for mutual TLS,
/// which certificate it presents. The files are PEM, read when the upstream's stack is built:
/// at start, and on a reload that changes the upstream's section (a reload that leaves the
/// section as it is keeps the stack, and the certificates it read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// CA certificates the upstream's certificate must chain to; `None`: the system's roots.
    pub ca: Option<PathBuf>,
    /// The client certificate chain the gateway presents (mutual TLS); set with `key`.
    pub cert: Option<PathBuf>,
    /// The private key of `cert`; set with `cert`.
    pub key: Option<PathBuf>,
    /// The name the upstream's certificate must carry, also sent as SNI; `None`: each
    /// endpoint's host (a DNS name or an IP address).
    pub server_name: Option<String>,
}

/// Why a configuration was rejected: every problem found, each naming its key.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    origin: String,
    problems: Vec<ConfigProblem>,
}

/// One problem in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted path of the offending key, such as `upstreams.users.endpoints[0]`; empty for
    /// problems of the whole file (syntax errors, unreadable file).
    pub key: String,
    /// What is wrong, in words an operator understands.
    pub message: String,
}

// === impl GatewayConfig ===

impl GatewayConfig {
    /// Reads and validates a `gateway.toml` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| {
            ConfigError::single(&origin, "", format!("cannot read the file: {err}"))
        })?;
        Self::from_toml_str(&text, &origin)
    }

    /// Parses and validates configuration text; `origin` names it in errors (a file path, or
    /// something like `<built-in demo config>`).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            // toml's message already carries line, column and the offending snippet.
            ConfigError::single(origin, "", err.to_string().trim_end().to_owned())
        })?;
        raw.validate(origin)
    }

    /// The upstream serving `service`, if any.
    pub fn upstream_for(&self, service: &str) -> Option<&UpstreamConfig> {
        self.upstreams
            .iter()
            .find(|upstream| upstream.services.iter().any(|s| s == service))
    }
}

// === impl ConfigError ===

impl ConfigError {
    fn single(origin: &str, key: &str, message: String) -> Self {
        Self {
            origin: origin.to_owned(),
            problems: vec![ConfigProblem {
                key: key.to_owned(),
                message,
            }],
        }
    }

    /// Every problem found, in file order where it is known.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// What was read: a file path, or the name the text was given.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        write!(
            f,
            "invalid gateway configuration {} ({count} {noun})",
            self.origin
        )?;
        for problem in &self.problems {
            if problem.key.is_empty() {
                write!(f, "\n  - {}", problem.message)?;
            } else {
                write!(f, "\n  - {}: {}", problem.key, problem.message)?;
            }
        }
        Ok(())
    }
}

// === raw (unvalidated) form ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listener: Option<RawListener>,
    admin: Option<RawAdmin>,
    reflection: Option<RawReflection>,
    metrics: Option<RawMetrics>,
    access_log: Option<RawAccessLog>,
    tracing: Option<RawTracing>,
    logging: Option<RawLogging>,
    http: Option<edge::RawHttp>,
    auth: Option<access::RawAuth>,
    rate_limits: Option<access::RawRateLimits>,
    #[serde(default)]
    upstreams: BTreeMap<String, RawUpstream>,
    #[serde(default)]
    env: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogging {
    filter: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracing {
    endpoint: String,
    sampling: Option<f64>,
    service_name: Option<String>,
    #[serde(default)]
    resource: BTreeMap<String, String>,
    export_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    enabled: Option<bool>,
    path: Option<String>,
    fields: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    enabled: Option<bool>,
    max_consumers: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: String,
    drain_timeout: Option<String>,
    tls: Option<RawTls>,
    limits: Option<RawLimits>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<u32>,
    max_concurrent_streams: Option<u32>,
    max_header_bytes: Option<u32>,
    max_headers: Option<u32>,
    max_message_bytes: Option<u32>,
    header_read_timeout: Option<String>,
    idle_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    reload_interval: Option<String>,
    client_ca: Option<PathBuf>,
    client_auth: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReflection {
    #[serde(default)]
    descriptor_sets: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    endpoints: Vec<String>,
    services: Vec<String>,
    connect_timeout: Option<String>,
    max_concurrent: Option<u32>,
    connections_per_endpoint: Option<u32>,
    ready_timeout: Option<String>,
    max_ejection_percent: Option<u32>,
    dns_refresh: Option<String>,
    max_replay_bytes: Option<u32>,
    breaker: Option<RawBreaker>,
    retry: Option<RawRetry>,
    budget: Option<RawBudget>,
    hedge: Option<RawHedge>,
    #[serde(default)]
    methods: BTreeMap<String, RawMethod>,
    tls: Option<RawUpstreamTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamTls {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    consecutive_failures: Option<u32>,
    failure_rate: Option<f64>,
    failure_rate_window: Option<String>,
    failure_rate_min_requests: Option<u32>,
    backoff_min: Option<String>,
    backoff_max: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    initial_backoff: Option<String>,
    max_backoff: Option<String>,
    multiplier: Option<f64>,
    retryable_codes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    percent: Option<f64>,
    min_per_second: Option<u32>,
    ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHedge {
    enabled: Option<bool>,
    delay: Option<String>,
    max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    timeout: Option<String>,
    idempotent: Option<bool>,
    retry: Option<RawRetry>,
    hedge: Option<RawHedge>,
}

/// Collects problems while the raw form is turned into the validated one.
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn address(&mut self, key: &str, value: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.push(
                    key,
                    format!("`{value}` is not a socket address; expected `ip:port`, such as `127.0.0.1:8080`"),
                );
                None
            }
        }
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: Duration) -> Duration {
        let Some(value) = value else { return default };
        match humantime::parse_duration(value) {
            Ok(duration) if duration > MAX_DURATION => {
                self.push(key, "must be at most 24h");
                default
            }
            Ok(duration) if !duration.is_zero() => duration,
            Ok(_) => {
                self.push(key, "must be longer than zero");
                default
            }
            Err(err) => {
                self.push(
                    key,
                    format!(
                        "`{value}` is not a duration ({err}); write it like `500ms`, `2s` or `1m`"
                    ),
                );
                default
            }
        }
    }
}

impl Problems {
    /// `[listener.limits]`: defaults, overridden by what the file sets.
    fn listener_limits(&mut self, raw: Option<&RawLimits>) -> ListenerLimits {
        let defaults = ListenerLimits::default();
        let Some(raw) = raw else { return defaults };
        ListenerLimits {
            max_connections: self.bounded(
                "listener.limits.max_connections",
                raw.max_connections,
                1..=1_000_000,
                defaults.max_connections as u32,
            ) as usize,
            max_concurrent_streams: self.bounded(
                "listener.limits.max_concurrent_streams",
                raw.max_concurrent_streams,
                1..=100_000,
                defaults.max_concurrent_streams,
            ),
            max_header_bytes: self.bounded(
                "listener.limits.max_header_bytes",
                raw.max_header_bytes,
                1024..=1024 * 1024,
                defaults.max_header_bytes,
            ),
            max_headers: self.bounded(
                "listener.limits.max_headers",
                raw.max_headers,
                8..=1000,
                defaults.max_headers as u32,
            ) as usize,
            max_message_bytes: self.bounded(
                "listener.limits.max_message_bytes",
                raw.max_message_bytes,
                1024..=1024 * 1024 * 1024,
                defaults.max_message_bytes,
            ),
            header_read_timeout: self.duration(
                "listener.limits.header_read_timeout",
                raw.header_read_timeout.as_deref(),
                defaults.header_read_timeout,
            ),
            idle_timeout: self.duration(
                "listener.limits.idle_timeout",
                raw.idle_timeout.as_deref(),
                defaults.idle_timeout,
            ),
        }
    }

    /// The upstream's policy: defaults, overridden by what the file sets.
    fn policy(&mut self, key: &str, raw: &RawUpstream) -> UpstreamPolicy {
        let defaults = UpstreamPolicy::default();
        let max_concurrent = self.bounded(
            &format!("{key}.max_concurrent"),
            raw.max_concurrent,
            1..=1_000_000,
            defaults.max_concurrent as u32,
        ) as usize;
        let connections_per_endpoint = self.bounded(
            &format!("{key}.connections_per_endpoint"),
            raw.connections_per_endpoint,
            1..=16,
            defaults.connections_per_endpoint as u32,
        ) as usize;
        let ready_timeout = self.duration(
            &format!("{key}.ready_timeout"),
            raw.ready_timeout.as_deref(),
            defaults.ready_timeout,
        );
        let max_ejection_percent = self.bounded(
            &format!("{key}.max_ejection_percent"),
            raw.max_ejection_percent,
            0..=100,
            u32::from(defaults.max_ejection_percent),
        ) as u8;
        let dns_refresh = self.duration(
            &format!("{key}.dns_refresh"),
            raw.dns_refresh.as_deref(),
            defaults.dns_refresh,
        );
        let max_replay_bytes = self.bounded(
            &format!("{key}.max_replay_bytes"),
            raw.max_replay_bytes,
            0..=16 * 1024 * 1024,
            defaults.max_replay_bytes as u32,
        ) as usize;
        let breaker = match &raw.breaker {
            None => defaults.breaker,
            Some(b) => self.breaker(&format!("{key}.breaker"), b),
        };
        let retry = match &raw.retry {
            None => defaults.retry,
            Some(r) => self.retry(&format!("{key}.retry"), r, &defaults.retry),
        };
        let budget = match &raw.budget {
            None => defaults.budget,
            Some(b) => self.budget(&format!("{key}.budget"), b),
        };
        let hedge = match &raw.hedge {
            None => Hedging::Unset,
            Some(h) => match self.hedge(&format!("{key}.hedge"), h, None) {
                Some(policy) => Hedging::On(policy),
                None => Hedging::Off,
            },
        };
        let mut methods = BTreeMap::new();
        for (method, raw_method) in &raw.methods {
            let method_key = format!("{key}.methods.\"{method}\"");
            match method.split_once('/') {
                Some((service, name))
                    if is_service_name(service)
                        && is_identifier(name)
                        && raw.services.iter().any(|s| s == service) => {}
                Some((service, _)) if is_service_name(service) => {
                    self.push(
                        method_key.clone(),
                        format!("`{service}` is not one of this upstream's services"),
                    );
                }
                _ => {
                    self.push(
                        method_key.clone(),
                        "expected `package.Service/Method`, such as `demo.users.v1.UserService/GetUser`",
                    );
                }
            }
            let timeout = raw_method.timeout.as_deref().map(|value| {
                self.duration(
                    &format!("{method_key}.timeout"),
                    Some(value),
                    Duration::ZERO,
                )
            });
            let method_retry = raw_method
                .retry
                .as_ref()
                .map(|r| self.retry(&format!("{method_key}.retry"), r, &retry));
            let method_hedge = raw_method
                .hedge
                .as_ref()
                .map(|h| self.hedge(&format!("{method_key}.hedge"), h, hedge.policy()));
            methods.insert(
                method.clone(),
                MethodPolicy {
                    timeout,
                    idempotent: raw_method.idempotent,
                    retry: method_retry,
                    hedge: method_hedge,
                },
            );
        }
        UpstreamPolicy {
            max_concurrent,
            connections_per_endpoint,
            ready_timeout,
            max_ejection_percent,
            breaker,
            retry,
            hedge,
            budget,
            dns_refresh,
            max_replay_bytes,
            methods,
        }
    }

    /// `[upstreams.NAME.tls]` and the endpoints' schemes: `Some` for `https://` endpoints (the
    /// defaults when the table is absent), `None` for `http://` ones. `endpoints` are those
    /// that parsed; the others are reported already.
    fn upstream_tls(
        &mut self,
        key: &str,
        raw: &RawUpstream,
        endpoints: &[Uri],
    ) -> Option<UpstreamTls> {
        let secure = endpoints
            .iter()
            .filter(|uri| uri.scheme_str() == Some("https"))
            .count();
        if secure > 0 && secure < endpoints.len() {
            self.push(
                format!("{key}.endpoints"),
                "mixes `http://` and `https://` endpoints; an upstream's endpoints all use TLS \
                 or none does, so make them all `https://` or all `http://`",
            );
        }
        let tls_key = format!("{key}.tls");
        if let Some(table) = &raw.tls {
            if secure == 0 && !endpoints.is_empty() {
                self.push(
                    tls_key.clone(),
                    "applies to TLS endpoints only, but the endpoints are `http://`; set \
                     https:// endpoints, or remove the table",
                );
            }
            match (&table.cert, &table.key) {
                (Some(_), None) => self.push(
                    format!("{tls_key}.cert"),
                    "needs `key`: the private key of the client certificate",
                ),
                (None, Some(_)) => self.push(
                    format!("{tls_key}.key"),
                    "needs `cert`: the client certificate chain the key belongs to",
                ),
                _ => {}
            }
            if let Some(name) = &table.server_name
                && !is_server_name(name)
            {
                self.push(
                    format!("{tls_key}.server_name"),
                    format!("`{name}` is not a DNS name or an IP address a certificate can carry"),
                );
            }
        }
        if secure == 0 {
            return None;
        }
        let server_name = raw.tls.as_ref().and_then(|table| table.server_name.clone());
        if server_name.is_none() {
            for (i, text) in raw.endpoints.iter().enumerate() {
                let Ok(uri) = text.parse::<Uri>() else {
                    continue;
                };
                if uri.scheme_str() == Some("https")
                    && uri.host().is_some_and(|host| !is_server_name(host))
                {
                    self.push(
                        format!("{key}.endpoints[{i}]"),
                        format!("`{text}`: the host is not a name a certificate can be verified against; set `tls.server_name`"),
                    );
                }
            }
        }
        Some(match &raw.tls {
            None => UpstreamTls::default(),
            Some(table) => UpstreamTls {
                ca: table.ca.clone(),
                cert: table.cert.clone(),
                key: table.key.clone(),
                server_name,
            },
        })
    }

    fn bounded(
        &mut self,
        key: &str,
        value: Option<u32>,
        range: std::ops::RangeInclusive<u32>,
        default: u32,
    ) -> u32 {
        match value {
            None => default,
            Some(v) if range.contains(&v) => v,
            Some(v) => {
                self.push(
                    key,
                    format!(
                        "{v} is out of range; expected {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    fn breaker(&mut self, key: &str, raw: &RawBreaker) -> BreakerPolicy {
        let defaults = BreakerPolicy::default();
        let consecutive_failures = raw
            .consecutive_failures
            .unwrap_or(defaults.consecutive_failures);
        let failure_rate = match raw.failure_rate {
            None => {
                for (field, set) in [
                    ("failure_rate_window", raw.failure_rate_window.is_some()),
                    (
                        "failure_rate_min_requests",
                        raw.failure_rate_min_requests.is_some(),
                    ),
                ] {
                    if set {
                        self.push(
                            format!("{key}.{field}"),
                            "only applies with `failure_rate`; set it too",
                        );
                    }
                }
                None
            }
            Some(rate) if rate > 0.0 && rate <= 1.0 => Some(FailureRatePolicy {
                threshold: rate,
                window: self.duration(
                    &format!("{key}.failure_rate_window"),
                    raw.failure_rate_window.as_deref(),
                    Duration::from_secs(10),
                ),
                min_requests: raw.failure_rate_min_requests.unwrap_or(20),
            }),
            Some(rate) => {
                self.push(
                    format!("{key}.failure_rate"),
                    format!("{rate} is not a share of calls; expected more than 0 and at most 1, such as 0.5"),
                );
                None
            }
        };
        let backoff_min = self.duration(
            &format!("{key}.backoff_min"),
            raw.backoff_min.as_deref(),
            defaults.backoff_min,
        );
        let backoff_max = self.duration(
            &format!("{key}.backoff_max"),
            raw.backoff_max.as_deref(),
            defaults.backoff_max.max(backoff_min),
        );
        if backoff_max < backoff_min {
            self.push(
                format!("{key}.backoff_max"),
                "is shorter than `backoff_min`",
            );
        }
        BreakerPolicy {
            consecutive_failures,
            failure_rate,
            backoff_min,
            backoff_max,
        }
    }

    fn retry(&mut self, key: &str, raw: &RawRetry, base: &RetryPolicy) -> RetryPolicy {
        let max_attempts = self.bounded(
            &format!("{key}.max_attempts"),
            raw.max_attempts,
            1..=MAX_ATTEMPTS,
            base.max_attempts,
        );
        let initial_backoff = self.duration(
            &format!("{key}.initial_backoff"),
            raw.initial_backoff.as_deref(),
            base.initial_backoff,
        );
        let max_backoff = self.duration(
            &format!("{key}.max_backoff"),
            raw.max_backoff.as_deref(),
            base.max_backoff.max(initial_backoff),
        );
        if max_backoff < initial_backoff {
            self.push(
                format!("{key}.max_backoff"),
                "is shorter than `initial_backoff`",
            );
        }
        let multiplier = match raw.multiplier {
            None => base.multiplier,
            Some(m) if (1.0..=10.0).contains(&m) => m,
            Some(m) => {
                self.push(
                    format!("{key}.multiplier"),
                    format!("{m} is out of range; expected 1 to 10"),
                );
                base.multiplier
            }
        };
        let retryable_codes = match &raw.retryable_codes {
            None => base.retryable_codes.clone(),
            Some(names) => names
                .iter()
                .enumerate()
                .filter_map(|(i, name)| match code_by_name(name) {
                    Some(Code::Ok) => {
                        self.push(
                            format!("{key}.retryable_codes[{i}]"),
                            "`OK` is not a failure",
                        );
                        None
                    }
                    Some(code) => Some(code),
                    None => {
                        self.push(
                            format!("{key}.retryable_codes[{i}]"),
                            format!("`{name}` is not a gRPC status code name such as `UNAVAILABLE` or `DEADLINE_EXCEEDED`"),
                        );
                        None
                    }
                })
                .collect(),
        };
        RetryPolicy {
            max_attempts,
            initial_backoff,
            max_backoff,
            multiplier,
            retryable_codes,
        }
    }

    fn budget(&mut self, key: &str, raw: &RawBudget) -> BudgetPolicy {
        let defaults = BudgetPolicy::default();
        let ratio = match raw.percent {
            None => defaults.ratio,
            Some(p) if (0.0..=1000.0).contains(&p) => (p / 100.0) as f32,
            Some(p) => {
                self.push(
                    format!("{key}.percent"),
                    format!("{p} is out of range; expected 0 to 1000 (percent of calls)"),
                );
                defaults.ratio
            }
        };
        let min_per_second = self.bounded(
            &format!("{key}.min_per_second"),
            raw.min_per_second,
            0..=100_000,
            defaults.min_per_second,
        );
        let ttl = self.duration(&format!("{key}.ttl"), raw.ttl.as_deref(), defaults.ttl);
        let ttl = if (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            ttl
        } else {
            self.push(format!("{key}.ttl"), "must be between 1s and 60s");
            defaults.ttl
        };
        BudgetPolicy {
            ratio,
            min_per_second,
            ttl,
        }
    }

    /// A hedge section; `base` fills what it leaves out. `enabled = false` turns hedging off.
    fn hedge(
        &mut self,
        key: &str,
        raw: &RawHedge,
        base: Option<&HedgePolicy>,
    ) -> Option<HedgePolicy> {
        if raw.enabled == Some(false) {
            return None;
        }
        let delay = match (raw.delay.as_deref(), base) {
            (Some(delay), _) => self.duration(&format!("{key}.delay"), Some(delay), Duration::ZERO),
            (None, Some(base)) => base.delay,
            (None, None) => {
                self.push(
                    format!("{key}.delay"),
                    "hedging needs a `delay` after which the next attempt is sent, such as `50ms`",
                );
                Duration::ZERO
            }
        };
        let max_attempts = self.bounded(
            &format!("{key}.max_attempts"),
            raw.max_attempts,
            2..=MAX_ATTEMPTS,
            base.map_or(2, |b| b.max_attempts),
        );
        Some(HedgePolicy {
            delay,
            max_attempts,
        })
    }
}

/// A gRPC status code by its canonical name (`UNAVAILABLE`).
fn code_by_name(name: &str) -> Option<Code> {
    (0..=16)
        .map(Code::from_i32)
        .find(|code| canonical_name(*code) == name)
}

fn canonical_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl RawConfig {
    fn validate(self, origin: &str) -> Result<GatewayConfig, ConfigError> {
        let mut problems = Problems(Vec::new());

        let listener = match &self.listener {
            None => {
                problems.push(
                    "listener",
                    "missing section; add `[listener]` with an `address`",
                );
                None
            }
            Some(raw) => {
                let address = problems.address("listener.address", &raw.address);
                let drain_timeout = problems.duration(
                    "listener.drain_timeout",
                    raw.drain_timeout.as_deref(),
                    DEFAULT_DRAIN_TIMEOUT,
                );
                let tls = raw.tls.as_ref().map(|tls| {
                    let client_cert_required = match tls.client_auth.as_deref() {
                        None | Some("required") => true,
                        Some("optional") => false,
                        Some(other) => {
                            problems.push(
                                "listener.tls.client_auth",
                                format!(
                                    "unknown value `{other}`; expected \"required\" or \"optional\""
                                ),
                            );
                            true
                        }
                    };
                    if tls.client_auth.is_some() && tls.client_ca.is_none() {
                        problems.push(
                            "listener.tls.client_auth",
                            "needs `client_ca`: the CA certificates client certificates chain to",
                        );
                    }
                    TlsConfig {
                        cert: tls.cert.clone(),
                        key: tls.key.clone(),
                        reload_interval: problems.duration(
                            "listener.tls.reload_interval",
                            tls.reload_interval.as_deref(),
                            DEFAULT_TLS_RELOAD_INTERVAL,
                        ),
                        client_ca: tls.client_ca.clone(),
                        client_cert_required,
                    }
                });
                let limits = problems.listener_limits(raw.limits.as_ref());
                address.map(|address| ListenerConfig {
                    address,
                    drain_timeout,
                    tls,
                    limits,
                })
            }
        };

        let admin = self.admin.as_ref().and_then(|raw| {
            // Loopback unless told otherwise: the admin API reconfigures the gateway.
            let address = raw.address.as_deref().unwrap_or(DEFAULT_ADMIN_ADDRESS);
            problems
                .address("admin.address", address)
                .map(|address| AdminConfig { address })
        });
        if let (Some(listener), Some(admin)) = (&listener, &admin)
            && listener.address == admin.address
            && listener.address.port() != 0
        {
            {
                problems.push(
                    "admin.address",
                    format!(
                        "`{}` is also the listener's address; the two need different ports",
                        admin.address
                    ),
                );
            }
        }

        let access_log = self
            .access_log
            .as_ref()
            .filter(|raw| raw.enabled.unwrap_or(true))
            .map(|raw| access_log(raw, &mut problems));

        let tracing = self.tracing.as_ref().and_then(|raw| {
            let endpoint = match parse_endpoint(&raw.endpoint, false) {
                Ok(endpoint) => Some(endpoint),
                Err(message) => {
                    problems.push("tracing.endpoint", message);
                    None
                }
            };
            let sampling = raw.sampling.unwrap_or(0.01);
            if !(0.0..=1.0).contains(&sampling) {
                problems.push(
                    "tracing.sampling",
                    format!("{sampling} is out of range; expected a share from 0 to 1"),
                );
            }
            let export_interval = problems.duration(
                "tracing.export_interval",
                raw.export_interval.as_deref(),
                Duration::from_secs(5),
            );
            Some(TracingConfig {
                endpoint: endpoint?,
                sampling: sampling.clamp(0.0, 1.0),
                service_name: raw
                    .service_name
                    .clone()
                    .unwrap_or_else(|| "mosaic-gateway".to_owned()),
                resource: raw.resource.clone(),
                export_interval,
            })
        });

        let mut logging = LoggingConfig::default();
        if let Some(raw) = &self.logging {
            if let Some(filter) = &raw.filter {
                match crate::telemetry::check_filter(filter) {
                    Ok(()) => logging.filter = filter.clone(),
                    Err(error) => problems.push("logging.filter", error),
                }
            }
            match raw.format.as_deref() {
                None | Some("text") => {}
                Some("json") => logging.format = LogFormat::Json,
                Some(other) => problems.push(
                    "logging.format",
                    format!("unknown format `{other}`; expected \"text\" or \"json\""),
                ),
            }
        }

        let http = edge::http(self.http.as_ref(), &mut problems);
        let metrics = MetricsConfig {
            enabled: self
                .metrics
                .as_ref()
                .and_then(|metrics| metrics.enabled)
                .unwrap_or(true),
            max_consumers: problems.bounded(
                "metrics.max_consumers",
                self.metrics
                    .as_ref()
                    .and_then(|metrics| metrics.max_consumers),
                0..=10_000,
                DEFAULT_MAX_CONSUMERS as u32,
            ) as usize,
        };
        let mtls_possible = listener
            .as_ref()
            .and_then(|listener| listener.tls.as_ref())
            .is_some_and(|tls| tls.client_ca.is_some());
        let access = access::access(
            self.auth.as_ref(),
            self.rate_limits.as_ref(),
            mtls_possible,
            &mut problems,
        );

        let mut upstreams = Vec::with_capacity(self.upstreams.len());
        // service name → the upstream that claimed it first, to report double claims.
        let mut claimed: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, raw) in &self.upstreams {
            let key = format!("upstreams.{name}");
            if !is_identifier(name) {
                problems.push(
                    key.clone(),
                    "upstream names may use letters, digits, `-` and `_` only",
                );
            }
            if raw.endpoints.is_empty() {
                problems.push(
                    format!("{key}.endpoints"),
                    "needs at least one endpoint URL",
                );
            }
            let endpoints: Vec<Uri> = raw
                .endpoints
                .iter()
                .enumerate()
                .filter_map(|(i, endpoint)| match parse_endpoint(endpoint, true) {
                    Ok(uri) => Some(uri),
                    Err(message) => {
                        problems.push(format!("{key}.endpoints[{i}]"), message);
                        None
                    }
                })
                .collect();
            let tls = problems.upstream_tls(&key, raw, &endpoints);
            if raw.services.is_empty() {
                problems.push(
                    format!("{key}.services"),
                    "needs at least one gRPC service name, such as `demo.users.v1.UserService`",
                );
            }
            for (i, service) in raw.services.iter().enumerate() {
                let service_key = format!("{key}.services[{i}]");
                if !is_service_name(service) {
                    problems.push(
                        service_key,
                        format!("`{service}` is not a fully qualified gRPC service name such as `demo.users.v1.UserService`"),
                    );
                } else if let Some(other) = claimed.insert(service, name) {
                    problems.push(
                        service_key,
                        format!("`{service}` is already served by upstream `{other}`; a service must have exactly one upstream"),
                    );
                }
            }
            let connect_timeout = problems.duration(
                &format!("{key}.connect_timeout"),
                raw.connect_timeout.as_deref(),
                DEFAULT_CONNECT_TIMEOUT,
            );
            let policy = problems.policy(&key, raw);
            upstreams.push(UpstreamConfig {
                name: name.clone(),
                endpoints,
                services: raw.services.clone(),
                connect_timeout,
                policy,
                tls,
            });
        }

        match listener {
            Some(listener) if problems.0.is_empty() => Ok(GatewayConfig {
                listener,
                admin,
                descriptor_sets: self
                    .reflection
                    .map(|reflection| reflection.descriptor_sets)
                    .unwrap_or_default(),
                upstreams,
                access_log,
                tracing,
                logging,
                http,
                access,
                metrics,
                env: self.env,
            }),
            _ => Err(ConfigError {
                origin: origin.to_owned(),
                problems: problems.0,
            }),
        }
    }
}

/// `[access_log]`, validated.
fn access_log(raw: &RawAccessLog, problems: &mut Problems) -> AccessLogConfig {
    let target = match raw.path.as_deref() {
        None | Some("stdout") => AccessLogTarget::Stdout,
        Some("") => {
            problems.push(
                "access_log.path",
                "is empty; give a file path or \"stdout\"",
            );
            AccessLogTarget::Stdout
        }
        Some(path) => AccessLogTarget::File(PathBuf::from(path)),
    };
    let fields = match &raw.fields {
        None => AccessLogField::ALL.to_vec(),
        Some(names) => names
            .iter()
            .enumerate()
            .filter_map(|(index, name)| {
                let field = AccessLogField::ALL
                    .into_iter()
                    .find(|field| field.name() == name);
                if field.is_none() {
                    let known: Vec<&str> = AccessLogField::ALL.iter().map(|f| f.name()).collect();
                    problems.push(
                        format!("access_log.fields[{index}]"),
                        format!("unknown field `{name}`; known: {}", known.join(", ")),
                    );
                }
                field
            })
            .collect(),
    };
    AccessLogConfig { target, fields }
}

/// Checks an endpoint URL: `http://host:port` (plain text HTTP/2) or, where `https` allows it,
/// `https://host:port` (TLS); nothing after the authority.
fn parse_endpoint(text: &str, https: bool) -> Result<Uri, String> {
    let expected = if https {
        "`http://host:port` or `https://host:port`"
    } else {
        "`http://host:port`"
    };
    let uri: Uri = text
        .parse()
        .map_err(|err| format!("`{text}` is not a URL ({err}); expected {expected}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") if https => {}
        Some("https") => {
            return Err(format!(
                "`{text}`: TLS is not supported for this endpoint yet; use `http://`"
            ));
        }
        _ if https => {
            return Err(format!(
                "`{text}` needs the `http://` scheme (or `https://`, for TLS), as in `http://{text}`"
            ));
        }
        _ => {
            return Err(format!(
                "`{text}` needs the `http://` scheme, as in `http://{text}`"
            ));
        }
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("`{text}` has no host; expected {expected}"));
    };
    if authority.port_u16().is_none() {
        return Err(format!("`{text}` has no port; expected {expected}"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "`{text}` has a path; gRPC endpoints are {expected} only"
        ));
    }
    Ok(uri)
}

/// Whether `name` is something a TLS certificate can be verified against: a DNS name or an
/// IP address (bracketed or not).
fn is_server_name(name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    rustls_pki_types::ServerName::try_from(bare).is_ok()
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `pkg.sub.Service`: dot-separated proto identifiers, at least a package and a service.
fn is_service_name(name: &str) -> bool {
    let mut parts = 0;
    for part in name.split('.') {
        let mut bytes = part.bytes();
        let starts_well = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        if !starts_well || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [listener]
        address = "127.0.0.1:8080"

        [admin]
        address = "127.0.0.1:9901"

        [upstreams.users]
        endpoints = ["http://127.0.0.1:50051", "http://localhost:50061"]
        services = ["demo.users.v1.UserService"]
        connect_timeout = "250ms"

        [upstreams.catalog]
        endpoints = ["http://127.0.0.1:50052"]
        services = ["demo.catalog.v1.CatalogService"]
    "#;

    fn problems(text: &str) -> Vec<(String, String)> {
        let err = GatewayConfig::from_toml_str(text, "test.toml").expect_err("config should fail");
        err.problems()
            .iter()
            .map(|p| (p.key.clone(), p.message.clone()))
            .collect()
    }

    #[test]
    fn parses_a_good_file() {
        let config = GatewayConfig::from_toml_str(GOOD, "test.toml").expect("valid config");
        assert_eq!(config.listener.address, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.listener.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(config.admin.as_ref().unwrap().address.port(), 9901);
        // Upstreams come in name order.
        let names: Vec<_> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["catalog", "users"]);
        let users = &config.upstreams[1];
        assert_eq!(users.endpoints.len(), 2);
        assert_eq!(users.connect_timeout, Duration::from_millis(250));
        assert_eq!(config.upstreams[0].connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(
            config
                .upstream_for("demo.catalog.v1.CatalogService")
                .map(|u| u.name.as_str()),
            Some("catalog")
        );
        assert!(config.upstream_for("demo.nope.v1.Nope").is_none());
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let text = r#"
            [listener]
            address = "localhost"
            drain_timeout = "soon"

            [upstreams.users]
            endpoints = ["127.0.0.1:50051", "grpc://a:1", "http://a", "http://a:1/x"]
            services = ["UserService", "demo.users.v1.UserService"]

            [upstreams."bad name"]
            endpoints = []
            services = ["demo.users.v1.UserService"]
            connect_timeout = "0s"
        "#;
        let found = problems(text);
        let keys: Vec<_> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "listener.address",
                "listener.drain_timeout",
                "upstreams.bad name",
                "upstreams.bad name.endpoints",
                "upstreams.bad name.connect_timeout",
                "upstreams.users.endpoints[0]",
                "upstreams.users.endpoints[1]",
                "upstreams.users.endpoints[2]",
                "upstreams.users.endpoints[3]",
                "upstreams.users.services[0]",
                "upstreams.users.services[1]",
            ]
        );
        let message = |key: &str| {
            found
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, m)| m.clone())
                .unwrap()
        };
        assert!(message("listener.address").contains("`localhost` is not a socket address"));
        assert!(message("upstreams.users.endpoints[0]").contains("needs the `http://` scheme"));
        assert!(
            message("upstreams.users.endpoints[1]")
                .contains("`grpc://a:1` needs the `http://` scheme (or `https://`, for TLS)")
        );
        assert!(message("upstreams.users.endpoints[2]").contains("no port"));
        assert!(message("upstreams.users.endpoints[3]").contains("has a path"));
        assert!(
            message("upstreams.users.services[1]")
                .contains("already served by upstream `bad name`")
        );
        assert!(message("upstreams.bad name.connect_timeout").contains("longer than zero"));
    }

    #[test]
    fn unknown_keys_and_syntax_errors_name_the_place() {
        let found = problems("[listener]\nadress = \"127.0.0.1:1\"\n");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].1.contains("unknown field `adress`"),
            "{}",
            found[0].1
        );
        assert!(found[0].1.contains("line 2"), "{}", found[0].1);

        let found = problems("[listener\naddress = 1");
        assert!(found[0].1.contains("line 1"), "{}", found[0].1);
    }

    #[test]
    fn a_missing_listener_is_reported() {
        let found = problems("");
        assert_eq!(found[0].0, "listener");
    }

    #[test]
    fn metrics_are_on_unless_turned_off_and_the_key_is_checked() {
        let config = GatewayConfig::from_toml_str(GOOD, "test.toml").expect("valid config");
        assert!(config.metrics.enabled);
        let off = format!("{GOOD}\n[metrics]\nenabled = false\n");
        let config = GatewayConfig::from_toml_str(&off, "test.toml").expect("valid config");
        assert!(!config.metrics.enabled);
        let typo = format!("{GOOD}\n[metrics]\nenable = false\n");
        let err = GatewayConfig::from_toml_str(&typo, "test.toml").expect_err("unknown key");
        assert!(err.to_string().contains("enable"), "{err}");
    }

    #[test]
    fn the_access_log_is_off_unless_configured_and_its_fields_are_checked() {
        let config = GatewayConfig::from_toml_str(GOOD, "test.toml").expect("valid config");
        assert_eq!(config.access_log, None);
        let on = format!("{GOOD}\n[access_log]\n");
        let config = GatewayConfig::from_toml_str(&on, "test.toml").expect("valid config");
        let log = config.access_log.expect("on");
        assert_eq!(log.target, AccessLogTarget::Stdout);
        assert_eq!(log.fields, AccessLogField::ALL);
        let off = format!("{GOOD}\n[access_log]\nenabled = false\npath = \"/tmp/x\"\n");
        let config = GatewayConfig::from_toml_str(&off, "test.toml").expect("valid config");
        assert_eq!(config.access_log, None);
        let bad =
            format!("{GOOD}\n[access_log]\npath = \"\"\nfields = [\"status\", \"latency\"]\n");
        let found = problems(&bad);
        let keys: Vec<&str> = found.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            ["access_log.path", "access_log.fields[1]"],
            "{found:?}"
        );
        assert!(found[1].1.contains("unknown field `latency`"), "{found:?}");
        assert!(
            found[1].1.contains("duration_us"),
            "lists the known ones: {found:?}"
        );
    }

    #[test]
    fn the_admin_listener_defaults_to_loopback() {
        let text = "[listener]\naddress = \"127.0.0.1:8080\"\n[admin]\n";
        let config = GatewayConfig::from_toml_str(text, "test.toml").expect("valid config");
        assert_eq!(
            config.admin.map(|admin| admin.address),
            Some("127.0.0.1:9901".parse().unwrap())
        );
    }

    #[test]
    fn logging_filter_and_format_are_checked() {
        let config = GatewayConfig::from_toml_str(GOOD, "test.toml").expect("valid config");
        assert_eq!(config.logging, LoggingConfig::default());
        let json = format!(
            "{GOOD}\n[logging]\nfilter = \"warn,mosaic_gateway=debug\"\nformat = \"json\"\n"
        );
        let config = GatewayConfig::from_toml_str(&json, "test.toml").expect("valid config");
        assert_eq!(config.logging.format, LogFormat::Json);
        assert_eq!(config.logging.filter, "warn,mosaic_gateway=debug");
        let bad = format!("{GOOD}\n[logging]\nfilter = \"info,[\"\nformat = \"yaml\"\n");
        let keys: Vec<String> = problems(&bad).into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["logging.filter", "logging.format"]);
    }

    #[test]
    fn listener_and_admin_need_different_ports() {
        let found = problems(
            "[listener]\naddress = \"127.0.0.1:8080\"\n[admin]\naddress = \"127.0.0.1:8080\"\n",
        );
        assert_eq!(found[0].0, "admin.address");
    }

    #[test]
    fn display_lists_problems_under_the_origin() {
        let err = GatewayConfig::from_toml_str("[listener]\naddress = \"x\"\n", "gw.toml")
            .expect_err("bad address");
        let text = err.to_string();
        assert!(
            text.starts_with("invalid gateway configuration gw.toml (1 problem)"),
            "{text}"
        );
        assert!(
            text.contains("\n  - listener.address: `x` is not a socket address"),
            "{text}"
        );
    }

    #[test]
    fn service_names_must_be_qualified() {
        assert!(is_service_name("demo.users.v1.UserService"));
        assert!(is_service_name("a.B"));
        assert!(!is_service_name("UserService"));
        assert!(!is_service_name("demo..X"));
        assert!(!is_service_name("demo.1x"));
        assert!(!is_service_name("demo/x.Y"));
    }

    #[test]
    fn resilience_policy_has_safe_defaults_and_reads_every_key() {
        let config = GatewayConfig::from_toml_str(GOOD, "test.toml").expect("valid config");
        assert_eq!(config.upstreams[0].policy, UpstreamPolicy::default());

        let text = format!(
            "{GOOD}{}",
            r#"
            [upstreams.inventory]
            endpoints = ["http://127.0.0.1:50054"]
            services = ["demo.inventory.v1.InventoryService"]
            max_concurrent = 64
            connections_per_endpoint = 4
            ready_timeout = "250ms"
            max_ejection_percent = 50
            dns_refresh = "5s"
            max_replay_bytes = 1024
            [upstreams.inventory.breaker]
            consecutive_failures = 7
            failure_rate = 0.25
            failure_rate_window = "30s"
            failure_rate_min_requests = 50
            backoff_min = "2s"
            backoff_max = "1m"
            [upstreams.inventory.retry]
            max_attempts = 4
            initial_backoff = "10ms"
            max_backoff = "200ms"
            multiplier = 1.5
            retryable_codes = ["DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"]
            [upstreams.inventory.budget]
            percent = 10
            min_per_second = 2
            ttl = "20s"
            [upstreams.inventory.hedge]
            delay = "30ms"
            max_attempts = 3
            [upstreams.inventory.methods."demo.inventory.v1.InventoryService/GetStock"]
            timeout = "150ms"
            idempotent = true
            retry = { max_attempts = 5 }
            hedge = { enabled = false }
            "#
        );
        let config = GatewayConfig::from_toml_str(&text, "test.toml").expect("valid config");
        let policy = &config.upstreams[1].policy;
        assert_eq!(config.upstreams[1].name, "inventory");
        assert_eq!(policy.max_concurrent, 64);
        assert_eq!(policy.connections_per_endpoint, 4);
        assert_eq!(policy.ready_timeout, Duration::from_millis(250));
        assert_eq!(policy.max_ejection_percent, 50);
        assert_eq!(policy.dns_refresh, Duration::from_secs(5));
        assert_eq!(policy.max_replay_bytes, 1024);
        assert_eq!(policy.breaker.consecutive_failures, 7);
        let rate = policy.breaker.failure_rate.as_ref().expect("rate mode");
        assert_eq!(
            (rate.threshold, rate.window, rate.min_requests),
            (0.25, Duration::from_secs(30), 50)
        );
        assert_eq!(policy.breaker.backoff_max, Duration::from_secs(60));
        assert_eq!(policy.retry.max_attempts, 4);
        assert_eq!(policy.retry.multiplier, 1.5);
        assert_eq!(
            policy.retry.retryable_codes,
            [Code::DeadlineExceeded, Code::ResourceExhausted]
        );
        assert_eq!(policy.budget.ratio, 0.1);
        assert_eq!(policy.budget.ttl, Duration::from_secs(20));
        assert_eq!(
            policy.hedge,
            Hedging::On(HedgePolicy {
                delay: Duration::from_millis(30),
                max_attempts: 3
            })
        );
        let method = &policy.methods["demo.inventory.v1.InventoryService/GetStock"];
        assert_eq!(method.timeout, Some(Duration::from_millis(150)));
        assert_eq!(method.idempotent, Some(true));
        let retry = method.retry.as_ref().expect("retry override");
        assert_eq!(retry.max_attempts, 5);
        assert_eq!(
            retry.initial_backoff,
            Duration::from_millis(10),
            "unset fields come from the upstream's retry"
        );
        assert_eq!(
            method.hedge,
            Some(None),
            "hedging turned off for this method"
        );
    }

    #[test]
    fn bad_resilience_settings_are_reported_with_their_keys() {
        let text = r#"
            [listener]
            address = "127.0.0.1:8080"
            [upstreams.users]
            endpoints = ["http://127.0.0.1:50051"]
            services = ["demo.users.v1.UserService"]
            max_concurrent = 0
            [upstreams.users.breaker]
            failure_rate = 1.5
            backoff_min = "10s"
            backoff_max = "1s"
            [upstreams.users.retry]
            max_attempts = 6
            retryable_codes = ["UNAVAILABLE", "SLOW", "OK"]
            [upstreams.users.budget]
            ttl = "2m"
            [upstreams.users.hedge]
            max_attempts = 2
            [upstreams.users.methods."demo.catalog.v1.CatalogService/GetProduct"]
            timeout = "1s"
            [upstreams.users.methods.GetUser]
            idempotent = true
        "#;
        let found = problems(text);
        let keys: Vec<&str> = found.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "upstreams.users.max_concurrent",
                "upstreams.users.breaker.failure_rate",
                "upstreams.users.breaker.backoff_max",
                "upstreams.users.retry.max_attempts",
                "upstreams.users.retry.retryable_codes[1]",
                "upstreams.users.retry.retryable_codes[2]",
                "upstreams.users.budget.ttl",
                "upstreams.users.hedge.delay",
                "upstreams.users.methods.\"GetUser\"",
                "upstreams.users.methods.\"demo.catalog.v1.CatalogService/GetProduct\"",
            ],
            "{found:#?}"
        );
        assert!(found[3].1.contains("expected 1 to 5"), "{:?}", found[3]);
        assert!(found[4].1.contains("`SLOW` is not a gRPC status code name"));
        assert!(found[9].1.contains("not one of this upstream's services"));
    }

    #[test]
    fn https_upstreams_are_accepted_with_tls_settings_or_defaults() {
        let text = format!(
            "{GOOD}{}",
            r#"
            [upstreams.billing]
            endpoints = ["https://127.0.0.1:8443", "https://[::1]:8443"]
            services = ["demo.billing.v1.BillingService"]

            [upstreams.inventory]
            endpoints = ["https://inventory.internal:443"]
            services = ["demo.inventory.v1.InventoryService"]
            [upstreams.inventory.tls]
            ca = "certs/inventory-ca.pem"
            cert = "certs/gateway.pem"
            key = "certs/gateway.key"
            server_name = "inventory.internal"
            "#
        );
        let config = GatewayConfig::from_toml_str(&text, "test.toml").expect("valid config");
        let upstream = |name: &str| {
            config
                .upstreams
                .iter()
                .find(|upstream| upstream.name == name)
                .expect("upstream")
        };
        assert_eq!(upstream("users").tls, None, "http:// endpoints: plain text");
        assert_eq!(
            upstream("billing").tls,
            Some(UpstreamTls::default()),
            "https:// without a table: the system's roots, each endpoint's host"
        );
        assert_eq!(upstream("billing").endpoints[1].scheme_str(), Some("https"));
        assert_eq!(
            upstream("inventory").tls,
            Some(UpstreamTls {
                ca: Some("certs/inventory-ca.pem".into()),
                cert: Some("certs/gateway.pem".into()),
                key: Some("certs/gateway.key".into()),
                server_name: Some("inventory.internal".to_owned()),
            })
        );
    }

    #[test]
    fn tls_problems_are_reported_with_their_keys() {
        let text = r#"
            [listener]
            address = "127.0.0.1:8080"

            [tracing]
            endpoint = "https://127.0.0.1:4317"

            [upstreams.a]
            endpoints = ["http://127.0.0.1:1"]
            services = ["demo.a.v1.A"]
            [upstreams.a.tls]
            ca = "ca.pem"

            [upstreams.b]
            endpoints = ["http://127.0.0.1:1", "https://127.0.0.1:2"]
            services = ["demo.b.v1.B"]

            [upstreams.c]
            endpoints = ["https://127.0.0.1:1"]
            services = ["demo.c.v1.C"]
            [upstreams.c.tls]
            cert = "client.pem"

            [upstreams.d]
            endpoints = ["https://127.0.0.1:1"]
            services = ["demo.d.v1.D"]
            [upstreams.d.tls]
            key = "client.key"
            server_name = "not a name"

            [upstreams.e]
            endpoints = ["https://127.0.0.1:1"]
            services = ["demo.e.v1.E"]
            [upstreams.e.tls]
            trust = "ca.pem"
        "#;
        let err = GatewayConfig::from_toml_str(text, "test.toml").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `trust`"), "{err}");

        let text = text.replace("trust = ", "ca = ");
        let found = problems(&text);
        let keys: Vec<&str> = found.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tracing.endpoint",
                "upstreams.a.tls",
                "upstreams.b.endpoints",
                "upstreams.c.tls.cert",
                "upstreams.d.tls.key",
                "upstreams.d.tls.server_name",
            ],
            "{found:#?}"
        );
        assert!(
            found[0]
                .1
                .contains("TLS is not supported for this endpoint"),
            "the trace exporter speaks plain text only: {found:?}"
        );
        assert!(found[1].1.contains("set https:// endpoints"), "{found:?}");
        assert!(
            found[2]
                .1
                .contains("mixes `http://` and `https://` endpoints"),
            "{found:?}"
        );
        assert!(found[3].1.contains("needs `key`"), "{found:?}");
        assert!(found[4].1.contains("needs `cert`"), "{found:?}");
        assert!(
            found[5].1.contains("`not a name` is not a DNS name"),
            "{found:?}"
        );
    }
}
