//! Latency distributions: the text forms used on the command line, and sampling.
//!
//! Real backends are not slow by a constant: most calls are quick and a few are very slow, and
//! hedging or deadline logic only shows its worth against such a tail. Hence distributions
//! (uniform, exponential, normal) next to a fixed delay. Sampling takes any `Rng`, so tests use
//! a seeded one; the text form round-trips through `Display`, so the CLI prints what it reads.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

/// Longest latency accepted anywhere in a [`Latency`]: anything longer is surely a typo, and the
/// bound keeps every conversion (to nanoseconds, to protobuf durations) in range.
pub const MAX_LATENCY: Duration = Duration::from_secs(3_600);

/// Added delay before each call, drawn from a distribution.
///
/// Text form (flags, env vars): `0` or `none` for no delay; `20ms` fixed; `5ms..20ms` uniform;
/// `exp:10ms` exponential with that mean; `normal:10ms,2ms` normal with mean and standard
/// deviation, clamped at zero. Units: `ns`, `us`, `ms`, `s`, `m`; decimals such as `1.5ms`
/// are fine. Prefixes `fixed:` and `uniform:` are accepted too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Latency {
    /// No added delay.
    #[default]
    None,
    /// Always the same delay.
    Fixed(Duration),
    /// Uniform over `min..=max`.
    Uniform {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
    },
    /// Exponential with this mean: mostly short, with a long tail.
    Exponential {
        /// Mean delay.
        mean: Duration,
    },
    /// Normal with this mean and standard deviation, clamped at zero.
    Normal {
        /// Mean delay.
        mean: Duration,
        /// Standard deviation.
        stddev: Duration,
    },
}

impl Latency {
    /// Checks the bounds; the message names the offending field by its proto path.
    pub fn validate(&self) -> Result<(), String> {
        let bounded = |field: &str, d: Duration| {
            if d > MAX_LATENCY {
                Err(format!(
                    "{field} must be at most {}, got {}",
                    format_duration(MAX_LATENCY),
                    format_duration(d)
                ))
            } else {
                Ok(())
            }
        };
        match *self {
            Latency::None => Ok(()),
            Latency::Fixed(delay) => bounded("latency.fixed.delay", delay),
            Latency::Uniform { min, max } => {
                bounded("latency.uniform.min", min)?;
                bounded("latency.uniform.max", max)?;
                if min > max {
                    return Err(format!(
                        "latency.uniform.min must not exceed latency.uniform.max, got {} > {}",
                        format_duration(min),
                        format_duration(max)
                    ));
                }
                Ok(())
            }
            Latency::Exponential { mean } => bounded("latency.exponential.mean", mean),
            Latency::Normal { mean, stddev } => {
                bounded("latency.normal.mean", mean)?;
                bounded("latency.normal.stddev", stddev)
            }
        }
    }

    /// Draws one delay. Never panics, even for an unvalidated value.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(delay) => delay,
            Latency::Uniform { min, max } => {
                let (lo, hi) = (nanos(min), nanos(max));
                if hi <= lo {
                    min
                } else {
                    Duration::from_nanos(rng.random_range(lo..=hi))
                }
            }
            Latency::Exponential { mean } => {
                // Inverse transform; `1 - u` lies in (0, 1], so the logarithm is finite.
                let u: f64 = 1.0 - rng.random::<f64>();
                secs(-mean.as_secs_f64() * u.ln())
            }
            Latency::Normal { mean, stddev } => {
                // Box-Muller: `rand_distr` is not worth a dependency for one formula.
                let u1: f64 = 1.0 - rng.random::<f64>();
                let u2: f64 = rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                secs(mean.as_secs_f64() + stddev.as_secs_f64() * z)
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Seconds to a duration, clamping negatives and NaN to zero.
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO)
}

/// A latency that could not be parsed from text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid latency {input:?}: {reason}")]
pub struct ParseLatencyError {
    input: String,
    reason: String,
}

impl FromStr for Latency {
    type Err = ParseLatencyError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ParseLatencyError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        let latency = if s.is_empty() {
            return Err(error("empty".to_owned()));
        } else if matches!(s, "0" | "none" | "off") {
            Latency::None
        } else if let Some(mean) = s
            .strip_prefix("exp:")
            .or_else(|| s.strip_prefix("exponential:"))
        {
            Latency::Exponential {
                mean: parse_duration(mean).map_err(error)?,
            }
        } else if let Some(rest) = s.strip_prefix("normal:") {
            let (mean, stddev) = rest
                .split_once(',')
                .ok_or_else(|| error("expected normal:MEAN,STDDEV".to_owned()))?;
            Latency::Normal {
                mean: parse_duration(mean).map_err(error)?,
                stddev: parse_duration(stddev).map_err(error)?,
            }
        } else if let Some((min, max)) = s.strip_prefix("uniform:").unwrap_or(s).split_once("..") {
            Latency::Uniform {
                min: parse_duration(min).map_err(error)?,
                max: parse_duration(max).map_err(error)?,
            }
        } else {
            Latency::Fixed(parse_duration(s.strip_prefix("fixed:").unwrap_or(s)).map_err(error)?)
        };
        latency.validate().map_err(error)?;
        Ok(latency)
    }
}

impl fmt::Display for Latency {
    /// The text form accepted by [`FromStr`], so a value prints the way it is typed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Latency::None => f.write_str("0"),
            Latency::Fixed(delay) => f.write_str(&format_duration(delay)),
            Latency::Uniform { min, max } => {
                write!(f, "{}..{}", format_duration(min), format_duration(max))
            }
            Latency::Exponential { mean } => write!(f, "exp:{}", format_duration(mean)),
            Latency::Normal { mean, stddev } => write!(
                f,
                "normal:{},{}",
                format_duration(mean),
                format_duration(stddev)
            ),
        }
    }
}

/// Parses `20ms`, `1.5s`, `250us`, `0` into a duration; exact to the nanosecond.
fn parse_duration(text: &str) -> Result<Duration, String> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err("latency must not be negative".to_owned());
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{s:?} has no unit (use ns, us, ms, s or m)"))?;
    let (number, unit) = s.split_at(split);
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" | "min" => 60 * NANOS_PER_SEC,
        _ => {
            return Err(format!(
                "{s:?} has unknown unit {unit:?} (use ns, us, ms, s or m)"
            ));
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(format!("{s:?} has no number"));
    }
    if fraction.len() > 9 {
        return Err(format!("{s:?} has more than 9 decimal places"));
    }
    let digits = |part: &str| -> Result<u128, String> {
        if part.is_empty() {
            return Ok(0);
        }
        part.parse::<u128>().map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow => format!("{s:?} is too large"),
            _ => format!("{s:?} is not a number"),
        })
    };
    let scale = 10u128.pow(u32::try_from(fraction.len()).unwrap_or(0));
    // Both fit: the fraction is below 10^9 and the unit at most 6 * 10^10.
    let fraction_nanos = digits(fraction)? * unit_nanos / scale;
    let total = digits(whole)?
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos))
        .ok_or_else(|| format!("{s:?} is too large"))?;
    let seconds =
        u64::try_from(total / NANOS_PER_SEC).map_err(|_| format!("{s:?} is too large"))?;
    let subsec = u32::try_from(total % NANOS_PER_SEC).unwrap_or(0);
    Ok(Duration::new(seconds, subsec))
}

/// Formats a duration in the largest unit that shows it exactly.
fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0ms".to_owned()
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
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
    fn latency_text_forms_parse() {
        let cases = [
            ("0", Latency::None),
            ("none", Latency::None),
            ("20ms", Latency::Fixed(ms(20))),
            ("0ms", Latency::Fixed(Duration::ZERO)),
            ("fixed:1s", Latency::Fixed(ms(1_000))),
            ("1.5ms", Latency::Fixed(Duration::from_micros(1_500))),
            (".5s", Latency::Fixed(ms(500))),
            ("250us", Latency::Fixed(Duration::from_micros(250))),
            ("7ns", Latency::Fixed(Duration::from_nanos(7))),
            ("2m", Latency::Fixed(Duration::from_secs(120))),
            (
                "5ms..20ms",
                Latency::Uniform {
                    min: ms(5),
                    max: ms(20),
                },
            ),
            (
                "uniform:0..1s",
                Latency::Uniform {
                    min: Duration::ZERO,
                    max: ms(1_000),
                },
            ),
            ("exp:10ms", Latency::Exponential { mean: ms(10) }),
            (
                "normal:10ms,2ms",
                Latency::Normal {
                    mean: ms(10),
                    stddev: ms(2),
                },
            ),
            (" 20ms ", Latency::Fixed(ms(20))),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Latency>(), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn latency_display_round_trips() {
        for text in [
            "0",
            "20ms",
            "1500us",
            "3s",
            "5ms..20ms",
            "exp:10ms",
            "normal:10ms,2ms",
            "0ms",
        ] {
            let latency: Latency = text.parse().expect(text);
            assert_eq!(latency.to_string(), text);
            assert_eq!(latency.to_string().parse::<Latency>(), Ok(latency));
        }
    }

    #[test]
    fn latency_parse_errors_are_clear() {
        for (text, fragment) in [
            ("", "empty"),
            ("20", "no unit"),
            ("-5ms", "must not be negative"),
            ("5parsecs", "unknown unit"),
            ("ms", "no number"),
            ("1.2.3ms", "not a number"),
            ("1.0000000001s", "decimal places"),
            ("99999999999999999999999999999999999999999s", "too large"),
            ("999999999999999999999s", "too large"),
            ("20ms..5ms", "must not exceed"),
            ("normal:10ms", "MEAN,STDDEV"),
            ("2h", "unknown unit"),
            ("61m", "at most 3600s"),
        ] {
            let err = text.parse::<Latency>().expect_err(text).to_string();
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn samples_stay_in_range_and_are_clamped() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let uniform = Latency::Uniform {
            min: ms(5),
            max: ms(20),
        };
        let normal = Latency::Normal {
            mean: ms(1),
            stddev: ms(10),
        };
        let exp = Latency::Exponential { mean: ms(10) };
        let mut exp_total = Duration::ZERO;
        for _ in 0..10_000 {
            let d = uniform.sample(&mut rng);
            assert!(d >= ms(5) && d <= ms(20));
            // Mostly negative draws: clamped to zero, never a panic.
            let _ = normal.sample(&mut rng);
            exp_total += exp.sample(&mut rng);
        }
        let exp_mean = exp_total / 10_000;
        assert!(exp_mean > ms(9) && exp_mean < ms(11), "{exp_mean:?}");
        assert_eq!(Latency::Fixed(ms(3)).sample(&mut rng), ms(3));
        assert_eq!(Latency::None.sample(&mut rng), Duration::ZERO);
    }
}
