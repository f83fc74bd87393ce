//! One call on one endpoint: its in-flight slot, its latency sample, and its outcome for the
//! endpoint's breaker, read from the response's `grpc-status` or from how the call ended; and
//! the response body that carries the call's deadline past the response head.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Instant;
use tonic::Code;

use super::Balancer;
use crate::resilience::breaker::{Change, Outcome, Ticket};
use crate::resilience::deadline::{BodyDeadline, EdgeCallId, ExpiresAt};
use crate::resilience::endpoint::Endpoint;
use crate::telemetry::own_time::Waiting;
use crate::telemetry::trace::OpenSpan;
use opentelemetry::KeyValue;

/// Accounts for one call on one endpoint: its in-flight slot, its latency, its outcome.
#[derive(Debug)]
pub(super) struct CallGuard {
    pub(super) balancer: Arc<Balancer>,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) ticket: Ticket,
    /// The call's deadline: a call dropped at (or just before) it timed out at the endpoint.
    pub(super) deadline: Option<Instant>,
    /// The edge call this call is made for, if any: its fan-out counts one timeout at most.
    pub(super) origin: Option<EdgeCallId>,
    pub(super) finished: bool,
    /// When the request was handed to the endpoint; `None` while it has not been (an attempt
    /// never sent is not recorded).
    pub(super) sent: Option<Instant>,
    /// The attempt's gRPC status, once known: from the response, or the gateway's own reading
    /// of how it failed.
    pub(super) code: Option<Code>,
    /// Counts the attempt as time the edge call waits on a downstream, while it is out.
    pub(super) waiting: Option<Waiting>,
    /// The attempt's client span, when the call is traced.
    pub(super) span: Option<OpenSpan>,
}

/// The latency recorded for an endpoint that failed to take a call: high enough that
/// two-choice picking avoids it while the estimate decays, as Finagle's failure penalty does.
pub(super) const FAILURE_PENALTY: Duration = Duration::from_secs(1);

/// A call dropped this close to its deadline is taken to have timed out at the endpoint (the
/// typed-call timer and the deadline layer measure from slightly different instants).
const DEADLINE_SLACK: Duration = Duration::from_millis(10);

/// An upstream response body that reports the call's outcome to the endpoint's breaker when
/// the `grpc-status` arrives, frees the endpoint's in-flight slot when it ends or is dropped,
/// and ends with the gateway's `DEADLINE_EXCEEDED` when the call's deadline passes first.
#[derive(Debug)]
pub struct ResponseBody {
    /// `None` once the deadline passed: dropping it resets the upstream stream.
    inner: Option<Incoming>,
    guard: Option<CallGuard>,
    deadline: Option<BodyDeadline>,
}

// === impl CallGuard ===

impl CallGuard {
    pub(super) fn observe(&self, rtt: Duration) {
        self.endpoint.health().ewma.observe(rtt, Instant::now());
    }

    fn observe_failure(&self) {
        self.observe(FAILURE_PENALTY);
    }

    pub(super) fn finish(&mut self, outcome: Outcome) {
        if !self.finished {
            self.finished = true;
            let change = self.balancer.record(&self.endpoint, self.ticket, outcome);
            // The breaker's decision is an event of the attempt that caused it.
            if let (Some(change), Some(span)) = (change, &self.span) {
                let name = match change {
                    Change::Opened { .. } => "mosaic.breaker_opened",
                    Change::Closed => "mosaic.breaker_closed",
                };
                span.event(
                    name,
                    vec![KeyValue::new(
                        "mosaic.endpoint",
                        self.endpoint.addr().connect.clone(),
                    )],
                );
            }
        }
    }

    /// Ends the call without an outcome (never sent, or cancelled by its caller): a claimed
    /// probe goes back, and calls waiting for it are woken so the next one takes it.
    pub(super) fn abandon(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.ticket == Ticket::Probe {
            self.endpoint.health().breaker.release_probe(Instant::now());
            self.balancer.changed.notify_waiters();
        }
    }

    /// The call ran out of time at the endpoint. That is what breakers are for (a slow or hung
    /// endpoint), but the calls of one edge call share its deadline: a fan-out of twenty calls
    /// that all expire together says one thing about the endpoint, not twenty, so an edge call
    /// counts at most one expiry per endpoint. A probe that expires always counts (it must back
    /// off, not be retried at once).
    fn expire(&mut self) {
        if self.finished {
            return;
        }
        self.observe_failure();
        let first = self.ticket == Ticket::Probe
            || self
                .origin
                .is_none_or(|origin| self.endpoint.health().first_expiry_of(origin));
        if first {
            self.finish(Outcome::Failure);
        } else {
            self.abandon();
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.finished {
            let timed_out = self
                .deadline
                .is_some_and(|deadline| Instant::now() + DEADLINE_SLACK >= deadline);
            if timed_out {
                self.code.get_or_insert(Code::DeadlineExceeded);
                self.expire();
            } else {
                // The caller went away early (a sibling failed, the client cancelled): nothing
                // is learnt about the endpoint, as linkerd counts no cancellation.
                self.code.get_or_insert(Code::Cancelled);
                self.abandon();
            }
        }
        if let Some(sent) = self.sent {
            let code = self.code.unwrap_or(Code::Cancelled);
            self.endpoint.attempts.observe(code as i32, sent.elapsed());
            if let Some(span) = self.span.take() {
                span.finish(code, None);
            }
        }
    }
}

// === impl ResponseBody ===

impl ResponseBody {
    pub(super) fn wrap(response: Response<Incoming>, mut guard: CallGuard) -> Response<Self> {
        // A trailers-only answer carries its `grpc-status` in the head; any other head that is
        // not 200 is not a gRPC answer at all (a proxy error page, a misrouted call).
        if let Some((code, outcome)) = status_of(response.headers()) {
            guard.code = Some(code);
            guard.finish(outcome);
        } else if response.status().is_server_error() {
            guard.code = Some(Code::Unavailable);
            guard.finish(Outcome::Failure);
        } else if !response.status().is_success() {
            guard.code = Some(Code::Unknown);
            guard.finish(Outcome::Success);
        }
        response.map(|inner| Self {
            inner: Some(inner),
            guard: Some(guard),
            deadline: None,
        })
    }

    /// The endpoint the response comes from, `http://host:port`.
    pub fn endpoint(&self) -> Option<String> {
        self.guard.as_ref().map(|guard| guard.endpoint.url())
    }

    /// The deadline passed before the body ended: drop the upstream stream (which cancels the
    /// downstream's work), count the expiry, and end with the gateway's answer.
    fn expire(&mut self) -> Frame<Bytes> {
        self.inner = None;
        if let Some(guard) = self.guard.as_mut() {
            guard.code.get_or_insert(Code::DeadlineExceeded);
            if let Some(span) = &guard.span {
                span.event("mosaic.deadline_exceeded", Vec::new());
            }
            guard.expire();
        }
        let status = self
            .deadline
            .take()
            .map(|deadline| deadline.error().to_status())
            .unwrap_or_else(|| tonic::Status::deadline_exceeded("deadline exceeded"));
        Frame::trailers(crate::grpc::status::trailers(&status))
    }
}

impl ExpiresAt for Response<ResponseBody> {
    fn expires_at(&mut self, deadline: BodyDeadline) {
        let body = self.body_mut();
        if body
            .inner
            .as_ref()
            .is_some_and(|inner| !inner.is_end_stream())
        {
            body.deadline = Some(deadline);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(deadline) = &mut this.deadline
            && deadline.sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Ok(this.expire())));
        }
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        // Anything the upstream sends at or past the deadline is not relayed (see
        // `deadline.rs`): the caller gets the gateway's answer.
        if let Some(deadline) = &this.deadline
            && Instant::now() >= deadline.deadline.at
        {
            return Poll::Ready(Some(Ok(this.expire())));
        }
        if matches!(&frame, Some(Ok(frame)) if frame.is_trailers()) || frame.is_none() {
            this.deadline = None;
        }
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let (code, outcome) =
                        status_of(trailers).unwrap_or((Code::Unknown, Outcome::Failure));
                    if let Some(guard) = this.guard.as_mut() {
                        guard.code.get_or_insert(code);
                        guard.finish(outcome);
                    }
                }
            }
            // A broken stream, or a gRPC response that ended without its status.
            Some(Err(_)) | None => {
                this.deadline = None;
                if let Some(guard) = this.guard.as_mut() {
                    guard.code.get_or_insert(Code::Unavailable);
                    guard.finish(Outcome::Failure);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The breaker's reading of a `grpc-status`: failures are the codes that say the endpoint, not
/// the request, is the problem.
#[cfg(test)]
pub(super) fn outcome_of(headers: &HeaderMap) -> Option<Outcome> {
    status_of(headers).map(|(_, outcome)| outcome)
}

/// The `grpc-status` of a head or trailers, and the breaker's reading of it.
fn status_of(headers: &HeaderMap) -> Option<(Code, Outcome)> {
    let code = crate::grpc::status::code_of(headers)?;
    let outcome = match code {
        Code::Unavailable | Code::Internal | Code::Unknown | Code::DataLoss => Outcome::Failure,
        _ => Outcome::Success,
    };
    Some((code, outcome))
}
