//! The one place where local failures become gRPC statuses.
//!
//! Everything the gateway itself decides (no route, an upstream it cannot reach, a stream that
//! broke) is a [`LocalError`]; [`LocalError::to_status`] is the only mapping to `tonic::Status`,
//! so the codes callers see are consistent and documented here:
//!
//! | Local cause                                  | gRPC code       |
//! |----------------------------------------------|-----------------|
//! | no service or method by that name            | `UNIMPLEMENTED` |
//! | a path that is not `/package.Service/Method` | `UNIMPLEMENTED` |
//! | upstream not reachable (connect failed)      | `UNAVAILABLE`   |
//! | upstream without endpoints                   | `UNAVAILABLE`   |
//! | upstream failed before answering (reset)     | `UNAVAILABLE`   |
//! | upstream broke a response stream midway     | `UNAVAILABLE`   |
//! | no endpoint ready (every breaker open)       | `UNAVAILABLE`   |
//! | upstream at its concurrency limit (shed)     | `RESOURCE_EXHAUSTED` |
//! | no complete answer by the call's deadline    | `DEADLINE_EXCEEDED` |
//! | the caller's request stream broke off        | `CANCELLED`     |
//! | no valid credentials for the method          | `UNAUTHENTICATED` (+ `www-authenticate`) |
//! | the method's policy refuses the caller       | `PERMISSION_DENIED` |
//! | over a rate limit                            | `RESOURCE_EXHAUSTED` (+ `retry-after`, `RetryInfo`, `QuotaFailure`) |
//! | a request message over `max_message_bytes`   | `RESOURCE_EXHAUSTED` |
//! | the shared rate-limit store cannot be asked  | `UNAVAILABLE`   |
//!
//! Requests that are not gRPC at all never reach a gRPC status: the router answers them over
//! plain HTTP (505 for gRPC over HTTP/1.1, 415 for another content type, 404 otherwise).
//!
//! `UNAVAILABLE` answers decided here (shed, open breakers, no endpoint) are never retried by
//! the gateway itself: the condition that caused them is local and retrying at the same hop
//! would only add load to it; [`LocalError::is_local_rejection`] tells them apart.
//!
//! Composition failures decided by the runtime are [`ComposeError`]s:
//!
//! | Local cause                                      | gRPC code           |
//! |--------------------------------------------------|---------------------|
//! | the edge call's deadline passed                  | `DEADLINE_EXCEEDED` |
//! | no upstream in `gateway.toml` serves the service | `INTERNAL`          |
//! | the upstream serving it has no endpoints         | `UNAVAILABLE`       |
//! | a step panicked                                  | `INTERNAL`          |
//! | a step was cancelled by a runtime shutdown       | `UNAVAILABLE`       |
//! | no Tokio runtime is running                      | `INTERNAL`          |
//! | the edge call's request message does not decode  | `INVALID_ARGUMENT`  |
//! | a computed metadata value is not header text     | `INVALID_ARGUMENT`  |
//! | two conditional members of one oneof both apply  | `INTERNAL`          |
//! | a composition reads deployment values it lacks   | `INTERNAL`          |
//!
//! A request message that does not decode is the caller's to fix, so an edge service answers it
//! with `INVALID_ARGUMENT` (`compose/codec.rs`). A downstream's response that does not decode
//! stays tonic's `INTERNAL`: that one is the downstream's fault, not the caller's.
//!
//! A missing route is `INTERNAL`, not `UNAVAILABLE`: it is a deployment bug that retrying will
//! never fix, and `UNAVAILABLE` would invite clients to retry it.
//!
//! Messages always name the upstream and the cause, because the caller cannot see the gateway's
//! logs and "unavailable" alone does not say which of several services is down.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response};
use tonic::{Code, Status};

/// A failure decided by the gateway rather than returned by an upstream.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// No upstream or local service serves this gRPC service.
    #[error("unknown service `{service}`: this gateway does not serve or route it")]
    UnknownService {
        /// Fully qualified service name from the request path.
        service: String,
    },
    /// The request path is not `/package.Service/Method`.
    #[error("malformed gRPC path `{path}`: expected `/package.Service/Method`")]
    MalformedPath {
        /// The path as received.
        path: String,
    },
    /// No connection to the upstream could be made.
    #[error("upstream `{upstream}` is unreachable at {endpoint}: {source}")]
    Unreachable {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// The endpoint tried.
        endpoint: String,
        /// Why connecting failed.
        #[source]
        source: tower::BoxError,
    },
    /// The upstream has no endpoint to send the call to.
    #[error("upstream `{upstream}` has no endpoints")]
    NoEndpoints {
        /// Upstream name from `gateway.toml`.
        upstream: String,
    },
    /// The upstream connection failed before a response arrived.
    #[error("upstream `{upstream}` failed before answering{}: {source}", at(.endpoint))]
    UpstreamFailed {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// The endpoint, `http://host:port`, when one was chosen.
        endpoint: Option<String>,
        /// The transport error.
        #[source]
        source: tower::BoxError,
    },
    /// Every endpoint's breaker is open and none became ready in time.
    #[error(
        "upstream `{upstream}` has no ready endpoint ({open} of {total} ejected by circuit \
         breakers; waited {})",
        humantime::format_duration(*.waited)
    )]
    NoReadyEndpoint {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// Endpoints ejected by their breakers.
        open: usize,
        /// Endpoints in all.
        total: usize,
        /// How long the call waited for one to become ready.
        waited: Duration,
    },
    /// The upstream's concurrency limit was reached; the call was shed without being sent.
    #[error("upstream `{upstream}` is at its limit of {limit} concurrent calls; call shed")]
    Overloaded {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// The configured limit.
        limit: usize,
    },
    /// No response head arrived within the call's `grpc-timeout`.
    #[error(
        "upstream `{upstream}` did not answer within the call's deadline of {}",
        humantime::format_duration(*.timeout)
    )]
    UpstreamDeadline {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// The call's timeout.
        timeout: Duration,
    },
    /// The caller's request stream broke off while the gateway read it.
    #[error("the request stream broke off before the gateway could forward it: {source}")]
    RequestBroken {
        /// The transport error.
        #[source]
        source: tower::BoxError,
    },
    /// The call has no valid credentials for its method (see `access`).
    #[error("{reason}")]
    Unauthenticated {
        /// What was missing or wrong; never the credential.
        reason: String,
        /// The `www-authenticate` challenge, for HTTP callers.
        challenge: Option<HeaderValue>,
    },
    /// The method's policy does not let this caller call it.
    #[error("permission denied: {reason}")]
    PermissionDenied {
        /// Which requirement the caller does not meet.
        reason: String,
    },
    /// The caller is over one of its rate limits; the call went nowhere.
    #[error(
        "rate limit exceeded: {limit}; retry in {}",
        humantime::format_duration(round_up_ms(*.retry_after))
    )]
    RateLimited {
        /// The limit: "plan `free` (10 calls per 1s)".
        limit: String,
        /// The bucket's size, for `ratelimit-limit`.
        quota: u32,
        /// When a call would next be admitted.
        retry_after: Duration,
    },
    /// A request message was larger than `[listener.limits] max_message_bytes`.
    #[error(
        "a request message of {size} bytes is larger than this gateway's limit of {limit} bytes"
    )]
    MessageTooLarge {
        /// The size the message declared.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The shared rate-limit store did not answer and the configuration says to refuse.
    #[error("rate limits cannot be checked ({reason}); call refused")]
    LimitStoreUnavailable {
        /// Why the store could not be asked.
        reason: String,
    },
    /// The upstream's response stream ended with a transport error.
    #[error("upstream `{upstream}` broke off the response stream{}: {source}", at(.endpoint))]
    StreamBroken {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// The endpoint, `http://host:port`, when known.
        endpoint: Option<String>,
        /// The transport error.
        #[source]
        source: tower::BoxError,
    },
}

impl LocalError {
    /// The status a caller receives for this failure.
    pub fn code(&self) -> Code {
        match self {
            Self::UnknownService { .. } => Code::Unimplemented,
            Self::MalformedPath { .. } => Code::Unimplemented,
            Self::Unreachable { .. }
            | Self::NoEndpoints { .. }
            | Self::UpstreamFailed { .. }
            | Self::StreamBroken { .. }
            | Self::NoReadyEndpoint { .. } => Code::Unavailable,
            Self::Overloaded { .. } | Self::RateLimited { .. } | Self::MessageTooLarge { .. } => {
                Code::ResourceExhausted
            }
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::LimitStoreUnavailable { .. } => Code::Unavailable,
            Self::RequestBroken { .. } => Code::Cancelled,
            Self::UpstreamDeadline { .. } => Code::DeadlineExceeded,
        }
    }

    /// Whether the gateway refused the call itself (shed, no ready endpoint, no endpoints):
    /// retrying such a call at the same hop only adds to the overload that caused it.
    pub fn is_local_rejection(&self) -> bool {
        matches!(
            self,
            Self::NoReadyEndpoint { .. } | Self::Overloaded { .. } | Self::NoEndpoints { .. }
        )
    }

    /// Recovers the local error from an upstream stack's boxed error; any other error (which
    /// the stack does not produce) is reported as the upstream failing.
    pub fn from_stack(upstream: &str, error: tower::BoxError) -> LocalError {
        match error.downcast::<LocalError>() {
            Ok(local) => *local,
            Err(source) => LocalError::UpstreamFailed {
                upstream: upstream.to_owned(),
                endpoint: None,
                source,
            },
        }
    }

    /// The status for a typed downstream call: [`to_status`](Self::to_status), with this error
    /// kept as the status's source so the retry logic can tell local rejections apart.
    pub fn into_status(self) -> Status {
        let mut status = self.to_status();
        status.set_source(std::sync::Arc::new(self));
        status
    }

    /// The status a caller receives, with a message naming the cause. Transport errors are
    /// flattened into the message (`a: b: c`) because the caller only sees the text.
    pub fn to_status(&self) -> Status {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self).and_then(std::error::Error::source);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        match self {
            Self::Unauthenticated {
                challenge: Some(challenge),
                ..
            } => {
                let mut status = Status::new(self.code(), message);
                if let Ok(value) =
                    tonic::metadata::AsciiMetadataValue::try_from(challenge.as_bytes())
                {
                    status.metadata_mut().insert("www-authenticate", value);
                }
                status
            }
            Self::RateLimited {
                limit,
                quota,
                retry_after,
            } => {
                use tonic_types::{ErrorDetails, StatusExt};
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let mut metadata = tonic::metadata::MetadataMap::new();
                metadata.insert("retry-after", seconds.into());
                metadata.insert("ratelimit-limit", (*quota).into());
                metadata.insert("ratelimit-remaining", 0u32.into());
                metadata.insert("ratelimit-reset", seconds.into());
                let mut details = ErrorDetails::with_retry_info(Some(round_up_ms(*retry_after)));
                details.add_quota_failure_violation("caller", limit.as_str());
                Status::with_error_details_and_metadata(self.code(), message, details, metadata)
            }
            _ => Status::new(self.code(), message),
        }
    }

    /// A trailers-only gRPC response carrying this failure.
    pub fn into_response<B: Default>(self) -> Response<B> {
        tracing::debug!(error = %self, "answering with a local error");
        self.to_status().into_http()
    }
}

/// A failure the composition runtime decides itself, rather than one a downstream returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// The edge call ran out of time.
    #[error("deadline of {} for {method} exceeded", humantime::format_duration(*.budget))]
    DeadlineExceeded {
        /// The edge method, `package.Service/Method`.
        method: &'static str,
        /// The time the call was given.
        budget: Duration,
    },
    /// No upstream is configured for a downstream service that generated code calls.
    #[error(
        "no upstream in gateway.toml serves `{service}`; add it to the `services` of the \
         upstream that runs it"
    )]
    NoUpstream {
        /// Fully qualified gRPC service name.
        service: String,
    },
    /// The upstream serving a service has no endpoints to call.
    #[error("upstream `{upstream}` has no endpoints, so `{service}` cannot be called")]
    NoEndpoints {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// Fully qualified gRPC service name.
        service: String,
    },
    /// A step's body panicked. The panic message goes to the log, not to the caller.
    #[error("a composition step panicked; this is a bug in the gateway or the generated code")]
    StepPanicked,
    /// A step's task was cancelled from outside the request, which only a runtime shutdown does.
    #[error("a composition step was cancelled because the gateway is shutting down")]
    StepCancelled,
    /// Steps and downstream channels are Tokio tasks and need a running Tokio runtime.
    #[error("the composition runtime needs a running Tokio runtime and none is running")]
    NoRuntime,
    /// The edge call's request message is not valid protobuf for its type.
    #[error("the request message could not be decoded: {reason}")]
    MalformedRequest {
        /// What prost found wrong, naming the field.
        reason: String,
    },
    /// Two members of one oneof had conditions that held at once.
    #[error(
        "the conditions of `{first}` and `{second}`, members of oneof `{oneof}`, both hold; \
         a oneof holds one value"
    )]
    OneofConflict {
        /// The oneof, `package.Message.oneof`.
        oneof: &'static str,
        /// The first member whose condition held.
        first: &'static str,
        /// The second.
        second: &'static str,
    },
    /// A value computed for a downstream call's metadata cannot be sent as a header value.
    #[error(
        "step `{step}` cannot send metadata `{name}`: its value holds characters a header \
         value cannot (only visible ASCII, spaces and tabs)"
    )]
    InvalidMetadata {
        /// The step making the call.
        step: &'static str,
        /// The metadata key.
        name: &'static str,
    },
    /// A composition reads `$env` values, and its handler runs without them: only a handler
    /// started outside its composer can.
    #[error("the composition reads the deployment values of `{service}`, which this call lacks")]
    NoDeployment {
        /// The edge service declaring the values.
        service: &'static str,
    },
}

impl ComposeError {
    /// The code a caller receives for this failure (see the module docs for the table).
    pub fn code(&self) -> Code {
        match self {
            Self::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            Self::NoUpstream { .. }
            | Self::StepPanicked
            | Self::NoRuntime
            | Self::OneofConflict { .. }
            | Self::NoDeployment { .. } => Code::Internal,
            Self::NoEndpoints { .. } | Self::StepCancelled => Code::Unavailable,
            Self::MalformedRequest { .. } | Self::InvalidMetadata { .. } => Code::InvalidArgument,
        }
    }

    /// The status a caller receives, with the message naming the cause.
    pub fn to_status(&self) -> Status {
        Status::new(self.code(), self.to_string())
    }
}

impl From<ComposeError> for Status {
    fn from(error: ComposeError) -> Self {
        error.to_status()
    }
}

/// `duration` rounded up to whole milliseconds, for messages and `RetryInfo`.
fn round_up_ms(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_nanos().div_ceil(1_000_000) as u64)
}

/// ` at http://host:port` when the endpoint is known, for messages.
fn at(endpoint: &Option<String>) -> String {
    endpoint
        .as_deref()
        .map(|endpoint| format!(" at {endpoint}"))
        .unwrap_or_default()
}

/// The `grpc-status` of a response head or trailers: `None` without one, `UNKNOWN` for a value
/// that is not a number (as gRPC clients read it).
pub(crate) fn code_of(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get(super::headers::GRPC_STATUS)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
            .map_or(Code::Unknown, Code::from_i32),
    )
}

/// The trailers that end a gRPC response with `status`.
pub(crate) fn trailers(status: &Status) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(2);
    if status.add_header(&mut map).is_err() {
        // Only an unencodable message can fail; keep the code, which is what clients act on.
        map.insert("grpc-status", HeaderValue::from(status.code() as i32));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_upstreams_are_unavailable_and_named() {
        let err = LocalError::Unreachable {
            upstream: "users".into(),
            endpoint: "http://127.0.0.1:1".into(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused").into(),
        };
        let status = err.to_status();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "upstream `users` is unreachable at http://127.0.0.1:1: refused"
        );
    }

    #[test]
    fn nested_causes_are_flattened_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("connect failed")]
        struct Outer(#[source] std::io::Error);
        let err = LocalError::UpstreamFailed {
            upstream: "catalog".into(),
            endpoint: Some("http://127.0.0.1:7".into()),
            source: Outer(std::io::Error::other("reset by peer")).into(),
        };
        assert_eq!(
            err.to_status().message(),
            "upstream `catalog` failed before answering at http://127.0.0.1:7: connect failed: \
             reset by peer"
        );
    }

    #[test]
    fn trailers_only_response_carries_the_status() {
        let response: Response<()> = LocalError::UnknownService {
            service: "x.Y".into(),
        }
        .into_response();
        let status = Status::from_header_map(response.headers()).expect("grpc-status header");
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(status.message().contains("unknown service `x.Y`"));
        assert_eq!(response.headers()["content-type"], "application/grpc");
    }

    #[test]
    fn trailers_encode_code_and_message() {
        let map = trailers(&Status::unavailable("down: a b"));
        assert_eq!(map["grpc-status"], "14");
        let decoded = Status::from_header_map(&map).expect("status");
        assert_eq!(decoded.message(), "down: a b");
    }
}
