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

mod call;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

pub(crate) use self::call::ResponseBody;
use self::call::{CallGuard, FAILURE_PENALTY};
use super::breaker::{Change, Outcome, Ticket};
use super::deadline::EdgeCallId;
use super::endpoint::{Endpoint, RequestBody, SendError};
use super::policy::UpstreamPolicy;
use crate::grpc::Deadline;
use crate::grpc::headers::GRPC_TIMEOUT;
use crate::grpc::status::LocalError;
use crate::telemetry::own_time::OwnTime;
use crate::telemetry::trace::Scope;
use opentelemetry::KeyValue;

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
    /// Calls failed because no endpoint was ready (every breaker open, or none at all).
    pub(crate) unready_failures: AtomicU64,
    /// Woken on every breaker transition a waiting call cares about (closed, reopened after a
    /// failed probe, a probe handed back) and on endpoint-set updates.
    changed: Notify,
}

/// The balancer as a tower service: cheap to clone, every clone shares the endpoints.
#[derive(Clone, Debug)]
pub(crate) struct Balance {
    inner: Arc<Balancer>,
}

/// Request extension naming endpoints (`http://host:port`, `https://` over TLS) a retried call already failed on,
/// so that its next attempt goes elsewhere while another endpoint is left.
#[derive(Clone, Debug, Default)]
pub(crate) struct AvoidEndpoints(pub(crate) Vec<String>);

impl AvoidEndpoints {
    fn contains(&self, endpoint: &Endpoint) -> bool {
        self.0.iter().any(|name| *name == endpoint.url())
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

/// How many times `pick` tries again when the endpoint it chose opened before it could claim it.
const CLAIM_TRIES: usize = 3;

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
            unready_failures: AtomicU64::new(0),
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
                Scope::event(
                    "mosaic.deadline_exceeded",
                    vec![KeyValue::new("mosaic.upstream", self.upstream.to_string())],
                );
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
        self.unready_failures.fetch_add(1, Ordering::Relaxed);
        Scope::event(
            "mosaic.no_ready_endpoint",
            vec![KeyValue::new("mosaic.upstream", self.upstream.to_string())],
        );
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
    /// Returns the breaker's change, if the outcome changed its state.
    fn record(&self, endpoint: &Arc<Endpoint>, ticket: Ticket, outcome: Outcome) -> Option<Change> {
        let now = Instant::now();
        let policy = &self.policy.breaker;
        {
            // The common case, a success on a closed breaker, cannot change what is ejected.
            let mut health = endpoint.health();
            if outcome == Outcome::Success && ticket == Ticket::Regular && !health.breaker.is_open()
            {
                health.breaker.record(policy, ticket, outcome, now, false);
                return None;
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
        match &change {
            Some(Change::Opened { backoff, cause }) => {
                if member && ticket == Ticket::Regular {
                    self.ejected.store(ejected + 1, Ordering::Release);
                }
                let count = if ticket == Ticket::Probe {
                    &endpoint.transitions.reopened
                } else {
                    &endpoint.transitions.ejected
                };
                count.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    upstream = %self.upstream,
                    endpoint = %endpoint_name,
                    ?cause,
                    backoff = %humantime::format_duration(*backoff),
                    "circuit breaker opened: endpoint ejected"
                );
            }
            Some(Change::Closed) => {
                endpoint.transitions.closed.fetch_add(1, Ordering::Relaxed);
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
            None => return None,
        }
        // Waiting calls re-read the state: a closed endpoint takes them, a failed probe lets
        // them fail at once instead of waiting out their patience.
        self.changed.notify_waiters();
        change
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
                sent: None,
                code: None,
                waiting: None,
                span: None,
            };
            if let Some(deadline) = deadline
                && let Err(error) = refresh_grpc_timeout(&mut request, deadline, &self.upstream)
            {
                // Never sent: says nothing about the endpoint.
                guard.abandon();
                return Err(error);
            }
            let started = Instant::now();
            guard.sent = Some(started);
            guard.waiting = OwnTime::attempt_sent();
            crate::grpc::context::apply(request.headers_mut());
            guard.span =
                Scope::attempt(&mut request, &self.upstream, &guard.endpoint.addr().connect);
            let (returned, error) = match guard.endpoint.send(request).await {
                Ok(response) => {
                    guard.observe(started.elapsed());
                    return Ok(ResponseBody::wrap(response, guard));
                }
                Err(SendError::Failed(error)) => {
                    guard.code = Some(tonic::Code::Unavailable);
                    guard.observe(FAILURE_PENALTY);
                    guard.finish(Outcome::Failure);
                    return Err(LocalError::UpstreamFailed {
                        upstream: self.upstream.to_string(),
                        endpoint: Some(guard.endpoint.url()),
                        source: error.into(),
                    });
                }
                Err(SendError::Connect { request, error }) => (request, error),
                Err(SendError::NotSent { request, error }) => (request, error.into()),
            };
            guard.code = Some(tonic::Code::Unavailable);
            guard.observe(FAILURE_PENALTY);
            guard.finish(Outcome::Failure);
            tried.push(Arc::clone(&guard.endpoint));
            sent += 1;
            if sent >= attempts || tried.len() >= self.endpoint_count() {
                return Err(LocalError::Unreachable {
                    upstream: self.upstream.to_string(),
                    endpoint: guard.endpoint.url(),
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
        request
            .headers_mut()
            .insert(GRPC_TIMEOUT, crate::grpc::grpc_timeout_value(remaining));
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
    pub(crate) fn new(balancer: Arc<Balancer>) -> Self {
        Self { inner: balancer }
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

#[cfg(test)]
mod tests;
