//! The response body of every call the gateway answers.
//!
//! One enum instead of a boxed trait object: pass-through responses stream the upstream's
//! `hyper::body::Incoming` frames (through the balancer's outcome-reporting wrapper) as they are (no copy, no allocation per call), local gRPC
//! services keep tonic's body, and synthetic replies are empty.
//!
//! A pass-through body also guards the gRPC contract when the upstream fails mid-stream: rather
//! than resetting the caller's stream (which clients report as an opaque protocol error), it ends
//! the response with `grpc-status: UNAVAILABLE` trailers naming the upstream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::grpc::status::{self, LocalError};
use crate::resilience::balance::ResponseBody;
use crate::transcode::HttpBody;

pin_project! {
    /// The body of a response sent by the gateway.
    #[project = GatewayBodyProj]
    #[derive(Default)]
    pub enum GatewayBody {
        /// No data: trailers-only gRPC replies and plain HTTP errors.
        #[default]
        Empty,
        /// A short plain-text answer to a request that is not gRPC.
        Text { data: Option<Bytes> },
        /// Produced by a service hosted in the gateway (health, reflection, generated handlers).
        Local { #[pin] body: tonic::body::Body },
        /// A transcoded answer to an HTTP/JSON request.
        Http { #[pin] body: HttpBody },
        /// Streamed from an upstream unchanged.
        Upstream {
            #[pin]
            body: ResponseBody,
            upstream: Arc<str>,
            finished: bool,
            log: Option<Box<CallLog>>,
        },
    }
}

/// What the per-call debug line needs; only allocated when debug logging is on.
#[derive(Debug)]
pub(crate) struct CallLog {
    pub(crate) path: String,
    pub(crate) started: Instant,
}

// === impl GatewayBody ===

impl GatewayBody {
    pub(crate) fn text(data: Bytes) -> Self {
        Self::Text { data: Some(data) }
    }

    pub(crate) fn upstream(
        body: ResponseBody,
        upstream: Arc<str>,
        log: Option<Box<CallLog>>,
    ) -> Self {
        Self::Upstream {
            body,
            upstream,
            finished: false,
            log,
        }
    }
}

impl GatewayBody {
    /// For a pass-through answer: the upstream, and the endpoint (`http://host:port`) it came
    /// from.
    pub(crate) fn upstream_and_endpoint(&self) -> (Option<Arc<str>>, Option<String>) {
        match self {
            Self::Upstream { body, upstream, .. } => (Some(Arc::clone(upstream)), body.endpoint()),
            _ => (None, None),
        }
    }
}

impl From<tonic::body::Body> for GatewayBody {
    fn from(body: tonic::body::Body) -> Self {
        Self::Local { body }
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            GatewayBodyProj::Empty => Poll::Ready(None),
            GatewayBodyProj::Text { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            GatewayBodyProj::Local { body } => body.poll_frame(cx),
            GatewayBodyProj::Http { body } => body.poll_frame(cx),
            GatewayBodyProj::Upstream {
                mut body,
                upstream,
                finished,
                log,
            } => {
                if *finished {
                    return Poll::Ready(None);
                }
                match ready!(body.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let (Some(trailers), Some(log)) = (frame.trailers_ref(), log.take()) {
                            log_call_end(&log, upstream, Some(trailers));
                        }
                        Poll::Ready(Some(Ok(frame)))
                    }
                    None => {
                        *finished = true;
                        if let Some(log) = log.take() {
                            log_call_end(&log, upstream, None);
                        }
                        Poll::Ready(None)
                    }
                    Some(Err(err)) => {
                        *finished = true;
                        let error = LocalError::StreamBroken {
                            upstream: upstream.to_string(),
                            endpoint: body.endpoint(),
                            source: err.into(),
                        };
                        let trailers = status::trailers(&error.to_status());
                        if let Some(log) = log.take() {
                            log_call_end(&log, upstream, Some(&trailers));
                        }
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Text { data } => data.is_none(),
            Self::Local { body } => body.is_end_stream(),
            Self::Http { body } => body.is_end_stream(),
            Self::Upstream { body, finished, .. } => *finished || body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Text { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Self::Local { body } => body.size_hint(),
            Self::Http { body } => body.size_hint(),
            Self::Upstream { body, .. } => body.size_hint(),
        }
    }
}

fn log_call_end(log: &CallLog, upstream: &str, trailers: Option<&HeaderMap>) {
    let grpc_status = trailers
        .and_then(|t| t.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::debug!(
        path = %log.path,
        upstream,
        grpc_status,
        elapsed_us = log.started.elapsed().as_micros() as u64,
        "pass-through call finished"
    );
}
