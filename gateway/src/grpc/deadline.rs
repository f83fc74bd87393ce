//! Deadlines as gRPC carries them: the `grpc-timeout` header, read and written, and the
//! absolute [`Deadline`] of one call.
//!
//! This is the one deadline concept of the gateway. A call's deadline is fixed once, where the
//! call enters (the edge call for composed handlers, `EdgeCall`; the deadline layer for
//! pass-through calls), as an instant and the timeout it came from; every layer below reads the
//! instant, and whoever sends a request writes the time left as `grpc-timeout`.

use std::time::Duration;

use http::HeaderMap;
use tokio::time::Instant;

use super::headers::GRPC_TIMEOUT;

/// The largest `grpc-timeout` the wire format can carry (8 digits of hours). Longer budgets are
/// cut to it, so a deadline can always be written as a header.
pub(crate) const MAX_GRPC_TIMEOUT: Duration = Duration::from_secs(99_999_999 * 3600);

/// The absolute deadline of a call, in its request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline {
    /// When the call must be answered by.
    pub(crate) at: Instant,
    /// The `grpc-timeout` it was computed from (so `at - timeout` is when the call arrived).
    pub(crate) timeout: Duration,
}

impl Deadline {
    /// The deadline `timeout` from now (cut to what `grpc-timeout` can carry).
    pub(crate) fn after(timeout: Duration) -> Deadline {
        let timeout = timeout.min(MAX_GRPC_TIMEOUT);
        let now = Instant::now();
        // `checked_add` cannot fail under MAX_GRPC_TIMEOUT on real clocks; if it ever did, an
        // already-passed deadline fails the call cleanly instead of panicking.
        Deadline {
            at: now.checked_add(timeout).unwrap_or(now),
            timeout,
        }
    }

    /// The deadline a request's well-formed `grpc-timeout` header asks for, from now.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Deadline> {
        headers
            .get(GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(Deadline::after)
    }

    /// Time left; zero once it has passed.
    pub(crate) fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit, `H` (hours), `M` (minutes),
/// `S` (seconds), `m` (milliseconds), `u` (microseconds) or `n` (nanoseconds), per the gRPC
/// over HTTP/2 spec. Anything else is `None`.
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit_at = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..unit_at)?, value.get(unit_at..)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 99_999_999, so no unit below overflows.
    let amount: u64 = digits.parse().ok()?;
    match unit {
        "H" => Some(Duration::from_secs(amount * 3600)),
        "M" => Some(Duration::from_secs(amount * 60)),
        "S" => Some(Duration::from_secs(amount)),
        "m" => Some(Duration::from_millis(amount)),
        "u" => Some(Duration::from_micros(amount)),
        "n" => Some(Duration::from_nanos(amount)),
        _ => None,
    }
}

/// Formats a `grpc-timeout` value (at most 8 digits and a unit), rounding down so the value
/// never promises more time than `timeout`.
pub(crate) fn grpc_timeout_value(timeout: Duration) -> http::HeaderValue {
    const MAX: u128 = 99_999_999;
    let text = if timeout.as_micros() <= MAX {
        format!("{}u", timeout.as_micros())
    } else if timeout.as_millis() <= MAX {
        format!("{}m", timeout.as_millis())
    } else if u128::from(timeout.as_secs()) <= MAX {
        format!("{}S", timeout.as_secs())
    } else {
        format!("{}H", (u128::from(timeout.as_secs()) / 3600).min(MAX))
    };
    // ASCII digits and a letter: always a valid header value.
    http::HeaderValue::try_from(text).unwrap_or(http::HeaderValue::from_static("0u"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_grpc_timeout_unit() {
        let cases = [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("50m", Duration::from_millis(50)),
            ("5u", Duration::from_micros(5)),
            ("6n", Duration::from_nanos(6)),
            ("0m", Duration::ZERO),
            ("99999999H", MAX_GRPC_TIMEOUT),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_grpc_timeout(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_grpc_timeouts() {
        for text in [
            "",
            "m",
            "5",
            "123456789m",
            "5x",
            "-5m",
            "+5m",
            " 5m",
            "5 m",
            "5mm",
            "5é",
            "é",
            "1.5S",
        ] {
            assert_eq!(parse_grpc_timeout(text), None, "{text:?}");
        }
    }

    #[test]
    fn grpc_timeout_values_round_down_and_fit_eight_digits() {
        let cases = [
            (Duration::from_micros(1_500), "1500u"),
            (Duration::from_nanos(1_999), "1u"),
            (Duration::from_secs(99), "99000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(200_000), "200000S"),
            (Duration::from_secs(400_000_000), "111111H"),
        ];
        for (timeout, text) in cases {
            assert_eq!(grpc_timeout_value(timeout), text, "{timeout:?}");
            let parsed = parse_grpc_timeout(text).expect("parses");
            assert!(parsed <= timeout);
        }
    }
}
