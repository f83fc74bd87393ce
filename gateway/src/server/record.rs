//! What the edge records of each gRPC call: its duration by method and status, the calls in
//! progress, and the size of every response message; the request side is metered by
//! `MeteredBody` as the request streams in.
//!
//! The record rides in the response body ([`EdgeBody`]), because a call ends when its last
//! frame is sent, not when the handler returns: the status is read from a trailers-only head
//! or from the trailers as they pass, and a body dropped before its end (the caller reset the
//! stream, or went away) is a `CANCELLED` call.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tonic::Code;

use super::body::GatewayBody;
use crate::grpc::headers::GRPC_STATUS;
use crate::telemetry::metrics::{ByStatus, MessageSizes, ServerMethod};

/// One edge call being recorded.
#[derive(Debug)]
pub(crate) struct ServerCall {
    method: Arc<ServerMethod>,
    /// The client side of a pass-through call, recorded with the same status and duration.
    upstream: Option<Arc<ByStatus>>,
    started: Instant,
    code: Option<Code>,
    ended: bool,
    sizes: MessageSizes,
}

impl ServerCall {
    /// Starts recording a call to `method`.
    pub(crate) fn start(method: Arc<ServerMethod>) -> Self {
        method.active.inc();
        Self {
            method,
            upstream: None,
            started: Instant::now(),
            code: None,
            ended: false,
            sizes: MessageSizes::default(),
        }
    }

    /// Records the call on the client side too, as a call to the upstream it was passed to.
    pub(crate) fn passed_to(&mut self, upstream: Option<Arc<ByStatus>>) {
        self.upstream = upstream;
    }

    fn read_status(&mut self, headers: &HeaderMap) {
        if let Some(value) = headers.get(GRPC_STATUS) {
            let code = value
                .to_str()
                .ok()
                .and_then(|text| text.parse::<i32>().ok())
                .map_or(Code::Unknown, Code::from_i32);
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
        let seconds = self.started.elapsed().as_secs_f64();
        self.method.calls.observe(code as i32, seconds);
        if let Some(upstream) = &self.upstream {
            upstream.observe(code as i32, seconds);
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
                        let histogram = &call.method.response_size;
                        call.sizes.feed(data, |size| histogram.observe(size as f64));
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
