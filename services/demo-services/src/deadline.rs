//! The caller's deadline, enforced the way a gRPC server should: at the `grpc-timeout`, the call
//! ends with DEADLINE_EXCEEDED and its handler is dropped.
//!
//! tonic's server enforces `grpc-timeout` too, but answers CANCELLED "Timeout expired", and only
//! until the response headers are out. A gateway calling the demo services must see what a real
//! downstream sends when time runs out, or its deadline handling is tested against the wrong
//! code; and a streaming call must end at its deadline too, not run on past it.
//!
//! # Why tonic's timer can never answer first
//!
//! tonic wraps every server in its own timeout middleware, outside any layer we can add, so the
//! header cannot be hidden from it. [`DeadlineLayer`] is therefore added with
//! `tonic::transport::Server::layer`, which places it directly inside that middleware, and two
//! properties of the middleware (tonic 0.14, `transport/service/grpc_timeout.rs`) make ours win:
//!
//! 1. its `call` calls the inner service, ours, *before* it creates its own sleep, and ours
//!    reads the clock first thing, so our deadline is never later than tonic's;
//! 2. its future polls the inner future *before* its sleep, so whenever its sleep has fired, our
//!    future is polled first. It compares the clock with the deadline rather than waiting for
//!    its own timer to fire, so it answers then, whatever order the runtime fires timers in.
//!
//! The unit test `tonic_ordering_cannot_win_the_race` replays that ordering with both timers
//! due at the same instant.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic::{Code, Status};
use tower::{Layer, Service};

/// Parses a `grpc-timeout` value (1 to 8 digits and a unit), as the gRPC HTTP/2 spec defines
/// it. Anything else means "no deadline", as in tonic.
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The call's `grpc-timeout`, if it carries a well-formed one.
pub(crate) fn grpc_timeout<B>(request: &http::Request<B>) -> Option<Duration> {
    request
        .headers()
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// Wraps a server's routes in [`Deadline`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

/// Ends each call that carries a `grpc-timeout` with DEADLINE_EXCEEDED when it expires, before
/// the response headers (a trailers-only answer) or after them (trailers ending the stream).
#[derive(Clone, Debug)]
pub(crate) struct Deadline<S> {
    inner: S,
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for Deadline<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // First thing, before tonic's timer exists: see the module docs.
        let received = Instant::now();
        let expiry = grpc_timeout(&request).and_then(|timeout| {
            Some(Expiry::new(
                timeout,
                received.checked_add(timeout)?,
                request.uri().path(),
            ))
        });
        let response = self.inner.call(request);
        let Some(mut expiry) = expiry else {
            return Box::pin(response);
        };
        Box::pin(async move {
            let mut response = std::pin::pin!(response);
            // The deadline is checked before the handler on every poll, so a handler that
            // happens to finish at the same wake-up still loses: the caller has given up.
            let answered = std::future::poll_fn(|cx| {
                if expiry.poll_expired(cx).is_ready() {
                    return Poll::Ready(None);
                }
                response.as_mut().poll(cx).map(Some)
            })
            .await;
            match answered {
                Some(response) => {
                    Ok(response?.map(|body| Body::new(DeadlineBody::new(body, expiry))))
                }
                // The handler's future is dropped with this block, before the answer leaves.
                None => Ok(expiry.status().into_http()),
            }
        })
    }
}

/// One call's deadline: when it is, and what to say when it passes.
struct Expiry {
    timeout: Duration,
    deadline: Instant,
    method: String,
    /// Started on the first poll, so that `call` needs no timer and no runtime.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Expiry {
    fn new(timeout: Duration, deadline: Instant, path: &str) -> Self {
        Expiry {
            timeout,
            deadline,
            method: path.trim_start_matches('/').to_owned(),
            sleep: None,
        }
    }

    /// Ready once the deadline has passed. The clock decides, not only the timer: the timer
    /// wakes the task, but another timer due at the same instant may wake it first.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        self.sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)))
            .as_mut()
            .poll(cx)
    }

    fn status(&self) -> Status {
        tracing::debug!(method = %self.method, timeout = ?self.timeout, "deadline exceeded");
        Status::deadline_exceeded(format!(
            "deadline of {:?} exceeded while serving {}",
            self.timeout, self.method
        ))
    }
}

/// A response body that ends with DEADLINE_EXCEEDED trailers if the deadline passes before it
/// is complete, dropping the rest (a streaming handler's stream) there and then.
struct DeadlineBody {
    inner: Body,
    /// `None` once the body has ended, by itself or at the deadline.
    expiry: Option<Expiry>,
}

impl DeadlineBody {
    fn new(inner: Body, expiry: Expiry) -> Self {
        DeadlineBody {
            inner,
            expiry: Some(expiry),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Some(expiry) = this.expiry.as_mut()
            && expiry.poll_expired(cx).is_ready()
        {
            let status = expiry.status();
            this.expiry = None;
            this.inner = Body::empty();
            return Poll::Ready(Some(Ok(Frame::trailers(trailers_of(&status)))));
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        let ended = match &frame {
            None | Some(Err(_)) => true,
            Some(Ok(frame)) => frame.is_trailers(),
        };
        if ended {
            this.expiry = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Only the upper bound still holds: the deadline may cut the body short, and an exact
        // hint would let the transport promise a length that is then not sent.
        let mut hint = SizeHint::new();
        if let Some(upper) = self.inner.size_hint().upper() {
            hint.set_upper(upper);
        }
        hint
    }
}

/// `grpc-status` and `grpc-message` (percent-encoded) for `status`, as trailers.
fn trailers_of(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    if status.add_header(&mut trailers).is_err() {
        // Only details that cannot be encoded fail, and this status has none; the code
        // alone still tells the caller what happened.
        trailers.clear();
        let code = HeaderValue::from(Code::DeadlineExceeded as i32);
        trailers.insert(HeaderName::from_static("grpc-status"), code);
    }
    trailers
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tower::ServiceExt as _;

    use super::*;

    /// Sets its flag when dropped: stands for a handler's work.
    struct Work(Arc<AtomicBool>);

    impl Drop for Work {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A body that never yields a frame until dropped.
    struct EndlessBody {
        _work: Work,
    }

    impl http_body::Body for EndlessBody {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Pending
        }
    }

    fn request(timeout: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::builder().uri("/demo.users.v1.UserService/GetUser");
        if let Some(timeout) = timeout {
            builder = builder.header("grpc-timeout", timeout);
        }
        builder.body(()).expect("valid request")
    }

    type Backend =
        tower::util::BoxCloneService<http::Request<()>, http::Response<Body>, Infallible>;

    /// A handler that never answers; `dropped` turns true when its future is dropped.
    fn hanging(dropped: Arc<AtomicBool>) -> Backend {
        tower::util::BoxCloneService::new(tower::service_fn(move |_request| {
            let work = Work(Arc::clone(&dropped));
            async move {
                let _work = work;
                std::future::pending::<Result<http::Response<Body>, Infallible>>().await
            }
        }))
    }

    /// A handler that answers headers at once, then streams forever.
    fn streaming(dropped: Arc<AtomicBool>) -> Backend {
        tower::util::BoxCloneService::new(tower::service_fn(move |_request| {
            let body = Body::new(EndlessBody {
                _work: Work(Arc::clone(&dropped)),
            });
            async move { Ok(http::Response::new(body)) }
        }))
    }

    fn status_in(headers: &HeaderMap) -> Status {
        Status::from_header_map(headers).expect("grpc-status present")
    }

    #[test]
    fn grpc_timeout_values_parse_as_the_spec_says() {
        let ok = [
            ("50m", Duration::from_millis(50)),
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("250u", Duration::from_micros(250)),
            ("99999999n", Duration::from_nanos(99_999_999)),
        ];
        for (text, expected) in ok {
            assert_eq!(parse_grpc_timeout(text), Some(expected), "{text:?}");
        }
        for bad in ["", "m", "50", "50ms", "123456789m", "-5m", "5x", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tonic_ordering_cannot_win_the_race() {
        let dropped = Arc::new(AtomicBool::new(false));
        let mut service = DeadlineLayer.layer(hanging(Arc::clone(&dropped)));
        let started = Instant::now();
        // What tonic's server timeout does: call the inner service, then start a timer for the
        // same `grpc-timeout` (here due at the very same instant, as the clock is paused); poll
        // the inner future first, the timer second, and give up when the timer has fired.
        let inner = service.call(request(Some("50m")));
        let tonic_timer = tokio::time::sleep(Duration::from_millis(50));
        let mut inner = std::pin::pin!(inner);
        let mut tonic_timer = std::pin::pin!(tonic_timer);
        let outcome = std::future::poll_fn(|cx| {
            if let Poll::Ready(response) = inner.as_mut().poll(cx) {
                return Poll::Ready(Some(response));
            }
            ready!(tonic_timer.as_mut().poll(cx));
            Poll::Ready(None)
        })
        .await;

        let response = outcome
            .expect("ours answered, not tonic's timer")
            .expect("infallible");
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        let status = status_in(response.headers());
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "deadline of 50ms exceeded while serving demo.users.v1.UserService/GetUser"
        );
        assert!(dropped.load(Ordering::SeqCst), "the handler was dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn streams_end_with_trailers_at_the_deadline() {
        use http_body::Body as _;

        let dropped = Arc::new(AtomicBool::new(false));
        let service = DeadlineLayer.layer(streaming(Arc::clone(&dropped)));
        let started = Instant::now();
        let response = service
            .oneshot(request(Some("2S")))
            .await
            .expect("infallible");
        assert!(
            response.headers().get("grpc-status").is_none(),
            "headers first"
        );
        let mut body = response.into_body();
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .expect("a frame")
            .expect("not an error");
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        let trailers = frame.into_trailers().expect("trailers");
        let status = status_in(&trailers);
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "deadline of 2s exceeded while serving demo.users.v1.UserService/GetUser"
        );
        assert!(dropped.load(Ordering::SeqCst), "the stream was dropped");
        let end = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(end.is_none(), "nothing after the trailers");
    }

    #[tokio::test(start_paused = true)]
    async fn calls_without_a_deadline_are_left_alone() {
        let dropped = Arc::new(AtomicBool::new(false));
        let service = DeadlineLayer.layer(hanging(Arc::clone(&dropped)));
        for header in [None, Some("soon")] {
            let waited = tokio::time::timeout(
                Duration::from_secs(3600),
                service.clone().oneshot(request(header)),
            )
            .await;
            assert!(waited.is_err(), "{header:?}: still waiting after an hour");
        }
    }
}
