//! Timestamps and durations in expressions (`google.protobuf.Timestamp` and `Duration`, as
//! prost stores them): comparison, arithmetic, calendar fields in UTC, and formatting.
//!
//! Values are normalized before they are compared or combined (nanos in `0..1e9` with the sign
//! carried by the seconds), so `{1s, -1ns}` equals `{0s, 999999999ns}`. Timestamps stay in the
//! range the proto allows (years 1 to 9999): an operation leaving it fails with
//! `INVALID_ARGUMENT` naming the expression, as integer overflow does. The calendar is UTC.

use std::cmp::Ordering;
use std::fmt::Write as _;

use prost_types::{Duration, Timestamp};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Status;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// `0001-01-01T00:00:00Z` and `9999-12-31T23:59:59.999999999Z`, as the proto bounds them.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// A timestamp or a duration, as total nanoseconds.
pub trait TimeValue {
    /// The value in nanoseconds (since the epoch, for a timestamp).
    fn nanos(&self) -> i128;
}

impl TimeValue for Timestamp {
    fn nanos(&self) -> i128 {
        i128::from(self.seconds) * NANOS_PER_SECOND + i128::from(self.nanos)
    }
}

impl TimeValue for Duration {
    fn nanos(&self) -> i128 {
        i128::from(self.seconds) * NANOS_PER_SECOND + i128::from(self.nanos)
    }
}

fn out_of_range(expr: &str) -> Status {
    Status::invalid_argument(format!("`{expr}` is out of the range of timestamps"))
}

/// The timestamp `nanos` after the epoch, within the proto's range.
fn timestamp_of(nanos: i128, expr: &str) -> Result<Timestamp, Status> {
    let seconds = nanos.div_euclid(NANOS_PER_SECOND);
    let seconds = i64::try_from(seconds)
        .ok()
        .filter(|s| (MIN_SECONDS..=MAX_SECONDS).contains(s))
        .ok_or_else(|| out_of_range(expr))?;
    Ok(Timestamp {
        seconds,
        nanos: nanos.rem_euclid(NANOS_PER_SECOND) as i32,
    })
}

/// The duration of `nanos`, nanos with the sign of the seconds (as the proto wants).
fn duration_of(nanos: i128, expr: &str) -> Result<Duration, Status> {
    let seconds = i64::try_from(nanos / NANOS_PER_SECOND)
        .map_err(|_| Status::invalid_argument(format!("`{expr}` overflows a duration")))?;
    Ok(Duration {
        seconds,
        nanos: (nanos % NANOS_PER_SECOND) as i32,
    })
}

/// How two timestamps, or two durations, compare.
pub fn time_cmp<T: TimeValue>(a: &T, b: &T) -> Ordering {
    a.nanos().cmp(&b.nanos())
}

/// `ts + d`.
pub fn timestamp_add(ts: &Timestamp, d: &Duration, expr: &str) -> Result<Timestamp, Status> {
    timestamp_of(ts.nanos() + d.nanos(), expr)
}

/// `ts - d`.
pub fn timestamp_sub(ts: &Timestamp, d: &Duration, expr: &str) -> Result<Timestamp, Status> {
    timestamp_of(ts.nanos() - d.nanos(), expr)
}

/// `a - b` between timestamps: how long from `b` to `a`.
pub fn timestamp_diff(a: &Timestamp, b: &Timestamp, expr: &str) -> Result<Duration, Status> {
    duration_of(a.nanos() - b.nanos(), expr)
}

/// `a + b` between durations.
pub fn duration_add(a: &Duration, b: &Duration, expr: &str) -> Result<Duration, Status> {
    duration_of(a.nanos() + b.nanos(), expr)
}

/// `a - b` between durations.
pub fn duration_sub(a: &Duration, b: &Duration, expr: &str) -> Result<Duration, Status> {
    duration_of(a.nanos() - b.nanos(), expr)
}

/// `-d`.
pub fn duration_neg(d: &Duration, expr: &str) -> Result<Duration, Status> {
    duration_of(-d.nanos(), expr)
}

/// The current time (`now()`), read where the expression is evaluated.
pub fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}

/// `timestamp(text)`: an RFC 3339 timestamp, such as `2026-12-01T10:00:00Z` or with an offset.
pub fn timestamp_parse(text: &str, expr: &str) -> Result<Timestamp, Status> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        Status::invalid_argument(format!(
            "`{expr}`: `{text}` is not an RFC 3339 timestamp (such as 2026-12-01T10:00:00Z)"
        ))
    })?;
    timestamp_of(parsed.unix_timestamp_nanos(), expr)
}

/// `timestamp(seconds)`: the time `seconds` after the epoch.
pub fn timestamp_from_unix(seconds: i64, expr: &str) -> Result<Timestamp, Status> {
    timestamp_of(i128::from(seconds) * NANOS_PER_SECOND, expr)
}

/// `int(ts)`: whole seconds since the epoch, rounded down.
pub fn timestamp_unix(ts: &Timestamp) -> i64 {
    ts.nanos().div_euclid(NANOS_PER_SECOND) as i64
}

fn date_time(ts: &Timestamp, expr: &str) -> Result<OffsetDateTime, Status> {
    OffsetDateTime::from_unix_timestamp_nanos(ts.nanos()).map_err(|_| out_of_range(expr))
}

/// `string(ts)`: RFC 3339 in UTC, with as many fractional digits as the value needs.
pub fn timestamp_string(ts: &Timestamp, expr: &str) -> Result<String, Status> {
    date_time(ts, expr)?
        .format(&Rfc3339)
        .map_err(|_| out_of_range(expr))
}

/// `string(d)`: seconds with an `s`, as proto3 JSON writes durations (`90s`, `1.5s`, `-0.25s`).
pub fn duration_string(d: &Duration) -> String {
    let nanos = d.nanos();
    let sign = if nanos < 0 { "-" } else { "" };
    let nanos = nanos.unsigned_abs();
    let (seconds, fraction) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    if fraction == 0 {
        return format!("{sign}{seconds}s");
    }
    let digits = format!("{fraction:09}");
    format!("{sign}{seconds}.{}s", digits.trim_end_matches('0'))
}

/// A calendar field of a timestamp, in UTC, numbered as CEL does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimePart {
    /// `getFullYear()`: the year.
    FullYear,
    /// `getMonth()`: 0 (January) to 11.
    Month,
    /// `getDate()`: the day of the month, 1 to 31.
    Date,
    /// `getDayOfMonth()`: the day of the month, 0 to 30.
    DayOfMonth,
    /// `getDayOfWeek()`: 0 (Sunday) to 6.
    DayOfWeek,
    /// `getDayOfYear()`: 0 to 365.
    DayOfYear,
    /// `getHours()`: 0 to 23.
    Hours,
    /// `getMinutes()`: 0 to 59.
    Minutes,
    /// `getSeconds()`: 0 to 59.
    Seconds,
    /// `getMilliseconds()`: 0 to 999.
    Milliseconds,
}

/// One calendar field of `ts`, in UTC.
pub fn timestamp_get(ts: &Timestamp, part: TimePart, expr: &str) -> Result<i64, Status> {
    let at = date_time(ts, expr)?;
    Ok(match part {
        TimePart::FullYear => i64::from(at.year()),
        TimePart::Month => i64::from(u8::from(at.month())) - 1,
        TimePart::Date => i64::from(at.day()),
        TimePart::DayOfMonth => i64::from(at.day()) - 1,
        TimePart::DayOfWeek => i64::from(at.weekday().number_days_from_sunday()),
        TimePart::DayOfYear => i64::from(at.ordinal()) - 1,
        TimePart::Hours => i64::from(at.hour()),
        TimePart::Minutes => i64::from(at.minute()),
        TimePart::Seconds => i64::from(at.second()),
        TimePart::Milliseconds => i64::from(at.millisecond()),
    })
}

/// A duration in whole units, truncated toward zero: `getHours()`, `getMinutes()`,
/// `getSeconds()`, `getMilliseconds()` (the same parts as a timestamp's, by name).
pub fn duration_get(d: &Duration, part: TimePart) -> i64 {
    let unit: i128 = match part {
        TimePart::Hours => 3_600 * NANOS_PER_SECOND,
        TimePart::Minutes => 60 * NANOS_PER_SECOND,
        TimePart::Milliseconds => 1_000_000,
        _ => NANOS_PER_SECOND,
    };
    (d.nanos() / unit) as i64
}

/// The specifiers `format()` knows; the generator refuses patterns with others.
pub const FORMAT_SPECIFIERS: &str = "YmdHMSjaAbBeyFTLz%";

/// `ts.format(pattern)`: strftime-style, in UTC. `%Y` year, `%m` month, `%d` day, `%e` day
/// padded with a space, `%H` `%M` `%S` time, `%L` milliseconds, `%j` day of the year, `%a`/`%A`
/// weekday, `%b`/`%B` month name, `%y` two-digit year, `%F` = `%Y-%m-%d`, `%T` = `%H:%M:%S`,
/// `%z` offset (`+0000`), `%%` a percent sign.
pub fn timestamp_format(ts: &Timestamp, pattern: &str, expr: &str) -> Result<String, Status> {
    let at = date_time(ts, expr)?;
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let month = at.month();
        let _ = match chars.next() {
            Some('Y') => write!(out, "{:04}", at.year()),
            Some('y') => write!(out, "{:02}", at.year().rem_euclid(100)),
            Some('m') => write!(out, "{:02}", u8::from(month)),
            Some('d') => write!(out, "{:02}", at.day()),
            Some('e') => write!(out, "{:2}", at.day()),
            Some('H') => write!(out, "{:02}", at.hour()),
            Some('M') => write!(out, "{:02}", at.minute()),
            Some('S') => write!(out, "{:02}", at.second()),
            Some('L') => write!(out, "{:03}", at.millisecond()),
            Some('j') => write!(out, "{:03}", at.ordinal()),
            Some('a') => write!(out, "{}", &at.weekday().to_string()[..3]),
            Some('A') => write!(out, "{}", at.weekday()),
            Some('b') => write!(out, "{}", &month.to_string()[..3]),
            Some('B') => write!(out, "{month}"),
            Some('F') => write!(
                out,
                "{:04}-{:02}-{:02}",
                at.year(),
                u8::from(month),
                at.day()
            ),
            Some('T') => write!(
                out,
                "{:02}:{:02}:{:02}",
                at.hour(),
                at.minute(),
                at.second()
            ),
            Some('z') => write!(out, "+0000"),
            Some('%') => write!(out, "%"),
            // The generator checked the pattern.
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    fn dur(seconds: i64, nanos: i32) -> Duration {
        Duration { seconds, nanos }
    }

    #[test]
    fn arithmetic_and_comparison_normalize() {
        let t = ts(1_700_000_000, 900_000_000);
        let later = timestamp_add(&t, &dur(0, 200_000_000), "t + d").unwrap();
        assert_eq!(later, ts(1_700_000_001, 100_000_000));
        assert_eq!(
            timestamp_diff(&later, &t, "a - b").unwrap(),
            dur(0, 200_000_000)
        );
        assert_eq!(
            timestamp_diff(&t, &later, "a - b").unwrap(),
            dur(0, -200_000_000)
        );
        assert_eq!(time_cmp(&dur(1, -1), &dur(0, 999_999_999)), Ordering::Equal);
        assert_eq!(time_cmp(&t, &later), Ordering::Less);
        assert_eq!(
            duration_neg(&dur(1, 500_000_000), "-d").unwrap(),
            dur(-1, -500_000_000)
        );
        let error = timestamp_add(&ts(MAX_SECONDS, 0), &dur(1, 0), "t + d").unwrap_err();
        assert_eq!(error.message(), "`t + d` is out of the range of timestamps");
    }

    #[test]
    fn parsing_and_formatting() {
        let t = timestamp_parse("2026-12-01T10:30:05.25+01:00", "e").unwrap();
        assert_eq!(
            timestamp_string(&t, "e").unwrap(),
            "2026-12-01T09:30:05.25Z"
        );
        assert_eq!(timestamp_unix(&t), 1_796_117_405);
        let error = timestamp_parse("yesterday", "timestamp(x)").unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error
                .message()
                .contains("`yesterday` is not an RFC 3339 timestamp")
        );
        assert_eq!(duration_string(&dur(90, 0)), "90s");
        assert_eq!(duration_string(&dur(1, 500_000_000)), "1.5s");
        assert_eq!(duration_string(&dur(0, -250_000_000)), "-0.25s");
        assert_eq!(
            timestamp_format(&t, "%a %d %b %Y, %T.%L (%j) %z %%", "e").unwrap(),
            "Tue 01 Dec 2026, 09:30:05.250 (335) +0000 %"
        );
        assert_eq!(
            timestamp_format(&t, "%F %e|%y|%B|%A", "e").unwrap(),
            "2026-12-01  1|26|December|Tuesday"
        );
    }

    #[test]
    fn calendar_fields_count_as_cel_does() {
        let t = timestamp_parse("2026-12-01T09:30:05.25Z", "e").unwrap();
        let get = |part| timestamp_get(&t, part, "e").unwrap();
        assert_eq!(get(TimePart::FullYear), 2026);
        assert_eq!(get(TimePart::Month), 11, "0-based");
        assert_eq!((get(TimePart::Date), get(TimePart::DayOfMonth)), (1, 0));
        assert_eq!(get(TimePart::DayOfWeek), 2, "a Tuesday, Sunday being 0");
        assert_eq!(get(TimePart::DayOfYear), 334);
        assert_eq!(
            (
                get(TimePart::Hours),
                get(TimePart::Minutes),
                get(TimePart::Seconds)
            ),
            (9, 30, 5)
        );
        assert_eq!(get(TimePart::Milliseconds), 250);
        let d = dur(-5_430, -500_000_000);
        assert_eq!(duration_get(&d, TimePart::Hours), -1, "toward zero");
        assert_eq!(duration_get(&d, TimePart::Minutes), -90);
        assert_eq!(duration_get(&d, TimePart::Seconds), -5_430);
        assert_eq!(duration_get(&d, TimePart::Milliseconds), -5_430_500);
    }
}
