//! What to inject: the fault configuration, its validation, and the per-call draw.
//!
//! The configuration is a plain value, validated once when it is installed, so the per-call
//! path never has to handle bad input. Drawing a call's fate ([`FaultConfig::plan`]) is a pure
//! function of the configuration and a random source, which keeps the statistics testable with
//! a seeded generator and the timing testable on paused time.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use tonic::Code;

use super::codes::error_code_name;
use super::latency::Latency;

/// What to do to each call of a demo service's own methods.
///
/// Applied in order: wait a delay drawn from `latency`; then, with probability `hang_rate`,
/// never answer (only the client's deadline or cancellation, or the server stopping, ends the
/// call); otherwise, with probability `error_rate`, answer with `error_code`; otherwise call
/// the service. So the chance of an injected error is `(1 - hang_rate) * error_rate`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Added delay before each call.
    pub latency: Latency,
    /// Probability in `[0, 1]` of answering with `error_code`.
    pub error_rate: f64,
    /// Status code of injected failures; never [`Code::Ok`].
    pub error_code: Code,
    /// Probability in `[0, 1]` of never answering.
    pub hang_rate: f64,
}

impl Default for FaultConfig {
    /// No faults; injected failures, once enabled, default to UNAVAILABLE, the code a real
    /// overloaded or restarting backend returns.
    fn default() -> Self {
        FaultConfig {
            latency: Latency::None,
            error_rate: 0.0,
            error_code: Code::Unavailable,
            hang_rate: 0.0,
        }
    }
}

impl FaultConfig {
    /// Checks every field; the message names the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        self.latency.validate()?;
        probability("error_rate", self.error_rate)?;
        probability("hang_rate", self.hang_rate)?;
        if self.error_code == Code::Ok {
            return Err("error_code must not be OK: an injected failure has to fail".to_owned());
        }
        Ok(())
    }

    /// Whether this configuration changes nothing.
    pub fn is_noop(&self) -> bool {
        self.latency == Latency::None && self.error_rate == 0.0 && self.hang_rate == 0.0
    }

    /// Draws the fate of one call.
    pub(crate) fn plan<R: Rng + ?Sized>(&self, rng: &mut R) -> FaultPlan {
        let delay = self.latency.sample(rng);
        let action = if happens(rng, self.hang_rate) {
            FaultAction::Hang
        } else if happens(rng, self.error_rate) {
            FaultAction::Fail(self.error_code)
        } else {
            FaultAction::Proceed
        };
        FaultPlan { delay, action }
    }
}

impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency={} error_rate={} error_code={} hang_rate={}",
            self.latency,
            self.error_rate,
            error_code_name(self.error_code),
            self.hang_rate
        )
    }
}

fn probability(field: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("{field} must be between 0 and 1, got {p}"))
    }
}

/// A coin with probability `p` (outside `[0, 1]` behaves as clamped; NaN never happens).
fn happens<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

/// The drawn fate of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FaultPlan {
    /// Wait this long first.
    pub(crate) delay: Duration,
    /// Then do this.
    pub(crate) action: FaultAction,
}

/// What happens to a call after its delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultAction {
    /// Call the service.
    Proceed,
    /// Answer with this status code.
    Fail(Code),
    /// Never answer.
    Hang,
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn validation_names_the_field() {
        let ok = FaultConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        assert!(ok.is_noop());
        for (config, message) in [
            (
                FaultConfig {
                    error_rate: 1.5,
                    ..FaultConfig::default()
                },
                "error_rate must be between 0 and 1, got 1.5",
            ),
            (
                FaultConfig {
                    hang_rate: -0.1,
                    ..FaultConfig::default()
                },
                "hang_rate must be between 0 and 1, got -0.1",
            ),
            (
                FaultConfig {
                    hang_rate: f64::NAN,
                    ..FaultConfig::default()
                },
                "hang_rate must be between 0 and 1, got NaN",
            ),
            (
                FaultConfig {
                    error_code: Code::Ok,
                    ..FaultConfig::default()
                },
                "error_code must not be OK: an injected failure has to fail",
            ),
            (
                FaultConfig {
                    latency: Latency::Uniform {
                        min: ms(9),
                        max: ms(1),
                    },
                    ..FaultConfig::default()
                },
                "latency.uniform.min must not exceed latency.uniform.max, got 9ms > 1ms",
            ),
            (
                FaultConfig {
                    latency: Latency::Fixed(Duration::from_secs(7_200)),
                    ..FaultConfig::default()
                },
                "latency.fixed.delay must be at most 3600s, got 7200s",
            ),
        ] {
            assert_eq!(config.validate(), Err(message.to_owned()));
        }
    }

    #[test]
    fn plans_follow_the_rates() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let always_fail = FaultConfig {
            error_rate: 1.0,
            error_code: Code::Internal,
            ..FaultConfig::default()
        };
        let always_hang = FaultConfig {
            hang_rate: 1.0,
            error_rate: 1.0,
            ..FaultConfig::default()
        };
        for _ in 0..100 {
            assert_eq!(
                FaultConfig::default().plan(&mut rng).action,
                FaultAction::Proceed
            );
            assert_eq!(
                always_fail.plan(&mut rng).action,
                FaultAction::Fail(Code::Internal)
            );
            assert_eq!(always_hang.plan(&mut rng).action, FaultAction::Hang);
        }
        let tenth = FaultConfig {
            error_rate: 0.1,
            latency: Latency::Fixed(ms(4)),
            ..FaultConfig::default()
        };
        let plans: Vec<FaultPlan> = (0..10_000).map(|_| tenth.plan(&mut rng)).collect();
        let failed = plans
            .iter()
            .filter(|p| matches!(p.action, FaultAction::Fail(_)))
            .count();
        assert!((800..1_200).contains(&failed), "{failed} of 10000 failed");
        assert!(plans.iter().all(|p| p.delay == ms(4)));
    }
}
