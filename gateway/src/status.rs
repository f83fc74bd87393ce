//! The one place where local failures become gRPC statuses.
//!
//! Everything the gateway itself decides (no route, an upstream it cannot reach, a stream that
//! broke) is a [`LocalError`]; [`LocalError::to_status`] is the only mapping to `tonic::Status`,
//! so the codes callers see are consistent and documented here:
//!
//! | Local cause                                  | gRPC code       |
//! |----------------------------------------------|-----------------|
//! | no service or method by that name            | `UNIMPLEMENTED` |
//! | malformed gRPC request (path, HTTP version)  | `INVALID_ARGUMENT` or `UNIMPLEMENTED` |
//! | upstream not reachable (connect failed)      | `UNAVAILABLE`   |
//! | upstream without endpoints                   | `UNAVAILABLE`   |
//! | upstream failed before answering             | `UNAVAILABLE`   |
//! | upstream broke a response stream midway     | `UNAVAILABLE`   |
//!
//! Messages always name the upstream and the cause, because the caller cannot see the gateway's
//! logs and "unavailable" alone does not say which of several services is down.

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
    #[error("upstream `{upstream}` failed before answering: {source}")]
    UpstreamFailed {
        /// Upstream name from `gateway.toml`.
        upstream: String,
        /// The transport error.
        #[source]
        source: tower::BoxError,
    },
    /// The upstream's response stream ended with a transport error.
    #[error("upstream `{upstream}` broke off the response stream: {source}")]
    StreamBroken {
        /// Upstream name from `gateway.toml`.
        upstream: String,
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
            | Self::StreamBroken { .. } => Code::Unavailable,
        }
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
        Status::new(self.code(), message)
    }

    /// A trailers-only gRPC response carrying this failure.
    pub fn into_response<B: Default>(self) -> Response<B> {
        tracing::debug!(error = %self, "answering with a local error");
        self.to_status().into_http()
    }
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
            source: Outer(std::io::Error::other("reset by peer")).into(),
        };
        assert_eq!(
            err.to_status().message(),
            "upstream `catalog` failed before answering: connect failed: reset by peer"
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
