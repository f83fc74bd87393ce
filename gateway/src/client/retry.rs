//! Retries and hedging of typed downstream calls (gRFC A6), within the upstream's budget.
//!
//! Retries live here, around each typed call, rather than in the upstream's tower stack: the
//! call still holds its prost message, so every attempt re-encodes it and no HTTP body is ever
//! buffered for replay.
//!
//! # Which failures are retried
//!
//! - `UNAVAILABLE` from the downstream, for any method: it means the call was not processed.
//! - Other codes listed in the policy's `retryable_codes` (say `DEADLINE_EXCEEDED`), only for
//!   methods declared idempotent: by `idempotency_level` (`NO_SIDE_EFFECTS`, `IDEMPOTENT`) in
//!   the downstream's proto, the `mosaic.v1.method` annotation, or `gateway.toml`.
//! - Never a call the gateway refused itself (shed by the concurrency limit, no ready endpoint):
//!   retrying at the same hop would add load exactly where it is short (linkerd does the same).
//!   Requests that never reached a connection were already moved to another endpoint by the
//!   balancer and do not count here.
//!
//! # How much
//!
//! At most `max_attempts` attempts (A6 caps it at 5), exponential backoff with ±20 % jitter so
//! that many callers do not retry in lockstep, and never past the edge deadline. A downstream's
//! `grpc-retry-pushback-ms` replaces the backoff; a negative or malformed one means "do not
//! retry". Each retry also needs a token from the upstream's budget (every original call
//! deposits one; a retry withdraws `1 / percent` of them), so however many callers and layers
//! retry, retries add at most `percent` (20 % by default) to the upstream's load: fixed retry
//! counts alone turn a partial outage into a retry storm. And no retry is sent while the
//! upstream has no ready endpoint (every breaker open): the last answer is returned at once.
//! Retries carry `grpc-previous-rpc-attempts`.
//!
//! # Hedging
//!
//! Opt-in per upstream or method, and only for idempotent methods: when the first attempt has
//! not answered after `delay`, a second is sent (then a third, up to `max_attempts`), each a
//! budget withdrawal. The first answer that is not a retryable failure wins and the others are
//! cancelled (dropping them resets their HTTP/2 streams). Retryable failures let the remaining
//! attempts continue; when every attempt failed, the last failure is returned.

use std::future::Future;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use rand::Rng;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Response, Status};
use tower::retry::budget::Budget;

use super::EdgeCall;
use super::downstreams::DownstreamChannel;
use super::stats::UpstreamStats;
use super::upstream::Upstream;
use crate::grpc::headers::{PREVIOUS_ATTEMPTS, RETRY_PUSHBACK as PUSHBACK};
use crate::grpc::status::LocalError;
use crate::resilience::policy::MAX_ATTEMPTS;
use crate::resilience::policy::{HedgePolicy, Hedging, RetryPolicy};
use crate::telemetry::trace::Scope;

/// What the generated code knows about one downstream call.
#[derive(Clone, Copy, Debug)]
pub struct CallSpec {
    /// The step's name, for error messages (empty for steps kept for their effect).
    pub step: &'static str,
    /// The downstream method, `package.Service/Method`.
    pub method: &'static str,
    /// The step's own timeout (`call { timeout }`), if written.
    pub timeout: Option<Duration>,
    /// Defaults from the downstream method's proto.
    pub defaults: MethodDefaults,
    /// The step's own retry policy (`call { retry }`), if written.
    pub retry: Option<&'static CallRetry>,
    /// Whether an equal call of the same edge call may share this one's answer: the step
    /// sends no metadata of its own and captures none (the method must be idempotent too).
    pub shareable: bool,
}

/// A call step's own retry policy (`call { retry }`): it replaces the upstream's attempts,
/// codes and backoff for this call, and decides which failures are retried by itself, for
/// idempotent methods or not (listing a code says the call is safe to repeat on it). The
/// upstream's budget, the edge deadline and its ready endpoints still bound every retry, the
/// gateway's own refusals are still never retried, and a `gateway.toml` retry policy for the
/// method wins over it.
#[derive(Debug)]
pub struct CallRetry {
    /// Attempts in all, the first included (1 to 5).
    pub max_attempts: u32,
    /// The codes retried; empty: `UNAVAILABLE` only.
    pub codes: &'static [Code],
    /// The first backoff; the upstream's when `None`.
    pub initial_backoff: Option<Duration>,
    /// The longest backoff; the upstream's when `None`.
    pub max_backoff: Option<Duration>,
    /// The backoff's growth; the upstream's when `None`.
    pub multiplier: Option<f64>,
    /// A failure whose code is listed is retried only when this holds for it.
    pub condition: Option<fn(&Status) -> bool>,
}

impl CallRetry {
    /// Whether this policy retries `status`.
    fn retries(&self, status: &Status) -> bool {
        let listed = if self.codes.is_empty() {
            status.code() == Code::Unavailable
        } else {
            self.codes.contains(&status.code())
        };
        listed && self.condition.is_none_or(|holds| holds(status))
    }
}

/// A downstream method's defaults from its proto: `idempotency_level` and the
/// `mosaic.v1.method` annotation. `gateway.toml` overrides each.
#[derive(Clone, Copy, Debug, Default)]
pub struct MethodDefaults {
    /// `NO_SIDE_EFFECTS` or `IDEMPOTENT`, or `idempotent: true` in the annotation.
    pub idempotent: bool,
    /// The annotation's `timeout`: a per-call timeout for calls to this method.
    pub timeout: Option<Duration>,
    /// The annotation's retry attempts.
    pub max_attempts: Option<u32>,
    /// The annotation's hedging delay (hedging with two attempts).
    pub hedge_delay: Option<Duration>,
}

/// The policy in force for one call, after every override.
#[derive(Debug)]
struct Effective<'a> {
    idempotent: bool,
    timeout: Option<Duration>,
    retry: std::borrow::Cow<'a, RetryPolicy>,
    /// The step's own policy, when it is the one in force: it decides what is retried.
    call_retry: Option<&'static CallRetry>,
    hedge: Option<HedgePolicy>,
}

/// Runs one downstream call with the upstream's retry and hedging policy; `send` performs one
/// attempt on the channel it is given.
pub(crate) async fn call_with_retries<M, R, F, Fut>(
    call: &EdgeCall,
    upstream: &Upstream,
    spec: &CallSpec,
    message: M,
    send: F,
) -> Result<R, Status>
where
    M: Clone,
    F: Fn(DownstreamChannel, Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let started = Instant::now();
    let (scope, span) = Scope::step(spec.step, spec.method).unzip();
    let result = Scope::run(scope, attempts(call, upstream, spec, message, send)).await;
    if let Some(span) = span {
        match &result {
            Ok(_) => span.finish(Code::Ok, None),
            Err(status) => span.finish(status.code(), Some(status.message())),
        }
    }
    let code = result
        .as_ref()
        .map_or_else(|status| status.code(), |_| Code::Ok) as i32;
    let elapsed = started.elapsed();
    if let Some(calls) = upstream.client_calls(spec.method) {
        calls.observe(code, elapsed);
    }
    if let Some(step) = upstream.step_calls(call.method(), spec.step) {
        step.observe(code, elapsed);
    }
    result
}

/// Every attempt of one call, as the module docs describe.
async fn attempts<M, R, F, Fut>(
    call: &EdgeCall,
    upstream: &Upstream,
    spec: &CallSpec,
    message: M,
    send: F,
) -> Result<R, Status>
where
    M: Clone,
    F: Fn(DownstreamChannel, Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let policy = effective(upstream, spec);
    upstream.budget().deposit();
    // The rare paths (hedging, retrying) are boxed, and the first attempt is made inline, so
    // the future of the common case, one attempt that succeeds, is the attempt itself: no
    // timers, closures or attempt sets are carried in it.
    if let Some(hedge) = policy.hedge.as_ref().filter(|_| policy.idempotent) {
        let attempt = |n| self::attempt(call, upstream, policy.timeout, &message, n, &send);
        return Box::pin(hedged(call, upstream, &policy, hedge, attempt)).await;
    }
    let first = call.downstream_request(message.clone(), policy.timeout)?;
    let status = match send(DownstreamChannel::new(upstream), first).await {
        Ok(response) => return Ok(response.into_inner()),
        Err(status) => status,
    };
    let attempt = |n| self::attempt(call, upstream, policy.timeout, &message, n, &send);
    Box::pin(retry(call, upstream, spec, &policy, status, attempt)).await
}

/// Attempt number `number` of a call: a fresh request from `message` with the time left and
/// the `grpc-previous-rpc-attempts` header, sent on a fresh channel. Its `grpc-timeout` (the
/// attempt's slice of the edge deadline, less the margin) is enforced by the upstream's
/// deadline layer.
async fn attempt<M, R, F, Fut>(
    call: &EdgeCall,
    upstream: &Upstream,
    timeout: Option<Duration>,
    message: &M,
    number: u32,
    send: &F,
) -> Result<R, Status>
where
    M: Clone,
    F: Fn(DownstreamChannel, Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let mut request = call.downstream_request(message.clone(), timeout)?;
    if number > 0 {
        request
            .metadata_mut()
            .insert(PREVIOUS_ATTEMPTS, MetadataValue::from(number));
    }
    send(DownstreamChannel::new(upstream), request)
        .await
        .map(Response::into_inner)
}

/// Retries after the first attempt failed with `status`, as the module docs describe.
async fn retry<R, A, Fut>(
    call: &EdgeCall,
    upstream: &Upstream,
    spec: &CallSpec,
    policy: &Effective<'_>,
    mut status: Status,
    mut attempt: A,
) -> Result<R, Status>
where
    A: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    let mut number = 0;
    loop {
        number += 1;
        let Some(delay) = retry_delay(call, upstream, policy, &status, number) else {
            return Err(status);
        };
        tracing::debug!(
            upstream = %upstream.name(),
            method = spec.method,
            attempt = number + 1,
            code = ?status.code(),
            delay_ms = delay.as_millis() as u64,
            "retrying downstream call"
        );
        tokio::time::sleep(delay).await;
        UpstreamStats::count(&upstream.stats().retries);
        status = match attempt(number).await {
            Ok(response) => return Ok(response),
            Err(status) => status,
        };
    }
}

/// Sends hedged attempts as the module docs describe.
async fn hedged<R, A, Fut>(
    call: &EdgeCall,
    upstream: &Upstream,
    policy: &Effective<'_>,
    hedge: &HedgePolicy,
    mut attempt: A,
) -> Result<R, Status>
where
    A: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    let mut running = FuturesUnordered::new();
    let numbered = |number: u32, attempt: Fut| attempt.map(move |result| (number, result));
    running.push(numbered(0, attempt(0)));
    let mut sent = 1;
    let mut more_allowed = true;
    let mut next_at = later(hedge.delay);
    let mut last: Option<Status> = None;
    loop {
        let may_send = more_allowed && sent < hedge.max_attempts;
        tokio::select! {
            finished = running.next(), if !running.is_empty() => {
                let Some((number, result)) = finished else { continue };
                let status = match result {
                    Ok(response) => {
                        let stats = upstream.stats();
                        if number > 0 {
                            UpstreamStats::count(&stats.hedges_won);
                        }
                        stats
                            .hedges_cancelled
                            .fetch_add(running.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        return Ok(response);
                    }
                    Err(status) => status,
                };
                if local_rejection(&status) {
                    // This attempt was refused by the gateway itself (shed, nothing ready): send
                    // no more, but an attempt still running may yet answer.
                    more_allowed = false;
                } else if !retryable(policy, &status) {
                    return Err(status);
                }
                if pushback(&status) == Some(None) {
                    more_allowed = false;
                }
                last = Some(status);
                if running.is_empty() {
                    // Nothing left in flight: send the next attempt now rather than idle.
                    if may_send && more_allowed {
                        next_at = Instant::now();
                    } else {
                        break;
                    }
                }
            }
            () = tokio::time::sleep_until(next_at), if may_send => {
                let refused = || {
                    UpstreamStats::count(&upstream.stats().budget_exhausted);
                    false
                };
                if call.remaining().is_zero()
                    || !upstream.balancer().has_ready_endpoint()
                    || !(upstream.budget().withdraw() || refused())
                {
                    more_allowed = false;
                    if running.is_empty() {
                        break;
                    }
                    continue;
                }
                tracing::debug!(upstream = %upstream.name(), attempt = sent + 1, "sending hedged attempt");
                UpstreamStats::count(&upstream.stats().hedges);
                running.push(numbered(sent, attempt(sent)));
                sent += 1;
                next_at = later(hedge.delay);
            }
            else => break,
        }
    }
    Err(last.unwrap_or_else(|| Status::unavailable("every hedged attempt failed")))
}

/// Whether a failed attempt may be retried (or, when hedging, whether the other attempts
/// should continue).
fn retryable(policy: &Effective<'_>, status: &Status) -> bool {
    if local_rejection(status) {
        return false;
    }
    if let Some(call) = policy.call_retry {
        return call.retries(status);
    }
    status.code() == Code::Unavailable
        || (policy.idempotent && policy.retry.retryable_codes.contains(&status.code()))
}

/// Whether the gateway refused this attempt itself (see [`LocalError::is_local_rejection`]).
fn local_rejection(status: &Status) -> bool {
    std::error::Error::source(status)
        .and_then(|source| source.downcast_ref::<LocalError>())
        .is_some_and(LocalError::is_local_rejection)
}

/// `delay` from now; a delay too long for the clock means "never" in practice (a year).
fn later(delay: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(delay)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// The delay before retry number `retry` (1 for the first retry), or `None` when the call must
/// not be retried (see the module docs for every rule).
fn retry_delay(
    call: &EdgeCall,
    upstream: &Upstream,
    policy: &Effective<'_>,
    status: &Status,
    retry: u32,
) -> Option<Duration> {
    if retry >= policy.retry.max_attempts || !retryable(policy, status) {
        return None;
    }
    let delay = match pushback(status) {
        Some(None) => return None,
        Some(Some(delay)) => delay,
        None => backoff(&policy.retry, retry),
    };
    if delay >= call.remaining() || !upstream.balancer().has_ready_endpoint() {
        return None;
    }
    // Last, so a retry that would not be sent anyway takes no token.
    if upstream.budget().withdraw() {
        Some(delay)
    } else {
        UpstreamStats::count(&upstream.stats().budget_exhausted);
        None
    }
}

/// `initial × multiplier^(retry−1)`, capped, with ±20 % jitter (gRFC A6 as revised).
fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
    let base = policy.initial_backoff.as_secs_f64() * policy.multiplier.powi(exponent);
    let capped = base.min(policy.max_backoff.as_secs_f64());
    let jitter = rand::rng().random_range(0.8..=1.2);
    Duration::from_secs_f64(capped * jitter)
}

/// The downstream's pushback: `None` without the header, `Some(None)` for "do not retry"
/// (negative or malformed), `Some(Some(delay))` otherwise.
fn pushback(status: &Status) -> Option<Option<Duration>> {
    let value = status.metadata().get(PUSHBACK)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(Duration::from_millis),
    )
}

/// Whether calls to the method of `spec` are safe to repeat: `gateway.toml`'s word, else the
/// proto's.
pub(crate) fn idempotent(upstream: &Upstream, spec: &CallSpec) -> bool {
    upstream
        .policy()
        .methods
        .get(spec.method)
        .and_then(|m| m.idempotent)
        .unwrap_or(spec.defaults.idempotent)
}

/// The policy for one call: `gateway.toml`'s method override, else the proto's defaults, else
/// the upstream's policy.
fn effective<'a>(upstream: &'a Upstream, spec: &CallSpec) -> Effective<'a> {
    let policy = upstream.policy();
    let method = policy.methods.get(spec.method);
    let idempotent = idempotent(upstream, spec);
    let timeout = method
        .and_then(|m| m.timeout)
        .or(spec.timeout)
        .or(spec.defaults.timeout);
    let configured = method.and_then(|m| m.retry.as_ref());
    let call_retry = spec.retry.filter(|_| configured.is_none());
    let retry = match (configured, spec.defaults.max_attempts) {
        (Some(retry), _) => std::borrow::Cow::Borrowed(retry),
        (None, _) if let Some(call) = call_retry => std::borrow::Cow::Owned(RetryPolicy {
            max_attempts: call.max_attempts.clamp(1, MAX_ATTEMPTS),
            initial_backoff: call.initial_backoff.unwrap_or(policy.retry.initial_backoff),
            max_backoff: call.max_backoff.unwrap_or(policy.retry.max_backoff),
            multiplier: call.multiplier.unwrap_or(policy.retry.multiplier),
            retryable_codes: policy.retry.retryable_codes.clone(),
        }),
        (None, Some(max_attempts)) => std::borrow::Cow::Owned(RetryPolicy {
            max_attempts: max_attempts.clamp(1, MAX_ATTEMPTS),
            ..policy.retry.clone()
        }),
        (None, None) => std::borrow::Cow::Borrowed(&policy.retry),
    };
    let hedge = match method.and_then(|m| m.hedge.clone()) {
        Some(hedge) => hedge,
        // `enabled = false` on the upstream is the deployment's switch over the annotations.
        None if policy.hedge == Hedging::Off => None,
        None => spec
            .defaults
            .hedge_delay
            .map(|delay| HedgePolicy {
                delay,
                max_attempts: 2,
            })
            .or_else(|| policy.hedge.policy().cloned()),
    };
    Effective {
        idempotent,
        timeout,
        retry,
        call_retry,
        hedge,
    }
}

#[cfg(test)]
mod tests;
