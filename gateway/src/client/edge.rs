//! The edge call's deadline, and the slice of it each downstream call gets.
//!
//! A composed call promises its caller an answer within one deadline, so every downstream call
//! it makes must end by that deadline too: a downstream still working after the edge gave up
//! wastes its capacity on an answer nobody reads. [`EdgeCall`] fixes the deadline when the
//! handler starts and hands each downstream request the time that is left, as the standard
//! `grpc-timeout` header, so the downstream (and its own downstreams) can stop in time.
//!
//! # The edge deadline
//!
//! `deadline = start + budget`, where the budget is the shortest of:
//!
//! - the caller's `grpc-timeout` header, when present and well formed;
//! - the method's annotated `timeout` (`(mosaic.v1.method).timeout`), or, when the method has
//!   none, [`DEFAULT_EDGE_TIMEOUT`].
//!
//! The annotation *replaces* the default rather than competing with it: an API author who wrote
//! `timeout: "60s"` for a slow report meant 60 s, and a gateway-wide default should not silently
//! shorten it. A caller can always shorten the budget, never lengthen it.
//!
//! A malformed `grpc-timeout` (empty, more than 8 digits, an unknown unit, anything but ASCII
//! digits before the unit) is ignored, as if absent, and logged at debug level. Rejecting the
//! call instead would punish a caller for a header that only ever shortens its own deadline; the
//! method's own bound still applies, so ignoring it never gives a call unbounded time.
//!
//! # A downstream call's timeout
//!
//! `timeout = min(remaining − margin, the call's annotated timeout)`. The margin
//! ([`DOWNSTREAM_MARGIN`], 5 ms) leaves the gateway time to receive a downstream's
//! `DEADLINE_EXCEEDED` and answer with it (naming the step) before its own deadline fires and
//! answers with a less precise message. When less than 50 ms remain, the margin shrinks to a
//! tenth of what remains, so a positive remaining time always gives a positive timeout and a
//! nearly spent budget still goes mostly to the downstream. When nothing remains, no request is
//! built and the call fails with `DEADLINE_EXCEEDED` without reaching the network.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Status};

use crate::grpc::headers::GRPC_TIMEOUT;
use crate::grpc::status::ComposeError;
use crate::grpc::{Deadline, parse_grpc_timeout};
use crate::resilience::deadline::EdgeCallId;

/// The edge budget of a method with no `timeout` annotation.
pub const DEFAULT_EDGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Time kept back from each downstream call so the gateway can still answer in time (see the
/// module docs for how it shrinks near the deadline).
pub const DOWNSTREAM_MARGIN: Duration = Duration::from_millis(5);

/// The response metadata naming the steps an edge call's `error` handlers ignored.
pub const PARTIAL_HEADER: &str = "mosaic-partial";

/// How many downstream calls an edge call did not make because equal ones were shared
/// (`grpc/shared.rs`): an extension of its response, for the layers that record calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallsSaved(pub u64);

/// One edge call's context: which method it is and when it must be answered by.
///
/// It is `Copy`, so generated code moves it into every step without ceremony.

#[derive(Clone, Copy, Debug)]
pub struct EdgeCall {
    method: &'static str,
    deadline: Deadline,
    /// Tags every downstream request, so breakers count one expiry per edge call.
    id: EdgeCallId,
}

/// Source of edge call ids: unique within the process, which is all the breakers need.
static NEXT_EDGE_CALL: AtomicU64 = AtomicU64::new(1);

// === impl EdgeCall ===

impl EdgeCall {
    /// Starts the clock of an edge call: reads the caller's `grpc-timeout` from `request` and
    /// fixes the deadline as the module docs describe.
    ///
    /// `method` is `package.Service/Method` and names the call in deadline errors;
    /// `method_timeout` is the method's annotated timeout, if any.
    pub fn start<T>(
        request: &Request<T>,
        method: &'static str,
        method_timeout: Option<Duration>,
    ) -> EdgeCall {
        let ceiling = method_timeout.unwrap_or(DEFAULT_EDGE_TIMEOUT);
        let caller = request.metadata().get(GRPC_TIMEOUT).and_then(|value| {
            let parsed = value.to_str().ok().and_then(parse_grpc_timeout);
            if parsed.is_none() {
                tracing::debug!(method, ?value, "ignoring a malformed grpc-timeout header");
            }
            parsed
        });
        let budget = caller.map_or(ceiling, |caller| caller.min(ceiling));
        Self::with_budget(method, budget)
    }

    /// An edge call whose deadline is `budget` from now, for callers that have no request
    /// (tests, handlers started by other means). Budgets longer than a `grpc-timeout` can carry
    /// (8 digits of hours, over 11 000 years) are cut to that.
    pub fn with_budget(method: &'static str, budget: Duration) -> EdgeCall {
        EdgeCall {
            method,
            deadline: Deadline::after(budget),
            id: EdgeCallId(NEXT_EDGE_CALL.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The edge method, `package.Service/Method`.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// When the edge call must be answered by.
    pub fn deadline(&self) -> Instant {
        self.deadline.at
    }

    /// The whole time the call was given.
    pub fn budget(&self) -> Duration {
        self.deadline.timeout
    }

    /// Time left until the deadline; zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.deadline.remaining()
    }

    /// Runs the handler body under the edge deadline.
    ///
    /// When the deadline passes first, `body` is dropped, which cancels every step it owns, and
    /// the call fails with `DEADLINE_EXCEEDED` ("deadline of 800ms for
    /// demo.storefront.v1.Storefront/GetProductPage exceeded").
    pub async fn run<T, F>(&self, body: F) -> Result<T, Status>
    where
        F: Future<Output = Result<T, Status>>,
    {
        match tokio::time::timeout_at(self.deadline.at, body).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.deadline_exceeded()),
        }
    }

    /// Runs the handler body like [`run`](Self::run) and answers with its value; a response
    /// built while `error` handlers ignored failed steps says so in its metadata:
    /// `mosaic-partial` lists those steps, comma-separated, in the order they failed.
    pub async fn respond<T, F>(&self, body: F) -> Result<tonic::Response<T>, Status>
    where
        F: Future<Output = Result<T, Status>>,
    {
        let context = crate::grpc::context::current().unwrap_or_default();
        let value = crate::grpc::context::scope(Some(Arc::clone(&context)), self.run(body)).await?;
        let mut response = tonic::Response::new(value);
        let ignored = context
            .ignored
            .lock()
            .map(|i| i.join(","))
            .unwrap_or_default();
        if !ignored.is_empty()
            && let Ok(value) = ignored.parse()
        {
            response.metadata_mut().insert(PARTIAL_HEADER, value);
        }
        let saved = context.shared.saved();
        if saved > 0 {
            response.extensions_mut().insert(CallsSaved(saved));
        }
        Ok(response)
    }

    /// Builds a downstream request carrying the time left (`grpc-timeout`), cut to
    /// `call_timeout` when the step has its own timeout.
    ///
    /// Fails with `DEADLINE_EXCEEDED`, without building anything, once the deadline has passed.
    pub fn downstream_request<M>(
        &self,
        message: M,
        call_timeout: Option<Duration>,
    ) -> Result<Request<M>, Status> {
        let timeout = self.call_timeout(call_timeout)?;
        let mut request = Request::new(message);
        // tonic writes the header rounded down to its unit, so it never exceeds `timeout`, and
        // its client enforces the same timeout locally.
        request.set_timeout(timeout);
        request.extensions_mut().insert(self.id);
        Ok(request)
    }

    /// The timeout a downstream call gets now.
    fn call_timeout(&self, call_timeout: Option<Duration>) -> Result<Duration, Status> {
        let remaining = self.remaining();
        if remaining.is_zero() {
            return Err(self.deadline_exceeded());
        }
        let sliced = remaining - DOWNSTREAM_MARGIN.min(remaining / 10);
        Ok(call_timeout.map_or(sliced, |own| own.min(sliced)))
    }

    fn deadline_exceeded(&self) -> Status {
        ComposeError::DeadlineExceeded {
            method: self.method,
            budget: self.deadline.timeout,
        }
        .to_status()
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::grpc::deadline::MAX_GRPC_TIMEOUT;

    const PAGE: &str = "demo.storefront.v1.Storefront/GetProductPage";

    fn request_with_timeout(value: &str) -> Request<()> {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert(GRPC_TIMEOUT, value.parse().expect("ASCII header value"));
        request
    }

    /// The timeout a built downstream request carries, read back from its header.
    fn header_timeout<M>(request: &Request<M>) -> Duration {
        let value = request
            .metadata()
            .get(GRPC_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        parse_grpc_timeout(value).expect("a well-formed grpc-timeout")
    }

    #[tokio::test(start_paused = true)]
    async fn budget_is_the_shortest_of_caller_and_method() {
        let start = Instant::now();
        let edge = EdgeCall::start(
            &request_with_timeout("50m"),
            PAGE,
            Some(Duration::from_millis(800)),
        );
        assert_eq!(edge.deadline(), start + Duration::from_millis(50));
        assert_eq!(edge.method(), PAGE);

        let edge = EdgeCall::start(
            &request_with_timeout("2S"),
            PAGE,
            Some(Duration::from_millis(800)),
        );
        assert_eq!(
            edge.budget(),
            Duration::from_millis(800),
            "a caller cannot lengthen it"
        );

        let edge = EdgeCall::start(&Request::new(()), PAGE, Some(Duration::from_secs(60)));
        assert_eq!(
            edge.budget(),
            Duration::from_secs(60),
            "the annotation replaces the default"
        );

        let edge = EdgeCall::start(&Request::new(()), PAGE, None);
        assert_eq!(edge.budget(), DEFAULT_EDGE_TIMEOUT);

        let edge = EdgeCall::start(&request_with_timeout("90S"), PAGE, None);
        assert_eq!(
            edge.budget(),
            DEFAULT_EDGE_TIMEOUT,
            "the default bounds callers too"
        );

        let edge = EdgeCall::start(
            &request_with_timeout("99999999H"),
            PAGE,
            Some(Duration::MAX),
        );
        assert_eq!(
            edge.budget(),
            MAX_GRPC_TIMEOUT,
            "absurd budgets are cut, not overflowed"
        );
        let edge = EdgeCall::with_budget(PAGE, Duration::MAX);
        assert_eq!(edge.budget(), MAX_GRPC_TIMEOUT);
        assert!(
            edge.downstream_request((), None).is_ok(),
            "a header can carry it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn malformed_caller_timeout_is_ignored() {
        for header in ["50x", "123456789m", "abc"] {
            let edge = EdgeCall::start(
                &request_with_timeout(header),
                PAGE,
                Some(Duration::from_millis(800)),
            );
            assert_eq!(edge.budget(), Duration::from_millis(800), "{header}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn run_fails_with_deadline_exceeded_naming_method_and_deadline() {
        let start = Instant::now();
        let edge = EdgeCall::start(&Request::new(()), PAGE, Some(Duration::from_millis(800)));
        let result = edge
            .run(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await;
        let status = result.expect_err("the body outlived its deadline");
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "deadline of 800ms for demo.storefront.v1.Storefront/GetProductPage exceeded"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(800));
    }

    #[tokio::test(start_paused = true)]
    async fn run_returns_the_body_result_in_time() {
        let edge = EdgeCall::with_budget(PAGE, Duration::from_millis(50));
        let result = edge
            .run(async {
                tokio::time::sleep(Duration::from_millis(49)).await;
                Ok::<_, Status>(7)
            })
            .await;
        assert_eq!(result.ok(), Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn downstream_timeout_never_exceeds_what_remains() {
        let edge = EdgeCall::start(&request_with_timeout("50m"), PAGE, None);

        let request = edge.downstream_request("m", None).expect("time remains");
        assert_eq!(
            header_timeout(&request),
            Duration::from_millis(45),
            "50ms less the margin"
        );
        assert_eq!(request.get_ref(), &"m");

        tokio::time::advance(Duration::from_millis(30)).await;
        let request = edge.downstream_request((), None).expect("time remains");
        assert_eq!(
            header_timeout(&request),
            Duration::from_millis(18),
            "a tenth of 20ms kept"
        );
        assert!(header_timeout(&request) < edge.remaining());

        let own = Some(Duration::from_millis(10));
        let request = edge.downstream_request((), own).expect("time remains");
        assert_eq!(
            header_timeout(&request),
            Duration::from_millis(10),
            "the step's own timeout"
        );

        let long = Some(Duration::from_secs(1));
        let request = edge.downstream_request((), long).expect("time remains");
        assert_eq!(
            header_timeout(&request),
            Duration::from_millis(18),
            "never past the edge"
        );

        tokio::time::advance(Duration::from_micros(19_999)).await;
        let request = edge.downstream_request((), None).expect("time remains");
        assert_eq!(edge.remaining(), Duration::from_micros(1));
        assert_eq!(
            header_timeout(&request),
            Duration::from_nanos(900),
            "positive to the end"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_downstream_request_after_the_deadline() {
        let edge = EdgeCall::start(&request_with_timeout("50m"), PAGE, None);
        tokio::time::advance(Duration::from_millis(50)).await;
        assert_eq!(edge.remaining(), Duration::ZERO);
        let status = edge
            .downstream_request((), None)
            .expect_err("built a request after the deadline");
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "deadline of 50ms for demo.storefront.v1.Storefront/GetProductPage exceeded"
        );

        let spent = EdgeCall::start(&request_with_timeout("0n"), PAGE, None);
        assert!(
            spent.downstream_request((), None).is_err(),
            "a zero budget is spent at once"
        );
    }

    #[tokio::test]
    async fn the_response_says_how_many_calls_sharing_saved() {
        let edge = EdgeCall::with_budget(PAGE, Duration::from_secs(1));
        let response = edge
            .respond(async {
                let context = crate::grpc::context::current().expect("respond sets a context");
                let ask = |n| {
                    context
                        .shared
                        .share("d.D/Get", vec![1], async move { Ok(n) })
                };
                let (a, b, c) = tokio::join!(ask(1_u8), ask(2), ask(3));
                Ok((a?, b?, c?))
            })
            .await
            .expect("answered");
        assert_eq!(response.get_ref(), &(1, 1, 1));
        assert_eq!(
            response.extensions().get::<CallsSaved>(),
            Some(&CallsSaved(2))
        );

        let alone = edge.respond(async { Ok(()) }).await.expect("answered");
        assert!(alone.extensions().get::<CallsSaved>().is_none());
    }
}
