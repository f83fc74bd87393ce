//! What the edge records of each gRPC call: its duration by method and status, the gateway's
//! own share of it, the calls in progress, and the size of every response message; the request
//! side is metered by `MeteredBody` as the request streams in.
//!
//! The record rides in the response body ([`EdgeBody`]), because a call ends when its last
//! frame is sent, not when the handler returns: the status is read from a trailers-only head
//! or from the trailers as they pass, and a body dropped before its end (the caller reset the
//! stream, or went away) is a `CANCELLED` call.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tonic::Code;

use super::access_log::{AccessLog, Ending, Entry};
use super::body::GatewayBody;
use crate::grpc::status;
use crate::telemetry::metrics::{ByStatus, MessageSizes, ServerMethod};
use crate::telemetry::own_time::OwnTime;
use crate::telemetry::trace::OpenSpan;

/// One edge call being recorded.
#[derive(Debug)]
pub(crate) struct ServerCall {
    method: Arc<ServerMethod>,
    /// The client side of a pass-through call, recorded with the same status and duration.
    upstream: Option<Arc<ByStatus>>,
    /// The caller's per-consumer series, once admitted as a consumer.
    consumer: Option<Arc<ByStatus>>,
    own: Arc<OwnTime>,
    started: Instant,
    code: Option<Code>,
    ended: bool,
    sizes: MessageSizes,
    /// The access-log line, when the log is on.
    log: Option<Box<Logged>>,
    /// The server span, when the call is traced.
    span: Option<OpenSpan>,
}

/// What the access log needs of a call beyond its metrics.
#[derive(Debug)]
struct Logged {
    log: Arc<AccessLog>,
    entry: Entry,
    request_bytes: Arc<AtomicU64>,
    response_bytes: u64,
}

impl ServerCall {
    /// Starts recording a call to `method`.
    pub(crate) fn start(method: Arc<ServerMethod>) -> Self {
        method.active.inc();
        Self {
            method,
            upstream: None,
            consumer: None,
            own: OwnTime::start(),
            started: Instant::now(),
            code: None,
            ended: false,
            sizes: MessageSizes::default(),
            log: None,
            span: None,
        }
    }

    /// Ends `span` with the call.
    pub(crate) fn traced(&mut self, span: Option<OpenSpan>) {
        self.span = span;
    }

    /// Writes the call's line to `log` when it ends; returns the counter the request body
    /// adds its bytes to.
    pub(crate) fn log_to(&mut self, log: Arc<AccessLog>, entry: Entry) -> Arc<AtomicU64> {
        let request_bytes = Arc::new(AtomicU64::new(0));
        self.log = Some(Box::new(Logged {
            log,
            entry,
            request_bytes: Arc::clone(&request_bytes),
            response_bytes: 0,
        }));
        request_bytes
    }

    /// Records the call on the client side too, as a call to the upstream it was passed to.
    pub(crate) fn passed_to(&mut self, upstream: Option<Arc<ByStatus>>) {
        self.upstream = upstream;
    }

    /// Records the call as one by `consumer` (on `plan`) too, into `series`.
    pub(crate) fn admitted_as(
        &mut self,
        consumer: &Arc<str>,
        plan: Option<&Arc<str>>,
        series: Option<Arc<ByStatus>>,
    ) {
        self.consumer = series;
        if let Some(logged) = &mut self.log {
            logged.entry.consumer = Some((Arc::clone(consumer), plan.cloned()));
        }
    }

    /// The edge call's waiting on downstreams, for the task that serves it.
    pub(crate) fn own_time(&self) -> Arc<OwnTime> {
        Arc::clone(&self.own)
    }

    fn read_status(&mut self, headers: &HeaderMap) {
        if let Some(code) = status::code_of(headers) {
            self.code = Some(code);
        }
    }
}

impl Drop for ServerCall {
    fn drop(&mut self) {
        self.method.active.dec();
        let code = self.code.unwrap_or(if self.ended {
            Code::Unknown
        } else {
            Code::Cancelled
        });
        let elapsed = self.started.elapsed();
        self.method.calls.observe(code as i32, elapsed);
        self.method.own.observe_duration(self.own.own());
        if let Some(upstream) = &self.upstream {
            upstream.observe(code as i32, elapsed);
        }
        if let Some(consumer) = &self.consumer {
            consumer.observe(code as i32, elapsed);
        }
        if let Some(span) = self.span.take() {
            span.finish(code, None);
        }
        if let Some(logged) = &self.log {
            logged.log.write(
                &logged.entry,
                &Ending {
                    code,
                    duration: elapsed,
                    attempts: self.own.attempts(),
                    request_bytes: logged.request_bytes.load(Ordering::Relaxed),
                    response_bytes: logged.response_bytes,
                },
            );
        }
    }
}

pin_project! {
    /// The body of every response on the edge listener: the gateway's body, and for gRPC calls
    /// the record that ends with it.
    #[derive(Default)]
    pub struct EdgeBody {
        #[pin]
        inner: GatewayBody,
        call: Option<ServerCall>,
    }
}

impl EdgeBody {
    /// A body that records nothing (answers that are not gRPC calls).
    pub(crate) fn plain(inner: GatewayBody) -> Self {
        Self { inner, call: None }
    }

    /// A gRPC response whose call is recorded by `call`; a status in the head (a trailers-only
    /// answer) is read at once.
    pub(crate) fn recorded(head: &HeaderMap, inner: GatewayBody, mut call: ServerCall) -> Self {
        call.read_status(head);
        if let Some(logged) = call.log.as_mut() {
            (logged.entry.upstream, logged.entry.endpoint) = inner.upstream_and_endpoint();
        }
        Self {
            inner,
            call: Some(call),
        }
    }
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(call) = this.call.as_mut() {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        if let Some(logged) = call.log.as_mut() {
                            logged.response_bytes += data.len() as u64;
                        }
                        let histogram = &call.method.response_size;
                        call.sizes.feed(data, |size| histogram.observe(size));
                    } else if let Some(trailers) = frame.trailers_ref() {
                        call.read_status(trailers);
                        call.ended = true;
                    }
                }
                Some(Err(status)) => call.code = Some(status.code()),
                None => call.ended = true,
            }
            if call.ended || matches!(frame, Some(Err(_))) {
                // The call is over: record it now rather than when hyper drops the body.
                this.call.take();
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
