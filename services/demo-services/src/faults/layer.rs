//! The tower middleware that applies a [`FaultHandle`]'s configuration to each call.
//!
//! It sits at the HTTP level, around one generated tonic server (one gRPC service's routes),
//! so it works the same for unary and streaming methods and never sees health, reflection or
//! FaultControl traffic. An injected failure is a trailers-only gRPC response built from a
//! `tonic::Status`, exactly what a real failing server sends.
//!
//! A hung call waits for the server to stop rather than forever: the caller's deadline (enforced
//! around every route by the server's deadline layer) or cancellation still ends it first, by
//! dropping this future, but a stopping server must not be held open by calls nobody will ever
//! answer.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tonic::Status;
use tonic::server::NamedService;
use tower::{Layer, Service};

use tokio::time::Instant;

use super::codes::error_code_name;
use super::config::{FaultAction, FaultPlan};
use super::handle::{CallRecord, FaultHandle, TraceParent};
use crate::deadline::grpc_timeout;

/// Wraps a service in [`FaultInjection`].
#[derive(Clone, Debug)]
pub(crate) struct FaultInjectionLayer {
    handle: FaultHandle,
    stopping: watch::Receiver<bool>,
}

impl FaultInjectionLayer {
    /// `stopping` turns `true` (or its sender is dropped) when the server shuts down; hung
    /// calls then end with UNAVAILABLE.
    pub(crate) fn new(handle: FaultHandle, stopping: watch::Receiver<bool>) -> Self {
        Self { handle, stopping }
    }
}

impl<S> Layer<S> for FaultInjectionLayer {
    type Service = FaultInjection<S>;

    fn layer(&self, inner: S) -> FaultInjection<S> {
        FaultInjection {
            inner,
            handle: self.handle.clone(),
            stopping: self.stopping.clone(),
        }
    }
}

/// Delays, fails or hangs calls to `S` according to the current fault configuration.
#[derive(Clone, Debug)]
pub(crate) struct FaultInjection<S> {
    inner: S,
    handle: FaultHandle,
    stopping: watch::Receiver<bool>,
}

/// A plan that changes nothing: the common case, served without boxing a sleep.
const UNTOUCHED: FaultPlan = FaultPlan {
    delay: std::time::Duration::ZERO,
    action: FaultAction::Proceed,
};

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for FaultInjection<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let plan = self.handle.begin_call();
        if self.handle.journal_on() {
            let journal = JournalEntry {
                handle: self.handle.clone(),
                received: Instant::now(),
                grpc_timeout: grpc_timeout(&request),
                traceparent: traceparent(&request),
                headers: request.headers().clone(),
                answered: false,
            };
            let call = self.call_planned(plan, request);
            return Box::pin(async move {
                let mut journal = journal;
                let result = call.await;
                journal.answered = true;
                result
            });
        }
        self.call_planned(plan, request)
    }
}

/// Records a call into the journal when it ends, answered or dropped.
struct JournalEntry {
    handle: FaultHandle,
    received: Instant,
    grpc_timeout: Option<std::time::Duration>,
    traceparent: Option<TraceParent>,
    headers: http::HeaderMap,
    answered: bool,
}

/// The trace and parent ids of a well-formed W3C `traceparent` (version 00).
fn traceparent<B>(request: &http::Request<B>) -> Option<TraceParent> {
    let value = request.headers().get("traceparent")?.to_str().ok()?;
    let mut parts = value.split('-');
    let (version, trace, parent) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |text: &str, out: &mut [u8]| -> Option<()> {
        (text.len() == out.len() * 2).then_some(())?;
        for (index, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        Some(())
    };
    let mut ids = TraceParent {
        trace_id: [0; 16],
        parent_id: [0; 8],
    };
    (version == "00").then_some(())?;
    hex(trace, &mut ids.trace_id)?;
    hex(parent, &mut ids.parent_id)?;
    Some(ids)
}

impl Drop for JournalEntry {
    fn drop(&mut self) {
        self.handle.record_call(CallRecord {
            received: self.received,
            grpc_timeout: self.grpc_timeout,
            traceparent: self.traceparent,
            headers: std::mem::take(&mut self.headers),
            ended: Instant::now(),
            answered: self.answered,
        });
    }
}

impl<S> FaultInjection<S> {
    fn call_planned<ReqBody, ResBody>(
        &mut self,
        plan: FaultPlan,
        request: http::Request<ReqBody>,
    ) -> BoxFuture<'static, Result<http::Response<ResBody>, S::Error>>
    where
        S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqBody: Send + 'static,
        ResBody: Default + Send + 'static,
    {
        if plan == UNTOUCHED {
            return Box::pin(self.inner.call(request));
        }
        // The service driven to readiness goes into the future; a fresh clone stays behind
        // for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let handle = self.handle.clone();
        let mut stopping = self.stopping.clone();
        let path = request.uri().path().to_owned();
        Box::pin(async move {
            if !plan.delay.is_zero() {
                tokio::time::sleep(plan.delay).await;
            }
            match plan.action {
                FaultAction::Proceed => inner.call(request).await,
                FaultAction::Fail(code) => {
                    handle.record_failed();
                    tracing::debug!(%path, code = error_code_name(code), "injecting failure");
                    let message = format!("injected fault: {}", error_code_name(code));
                    Ok(Status::new(code, message).into_http())
                }
                FaultAction::Hang => {
                    handle.record_hung();
                    tracing::debug!(%path, "injecting hang");
                    // An error here means the server is gone: stop hanging too.
                    let _ = stopping.wait_for(|&stopping| stopping).await;
                    Ok(Status::unavailable("server is shutting down").into_http())
                }
            }
        })
    }
}

impl<S: NamedService> NamedService for FaultInjection<S> {
    const NAME: &'static str = S::NAME;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use std::convert::Infallible;
    use tokio::time::Instant;
    use tonic::Code;

    use tower::ServiceExt as _;
    use tower::util::BoxCloneService;

    use super::*;
    use crate::faults::{FaultConfig, FaultStats, Latency};

    type Backend = BoxCloneService<http::Request<()>, http::Response<String>, Infallible>;

    /// A backend that answers "ok" and counts its calls.
    fn backend(calls: Arc<AtomicUsize>) -> Backend {
        BoxCloneService::new(tower::service_fn(move |_request: http::Request<()>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(http::Response::new("ok".to_owned())) }
        }))
    }

    fn injected(
        config: FaultConfig,
    ) -> (
        FaultHandle,
        watch::Sender<bool>,
        Arc<AtomicUsize>,
        FaultInjection<Backend>,
    ) {
        let handle = FaultHandle::new(config).expect("valid config");
        let (stop_tx, stop_rx) = watch::channel(false);
        let calls = Arc::new(AtomicUsize::new(0));
        let service =
            FaultInjectionLayer::new(handle.clone(), stop_rx).layer(backend(Arc::clone(&calls)));
        (handle, stop_tx, calls, service)
    }

    fn status_of(response: &http::Response<String>) -> Option<Status> {
        Status::from_header_map(response.headers())
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_exactly_then_calls_through() {
        let (handle, _stop, calls, service) = injected(FaultConfig {
            latency: Latency::Fixed(Duration::from_millis(50)),
            ..FaultConfig::default()
        });
        let start = Instant::now();
        let response = service
            .oneshot(http::Request::new(()))
            .await
            .expect("infallible");
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        assert_eq!(response.body(), "ok");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(handle.stats().calls_total, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_answer_with_the_configured_code() {
        let (handle, _stop, calls, mut service) = injected(FaultConfig {
            error_rate: 1.0,
            error_code: Code::ResourceExhausted,
            ..FaultConfig::default()
        });
        for _ in 0..3 {
            let response = service
                .ready()
                .await
                .expect("ready")
                .call(http::Request::new(()))
                .await
                .expect("infallible");
            let status = status_of(&response).expect("grpc-status header");
            assert_eq!(status.code(), Code::ResourceExhausted);
            assert_eq!(status.message(), "injected fault: resource_exhausted");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0, "backend never called");
        assert_eq!(
            handle.stats(),
            FaultStats {
                calls_total: 3,
                calls_failed_injected: 3,
                calls_hung: 0
            }
        );

        // Turning the knob off takes effect on the next call.
        handle.set(FaultConfig::default()).expect("valid");
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(http::Request::new(()))
            .await
            .expect("infallible");
        assert!(status_of(&response).is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn hung_calls_wait_until_the_client_gives_up_or_the_server_stops() {
        let (handle, stop, calls, service) = injected(FaultConfig {
            hang_rate: 1.0,
            ..FaultConfig::default()
        });
        let start = Instant::now();
        let gave_up = tokio::time::timeout(
            Duration::from_secs(30),
            service.clone().oneshot(http::Request::new(())),
        )
        .await;
        assert!(gave_up.is_err(), "a hung call never answers by itself");
        assert_eq!(start.elapsed(), Duration::from_secs(30));

        let pending = tokio::spawn(service.oneshot(http::Request::new(())));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!pending.is_finished());
        stop.send_replace(true);
        let response = pending.await.expect("task").expect("infallible");
        let status = status_of(&response).expect("grpc-status header");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(handle.stats().calls_hung, 2);
    }
}
