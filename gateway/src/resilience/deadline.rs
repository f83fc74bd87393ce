//! The deadline layer: a call's `grpc-timeout` bounds everything the gateway does for it.
//!
//! gRPC carries a call's deadline as the `grpc-timeout` request header. This layer reads it
//! once, stores the absolute [`Deadline`] in the request's extensions (the balancer reads it so
//! that waiting for a ready endpoint never outlasts the call, and rewrites the header when time
//! was spent in the gateway) and answers `DEADLINE_EXCEEDED` itself, naming the upstream, at the
//! deadline: before the response head, by failing the call; after it (a stream, or a unary
//! answer still on its way), by ending the response body with `DEADLINE_EXCEEDED` trailers.
//! Either way the upstream call is dropped, which resets its HTTP/2 stream and so cancels the
//! downstream's work.
//!
//! The gateway does not wait for the upstream's own reaction to the deadline. Every gRPC
//! server enforces `grpc-timeout`, but not the same way (tonic answers `CANCELLED "Timeout
//! expired"`), and its answer would reach the caller after the caller's deadline anyway. So the
//! gateway's answer is the one the caller gets: any frame of the upstream's that arrives at or
//! after the deadline instant is replaced by it, which also settles the race between the two
//! timers (the upstream's starts later, on receipt, but timer wheels round to whole
//! milliseconds).
//!
//! A request that already carries a [`Deadline`] keeps it: a pass-through call retried after a
//! reset goes through the stack again and must not get a fresh budget. The header itself is
//! forwarded: for a pass-through call it is at most microseconds stale (the balancer rewrites it
//! when a millisecond or more was spent), and typed calls write a fresh one for every attempt
//! (`EdgeCall::downstream_request`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::grpc::Deadline;

use crate::grpc::status::LocalError;

/// Request extension naming the edge call a downstream call is made for: the calls of one
/// composed edge call share its deadline, so when they run out of time together the endpoint's
/// breaker counts one failure, not one per call (see `balance.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct EdgeCallId(pub(crate) u64);

/// The rest of a call's deadline, handed to its response once the head has arrived in time.
#[derive(Debug)]
pub(crate) struct BodyDeadline {
    /// Fires at the deadline; boxed so it moves from the response future into the body and the
    /// call registers one timer, not two.
    pub(crate) sleep: Pin<Box<Sleep>>,
    /// The deadline and the timeout it came from.
    pub(crate) deadline: Deadline,
    /// The upstream, for the error message.
    pub(crate) upstream: Arc<str>,
}

impl BodyDeadline {
    /// The gateway's answer at the deadline.
    pub(crate) fn error(&self) -> LocalError {
        LocalError::UpstreamDeadline {
            upstream: self.upstream.to_string(),
            timeout: self.deadline.timeout,
        }
    }
}

/// A response that can be bounded by the rest of its call's deadline (its body ends with
/// `DEADLINE_EXCEEDED` trailers when the deadline passes first).
pub(crate) trait ExpiresAt {
    /// Bounds the response by `deadline`.
    fn expires_at(&mut self, deadline: BodyDeadline);
}

/// Applies [`DeadlineService`] to a service.
#[derive(Clone, Debug)]
pub(crate) struct DeadlineLayer {
    upstream: Arc<str>,
}

/// Enforces each request's `grpc-timeout` on the inner service (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct DeadlineService<S> {
    inner: S,
    upstream: Arc<str>,
}

pin_project! {
    /// The response future of [`DeadlineService`].
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        inner: F,
        deadline: Option<(Deadline, Pin<Box<Sleep>>)>,
        upstream: Arc<str>,
    }
}

// === impl DeadlineLayer ===

impl DeadlineLayer {
    /// Deadlines for calls to `upstream` (named in errors).
    pub(crate) fn new(upstream: Arc<str>) -> Self {
        Self { upstream }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            upstream: Arc::clone(&self.upstream),
        }
    }
}

// === impl DeadlineService ===

impl<S, B> tower::Service<Request<B>> for DeadlineService<S>
where
    S: tower::Service<Request<B>, Error = tower::BoxError>,
    S::Response: ExpiresAt,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let deadline = match request.extensions().get::<Deadline>() {
            Some(deadline) => Some(*deadline),
            None => {
                let deadline = Deadline::from_headers(request.headers());
                if let Some(deadline) = deadline {
                    request.extensions_mut().insert(deadline);
                }
                deadline
            }
        };
        ResponseFuture {
            inner: self.inner.call(request),
            deadline: deadline
                .map(|deadline| (deadline, Box::pin(tokio::time::sleep_until(deadline.at)))),
            upstream: Arc::clone(&self.upstream),
        }
    }
}

impl<F, T> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, tower::BoxError>>,
    T: ExpiresAt,
{
    type Output = Result<T, tower::BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let expired = |deadline: &Deadline, upstream: &Arc<str>| {
            Poll::Ready(Err(LocalError::UpstreamDeadline {
                upstream: upstream.to_string(),
                timeout: deadline.timeout,
            }
            .into()))
        };
        if let Poll::Ready(result) = this.inner.poll(cx) {
            let Some((deadline, sleep)) = this.deadline.take() else {
                return Poll::Ready(result);
            };
            // An answer at or past the deadline is not relayed (see the module docs).
            if Instant::now() >= deadline.at {
                return expired(&deadline, this.upstream);
            }
            return Poll::Ready(result.map(|mut response| {
                response.expires_at(BodyDeadline {
                    sleep,
                    deadline,
                    upstream: Arc::clone(this.upstream),
                });
                response
            }));
        }
        if let Some((deadline, sleep)) = this.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            return expired(deadline, this.upstream);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower::{Layer, Service, ServiceExt};
    use tower_test::mock;

    use super::*;

    impl ExpiresAt for &'static str {
        fn expires_at(&mut self, _deadline: BodyDeadline) {}
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_without_an_answer_in_time_fails_naming_the_upstream() {
        let (service, mut handle) = mock::pair::<Request<()>, &'static str>();
        let service = DeadlineLayer::new("users".into()).layer(service.map_err(Into::into));
        let request = Request::builder()
            .header("grpc-timeout", "50m")
            .body(())
            .expect("request");
        let start = Instant::now();
        let call = tokio::spawn(service.oneshot(request));
        let (request, _respond) = handle.next_request().await.expect("forwarded");
        let deadline = request
            .extensions()
            .get::<Deadline>()
            .expect("deadline set");
        assert_eq!(deadline.at, start + Duration::from_millis(50));

        let error = call.await.expect("task").expect_err("timed out");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(50),
            "at the deadline, no grace"
        );
        let local = error.downcast_ref::<LocalError>().expect("a LocalError");
        assert_eq!(local.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(
            local.to_string(),
            "upstream `users` did not answer within the call's deadline of 50ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_at_the_deadline_is_replaced_by_the_gateways() {
        let (service, mut handle) = mock::pair::<Request<()>, &'static str>();
        let service = DeadlineLayer::new("users".into()).layer(service.map_err(Into::into));
        let request = Request::builder()
            .header("grpc-timeout", "50m")
            .body(())
            .expect("request");
        let call = service.oneshot(request);
        tokio::pin!(call);
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx).is_pending()));
        assert!(first.await, "waiting for the upstream");
        let (_, respond) = handle.next_request().await.expect("forwarded");
        // The upstream's own timer fired first (tonic's "Timeout expired"), racing ours.
        tokio::time::advance(Duration::from_millis(50)).await;
        respond.send_response("CANCELLED: Timeout expired");
        let error = call.await.expect_err("the gateway's answer");
        let local = error.downcast_ref::<LocalError>().expect("a LocalError");
        assert_eq!(local.code(), tonic::Code::DeadlineExceeded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retried_request_keeps_its_first_deadline() {
        let (service, mut handle) = mock::pair::<Request<()>, &'static str>();
        let service = DeadlineLayer::new("users".into()).layer(service.map_err(Into::into));
        let first = Deadline {
            at: Instant::now() + Duration::from_millis(20),
            timeout: Duration::from_millis(50),
        };
        let mut request = Request::builder()
            .header("grpc-timeout", "50m")
            .body(())
            .expect("request");
        request.extensions_mut().insert(first);
        let start = Instant::now();
        let call = tokio::spawn(service.oneshot(request));
        let (request, _respond) = handle.next_request().await.expect("forwarded");
        assert_eq!(request.extensions().get::<Deadline>(), Some(&first));
        call.await.expect("task").expect_err("timed out");
        assert_eq!(start.elapsed(), Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_time_passes_and_no_header_means_no_deadline() {
        let (service, mut handle) = mock::pair::<Request<()>, &'static str>();
        let mut service = DeadlineLayer::new("users".into()).layer(service.map_err(Into::into));
        handle.allow(2);
        let timed = Request::builder()
            .header("grpc-timeout", "1S")
            .body(())
            .expect("request");
        let call = service.ready().await.expect("ready").call(timed);
        let (_, respond) = handle.next_request().await.expect("forwarded");
        tokio::time::advance(Duration::from_millis(999)).await;
        respond.send_response("ok");
        assert_eq!(call.await.expect("answered"), "ok");

        let call = service.ready().await.expect("ready").call(Request::new(()));
        let (request, respond) = handle.next_request().await.expect("forwarded");
        assert!(request.extensions().get::<Deadline>().is_none());
        tokio::time::advance(Duration::from_secs(3600)).await;
        respond.send_response("late but fine");
        assert_eq!(call.await.expect("answered"), "late but fine");
    }
}
