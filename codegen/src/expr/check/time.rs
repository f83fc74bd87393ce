//! Typing rules of timestamps and durations (`google.protobuf.Timestamp`, `Duration`):
//!
//! - `< <= > >= == !=` between two timestamps or two durations;
//! - `ts + d`, `d + ts`, `ts - d` (a timestamp), `ts - ts`, `d + d`, `d - d`, `-d` (a duration);
//! - `timestamp("2026-12-01T10:00:00Z")` (RFC 3339; a literal is checked now),
//!   `timestamp(seconds)`, `duration("1h30m")` (a literal, in CEL's form, computed now),
//!   `now()`;
//! - `string(ts)` (RFC 3339), `string(d)` (`"90s"`), `int(ts)` (seconds since the epoch);
//! - on a timestamp, in UTC: `getFullYear() getMonth() getDate() getDayOfMonth()
//!   getDayOfWeek() getDayOfYear() getHours() getMinutes() getSeconds() getMilliseconds()`,
//!   numbered as CEL does (`getMonth()` from 0), and `format("%Y-%m-%d")` with a literal
//!   pattern; on a duration, `getHours() getMinutes() getSeconds() getMilliseconds()`, whole
//!   units truncated toward zero.

use super::Checker;
use super::typed::{TimeOp, Typed, TypedKind};
use crate::expr::ast::{BinaryOp, Ident, Literal, Node, Span};
use crate::expr::error::ExprError;
use crate::expr::types::Type;

/// The well-known timestamp.
pub(crate) const TIMESTAMP: &str = "google.protobuf.Timestamp";
/// The well-known duration.
pub(crate) const DURATION: &str = "google.protobuf.Duration";

/// The calendar getters of a timestamp, with the runtime's `TimePart` each reads.
pub(super) const TIMESTAMP_GETTERS: &[(&str, &str)] = &[
    ("getFullYear", "FullYear"),
    ("getMonth", "Month"),
    ("getDate", "Date"),
    ("getDayOfMonth", "DayOfMonth"),
    ("getDayOfWeek", "DayOfWeek"),
    ("getDayOfYear", "DayOfYear"),
    ("getHours", "Hours"),
    ("getMinutes", "Minutes"),
    ("getSeconds", "Seconds"),
    ("getMilliseconds", "Milliseconds"),
];
/// The getters of a duration.
const DURATION_GETTERS: &[&str] = &["getHours", "getMinutes", "getSeconds", "getMilliseconds"];
/// The specifiers `format()` knows (the runtime's `FORMAT_SPECIFIERS`).
const FORMAT_SPECIFIERS: &str = "YmdHMSjaAbBeyFTLz%";

pub(crate) fn timestamp() -> Type {
    Type::Message(TIMESTAMP.to_owned())
}

pub(crate) fn duration() -> Type {
    Type::Message(DURATION.to_owned())
}

/// Whether values of `ty` are timestamps or durations.
pub(crate) fn is_time(ty: &Type) -> bool {
    matches!(ty, Type::Message(name) if name == TIMESTAMP || name == DURATION)
}

/// Whether a method name is one of the time getters or `format`.
pub(super) fn is_time_method(name: &str) -> bool {
    name == "format" || TIMESTAMP_GETTERS.iter().any(|(n, _)| *n == name)
}

impl Checker<'_> {
    /// `a op b` where one side is a timestamp or a duration.
    pub(super) fn time_arithmetic(
        &mut self,
        op: BinaryOp,
        lhs: Typed,
        rhs: Typed,
        span: Span,
    ) -> Typed {
        let (ts, d) = (timestamp(), duration());
        let (time_op, ty) = match (op, &lhs.ty, &rhs.ty) {
            (_, Type::Error, _) | (_, _, Type::Error) => return Typed::poisoned(Type::Error, span),
            (BinaryOp::Add, a, b) if *a == ts && *b == d => (TimeOp::AddTimestamp, ts),
            (BinaryOp::Add, a, b) if *a == d && *b == ts => {
                return Typed::new(
                    TypedKind::Time {
                        op: TimeOp::AddTimestamp,
                        args: vec![rhs, lhs],
                    },
                    ts,
                    span,
                );
            }
            (BinaryOp::Sub, a, b) if *a == ts && *b == d => (TimeOp::SubTimestamp, ts),
            (BinaryOp::Sub, a, b) if *a == ts && *b == ts => (TimeOp::DiffTimestamps, d),
            (BinaryOp::Add, a, b) if *a == d && *b == d => (TimeOp::AddDurations, d),
            (BinaryOp::Sub, a, b) if *a == d && *b == d => (TimeOp::SubDurations, d),
            _ => {
                let error = ExprError::new(
                    span.clone(),
                    format!("`{op}` cannot be applied to {} and {}", lhs.ty, rhs.ty),
                )
                .with_hint(
                    "timestamps take `+ -` with a duration and `-` with a timestamp; durations take `+ -` with each other",
                );
                return self.error(error, Type::Error);
            }
        };
        Typed::new(
            TypedKind::Time {
                op: time_op,
                args: vec![lhs, rhs],
            },
            ty,
            span,
        )
    }

    /// `timestamp(x)`, `duration(x)` and `now()`.
    pub(super) fn time_function(&mut self, function: &Ident, args: &[Node], span: Span) -> Typed {
        let name = function.name.as_str();
        if name == "now" {
            return match self.arity(function, args, 0, &span) {
                Some(_) => Typed::new(
                    TypedKind::Time {
                        op: TimeOp::Now,
                        args: Vec::new(),
                    },
                    timestamp(),
                    span,
                ),
                None => Typed::poisoned(timestamp(), span),
            };
        }
        let result = if name == "timestamp" {
            timestamp()
        } else {
            duration()
        };
        let Some([arg]) = self.arity(function, args, 1, &span) else {
            return Typed::poisoned(result, span);
        };
        let arg = self.node(arg, None);
        match (name, &arg.ty, &arg.kind) {
            (_, Type::Error, _) => Typed::poisoned(result, span),
            ("timestamp", Type::String, kind) => {
                if let TypedKind::Literal(Literal::String(text)) = kind
                    && time::OffsetDateTime::parse(
                        text,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .is_err()
                {
                    let error = ExprError::new(
                        arg.span.clone(),
                        format!("`{text}` is not an RFC 3339 timestamp"),
                    )
                    .with_hint(
                        "write a date, a time and an offset, such as \"2026-12-01T10:00:00Z\"",
                    );
                    return self.error(error, result);
                }
                Typed::new(
                    TypedKind::Time {
                        op: TimeOp::Parse,
                        args: vec![arg],
                    },
                    result,
                    span,
                )
            }
            ("timestamp", Type::Int, _) => Typed::new(
                TypedKind::Time {
                    op: TimeOp::FromUnix,
                    args: vec![arg],
                },
                result,
                span,
            ),
            ("duration", Type::String, TypedKind::Literal(Literal::String(text))) => {
                match parse_cel_duration(text) {
                    Ok((seconds, nanos)) => Typed::new(
                        TypedKind::Time {
                            op: TimeOp::DurationLiteral { seconds, nanos },
                            args: Vec::new(),
                        },
                        result,
                        span,
                    ),
                    Err(problem) => {
                        let error = ExprError::new(
                            arg.span.clone(),
                            format!("`{text}` is not a duration: {problem}"),
                        )
                        .with_hint("write numbers with units h, m, s, ms, us or ns, such as \"1h30m\" or \"1.5s\"");
                        self.error(error, result)
                    }
                }
            }
            ("duration", Type::String, _) => {
                let error = ExprError::new(
                    arg.span.clone(),
                    "the argument of `duration()` must be a string literal",
                )
                .with_hint("durations are computed when the protos are built; read a `google.protobuf.Duration` field for one that varies");
                self.error(error, result)
            }
            (_, other, _) => {
                let takes = if name == "timestamp" {
                    "an RFC 3339 string or an int of seconds"
                } else {
                    "a string literal"
                };
                let error = ExprError::new(
                    arg.span.clone(),
                    format!("`{name}()` takes {takes}, found {other}"),
                );
                self.error(error, result)
            }
        }
    }

    /// `string(x)` or `int(x)` of a timestamp or duration.
    pub(super) fn time_conversion(&mut self, to: &str, arg: Typed, span: Span) -> Typed {
        let ts = arg.ty == timestamp();
        let (op, ty) = match (to, ts) {
            ("string", true) => (TimeOp::TimestampString, Type::String),
            ("string", false) => (TimeOp::DurationString, Type::String),
            ("int", true) => (TimeOp::Unix, Type::Int),
            _ => {
                let hint = if ts {
                    "convert a timestamp with `string(ts)` or `int(ts)` (seconds since the epoch)"
                } else {
                    "read a duration with `string(d)` or `d.getSeconds()`"
                };
                let error = ExprError::new(
                    arg.span.clone(),
                    format!("cannot convert {} to {to}", arg.ty),
                )
                .with_hint(hint);
                return self.error(error, super::super::types::Type::Error);
            }
        };
        Typed::new(
            TypedKind::Time {
                op,
                args: vec![arg],
            },
            ty,
            span,
        )
    }

    /// The getters and `format` of timestamps and durations.
    pub(super) fn time_method(
        &mut self,
        receiver: Typed,
        function: &Ident,
        args: &[Node],
        span: Span,
    ) -> Typed {
        let name = function.name.as_str();
        let result = if name == "format" {
            Type::String
        } else {
            Type::Int
        };
        let arity = usize::from(name == "format");
        let Some(args) = self.arity(function, args, arity, &span) else {
            return Typed::poisoned(result, span);
        };
        if receiver.ty == Type::Error {
            return Typed::poisoned(result, span);
        }
        let is_ts = receiver.ty == timestamp();
        let is_duration = receiver.ty == duration();
        let op = if name == "format" && is_ts {
            let arg = self.node(&args[0], Some(&Type::String));
            let TypedKind::Literal(Literal::String(pattern)) = &arg.kind else {
                let error = ExprError::new(
                    arg.span.clone(),
                    "the pattern of `format()` must be a string literal",
                )
                .with_hint("patterns are checked when the protos are built");
                return self.error(error, result);
            };
            if let Some(bad) = unknown_specifier(pattern) {
                let error = ExprError::new(
                    arg.span.clone(),
                    format!("`%{bad}` is not a specifier `format()` knows"),
                )
                .with_hint(
                    "the specifiers are %Y %y %m %d %e %H %M %S %L %j %a %A %b %B %F %T %z and %%",
                );
                return self.error(error, result);
            }
            TimeOp::Format(pattern.clone())
        } else if is_ts && let Some((_, part)) = TIMESTAMP_GETTERS.iter().find(|(n, _)| *n == name)
        {
            TimeOp::Get(part)
        } else if is_duration && DURATION_GETTERS.contains(&name) {
            let part = TIMESTAMP_GETTERS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("Seconds", |(_, part)| *part);
            TimeOp::DurationGet(part)
        } else {
            let of = if name == "format" {
                "timestamps".to_owned()
            } else if DURATION_GETTERS.contains(&name) {
                "timestamps and durations".to_owned()
            } else {
                "timestamps".to_owned()
            };
            let error = ExprError::new(
                receiver.span.clone(),
                format!("`{name}()` is a method of {of}, found {}", receiver.ty),
            );
            return self.error(error, result);
        };
        Typed::new(
            TypedKind::Time {
                op,
                args: vec![receiver],
            },
            result,
            span,
        )
    }
}

/// The first specifier of `pattern` that `format()` does not know.
fn unknown_specifier(pattern: &str) -> Option<char> {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(s) if FORMAT_SPECIFIERS.contains(s) => {}
                Some(s) => return Some(s),
                None => return Some(' '),
            }
        }
    }
    None
}

/// A duration in CEL's (Go's) form: an optional sign, then numbers, each with a unit (`h`,
/// `m`, `s`, `ms`, `us`, `ns`): `"1h30m"`, `"1.5s"`, `"-250ms"`. As (seconds, nanos), nanos
/// carrying the sign of the seconds.
pub(crate) fn parse_cel_duration(text: &str) -> Result<(i64, i32), String> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok((0, 0));
    }
    if rest.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if number.is_empty() || number == "." {
            return Err(format!("expected a number at `{rest}`"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            "" => return Err(format!("`{number}` has no unit")),
            other => return Err(format!("`{other}` is not a unit")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("`{number}` is too large"))?
        };
        let mut part = whole
            .checked_mul(scale)
            .ok_or_else(|| "it is too long".to_owned())?;
        let mut place = scale;
        for digit in fraction.chars() {
            place /= 10;
            part += i128::from(digit.to_digit(10).unwrap_or(0)) * place;
        }
        total = total
            .checked_add(part)
            .ok_or_else(|| "it is too long".to_owned())?;
        rest = after;
    }
    if negative {
        total = -total;
    }
    let seconds = i64::try_from(total / 1_000_000_000).map_err(|_| "it is too long".to_owned())?;
    Ok((seconds, (total % 1_000_000_000) as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_cel_form() {
        assert_eq!(parse_cel_duration("1h30m"), Ok((5_400, 0)));
        assert_eq!(parse_cel_duration("1.5s"), Ok((1, 500_000_000)));
        assert_eq!(parse_cel_duration("-250ms"), Ok((0, -250_000_000)));
        assert_eq!(parse_cel_duration("0"), Ok((0, 0)));
        assert_eq!(parse_cel_duration("2m3.25s"), Ok((123, 250_000_000)));
        assert!(parse_cel_duration("10").is_err());
        assert!(parse_cel_duration("5d").is_err());
        assert!(parse_cel_duration("").is_err());
        assert_eq!(unknown_specifier("%Y-%m-%d %q"), Some('q'));
        assert_eq!(unknown_specifier("%F %T %%"), None);
    }
}
