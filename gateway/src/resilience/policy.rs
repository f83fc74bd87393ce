//! Resilience policy of one upstream, as validated from `gateway.toml`.
//!
//! Every field has a default that is safe with no configuration at all: calls are bounded,
//! `UNAVAILABLE` is retried within a 20 % budget, bad endpoints are ejected, and nothing waits
//! in an unbounded queue. Per-method overrides refine the retry, hedging and timeout rules for
//! single downstream methods; proto annotations on a downstream method give *its* defaults,
//! which `gateway.toml` can still override (the deployment has the last word).

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::Code;

pub use super::breaker::{BreakerPolicy, FailureRatePolicy};

/// All resilience settings of one upstream.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamPolicy {
    /// Calls in flight to the upstream at once; more are shed with `RESOURCE_EXHAUSTED`.
    pub max_concurrent: usize,
    /// HTTP/2 connections kept per endpoint.
    pub connections_per_endpoint: usize,
    /// How long a call may wait for some endpoint to become ready (a breaker to half-open)
    /// before failing with `UNAVAILABLE`; once the upstream has had no ready endpoint for this
    /// long, calls fail at once without waiting.
    pub ready_timeout: Duration,
    /// Share of endpoints (percent) that breakers may eject at once. At least one endpoint may
    /// always be ejected, so a single-endpoint upstream still fails fast when it is down; with
    /// two or more endpoints, at least one always stays in rotation.
    pub max_ejection_percent: u8,
    /// When endpoints are ejected.
    pub breaker: BreakerPolicy,
    /// Retries of typed downstream calls.
    pub retry: RetryPolicy,
    /// Hedging of idempotent typed calls.
    pub hedge: Hedging,
    /// The retry budget shared by every call to this upstream.
    pub budget: BudgetPolicy,
    /// How often endpoint host names are resolved again.
    pub dns_refresh: Duration,
    /// The largest pass-through request body kept so that the call can be retried after a
    /// connection reset (idempotent single-request methods only); `0` turns that off.
    pub max_replay_bytes: usize,
    /// Per-method overrides by `package.Service/Method`.
    pub methods: BTreeMap<String, MethodPolicy>,
}

/// When and how typed calls are retried (gRFC A6).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off; at most 5.
    pub max_attempts: u32,
    /// Backoff before the first retry; each next one is `multiplier` times longer.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// Backoff growth per attempt.
    pub multiplier: f64,
    /// Codes retried for idempotent methods, beyond `UNAVAILABLE` (which is always retried).
    pub retryable_codes: Vec<Code>,
}

/// Hedging: extra attempts of an idempotent call sent while the first is still out.
#[derive(Clone, Debug, PartialEq)]
pub struct HedgePolicy {
    /// Time after each attempt before the next is sent.
    pub delay: Duration,
    /// Attempts in all, the first included; at most 5.
    pub max_attempts: u32,
}

/// Hedging of an upstream's idempotent typed calls, as `[upstreams.NAME.hedge]` sets it.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Hedging {
    /// No section: a method hedges only when its proto annotation asks (`hedge_delay`).
    #[default]
    Unset,
    /// `enabled = false`: no hedging on this upstream, whatever the protos ask for (a method's
    /// own `gateway.toml` override still applies).
    Off,
    /// Every idempotent method is hedged with this policy (a proto's `hedge_delay` still sets
    /// its method's own delay).
    On(HedgePolicy),
}

impl Hedging {
    /// The policy when hedging is on.
    pub fn policy(&self) -> Option<&HedgePolicy> {
        match self {
            Self::On(policy) => Some(policy),
            Self::Unset | Self::Off => None,
        }
    }
}

/// The retry budget: retries may add at most `ratio` of the calls made over `ttl`, plus
/// `min_per_second` so that quiet upstreams can still retry.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetPolicy {
    /// Retries allowed per original call, as a share (0.2 = 20 %; `percent = 20` in
    /// `gateway.toml`).
    pub ratio: f32,
    /// Retries per second allowed regardless of traffic.
    pub min_per_second: u32,
    /// How long a call's deposit counts.
    pub ttl: Duration,
}

/// Settings for one downstream method; unset fields fall back to the annotation, then to the
/// upstream's policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodPolicy {
    /// Per-call timeout.
    pub timeout: Option<Duration>,
    /// Whether the method is safe to repeat.
    pub idempotent: Option<bool>,
    /// Retry rules.
    pub retry: Option<RetryPolicy>,
    /// Hedging rules; `Some(None)` turns hedging off.
    pub hedge: Option<Option<HedgePolicy>>,
}

/// The hard cap on attempts from gRFC A6.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

impl Default for UpstreamPolicy {
    fn default() -> Self {
        Self {
            max_concurrent: 1024,
            connections_per_endpoint: 2,
            ready_timeout: Duration::from_secs(1),
            max_ejection_percent: 10,
            breaker: BreakerPolicy::default(),
            retry: RetryPolicy::default(),
            hedge: Hedging::Unset,
            budget: BudgetPolicy::default(),
            dns_refresh: Duration::from_secs(30),
            max_replay_bytes: 64 * 1024,
            methods: BTreeMap::new(),
        }
    }
}

impl Default for RetryPolicy {
    /// Three attempts, 25 ms then 50 ms (±20 % jitter), `UNAVAILABLE` only.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            retryable_codes: Vec::new(),
        }
    }
}

impl Default for BudgetPolicy {
    /// 20 % over 10 s, plus 10 retries per second.
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

// === impl UpstreamPolicy ===

impl UpstreamPolicy {
    /// How many endpoints out of `total` breakers may eject at once.
    pub fn max_ejected(&self, total: usize) -> usize {
        match total {
            0 => 0,
            1 => 1,
            n => (n * usize::from(self.max_ejection_percent) / 100).clamp(1, n - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejection_cap_ejects_at_least_one_and_keeps_at_least_one() {
        let policy = UpstreamPolicy::default();
        assert_eq!(policy.max_ejected(0), 0);
        assert_eq!(policy.max_ejected(1), 1, "a lone endpoint can fail fast");
        assert_eq!(policy.max_ejected(2), 1);
        assert_eq!(policy.max_ejected(3), 1);
        assert_eq!(policy.max_ejected(30), 3, "10 %");
        let all = UpstreamPolicy {
            max_ejection_percent: 100,
            ..UpstreamPolicy::default()
        };
        assert_eq!(all.max_ejected(4), 3, "one always stays");
    }
}
