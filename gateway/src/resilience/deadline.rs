//! The deadline layer: a call's `grpc-timeout` bounds everything the gateway does for it.
//!
//! gRPC carries a call's deadline as the `grpc-timeout` request header. This layer reads it
//! once, stores the absolute [`Deadline`] in the request's extensions (the balancer reads it so
//! that waiting for a ready endpoint never outlasts the call) and fails the call with
//! `DEADLINE_EXCEEDED` naming the upstream if no response head arrived in time.
//!
//! For pass-through calls the layer is a backstop, so it waits [`GRACE`] past the deadline: an
//! upstream that enforces deadlines itself (every gRPC server does) answers first, and the
//! caller then gets exactly the answer a direct call would have given. Typed calls mark their
//! requests [`ExactDeadline`]: their `grpc-timeout` is already the edge's remaining time less a
//! margin, and the gateway must answer before the caller's own deadline passes. Dropping the
//! future (the caller went away) drops the upstream call, which resets its HTTP/2 stream, so a
//! cancelled edge call cancels its downstream call.
//!
//! The header itself is forwarded: for a pass-through call it is at most microseconds stale, and
//! typed calls write a fresh one for every attempt (`EdgeCall::downstream_request`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::compose::parse_grpc_timeout;
use crate::status::LocalError;

/// How long past a call's deadline the layer waits for the upstream's own answer.
pub const GRACE: Duration = Duration::from_millis(20);

/// Request extension asking for the deadline to be enforced exactly, without [`GRACE`]: typed
/// calls set it, since their `grpc-timeout` already keeps a margin before the edge deadline and
/// the gateway must answer (naming the step) before the caller's own deadline passes.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExactDeadline;

/// Request extension naming the edge call a downstream call is made for: the calls of one
/// composed edge call share its deadline, so when they run out of time together the endpoint's
/// breaker counts one failure, not one per call (see `balance.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EdgeCallId(pub u64);

/// The absolute deadline of a call, in its request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// When the call must be answered by.
    pub at: Instant,
    /// The `grpc-timeout` it was computed from (so `at - timeout` is when the call arrived).
    pub timeout: Duration,
}

/// Formats a `grpc-timeout` value (at most 8 digits and a unit), rounding down so the value
/// never promises more time than `timeout`.
pub fn grpc_timeout_value(timeout: Duration) -> http::HeaderValue {
    const MAX: u128 = 99_999_999;
    let text = if timeout.as_micros() <= MAX {
        format!("{}u", timeout.as_micros())
    } else if timeout.as_millis() <= MAX {
        format!("{}m", timeout.as_millis())
    } else if u128::from(timeout.as_secs()) <= MAX {
        format!("{}S", timeout.as_secs())
    } else {
        format!("{}H", (u128::from(timeout.as_secs()) / 3600).min(MAX))
    };
    // ASCII digits and a letter: always a valid header value.
    http::HeaderValue::try_from(text).unwrap_or(http::HeaderValue::from_static("0u"))
}

/// Applies [`DeadlineService`] to a service.
#[derive(Clone, Debug)]
pub struct DeadlineLayer {
    upstream: Arc<str>,
}

/// Enforces each request's `grpc-timeout` on the inner service (see the module docs).
#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
    upstream: Arc<str>,
}

pin_project! {
    /// The response future of [`DeadlineService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        timeout: Duration,
        upstream: Arc<str>,
    }
}

// === impl DeadlineLayer ===

impl DeadlineLayer {
    /// Deadlines for calls to `upstream` (named in errors).
    pub fn new(upstream: Arc<str>) -> Self {
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
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        let grace = if request.extensions().get::<ExactDeadline>().is_some() {
            Duration::ZERO
        } else {
            GRACE
        };
        let sleep = timeout.map(|timeout| {
            let now = Instant::now();
            let at = now.checked_add(timeout).unwrap_or(now);
            request.extensions_mut().insert(Deadline { at, timeout });
            tokio::time::sleep_until(at.checked_add(grace).unwrap_or(at))
        });
        ResponseFuture {
            inner: self.inner.call(request),
            sleep,
            timeout: timeout.unwrap_or_default(),
            upstream: Arc::clone(&self.upstream),
        }
    }
}

impl<F, T> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, tower::BoxError>>,
{
    type Output = Result<T, tower::BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(LocalError::UpstreamDeadline {
                upstream: this.upstream.to_string(),
                timeout: *this.timeout,
            }
            .into())),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::{Layer, Service, ServiceExt};
    use tower_test::mock;

    use super::*;

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
        assert_eq!(start.elapsed(), Duration::from_millis(50) + GRACE);
        let local = error.downcast_ref::<LocalError>().expect("a LocalError");
        assert_eq!(local.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(
            local.to_string(),
            "upstream `users` did not answer within the call's deadline of 50ms"
        );
    }

    #[test]
    fn grpc_timeout_values_round_down_and_fit_eight_digits() {
        let cases = [
            (Duration::from_micros(1_500), "1500u"),
            (Duration::from_nanos(1_999), "1u"),
            (Duration::from_secs(99), "99000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(200_000), "200000S"),
            (Duration::from_secs(400_000_000), "111111H"),
        ];
        for (timeout, text) in cases {
            assert_eq!(grpc_timeout_value(timeout), text, "{timeout:?}");
            let parsed = parse_grpc_timeout(text).expect("parses");
            assert!(parsed <= timeout);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn typed_calls_get_no_grace() {
        let (service, mut handle) = mock::pair::<Request<()>, &'static str>();
        let service = DeadlineLayer::new("users".into()).layer(service.map_err(Into::into));
        let mut request = Request::builder()
            .header("grpc-timeout", "50m")
            .body(())
            .expect("request");
        request.extensions_mut().insert(ExactDeadline);
        let start = Instant::now();
        let call = tokio::spawn(service.oneshot(request));
        let _pending = handle.next_request().await.expect("forwarded");
        call.await.expect("task").expect_err("timed out");
        assert_eq!(start.elapsed(), Duration::from_millis(50));
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
