//! The balancer: which endpoint of an upstream gets a call.
//!
//! # Power of two choices over peak-EWMA
//!
//! Each call samples two endpoints at random and takes the one with the lower cost, where cost
//! is the endpoint's peak-EWMA latency times its outstanding calls plus one (Finagle's and
//! linkerd's balancer). Sampling two instead of scanning all keeps picking O(1) and avoids the
//! herd behaviour of always choosing the single least-loaded endpoint; weighting latency by
//! outstanding calls steers calls away from an endpoint that is slow *or* backed up.
//!
//! # Breakers inside the balancer
//!
//! Every endpoint has its own circuit breaker ([`super::breaker`]). An open endpoint is not
//! ready, so picking skips it; when its backoff passes, the next call becomes its single probe.
//! Breakers may eject at most [`UpstreamPolicy::max_ejected`] endpoints at once, so a few bad
//! outcomes spread over many endpoints never empty the pool. State changes are logged at info.
//!
//! # Waiting for a ready endpoint, and failing fast
//!
//! When no endpoint is ready (every breaker open), a call waits, up to the policy's
//! `ready_timeout` and never past its own deadline, for a probe to be due or an endpoint to
//! close. Once the upstream has had no ready endpoint for a whole `ready_timeout`, calls stop
//! waiting and fail at once with `UNAVAILABLE`, as linkerd's fail-fast does: a dead upstream
//! then costs its callers microseconds, not a timeout each, and nothing queues without bound.
//!
//! # What counts against an endpoint
//!
//! - An answer whose `grpc-status` says the endpoint is the problem (`UNAVAILABLE`,
//!   `INTERNAL`, `UNKNOWN`, `DATA_LOSS`), a transport failure, a 5xx head: a failure.
//! - A call that ran out of time at the endpoint: a failure, as Envoy counts its gateway
//!   timeouts per host, since a slow or hung endpoint is what breakers are for; but the calls
//!   of one composed edge call share its deadline, so when a fan-out of twenty calls expires
//!   together it counts once per endpoint. A caller's own short deadline therefore counts
//!   once per edge call, and a transient slowdown seen by a few edge calls stays below the
//!   threshold.
//! - A call cancelled before its deadline (the client went away, a sibling step failed, a
//!   hedge lost): nothing, as linkerd counts no cancellation. A cancelled probe is handed
//!   back and the next call takes it.
//!
//! # Probes under fan-out
//!
//! While an endpoint's probe is in flight, calls that find no ready endpoint wait for the
//! probe's outcome (bounded by their deadline and `ready_timeout`) instead of failing fast: a
//! composed call's other steps would otherwise fail at once, and failing the edge call would
//! cancel the very probe that was about to close the breaker, round after round. A probe
//! that succeeds wakes them into the closed endpoint; one that fails lets them fail at once.
//!
//! # Requests that never left
//!
//! A request that could not be sent (connection refused, connection closed before it was
//! written) comes back from the endpoint untouched and is sent to another endpoint at once. Such
//! a retry is always safe, is not charged to the retry budget, and works for pass-through calls
//! whose bodies stream and could never be replayed (gRFC A6's transparent retry).
//!
//! tower's `p2c::Balance` is not used because it is not `Clone` (every call would go through a
//! `Buffer` task, one more hop and one task serializing every call of the upstream), and because
//! the per-endpoint state here (in-flight count, latency, breaker) must be shared by every clone
//! of the upstream's stack.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::Code;

use super::breaker::{Change, Outcome, Ticket};
use super::deadline::{BodyDeadline, Deadline, EdgeCallId, ExpiresAt};
use super::endpoint::{Endpoint, RequestBody, SendError};
use super::policy::UpstreamPolicy;
use crate::status::LocalError;

/// The shared state of one upstream's balancer.
#[derive(Debug)]
pub struct Balancer {
    upstream: Arc<str>,
    policy: Arc<UpstreamPolicy>,
    endpoints: RwLock<Arc<[Arc<Endpoint>]>>,
    /// How many endpoints there are, readable without the lock.
    count: AtomicUsize,
    /// Endpoints of the current set whose breaker is open or probing. Changed only under
    /// `ejection`, read without it (a hint for `pick`).
    ejected: AtomicUsize,
    /// Serializes every change of `ejected` with the breaker change that causes it, and with
    /// endpoint-set updates, so the count never drifts from the breakers.
    ejection: Mutex<()>,
    /// Since when no endpoint has been ready, while that lasts.
    unready_since: Mutex<Option<Instant>>,
    /// Woken on every breaker transition a waiting call cares about (closed, reopened after a
    /// failed probe, a probe handed back) and on endpoint-set updates.
    changed: Notify,
}

/// The balancer as a tower service: cheap to clone, every clone shares the endpoints.
#[derive(Clone, Debug)]
pub struct Balance {
    inner: Arc<Balancer>,
}

/// Request extension naming endpoints (`http://host:port`) a retried call already failed on,
/// so that its next attempt goes elsewhere while another endpoint is left.
#[derive(Clone, Debug, Default)]
pub(crate) struct AvoidEndpoints(pub(crate) Vec<String>);

impl AvoidEndpoints {
    fn contains(&self, endpoint: &Endpoint) -> bool {
        self.0
            .iter()
            .any(|name| name.strip_prefix("http://") == Some(endpoint.addr().connect.as_str()))
    }
}

/// Why no endpoint was picked.
#[derive(Debug)]
struct NotReady {
    /// When the earliest probe is due, if one is.
    until: Option<Instant>,
    /// Whether some endpoint has a probe in flight, whose outcome is worth waiting for.
    probing: bool,
}

/// Accounts for one call on one endpoint: its in-flight slot, its latency, its outcome.
#[derive(Debug)]
struct CallGuard {
    balancer: Arc<Balancer>,
    endpoint: Arc<Endpoint>,
    ticket: Ticket,
    /// The call's deadline: a call dropped at (or just before) it timed out at the endpoint.
    deadline: Option<Instant>,
    /// The edge call this call is made for, if any: its fan-out counts one timeout at most.
    origin: Option<EdgeCallId>,
    finished: bool,
}

/// The latency recorded for an endpoint that failed to take a call: high enough that
/// two-choice picking avoids it while the estimate decays, as Finagle's failure penalty does.
const FAILURE_PENALTY: Duration = Duration::from_secs(1);

/// A call dropped this close to its deadline is taken to have timed out at the endpoint (the
/// typed-call timer and the deadline layer measure from slightly different instants).
const DEADLINE_SLACK: Duration = Duration::from_millis(10);

/// How many times `pick` tries again when the endpoint it chose opened before it could claim it.
const CLAIM_TRIES: usize = 3;

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

// === impl Balancer ===

impl Balancer {
    /// A balancer over `endpoints`.
    pub fn new(upstream: Arc<str>, policy: Arc<UpstreamPolicy>, endpoints: Vec<Endpoint>) -> Self {
        Self {
            upstream,
            policy,
            count: AtomicUsize::new(endpoints.len()),
            endpoints: RwLock::new(endpoints.into_iter().map(Arc::new).collect()),
            ejected: AtomicUsize::new(0),
            ejection: Mutex::new(()),
            unready_since: Mutex::new(None),
            changed: Notify::new(),
        }
    }

    /// The current endpoints.
    pub fn endpoints(&self) -> Arc<[Arc<Endpoint>]> {
        Arc::clone(
            &self
                .endpoints
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Replaces the endpoint set (after a DNS refresh). Endpoints present before and after keep
    /// their connections, load and breaker; `make` builds the new ones.
    pub fn update_endpoints(
        &self,
        addrs: &[super::endpoint::EndpointAddr],
        make: impl Fn(&super::endpoint::EndpointAddr) -> Endpoint,
    ) {
        let current = self.endpoints();
        let mut next: Vec<Arc<Endpoint>> = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if next.iter().any(|endpoint| endpoint.addr() == addr) {
                continue;
            }
            let endpoint = current
                .iter()
                .find(|endpoint| endpoint.addr() == addr)
                .cloned()
                .unwrap_or_else(|| Arc::new(make(addr)));
            next.push(endpoint);
        }
        let _ejection = self.ejection.lock().unwrap_or_else(PoisonError::into_inner);
        let ejected = next
            .iter()
            .filter(|endpoint| endpoint.open.load(Ordering::Acquire))
            .count();
        self.count.store(next.len(), Ordering::Release);
        *self
            .endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner) = next.into();
        self.ejected.store(ejected, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// How many endpoints the upstream has now.
    pub fn endpoint_count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Whether some endpoint would take a call right now (closed, or a probe due). Retries
    /// check this so they never queue behind open breakers.
    pub fn has_ready_endpoint(&self) -> bool {
        let now = Instant::now();
        self.endpoints().iter().any(|endpoint| {
            !endpoint.open.load(Ordering::Acquire)
                || matches!(
                    endpoint.health().breaker.readiness(now),
                    super::breaker::Readiness::ProbeDue
                )
        })
    }

    /// Picks an endpoint not in `tried` and claims it for one call, or says when to look again.
    fn pick(
        &self,
        now: Instant,
        tried: &[Arc<Endpoint>],
    ) -> Result<(Arc<Endpoint>, Ticket), NotReady> {
        let endpoints = self.endpoints();
        let untried = |endpoint: &&Arc<Endpoint>| !tried.iter().any(|t| Arc::ptr_eq(t, endpoint));
        // A due probe goes first, so a recovered endpoint is found as soon as allowed.
        let mut until: Option<Instant> = None;
        let mut probing = false;
        if self.ejected.load(Ordering::Acquire) > 0 {
            for endpoint in endpoints.iter().filter(untried) {
                if !endpoint.open.load(Ordering::Acquire) {
                    continue;
                }
                let mut health = endpoint.health();
                match health.breaker.readiness(now) {
                    super::breaker::Readiness::ProbeDue => {
                        if let Some(ticket) = health.breaker.acquire(now) {
                            return Ok((Arc::clone(endpoint), ticket));
                        }
                    }
                    super::breaker::Readiness::NotReady { until: Some(at) } => {
                        until = Some(until.map_or(at, |u| u.min(at)));
                    }
                    super::breaker::Readiness::NotReady { until: None } => probing = true,
                    super::breaker::Readiness::Ready => {}
                }
            }
        }

        let mut rng = rand::rng();
        for _ in 0..CLAIM_TRIES {
            let chosen = if tried.is_empty() && self.ejected.load(Ordering::Acquire) == 0 {
                two_choices(endpoints.iter(), endpoints.len(), &mut rng, now)
            } else {
                let candidates: Vec<&Arc<Endpoint>> = endpoints
                    .iter()
                    .filter(untried)
                    .filter(|endpoint| !endpoint.open.load(Ordering::Acquire))
                    .collect();
                two_choices(candidates.iter().copied(), candidates.len(), &mut rng, now)
            };
            let Some(endpoint) = chosen else {
                break;
            };
            let ticket = endpoint.health().breaker.acquire(now);
            if let Some(ticket) = ticket {
                return Ok((endpoint, ticket));
            }
            // It opened between the choice and the claim: choose again.
        }
        Err(NotReady { until, probing })
    }

    /// Waits for a ready endpoint as the module docs describe.
    async fn ready(
        self: &Arc<Self>,
        deadline: Option<Deadline>,
        tried: &[Arc<Endpoint>],
    ) -> Result<(Arc<Endpoint>, Ticket), LocalError> {
        let started = Instant::now();
        let mut awaited_probe = false;
        loop {
            // Registered before looking, so a breaker changing in between is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();

            let now = Instant::now();
            let not_ready = match self.pick(now, tried) {
                Ok(picked) => {
                    if picked.1 == Ticket::Regular {
                        self.unready_since
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .take();
                    }
                    return Ok(picked);
                }
                Err(not_ready) => not_ready,
            };
            if self.endpoints().len() <= tried.len() || (awaited_probe && !not_ready.probing) {
                // Every endpoint was tried (or there are none), or the probe this call waited
                // for failed: nothing (more) to wait for.
                return Err(self.no_ready_endpoint(now - started));
            }
            awaited_probe = not_ready.probing;
            let since = *self
                .unready_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(now);
            // A probe in flight answers within one round trip, so a call waits for its outcome
            // (up to its own `ready_timeout`) rather than failing fast: a composed call's
            // sibling calls must not fail, and so cancel the probe with the edge call, while the
            // probe that would close the breaker is on its way.
            let patience = if not_ready.probing {
                started.checked_add(self.policy.ready_timeout)
            } else {
                since.checked_add(self.policy.ready_timeout)
            }
            .unwrap_or(now);
            if let Some(deadline) = deadline
                && deadline.at <= patience
                && now >= deadline.at
            {
                return Err(LocalError::UpstreamDeadline {
                    upstream: self.upstream.to_string(),
                    timeout: deadline.timeout,
                });
            }
            let give_up = deadline.map_or(patience, |d| patience.min(d.at));
            if now >= give_up {
                return Err(self.no_ready_endpoint(now - started));
            }
            let wake = not_ready.until.map_or(give_up, |at| at.min(give_up));
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    fn no_ready_endpoint(&self, waited: Duration) -> LocalError {
        let endpoints = self.endpoints();
        if endpoints.is_empty() {
            return LocalError::NoEndpoints {
                upstream: self.upstream.to_string(),
            };
        }
        LocalError::NoReadyEndpoint {
            upstream: self.upstream.to_string(),
            open: self.ejected.load(Ordering::Acquire),
            total: endpoints.len(),
            waited,
        }
    }

    /// Feeds a call's outcome to its endpoint's breaker, within the ejection cap.
    fn record(&self, endpoint: &Arc<Endpoint>, ticket: Ticket, outcome: Outcome) {
        let now = Instant::now();
        let policy = &self.policy.breaker;
        {
            // The common case, a success on a closed breaker, cannot change what is ejected.
            let mut health = endpoint.health();
            if outcome == Outcome::Success && ticket == Ticket::Regular && !health.breaker.is_open()
            {
                health.breaker.record(policy, ticket, outcome, now, false);
                return;
            }
        }
        let _ejection = self.ejection.lock().unwrap_or_else(PoisonError::into_inner);
        let endpoints = self.endpoints();
        // An endpoint dropped from the set by discovery no longer counts toward the cap.
        let member = endpoints.iter().any(|e| Arc::ptr_eq(e, endpoint));
        let ejected = self.ejected.load(Ordering::Acquire);
        let may_open = member && ejected < self.policy.max_ejected(endpoints.len());
        let mut health = endpoint.health();
        let change = health
            .breaker
            .record(policy, ticket, outcome, now, may_open);
        endpoint
            .open
            .store(health.breaker.is_open(), Ordering::Release);
        drop(health);
        let endpoint_name = &endpoint.addr().connect;
        match change {
            Some(Change::Opened { backoff, cause }) => {
                if member && ticket == Ticket::Regular {
                    self.ejected.store(ejected + 1, Ordering::Release);
                }
                tracing::info!(
                    upstream = %self.upstream,
                    endpoint = %endpoint_name,
                    ?cause,
                    backoff = %humantime::format_duration(backoff),
                    "circuit breaker opened: endpoint ejected"
                );
            }
            Some(Change::Closed) => {
                if member {
                    self.ejected
                        .store(ejected.saturating_sub(1), Ordering::Release);
                }
                tracing::info!(
                    upstream = %self.upstream,
                    endpoint = %endpoint_name,
                    "circuit breaker closed: endpoint back in rotation"
                );
            }
            None => return,
        }
        // Waiting calls re-read the state: a closed endpoint takes them, a failed probe lets
        // them fail at once instead of waiting out their patience.
        self.changed.notify_waiters();
    }

    /// Sends `request` to a ready endpoint, moving on to another when it could not be sent.
    async fn send(
        self: Arc<Self>,
        mut request: Request<RequestBody>,
    ) -> Result<Response<ResponseBody>, LocalError> {
        let deadline = request.extensions().get::<Deadline>().copied();
        let origin = request.extensions().get::<EdgeCallId>().copied();
        let attempts = self.endpoints().len().clamp(1, 4);
        let mut tried: Vec<Arc<Endpoint>> = match request.extensions().get::<AvoidEndpoints>() {
            Some(avoid) => {
                let endpoints = self.endpoints();
                let avoided: Vec<_> = endpoints
                    .iter()
                    .filter(|endpoint| avoid.contains(endpoint))
                    .cloned()
                    .collect();
                // With every endpoint avoided, any may take the call again.
                if avoided.len() < endpoints.len() {
                    avoided
                } else {
                    Vec::new()
                }
            }
            None => Vec::new(),
        };
        let mut sent = 0;
        loop {
            let (endpoint, ticket) = self.ready(deadline, &tried).await?;
            // The guard exists from the claim on, so every way out (the early return below
            // included) hands a claimed probe back.
            endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
            let mut guard = CallGuard {
                balancer: Arc::clone(&self),
                endpoint,
                ticket,
                deadline: deadline.map(|d| d.at),
                origin,
                finished: false,
            };
            if let Some(deadline) = deadline
                && let Err(error) = refresh_grpc_timeout(&mut request, deadline, &self.upstream)
            {
                // Never sent: says nothing about the endpoint.
                guard.abandon();
                return Err(error);
            }
            let started = Instant::now();
            let (returned, error) = match guard.endpoint.send(request).await {
                Ok(response) => {
                    guard.observe(started.elapsed());
                    return Ok(ResponseBody::wrap(response, guard));
                }
                Err(SendError::Failed(error)) => {
                    guard.observe(FAILURE_PENALTY);
                    guard.finish(Outcome::Failure);
                    return Err(LocalError::UpstreamFailed {
                        upstream: self.upstream.to_string(),
                        endpoint: Some(format!("http://{}", guard.endpoint.addr().connect)),
                        source: error.into(),
                    });
                }
                Err(SendError::Connect { request, error }) => (request, error),
                Err(SendError::NotSent { request, error }) => (request, error.into()),
            };
            guard.observe(FAILURE_PENALTY);
            guard.finish(Outcome::Failure);
            tried.push(Arc::clone(&guard.endpoint));
            sent += 1;
            if sent >= attempts || tried.len() >= self.endpoint_count() {
                return Err(LocalError::Unreachable {
                    upstream: self.upstream.to_string(),
                    endpoint: format!("http://{}", guard.endpoint.addr().connect),
                    source: error,
                });
            }
            tracing::debug!(upstream = %self.upstream, endpoint = %guard.endpoint.addr().connect, %error, "request not sent; trying another endpoint");
            request = returned;
        }
    }
}

/// Rewrites a request's `grpc-timeout` to what is left of its deadline when time was spent in
/// the gateway (waiting for an endpoint, connecting), so the upstream never gets more time than
/// the caller has; fails without sending when nothing is left.
fn refresh_grpc_timeout(
    request: &mut Request<RequestBody>,
    deadline: Deadline,
    upstream: &str,
) -> Result<(), LocalError> {
    let now = Instant::now();
    let remaining = deadline.at.saturating_duration_since(now);
    if remaining.is_zero() {
        return Err(LocalError::UpstreamDeadline {
            upstream: upstream.to_owned(),
            timeout: deadline.timeout,
        });
    }
    if deadline.timeout - remaining >= Duration::from_millis(1) {
        request.headers_mut().insert(
            "grpc-timeout",
            super::deadline::grpc_timeout_value(remaining),
        );
    }
    Ok(())
}

/// Power of two choices: two distinct random candidates, the cheaper wins.
fn two_choices<'a>(
    mut candidates: impl Iterator<Item = &'a Arc<Endpoint>> + Clone,
    len: usize,
    rng: &mut impl Rng,
    now: Instant,
) -> Option<Arc<Endpoint>> {
    match len {
        0 => None,
        1 => candidates.next().cloned(),
        _ => {
            let a = rng.random_range(0..len);
            let mut b = rng.random_range(0..len - 1);
            if b >= a {
                b += 1;
            }
            let first = candidates.clone().nth(a)?;
            let second = candidates.nth(b)?;
            let (one, two) = (first.load(now), second.load(now));
            // An endpoint not measured yet is assumed as fast as the one it is compared with,
            // so it competes on outstanding calls alone: a new endpoint is neither starved by a
            // guess slower than the others nor flooded by one faster.
            let (one_ns, two_ns) = match (one.measured, two.measured) {
                (true, false) => (one.estimate_ns, one.estimate_ns),
                (false, true) => (two.estimate_ns, two.estimate_ns),
                _ => (one.estimate_ns, two.estimate_ns),
            };
            let cost = |ns: f64, pending: usize| ns * (pending as f64 + 1.0);
            let chosen = if cost(two_ns, two.pending) < cost(one_ns, one.pending) {
                second
            } else {
                first
            };
            Some(Arc::clone(chosen))
        }
    }
}

// === impl Balance ===

impl Balance {
    /// The service over a shared balancer.
    pub fn new(balancer: Arc<Balancer>) -> Self {
        Self { inner: balancer }
    }

    /// The shared balancer.
    pub fn balancer(&self) -> &Arc<Balancer> {
        &self.inner
    }
}

impl tower::Service<Request<RequestBody>> for Balance {
    type Response = Response<ResponseBody>;
    type Error = tower::BoxError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    /// Always ready: readiness of endpoints is decided per call, in `call`, so that a clone
    /// never holds a reservation it might not use.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let balancer = Arc::clone(&self.inner);
        Box::pin(async move { balancer.send(request).await.map_err(Into::into) })
    }
}

// === impl CallGuard ===

impl CallGuard {
    fn observe(&self, rtt: Duration) {
        self.endpoint.health().ewma.observe(rtt, Instant::now());
    }

    fn observe_failure(&self) {
        self.observe(FAILURE_PENALTY);
    }

    fn finish(&mut self, outcome: Outcome) {
        if !self.finished {
            self.finished = true;
            self.balancer.record(&self.endpoint, self.ticket, outcome);
        }
    }

    /// Ends the call without an outcome (never sent, or cancelled by its caller): a claimed
    /// probe goes back, and calls waiting for it are woken so the next one takes it.
    fn abandon(&mut self) {
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
        if self.finished {
            return;
        }
        let timed_out = self
            .deadline
            .is_some_and(|deadline| Instant::now() + DEADLINE_SLACK >= deadline);
        if timed_out {
            self.expire();
        } else {
            // The caller went away early (a sibling failed, the client cancelled): nothing is
            // learnt about the endpoint, as linkerd counts no cancellation.
            self.abandon();
        }
    }
}

// === impl ResponseBody ===

impl ResponseBody {
    fn wrap(response: Response<Incoming>, mut guard: CallGuard) -> Response<Self> {
        // A trailers-only answer carries its `grpc-status` in the head; any other head that is
        // not 200 is not a gRPC answer at all (a proxy error page, a misrouted call).
        if let Some(outcome) = outcome_of(response.headers()) {
            guard.finish(outcome);
        } else if response.status().is_server_error() {
            guard.finish(Outcome::Failure);
        } else if !response.status().is_success() {
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
        self.guard
            .as_ref()
            .map(|guard| format!("http://{}", guard.endpoint.addr().connect))
    }

    /// The deadline passed before the body ended: drop the upstream stream (which cancels the
    /// downstream's work), count the expiry, and end with the gateway's answer.
    fn expire(&mut self) -> Frame<Bytes> {
        self.inner = None;
        if let Some(guard) = self.guard.as_mut() {
            guard.expire();
        }
        let status = self
            .deadline
            .take()
            .map(|deadline| deadline.error().to_status())
            .unwrap_or_else(|| tonic::Status::deadline_exceeded("deadline exceeded"));
        Frame::trailers(crate::status::trailers(&status))
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
                    let outcome = outcome_of(trailers).unwrap_or(Outcome::Failure);
                    if let Some(guard) = this.guard.as_mut() {
                        guard.finish(outcome);
                    }
                }
            }
            // A broken stream, or a gRPC response that ended without its status.
            Some(Err(_)) | None => {
                this.deadline = None;
                if let Some(guard) = this.guard.as_mut() {
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
fn outcome_of(headers: &HeaderMap) -> Option<Outcome> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(match Code::from_i32(code) {
        Code::Unavailable | Code::Internal | Code::Unknown | Code::DataLoss => Outcome::Failure,
        _ => Outcome::Success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::breaker::BreakerPolicy;
    use crate::resilience::endpoint::EndpointAddr;

    fn balancer(endpoints: usize, policy: UpstreamPolicy) -> Arc<Balancer> {
        let endpoints = (0..endpoints)
            .map(|i| {
                let authority: http::uri::Authority =
                    format!("127.0.0.1:{}", 1 + i).parse().expect("authority");
                Endpoint::new(
                    EndpointAddr {
                        connect: authority.to_string(),
                        authority,
                    },
                    1,
                    Duration::from_millis(100),
                    &policy.breaker,
                )
            })
            .collect();
        Arc::new(Balancer::new("users".into(), Arc::new(policy), endpoints))
    }

    fn policy() -> UpstreamPolicy {
        UpstreamPolicy {
            ready_timeout: Duration::from_millis(200),
            breaker: BreakerPolicy {
                consecutive_failures: 2,
                failure_rate: None,
                backoff_min: Duration::from_secs(1),
                backoff_max: Duration::from_secs(4),
            },
            ..UpstreamPolicy::default()
        }
    }

    fn port(endpoint: &Endpoint) -> u16 {
        endpoint.addr().authority.port_u16().unwrap_or_default()
    }

    fn fail(balancer: &Balancer, index: usize, times: usize) {
        let endpoint = Arc::clone(&balancer.endpoints()[index]);
        for _ in 0..times {
            let ticket = endpoint.health().breaker.acquire(Instant::now());
            if let Some(ticket) = ticket {
                balancer.record(&endpoint, ticket, Outcome::Failure);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn two_choices_take_the_cheaper_endpoint() {
        let balancer = balancer(2, policy());
        let now = Instant::now();
        let endpoints = balancer.endpoints();
        endpoints[0]
            .health()
            .ewma
            .observe(Duration::from_millis(100), now);
        endpoints[1]
            .health()
            .ewma
            .observe(Duration::from_millis(1), now);
        for _ in 0..50 {
            let (endpoint, _) = balancer.pick(now, &[]).expect("ready");
            assert_eq!(port(&endpoint), 2, "the fast endpoint");
        }
        // Enough calls outstanding make the fast one the more expensive.
        endpoints[1].in_flight.store(200, Ordering::Relaxed);
        let (endpoint, _) = balancer.pick(now, &[]).expect("ready");
        assert_eq!(port(&endpoint), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_endpoint_competes_on_outstanding_calls_until_measured() {
        let balancer = balancer(2, policy());
        let now = Instant::now();
        let endpoints = balancer.endpoints();
        // A fast, measured endpoint and a new one still at the 30 ms starting guess.
        endpoints[0]
            .health()
            .ewma
            .observe(Duration::from_micros(200), now);
        endpoints[0].in_flight.store(3, Ordering::Relaxed);
        let (endpoint, _) = balancer.pick(now, &[]).expect("ready");
        assert_eq!(port(&endpoint), 2, "not starved by its guess");
        endpoints[0].in_flight.store(0, Ordering::Relaxed);
        endpoints[1].in_flight.store(1, Ordering::Relaxed);
        let (endpoint, _) = balancer.pick(now, &[]).expect("ready");
        assert_eq!(port(&endpoint), 1, "nor flooded");
    }

    #[tokio::test(start_paused = true)]
    async fn open_endpoints_are_skipped_and_ejection_is_capped() {
        let balancer = balancer(3, policy());
        fail(&balancer, 0, 2);
        assert!(balancer.endpoints()[0].open.load(Ordering::Relaxed));
        // One of three may be ejected: the second bad endpoint stays in rotation.
        fail(&balancer, 1, 5);
        assert!(!balancer.endpoints()[1].open.load(Ordering::Relaxed));
        assert_eq!(balancer.ejected.load(Ordering::Relaxed), 1);
        for _ in 0..100 {
            let (endpoint, _) = balancer.pick(Instant::now(), &[]).expect("ready");
            assert_ne!(port(&endpoint), 1, "the open endpoint is never picked");
        }
        assert!(balancer.has_ready_endpoint());
    }

    #[tokio::test(start_paused = true)]
    async fn with_every_endpoint_open_calls_wait_boundedly_then_fail_fast() {
        let balancer = balancer(1, policy());
        fail(&balancer, 0, 2);
        assert!(!balancer.has_ready_endpoint());

        let start = Instant::now();
        let error = balancer.ready(None, &[]).await.expect_err("nothing ready");
        assert_eq!(start.elapsed(), Duration::from_millis(200), "ready_timeout");
        assert_eq!(error.code(), tonic::Code::Unavailable);
        assert_eq!(
            error.to_string(),
            "upstream `users` has no ready endpoint (1 of 1 ejected by circuit breakers; waited 200ms)"
        );

        // The upstream has now been unready for a whole ready_timeout: no more waiting.
        let again = Instant::now();
        balancer.ready(None, &[]).await.expect_err("still nothing");
        assert_eq!(again.elapsed(), Duration::ZERO, "fail fast");

        // The probe comes due at 1 s; one caller gets it, the others keep failing fast.
        tokio::time::advance(Duration::from_millis(800)).await;
        assert!(balancer.has_ready_endpoint());
        let (_, ticket) = balancer.ready(None, &[]).await.expect("the probe");
        assert_eq!(ticket, Ticket::Probe);
        balancer
            .ready(None, &[])
            .await
            .expect_err("one probe at a time");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_never_outlasts_the_call_deadline_and_a_probe_due_ends_the_wait() {
        let first = balancer(1, policy());
        fail(&first, 0, 2);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(50);
        let error = first
            .ready(
                Some(Deadline {
                    at: deadline,
                    timeout: Duration::from_millis(50),
                }),
                &[],
            )
            .await
            .expect_err("nothing ready");
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        assert_eq!(
            error.code(),
            tonic::Code::DeadlineExceeded,
            "the deadline, not the wait, ran out: {error}"
        );

        // A fresh upstream whose probe is due in 100 ms: a waiting call gets it then.
        let policy = UpstreamPolicy {
            ready_timeout: Duration::from_secs(5),
            ..policy()
        };
        let balancer = balancer(1, policy);
        fail(&balancer, 0, 2);
        tokio::time::advance(Duration::from_millis(900)).await;
        let start = Instant::now();
        let (_, ticket) = balancer.ready(None, &[]).await.expect("the probe");
        assert_eq!(ticket, Ticket::Probe);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_successful_probe_closes_the_breaker_and_returns_the_slot() {
        let balancer = balancer(1, policy());
        fail(&balancer, 0, 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        let (endpoint, ticket) = balancer.ready(None, &[]).await.expect("the probe");
        balancer.record(&endpoint, ticket, Outcome::Success);
        assert!(!endpoint.open.load(Ordering::Relaxed));
        assert_eq!(balancer.ejected.load(Ordering::Relaxed), 0);
        let (_, ticket) = balancer.ready(None, &[]).await.expect("closed");
        assert_eq!(ticket, Ticket::Regular);
    }

    #[tokio::test(start_paused = true)]
    async fn endpoints_already_tried_are_not_picked_again() {
        let balancer = balancer(3, policy());
        let endpoints = balancer.endpoints();
        let tried = [Arc::clone(&endpoints[0]), Arc::clone(&endpoints[2])];
        for _ in 0..20 {
            let (endpoint, _) = balancer.pick(Instant::now(), &tried).expect("ready");
            assert_eq!(port(&endpoint), 2);
        }
        let all: Vec<_> = endpoints.iter().cloned().collect();
        let error = balancer.ready(None, &all).await.expect_err("all tried");
        assert_eq!(error.code(), tonic::Code::Unavailable);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_dropped_at_its_deadline_counts_as_a_failure_and_an_early_drop_does_not() {
        let balancer = balancer(1, policy());
        let endpoint = Arc::clone(&balancer.endpoints()[0]);
        let guard = |deadline: Instant| {
            endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
            CallGuard {
                balancer: Arc::clone(&balancer),
                endpoint: Arc::clone(&endpoint),
                ticket: Ticket::Regular,
                deadline: Some(deadline),
                origin: None,
                finished: false,
            }
        };
        // Cancelled by its caller long before the deadline: says nothing about the endpoint.
        for _ in 0..3 {
            drop(guard(Instant::now() + Duration::from_secs(1)));
        }
        assert!(!endpoint.open.load(Ordering::Relaxed));
        // Dropped at the deadline twice: a hung endpoint, ejected.
        for _ in 0..2 {
            drop(guard(Instant::now()));
        }
        assert!(endpoint.open.load(Ordering::Relaxed));
        assert_eq!(endpoint.in_flight.load(Ordering::Relaxed), 0);
        assert!(
            endpoint.health().ewma.estimate_ns(Instant::now()) >= 1e9,
            "the failure penalty steers picks away"
        );
    }

    /// An open single-endpoint upstream whose probe is due now.
    async fn probe_due() -> Arc<Balancer> {
        let balancer = balancer(1, policy());
        fail(&balancer, 0, 2);
        // Unready for a whole ready_timeout: calls fail fast from here on.
        balancer.ready(None, &[]).await.expect_err("nothing ready");
        tokio::time::advance(Duration::from_millis(800)).await;
        balancer
    }

    fn guard_for(balancer: &Arc<Balancer>, ticket: Ticket, deadline: Instant) -> CallGuard {
        let endpoint = Arc::clone(&balancer.endpoints()[0]);
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        CallGuard {
            balancer: Arc::clone(balancer),
            endpoint,
            ticket,
            deadline: Some(deadline),
            origin: None,
            finished: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_wait_for_a_probe_in_flight_and_proceed_when_it_succeeds() {
        let balancer = probe_due().await;
        let (endpoint, ticket) = balancer.ready(None, &[]).await.expect("the probe");
        assert_eq!(ticket, Ticket::Probe);
        // The upstream has had no ready endpoint for longer than ready_timeout, yet a sibling
        // call arriving while the probe is out waits for it instead of failing fast.
        let start = Instant::now();
        let sibling = tokio::spawn({
            let balancer = Arc::clone(&balancer);
            async move {
                let picked = balancer.ready(None, &[]).await;
                (picked.map(|(_, ticket)| ticket), start.elapsed())
            }
        });
        tokio::time::advance(Duration::from_millis(30)).await;
        assert!(!sibling.is_finished(), "waits for the probe's outcome");
        balancer.record(&endpoint, ticket, Outcome::Success);
        let (picked, waited) = sibling.await.expect("task");
        assert_eq!(picked.expect("closed"), Ticket::Regular);
        assert_eq!(
            waited,
            Duration::from_millis(30),
            "woken by the probe's success"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_lets_waiting_calls_fail_at_once() {
        let balancer = probe_due().await;
        let (endpoint, ticket) = balancer.ready(None, &[]).await.expect("the probe");
        let start = Instant::now();
        let sibling = tokio::spawn({
            let balancer = Arc::clone(&balancer);
            async move {
                let picked = balancer.ready(None, &[]).await;
                (picked.map(|(_, ticket)| ticket), start.elapsed())
            }
        });
        tokio::time::advance(Duration::from_millis(30)).await;
        balancer.record(&endpoint, ticket, Outcome::Failure);
        let (picked, waited) = sibling.await.expect("task");
        let error = picked.expect_err("reopened");
        assert_eq!(error.code(), tonic::Code::Unavailable);
        assert_eq!(
            waited,
            Duration::from_millis(30),
            "no wait past the failed probe"
        );
        // The failed probe doubled the backoff: the next one is due 2 s later.
        assert_eq!(
            endpoint.health().breaker.readiness(Instant::now()),
            super::super::breaker::Readiness::NotReady {
                until: Some(Instant::now() + Duration::from_secs(2))
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_cancelled_early_goes_to_a_waiting_call_at_once() {
        let balancer = probe_due().await;
        let (_, ticket) = balancer.ready(None, &[]).await.expect("the probe");
        let probe = guard_for(&balancer, ticket, Instant::now() + Duration::from_secs(5));
        let sibling = tokio::spawn({
            let balancer = Arc::clone(&balancer);
            async move { balancer.ready(None, &[]).await.map(|(_, ticket)| ticket) }
        });
        tokio::time::advance(Duration::from_millis(5)).await;
        assert!(!sibling.is_finished());
        // The probe's edge call failed for another reason and dropped it before any answer.
        drop(probe);
        let ticket = sibling.await.expect("task").expect("the probe, handed on");
        assert_eq!(ticket, Ticket::Probe);
        assert!(balancer.endpoints()[0].open.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_claimed_after_its_deadline_passed_is_handed_back_unsent() {
        let balancer = probe_due().await;
        let mut request = Request::new(RequestBody::empty());
        request.extensions_mut().insert(Deadline {
            at: Instant::now(),
            timeout: Duration::from_millis(50),
        });
        let error = Arc::clone(&balancer)
            .send(request)
            .await
            .expect_err("no time left");
        assert_eq!(error.code(), tonic::Code::DeadlineExceeded);
        // Neither lost (stuck probing) nor counted as a failed probe: still due, at once.
        let (_, ticket) = balancer.ready(None, &[]).await.expect("probe still due");
        assert_eq!(ticket, Ticket::Probe);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_expires_counts_and_backs_off() {
        let balancer = probe_due().await;
        let (endpoint, ticket) = balancer.ready(None, &[]).await.expect("the probe");
        drop(guard_for(&balancer, ticket, Instant::now()));
        assert_eq!(
            endpoint.health().breaker.readiness(Instant::now()),
            super::super::breaker::Readiness::NotReady {
                until: Some(Instant::now() + Duration::from_secs(2))
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_calls_of_one_edge_call_that_expire_together_count_once() {
        let balancer = balancer(1, policy());
        let endpoint = Arc::clone(&balancer.endpoints()[0]);
        let expire = |origin: u64| {
            let mut guard = guard_for(&balancer, Ticket::Regular, Instant::now());
            guard.origin = Some(EdgeCallId(origin));
            drop(guard);
        };
        // One edge call's fan-out of twenty calls all expire: one failure (threshold 2).
        for _ in 0..20 {
            expire(7);
        }
        assert!(
            !endpoint.open.load(Ordering::Relaxed),
            "one edge call, one failure"
        );
        // A second edge call expiring makes two in a row: the endpoint is slow, ejected.
        expire(8);
        assert!(endpoint.open.load(Ordering::Relaxed));
        assert_eq!(endpoint.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn grpc_status_is_classified_by_what_it_says_about_the_endpoint() {
        let headers = |code: &str| {
            let mut map = HeaderMap::new();
            map.insert("grpc-status", code.parse().expect("ascii"));
            map
        };
        for code in ["14", "13", "2", "15"] {
            assert_eq!(outcome_of(&headers(code)), Some(Outcome::Failure), "{code}");
        }
        for code in ["0", "5", "3", "4", "8"] {
            assert_eq!(outcome_of(&headers(code)), Some(Outcome::Success), "{code}");
        }
        assert_eq!(outcome_of(&HeaderMap::new()), None);
    }
}
