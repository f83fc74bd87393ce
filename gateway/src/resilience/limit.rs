//! The concurrency limit: at most `max` calls in flight to an upstream; the rest are shed.
//!
//! A limit that queues excess calls only moves the overload into the gateway's memory and
//! every queued call's latency; one that sheds answers the excess at once with
//! `RESOURCE_EXHAUSTED` naming the upstream and the limit, so callers back off or go elsewhere
//! while the admitted calls keep their latency. There is deliberately no queue here: the only
//! wait in the stack is the balancer's bounded wait for a ready endpoint.
//!
//! tower's `ConcurrencyLimit` + `LoadShed` pair would shed too, but it reserves the permit in
//! `poll_ready`, and a not-ready balancer inside would then be reported as "overloaded" as well;
//! taking the permit in `call` keeps the two causes (and their status codes) apart.
//!
//! The permit is held until the response head arrives: for unary calls that is the whole
//! downstream's work; a long response stream does not hold a slot while it is being read.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::grpc::status::LocalError;
use crate::telemetry::trace::Scope;
use opentelemetry::KeyValue;

/// Applies [`ConcurrencyLimit`] to a service; clones share one set of permits.
#[derive(Clone, Debug)]
pub(crate) struct ConcurrencyLimitLayer {
    permits: Arc<Semaphore>,
    max: usize,
    upstream: Arc<str>,
    shed: Arc<AtomicU64>,
}

/// Sheds calls beyond the limit (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct ConcurrencyLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
    max: usize,
    upstream: Arc<str>,
    shed: Arc<AtomicU64>,
}

pin_project! {
    /// The response future of [`ConcurrencyLimit`].
    #[project = ResponseFutureProj]
    pub enum ResponseFuture<F> {
        /// Admitted: the permit is released when the inner future completes or is dropped.
        Admitted {
            #[pin]
            inner: F,
            permit: Option<OwnedSemaphorePermit>,
        },
        /// Shed.
        Shed { error: Option<LocalError> },
    }
}

// === impl ConcurrencyLimitLayer ===

impl ConcurrencyLimitLayer {
    /// At most `max` calls in flight (at least one) to `upstream` (named in errors).
    pub(crate) fn new(max: usize, upstream: Arc<str>) -> Self {
        let max = max.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            upstream,
            shed: Arc::default(),
        }
    }

    /// Calls currently admitted.
    pub(crate) fn in_flight(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// The limit.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Calls shed so far.
    pub(crate) fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

impl<S> tower::Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit {
            inner,
            permits: Arc::clone(&self.permits),
            max: self.max,
            upstream: Arc::clone(&self.upstream),
            shed: Arc::clone(&self.shed),
        }
    }
}

// === impl ConcurrencyLimit ===

impl<S, R> tower::Service<R> for ConcurrencyLimit<S>
where
    S: tower::Service<R, Error = tower::BoxError>,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => ResponseFuture::Admitted {
                inner: self.inner.call(request),
                permit: Some(permit),
            },
            Err(_) => ResponseFuture::Shed {
                error: Some(self.overloaded()),
            },
        }
    }
}

impl<S> ConcurrencyLimit<S> {
    fn overloaded(&self) -> LocalError {
        self.shed.fetch_add(1, Ordering::Relaxed);
        Scope::event(
            "mosaic.shed",
            vec![
                KeyValue::new("mosaic.upstream", self.upstream.to_string()),
                KeyValue::new("mosaic.limit", i64::try_from(self.max).unwrap_or(i64::MAX)),
            ],
        );
        LocalError::Overloaded {
            upstream: self.upstream.to_string(),
            limit: self.max,
        }
    }
}

impl<F, T> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, tower::BoxError>>,
{
    type Output = Result<T, tower::BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProj::Admitted { inner, permit } => {
                let result = std::task::ready!(inner.poll(cx));
                permit.take();
                Poll::Ready(result)
            }
            ResponseFutureProj::Shed { error } => Poll::Ready(Err(error
                .take()
                .map_or_else(|| "polled after completion".into(), Into::into))),
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::{Layer, Service, ServiceExt};
    use tower_test::mock;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sheds_beyond_the_limit_at_once_and_admits_again_when_a_call_ends() {
        let (service, mut handle) = mock::pair::<&'static str, &'static str>();
        let layer = ConcurrencyLimitLayer::new(2, "catalog".into());
        let mut service = layer.layer(service.map_err(Into::into));
        handle.allow(10);

        let first = service.ready().await.expect("ready").call("a");
        let second = service.ready().await.expect("ready").call("b");
        assert_eq!(layer.in_flight(), 2);

        let shed = service.ready().await.expect("ready").call("c");
        let error = shed.await.expect_err("shed");
        let local = error.downcast_ref::<LocalError>().expect("a LocalError");
        assert_eq!(local.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            local.to_string(),
            "upstream `catalog` is at its limit of 2 concurrent calls; call shed"
        );

        let (_, respond) = handle.next_request().await.expect("a");
        respond.send_response("A");
        assert_eq!(first.await.expect("answered"), "A");
        assert_eq!(layer.in_flight(), 1, "released with the answer");

        let third = service.ready().await.expect("ready").call("d");
        let (_, respond) = handle.next_request().await.expect("b");
        respond.send_response("B");
        let (_, respond) = handle.next_request().await.expect("d");
        respond.send_response("D");
        assert_eq!(second.await.expect("answered"), "B");
        assert_eq!(third.await.expect("answered"), "D");
        assert_eq!(layer.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_call_frees_its_slot() {
        let (service, mut handle) = mock::pair::<&'static str, &'static str>();
        let layer = ConcurrencyLimitLayer::new(1, "catalog".into());
        let mut service = layer.layer(service.map_err(Into::into));
        handle.allow(2);
        let call = service.ready().await.expect("ready").call("a");
        assert_eq!(layer.in_flight(), 1);
        drop(call);
        assert_eq!(layer.in_flight(), 0);
    }
}
