//! Peak-EWMA latency estimate of one endpoint, the load signal of the balancer.
//!
//! Finagle's peak-EWMA (also what `tower::load::PeakEwma` and linkerd use): a latency above the
//! current estimate replaces it at once (the *peak*), so an endpoint that turns slow is avoided
//! on its next call; a latency below it is blended in with a weight that depends on how long
//! ago the last observation was, so the estimate follows recovery smoothly. The estimate also
//! decays toward zero while nothing is observed, so an endpoint that was once slow and has since
//! received no calls is tried again eventually rather than starved forever. The starting
//! estimate stands only until the first observation, which replaces it: a history of one call
//! says more about an endpoint than a guess does.
//!
//! tower's `PeakEwma` wraps a service and needs tower's `Balance` around it; our balancer is
//! shared by every clone of an upstream and counts outstanding calls itself, so the estimate is
//! kept here as plain data under the endpoint's lock.

use std::time::Duration;

use tokio::time::Instant;

/// The estimate a new endpoint starts with, before any call measured it.
pub(super) const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// How fast old observations lose weight.
pub(super) const DECAY: Duration = Duration::from_secs(10);

/// A peak-sensitive, exponentially weighted moving average of response latency.
#[derive(Debug)]
pub(crate) struct PeakEwma {
    estimate_ns: f64,
    updated: Instant,
    measured: bool,
}

// === impl PeakEwma ===

impl PeakEwma {
    /// Starts at [`DEFAULT_RTT`].
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            estimate_ns: DEFAULT_RTT.as_nanos() as f64,
            updated: now,
            measured: false,
        }
    }

    /// The estimate at `now`, decayed for the time since the last observation.
    pub(crate) fn estimate_ns(&self, now: Instant) -> f64 {
        self.estimate_ns * self.weight(now)
    }

    /// Whether any latency was observed yet (before that the estimate is only a guess).
    pub(crate) fn measured(&self) -> bool {
        self.measured
    }

    /// Blends in one observed latency.
    pub(crate) fn observe(&mut self, rtt: Duration, now: Instant) {
        let rtt_ns = rtt.as_nanos() as f64;
        let weight = self.weight(now);
        let decayed = self.estimate_ns * weight;
        self.estimate_ns = if !self.measured || rtt_ns > decayed {
            rtt_ns
        } else {
            decayed + rtt_ns * (1.0 - weight)
        };
        self.measured = true;
        self.updated = now;
    }

    /// `exp(-elapsed / DECAY)`: 1 right after an observation, toward 0 as it ages.
    fn weight(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_nanos() as f64;
        (-elapsed / DECAY.as_nanos() as f64).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_answer_is_taken_at_once_and_fast_ones_blend_in() {
        let mut ewma = PeakEwma::new(Instant::now());
        let start_ns = DEFAULT_RTT.as_nanos() as f64;
        assert_eq!(ewma.estimate_ns(Instant::now()), start_ns);

        ewma.observe(Duration::from_millis(2), Instant::now());
        assert_eq!(
            ewma.estimate_ns(Instant::now()),
            2e6,
            "the first observation replaces the guess"
        );
        ewma.observe(Duration::from_millis(200), Instant::now());
        assert_eq!(ewma.estimate_ns(Instant::now()), 200e6, "the peak wins");

        tokio::time::advance(Duration::from_secs(1)).await;
        ewma.observe(Duration::from_millis(1), Instant::now());
        let after = ewma.estimate_ns(Instant::now());
        let weight = (-0.1f64).exp();
        let expected = 200e6 * weight + 1e6 * (1.0 - weight);
        assert!((after - expected).abs() < 1.0, "{after} vs {expected}");

        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(
            ewma.estimate_ns(Instant::now()) < 1e6,
            "an idle estimate decays so the endpoint is tried again"
        );
    }
}
