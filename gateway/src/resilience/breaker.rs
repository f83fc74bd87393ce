//! The per-endpoint circuit breaker: when to stop sending calls to one endpoint, and how to find
//! out that it has recovered.
//!
//! The breaker sits *inside* the balancer, one per endpoint, as linkerd2-proxy places it: a
//! breaker in front of a whole upstream would stop every endpoint because one is bad, while a
//! per-endpoint breaker only makes that endpoint not ready, and the balancer simply picks among
//! the others. Only when every endpoint is open does the upstream as a whole fail fast.
//!
//! # States
//!
//! - **Closed**: calls flow; outcomes are counted. The breaker opens when either mode trips:
//!   `consecutive_failures` failures in a row, or (when configured) a failure rate at or above
//!   `threshold` over the last `window`, once at least `min_requests` calls were seen in it.
//! - **Open**: the endpoint is not ready until its backoff has passed. The first backoff is
//!   `backoff_min`; each failed probe doubles it, up to `backoff_max`.
//! - **Probing**: after the backoff, exactly one call is let through. Its outcome decides:
//!   success closes the breaker (and resets the backoff), failure opens it again for longer.
//!   Every other call still sees the endpoint as not ready while the probe is out.
//!
//! Outcomes of calls that were already in flight when the breaker opened are ignored: they say
//! nothing about the endpoint *now*, and counting them would extend an outage past its end.
//!
//! The state machine is plain data driven by the caller's clock (`now` is passed in), so it is
//! tested exhaustively without a runtime; the balancer owns the locking and the logging.

use std::time::Duration;

use tokio::time::Instant;

/// When a breaker opens and how it probes.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerPolicy {
    /// Failures in a row that open the breaker; `0` disables this mode.
    pub consecutive_failures: u32,
    /// The failure-rate mode, off unless configured.
    pub failure_rate: Option<FailureRatePolicy>,
    /// How long an endpoint stays open before the first probe.
    pub backoff_min: Duration,
    /// The longest it stays open between probes.
    pub backoff_max: Duration,
}

/// Open when the share of failed calls over a sliding window reaches a threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureRatePolicy {
    /// Failure share in `(0, 1]` that opens the breaker.
    pub threshold: f64,
    /// How far back calls are counted.
    pub window: Duration,
    /// Calls needed in the window before the rate is trusted.
    pub min_requests: u32,
}

impl Default for BreakerPolicy {
    /// Five consecutive failures open it; probes after 1 s, backing off to 30 s.
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: None,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// What a caller may do with the endpoint right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Closed: send.
    Ready,
    /// The backoff has passed and no probe is out: this call may become the probe.
    ProbeDue,
    /// Open (or probing): do not send; `until` is when a probe is next due, if known.
    NotReady {
        /// When the open state's backoff ends; `None` while a probe is in flight.
        until: Option<Instant>,
    },
}

/// A state change worth logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The breaker opened (or reopened after a failed probe) for `backoff`.
    Opened {
        /// How long until the next probe.
        backoff: Duration,
        /// Why: consecutive failures or failure rate.
        cause: OpenCause,
    },
    /// A probe succeeded; the endpoint takes traffic again.
    Closed,
}

/// Which mode opened the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenCause {
    /// `consecutive_failures` in a row.
    Consecutive,
    /// The failure-rate threshold over the window.
    FailureRate,
    /// The probe call failed.
    ProbeFailed,
}

/// How a call ended, from the breaker's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The endpoint answered in a way that says it is healthy (any status but the failure ones).
    Success,
    /// The endpoint is the likely cause: transport error, `UNAVAILABLE`, `INTERNAL`, ….
    Failure,
}

/// One endpoint's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    state: State,
    consecutive: u32,
    window: RateWindow,
    /// The backoff the next opening will use.
    next_backoff: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    Probing,
}

/// Call counts in ten buckets spanning the failure-rate window.
#[derive(Debug)]
struct RateWindow {
    buckets: [(u32, u32); BUCKETS],
    /// Start of the current bucket and its index.
    current: (Instant, usize),
}

const BUCKETS: usize = 10;

/// Ticket that says whether a call was the probe, so its outcome can be matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ticket {
    /// A regular call made while the breaker was closed.
    Regular,
    /// The single probe call.
    Probe,
}

// === impl Breaker ===

impl Breaker {
    /// A closed breaker.
    pub(crate) fn new(policy: &BreakerPolicy, now: Instant) -> Self {
        Self {
            state: State::Closed,
            consecutive: 0,
            window: RateWindow::new(now),
            next_backoff: policy.backoff_min,
        }
    }

    /// Whether the breaker is open or probing (the endpoint is ejected).
    pub(crate) fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed)
    }

    /// What a caller may do now; never changes the state.
    pub(crate) fn readiness(&self, now: Instant) -> Readiness {
        match self.state {
            State::Closed => Readiness::Ready,
            State::Open { until } if now >= until => Readiness::ProbeDue,
            State::Open { until } => Readiness::NotReady { until: Some(until) },
            State::Probing => Readiness::NotReady { until: None },
        }
    }

    /// Takes the endpoint for one call. Returns `None` when it is not ready; a due probe is
    /// claimed here, so only one caller gets it.
    pub(crate) fn acquire(&mut self, now: Instant) -> Option<Ticket> {
        match self.readiness(now) {
            Readiness::Ready => Some(Ticket::Regular),
            Readiness::ProbeDue => {
                self.state = State::Probing;
                Some(Ticket::Probe)
            }
            Readiness::NotReady { .. } => None,
        }
    }

    /// A claimed probe that ended without an outcome (cancelled by its caller) hands the probe
    /// back, so the next call can take it instead of the endpoint staying probing forever.
    pub(crate) fn release_probe(&mut self, now: Instant) {
        if self.state == State::Probing {
            self.state = State::Open { until: now };
        }
    }

    /// Records how a call ended. `may_open` is false when opening would eject more endpoints
    /// than the balancer allows; the breaker then stays closed (failures keep being counted).
    pub(crate) fn record(
        &mut self,
        policy: &BreakerPolicy,
        ticket: Ticket,
        outcome: Outcome,
        now: Instant,
        may_open: bool,
    ) -> Option<Change> {
        match (self.state, ticket) {
            (State::Probing, Ticket::Probe) => match outcome {
                Outcome::Success => Some(self.close(policy, now)),
                Outcome::Failure => {
                    let backoff = self.next_backoff;
                    self.next_backoff = (backoff * 2).min(policy.backoff_max);
                    self.state = State::Open {
                        until: now + backoff,
                    };
                    Some(Change::Opened {
                        backoff,
                        cause: OpenCause::ProbeFailed,
                    })
                }
            },
            (State::Closed, Ticket::Regular) => {
                self.window.record(policy, outcome, now);
                match outcome {
                    Outcome::Success => {
                        self.consecutive = 0;
                        None
                    }
                    Outcome::Failure => {
                        self.consecutive = self.consecutive.saturating_add(1);
                        let cause = if policy.consecutive_failures > 0
                            && self.consecutive >= policy.consecutive_failures
                        {
                            Some(OpenCause::Consecutive)
                        } else if self.window.tripped(policy, now) {
                            Some(OpenCause::FailureRate)
                        } else {
                            None
                        };
                        let cause = cause.filter(|_| may_open)?;
                        let backoff = self.next_backoff;
                        self.next_backoff = (backoff * 2).min(policy.backoff_max);
                        self.state = State::Open {
                            until: now + backoff,
                        };
                        Some(Change::Opened { backoff, cause })
                    }
                }
            }
            // Late outcomes of calls sent before the breaker opened, or a probe outcome after
            // the state moved on: they describe the past, not the endpoint now.
            _ => None,
        }
    }

    fn close(&mut self, policy: &BreakerPolicy, now: Instant) -> Change {
        self.state = State::Closed;
        self.consecutive = 0;
        self.window = RateWindow::new(now);
        self.next_backoff = policy.backoff_min;
        Change::Closed
    }
}

// === impl RateWindow ===

impl RateWindow {
    fn new(now: Instant) -> Self {
        Self {
            buckets: [(0, 0); BUCKETS],
            current: (now, 0),
        }
    }

    /// Moves the current bucket forward to `now`, clearing the buckets that fell out.
    fn advance(&mut self, window: Duration, now: Instant) {
        let width = (window / BUCKETS as u32).max(Duration::from_millis(1));
        let (mut start, mut index) = self.current;
        let mut cleared = 0;
        while now.saturating_duration_since(start) >= width && cleared <= BUCKETS {
            start += width;
            index = (index + 1) % BUCKETS;
            self.buckets[index] = (0, 0);
            cleared += 1;
        }
        if cleared > BUCKETS {
            // Idle for longer than the whole window: everything is stale.
            start = now;
        }
        self.current = (start, index);
    }

    fn record(&mut self, policy: &BreakerPolicy, outcome: Outcome, now: Instant) {
        let Some(rate) = &policy.failure_rate else {
            return;
        };
        self.advance(rate.window, now);
        let bucket = &mut self.buckets[self.current.1];
        match outcome {
            Outcome::Success => bucket.0 = bucket.0.saturating_add(1),
            Outcome::Failure => bucket.1 = bucket.1.saturating_add(1),
        }
    }

    fn tripped(&self, policy: &BreakerPolicy, _now: Instant) -> bool {
        let Some(rate) = &policy.failure_rate else {
            return false;
        };
        let (ok, failed) = self
            .buckets
            .iter()
            .fold((0u64, 0u64), |(ok, failed), &(s, f)| {
                (ok + u64::from(s), failed + u64::from(f))
            });
        let total = ok + failed;
        total >= u64::from(rate.min_requests)
            && total > 0
            && failed as f64 / total as f64 >= rate.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            consecutive_failures: 3,
            failure_rate: None,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(4),
        }
    }

    fn fail(breaker: &mut Breaker, policy: &BreakerPolicy, now: Instant) -> Option<Change> {
        let ticket = breaker.acquire(now).expect("ready");
        breaker.record(policy, ticket, Outcome::Failure, now, true)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_a_success_resets_the_count() {
        let policy = policy();
        let start = Instant::now();
        let mut breaker = Breaker::new(&policy, start);
        assert_eq!(fail(&mut breaker, &policy, start), None);
        assert_eq!(fail(&mut breaker, &policy, start), None);
        let ticket = breaker.acquire(start).expect("ready");
        assert_eq!(
            breaker.record(&policy, ticket, Outcome::Success, start, true),
            None
        );
        assert_eq!(fail(&mut breaker, &policy, start), None);
        assert_eq!(fail(&mut breaker, &policy, start), None);
        assert_eq!(
            fail(&mut breaker, &policy, start),
            Some(Change::Opened {
                backoff: Duration::from_secs(1),
                cause: OpenCause::Consecutive
            })
        );
        assert!(breaker.is_open());
        assert_eq!(
            breaker.readiness(start),
            Readiness::NotReady {
                until: Some(start + Duration::from_secs(1))
            }
        );
        assert_eq!(breaker.acquire(start), None);
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_after_the_backoff_decides() {
        let policy = policy();
        let start = Instant::now();
        let mut breaker = Breaker::new(&policy, start);
        for _ in 0..3 {
            fail(&mut breaker, &policy, start);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        let now = Instant::now();
        assert_eq!(breaker.readiness(now), Readiness::ProbeDue);
        let probe = breaker.acquire(now).expect("the probe");
        assert_eq!(probe, Ticket::Probe);
        assert_eq!(breaker.acquire(now), None, "only one probe at a time");
        assert_eq!(breaker.readiness(now), Readiness::NotReady { until: None });

        // The probe fails: open again, twice as long.
        assert_eq!(
            breaker.record(&policy, probe, Outcome::Failure, now, true),
            Some(Change::Opened {
                backoff: Duration::from_secs(2),
                cause: OpenCause::ProbeFailed
            })
        );
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert_eq!(breaker.acquire(Instant::now()), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = breaker.acquire(Instant::now()).expect("second probe");
        assert_eq!(
            breaker.record(&policy, probe, Outcome::Failure, Instant::now(), true),
            Some(Change::Opened {
                backoff: Duration::from_secs(4),
                cause: OpenCause::ProbeFailed
            })
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        let probe = breaker.acquire(Instant::now()).expect("third probe");
        assert_eq!(
            breaker.record(&policy, probe, Outcome::Failure, Instant::now(), true),
            Some(Change::Opened {
                backoff: Duration::from_secs(4),
                cause: OpenCause::ProbeFailed
            }),
            "capped at backoff_max"
        );

        // Recovery: the probe succeeds and the backoff starts over.
        tokio::time::advance(Duration::from_secs(4)).await;
        let probe = breaker.acquire(Instant::now()).expect("fourth probe");
        assert_eq!(
            breaker.record(&policy, probe, Outcome::Success, Instant::now(), true),
            Some(Change::Closed)
        );
        assert!(!breaker.is_open());
        for _ in 0..3 {
            fail(&mut breaker, &policy, Instant::now());
        }
        assert_eq!(
            breaker.readiness(Instant::now()),
            Readiness::NotReady {
                until: Some(Instant::now() + Duration::from_secs(1))
            },
            "backoff reset after closing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn late_outcomes_of_calls_sent_before_opening_are_ignored() {
        let policy = policy();
        let now = Instant::now();
        let mut breaker = Breaker::new(&policy, now);
        let in_flight = breaker.acquire(now).expect("ready");
        for _ in 0..3 {
            fail(&mut breaker, &policy, now);
        }
        assert_eq!(
            breaker.record(&policy, in_flight, Outcome::Success, now, true),
            None
        );
        assert!(breaker.is_open(), "a late success does not close it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_is_handed_back() {
        let policy = policy();
        let now = Instant::now();
        let mut breaker = Breaker::new(&policy, now);
        for _ in 0..3 {
            fail(&mut breaker, &policy, now);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        let now = Instant::now();
        assert_eq!(breaker.acquire(now), Some(Ticket::Probe));
        breaker.release_probe(now);
        assert_eq!(breaker.acquire(now), Some(Ticket::Probe));
    }

    #[tokio::test(start_paused = true)]
    async fn stays_closed_when_the_balancer_forbids_more_ejections() {
        let policy = policy();
        let now = Instant::now();
        let mut breaker = Breaker::new(&policy, now);
        for _ in 0..10 {
            let ticket = breaker.acquire(now).expect("ready");
            assert_eq!(
                breaker.record(&policy, ticket, Outcome::Failure, now, false),
                None
            );
        }
        assert!(!breaker.is_open());
        let ticket = breaker.acquire(now).expect("ready");
        assert!(
            breaker
                .record(&policy, ticket, Outcome::Failure, now, true)
                .is_some(),
            "opens as soon as it is allowed to"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failure_rate_mode_needs_enough_calls_in_the_window() {
        let policy = BreakerPolicy {
            consecutive_failures: 0,
            failure_rate: Some(FailureRatePolicy {
                threshold: 0.5,
                window: Duration::from_secs(10),
                min_requests: 10,
            }),
            ..policy()
        };
        let mut breaker = Breaker::new(&policy, Instant::now());
        let record = |breaker: &mut Breaker, outcome| {
            let now = Instant::now();
            let ticket = breaker.acquire(now).expect("ready");
            breaker.record(&policy, ticket, outcome, now, true)
        };
        // Alternating success and failure: 50 %, but the first nine calls are too few.
        for i in 0..9 {
            let outcome = if i % 2 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            assert_eq!(record(&mut breaker, outcome), None, "call {i}");
        }
        assert_eq!(
            record(&mut breaker, Outcome::Success),
            None,
            "a success never opens it, even at 5 of 10 failed"
        );
        assert_eq!(
            record(&mut breaker, Outcome::Failure),
            Some(Change::Opened {
                backoff: Duration::from_secs(1),
                cause: OpenCause::FailureRate
            }),
            "6 of 11 failed"
        );

        // Old calls leave the window: after it has passed, the rate starts over.
        let mut breaker = Breaker::new(&policy, Instant::now());
        for _ in 0..8 {
            record(&mut breaker, Outcome::Failure);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        for _ in 0..8 {
            assert_eq!(record(&mut breaker, Outcome::Success), None);
        }
        assert_eq!(
            record(&mut breaker, Outcome::Failure),
            None,
            "1 of 9 in the window"
        );
    }
}
