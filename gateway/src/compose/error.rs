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
//!   serves a service, a step panicked. Each variant has one documented code, in the table of
//!   `grpc/status.rs`, the one place where local failures become gRPC statuses.

use std::error::Error as _;
use std::sync::Arc;

use bytes::Bytes;
use tonic::{Code, Status, TimeoutExpired};

pub(super) use crate::grpc::status::ComposeError;

/// Wraps a downstream failure so its message names the step and the downstream method:
/// ``step `p` (demo.catalog.v1.CatalogService/GetProduct) failed: product 501 not found``.
///
/// The code and the details bytes (`grpc-status-details-bin`) are kept as the downstream sent
/// them; its trailing metadata is not forwarded, since it describes the downstream's response,
/// not the edge's. The original status stays reachable as the [`source`](std::error::Error::source)
/// for logs.
///
/// One code is corrected: a call whose `grpc-timeout` expired comes back from tonic (its
/// client, or a tonic downstream server) as `CANCELLED` ("Timeout expired"); here it becomes
/// `DEADLINE_EXCEEDED`,
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

/// Makes one downstream call for a step through the upstream serving `service`: each attempt
/// gets the edge call's deadline slice (see
/// [`EdgeCall::downstream_request`](super::EdgeCall::downstream_request)), failed attempts are
/// retried or hedged as the upstream's policy says (`compose::retry`), and a failure of the call
/// names the step and method, the deadline having passed before sending included. A `service`
/// no upstream serves is a configuration error and is reported as such (naming the service).
/// `send` performs one attempt with a typed client built on the channel it is given. Equal
/// calls of an idempotent method within one edge call share one downstream call
/// (`grpc/shared.rs`).
pub async fn call_downstream<M, R, F, Fut>(
    call: &super::EdgeCall,
    downstreams: &super::Downstreams,
    service: &str,
    spec: &super::CallSpec,
    message: M,
    send: F,
) -> Result<R, Status>
where
    M: Clone + prost::Message,
    R: Clone + Send + Sync + 'static,
    F: Fn(super::DownstreamChannel, tonic::Request<M>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<R>, Status>>,
{
    let upstream = downstreams.get(service)?;
    // Equal calls of one edge call share one downstream call (`shared.rs` says when).
    let context = (spec.shareable && crate::client::idempotent(&upstream, spec))
        .then(crate::grpc::context::current)
        .flatten();
    let result = match context {
        Some(context) => {
            let request = message.encode_to_vec();
            // Boxed: the shared path nests the call's future twice; on the heap it keeps the
            // step's future, and the stack polling it, small.
            let made = Box::pin(crate::client::call_with_retries(
                call, &upstream, spec, message, send,
            ));
            Box::pin(context.shared.share(spec.method, request, made)).await
        }
        None => crate::client::call_with_retries(call, &upstream, spec, message, send).await,
    };
    result.map_err(|status| step_failed(spec.step, spec.method, status))
}

/// Whether the call's timeout expired: tonic's client ended it itself (a `TimeoutExpired`
/// source), or the downstream is a tonic server, which answers an expired `grpc-timeout` with
/// `CANCELLED` and exactly the message "Timeout expired" where gRPC says `DEADLINE_EXCEEDED`.
fn expired_locally(status: &Status) -> bool {
    if status.code() != Code::Cancelled {
        return false;
    }
    if status.message() == "Timeout expired" {
        return true;
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
    use std::time::Duration;

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

        let tonic_server = step_failed("p", GET_PRODUCT, Status::cancelled("Timeout expired"));
        assert_eq!(
            tonic_server.code(),
            Code::DeadlineExceeded,
            "a tonic downstream's expired deadline"
        );
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

    #[tokio::test(start_paused = true)]
    async fn call_downstream_names_the_step_in_every_failure() {
        use crate::compose::{CallSpec, Downstreams, MethodDefaults};
        let downstreams = Downstreams::from_upstreams(&[crate::config::UpstreamConfig {
            name: "catalog".into(),
            endpoints: vec!["http://127.0.0.1:1".parse().unwrap()],
            services: vec!["demo.catalog.v1.CatalogService".into()],
            connect_timeout: Duration::from_millis(100),
            policy: crate::resilience::UpstreamPolicy::default(),
            tls: None,
        }]);
        let service = "demo.catalog.v1.CatalogService";
        let spec = CallSpec {
            step: "p",
            method: GET_PRODUCT,
            timeout: None,
            defaults: MethodDefaults::default(),
            retry: None,
            shareable: false,
        };
        let call = crate::compose::EdgeCall::with_budget("e.Edge/Get", Duration::from_millis(100));
        let failed = call_downstream(&call, &downstreams, service, &spec, (), |_, _| async {
            Err::<tonic::Response<()>, _>(Status::not_found("product 501 not found"))
        })
        .await
        .unwrap_err();
        assert_eq!(failed.code(), Code::NotFound);
        assert_eq!(
            failed.message(),
            "step `p` (demo.catalog.v1.CatalogService/GetProduct) failed: product 501 not found"
        );

        let answered = call_downstream(
            &call,
            &downstreams,
            service,
            &spec,
            7,
            |_, request| async move {
                // The request carries the deadline slice.
                assert!(request.metadata().get("grpc-timeout").is_some());
                Ok(tonic::Response::new(*request.get_ref() * 2))
            },
        )
        .await
        .unwrap();
        assert_eq!(answered, 14);

        tokio::time::advance(Duration::from_millis(150)).await;
        let late = call_downstream(&call, &downstreams, service, &spec, (), |_, _| async {
            Ok(tonic::Response::new(()))
        })
        .await
        .unwrap_err();
        assert_eq!(late.code(), Code::DeadlineExceeded);
        assert!(
            late.message()
                .starts_with("step `p` (demo.catalog.v1.CatalogService/GetProduct) failed"),
            "{}",
            late.message()
        );
    }
}
