//! How a composition fails: the runtime's own failures, and downstream failures named by step.
//!
//! Two kinds of failure end a composed call:
//!
//! - **A downstream answered with an error.** Its code is what the caller should act on (a
//!   `NOT_FOUND` product is still `NOT_FOUND` at the edge), so [`step_failed`] keeps the code
//!   and the details bytes and only rewrites the message to say *which* step and downstream
//!   method failed: with several calls per request, "product 501 not found" alone does not tell
//!   the caller (or the on-call engineer reading the client's logs) where it came from.
//! - **The runtime decided locally** ([`ComposeError`]): the edge deadline passed, no upstream
//!   serves a service, a step panicked. Each variant has one documented code:
//!
//! | Local cause                                      | gRPC code           |
//! |--------------------------------------------------|---------------------|
//! | the edge call's deadline passed                  | `DEADLINE_EXCEEDED` |
//! | no upstream in `gateway.toml` serves the service | `INTERNAL`          |
//! | the upstream serving it has no endpoints         | `UNAVAILABLE`       |
//! | a step panicked                                  | `INTERNAL`          |
//! | a step was cancelled by a runtime shutdown       | `UNAVAILABLE`       |
//! | no Tokio runtime is running                      | `INTERNAL`          |
//!
//! A missing route is `INTERNAL`, not `UNAVAILABLE`: it is a deployment bug that retrying will
//! never fix, and `UNAVAILABLE` would invite clients to retry it.
//!
//! This table belongs with `LocalError` in `status.rs`, the one mapping of local failures to
//! gRPC codes; it lives here until that module takes these variants over.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tonic::{Code, Status, TimeoutExpired};

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
}

impl ComposeError {
    /// The code a caller receives for this failure (see the module docs for the table).
    pub fn code(&self) -> Code {
        match self {
            Self::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            Self::NoUpstream { .. } | Self::StepPanicked | Self::NoRuntime => Code::Internal,
            Self::NoEndpoints { .. } | Self::StepCancelled => Code::Unavailable,
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

/// Wraps a downstream failure so its message names the step and the downstream method:
/// ``step `p` (demo.catalog.v1.CatalogService/GetProduct) failed: product 501 not found``.
///
/// The code and the details bytes (`grpc-status-details-bin`) are kept as the downstream sent
/// them; its trailing metadata is not forwarded, since it describes the downstream's response,
/// not the edge's. The original status stays reachable as the [`source`](std::error::Error::source)
/// for logs.
///
/// One code is corrected: a call that tonic's client gave up on because its `grpc-timeout`
/// expired comes back as `CANCELLED` ("Timeout expired"); here it becomes `DEADLINE_EXCEEDED`,
/// because the caller did not cancel anything, the deadline passed. An empty `step` name (a
/// step kept for its effect only) gives "call to `method` failed: …".
pub fn step_failed(step: &str, method: &str, status: Status) -> Status {
    let (code, cause) = if expired_locally(&status) {
        (
            Code::DeadlineExceeded,
            "its deadline passed before it answered",
        )
    } else if status.message().is_empty() {
        (status.code(), status.code().description())
    } else {
        (status.code(), status.message())
    };
    let message = if step.is_empty() {
        format!("call to {method} failed: {cause}")
    } else {
        format!("step `{step}` ({method}) failed: {cause}")
    };
    let details = Bytes::copy_from_slice(status.details());
    let mut wrapped = Status::with_details(code, message, details);
    wrapped.set_source(Arc::new(status));
    wrapped
}

/// Whether tonic's client ended the call itself because the request's timeout expired.
fn expired_locally(status: &Status) -> bool {
    if status.code() != Code::Cancelled {
        return false;
    }
    let mut cause = status.source();
    while let Some(error) = cause {
        if error.is::<TimeoutExpired>() {
            return true;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_PRODUCT: &str = "demo.catalog.v1.CatalogService/GetProduct";

    #[test]
    fn step_failed_names_step_and_method_and_keeps_code_and_details() {
        let downstream = Status::with_details(
            Code::NotFound,
            "product 501 not found",
            Bytes::from_static(b"\x08\x05"),
        );
        let status = step_failed("p", GET_PRODUCT, downstream);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            "step `p` (demo.catalog.v1.CatalogService/GetProduct) failed: product 501 not found"
        );
        assert_eq!(status.details(), b"\x08\x05");
        let source = status.source().and_then(|s| s.downcast_ref::<Status>());
        assert_eq!(
            source.map(Status::message),
            Some("product 501 not found"),
            "the original status stays reachable for logs"
        );
    }

    #[test]
    fn step_failed_without_message_uses_the_code_description() {
        let status = step_failed("", GET_PRODUCT, Status::new(Code::Unavailable, ""));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            format!(
                "call to {GET_PRODUCT} failed: {}",
                Code::Unavailable.description()
            )
        );
    }

    #[test]
    fn local_timeout_of_a_call_becomes_deadline_exceeded() {
        let expired = Status::from_error(Box::new(TimeoutExpired(())));
        assert_eq!(
            expired.code(),
            Code::Cancelled,
            "what tonic's client returns"
        );
        let status = step_failed("p", GET_PRODUCT, expired);
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert!(status.message().starts_with("step `p` ("), "{status:?}");

        let cancelled = step_failed("p", GET_PRODUCT, Status::cancelled("client went away"));
        assert_eq!(cancelled.code(), Code::Cancelled, "real cancellations stay");
    }

    #[test]
    fn compose_errors_map_to_documented_codes() {
        let deadline = ComposeError::DeadlineExceeded {
            method: "demo.storefront.v1.Storefront/GetProductPage",
            budget: Duration::from_millis(800),
        };
        let status = Status::from(deadline);
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "deadline of 800ms for demo.storefront.v1.Storefront/GetProductPage exceeded"
        );
        let missing = ComposeError::NoUpstream {
            service: "demo.users.v1.UserService".into(),
        };
        assert_eq!(missing.code(), Code::Internal);
        assert_eq!(ComposeError::StepPanicked.code(), Code::Internal);
        assert_eq!(ComposeError::StepCancelled.code(), Code::Unavailable);
        assert_eq!(ComposeError::NoRuntime.code(), Code::Internal);
    }
}
