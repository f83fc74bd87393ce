//! Reading `mosaic.v1` options: the extensions, typed getters over their dynamic messages, and
//! the per-method settings (timeouts, resilience defaults, durations).

use std::time::Duration;

use prost_reflect::{DynamicMessage, ExtensionDescriptor, MethodDescriptor, ReflectMessage, Value};

use super::Resolver;
use crate::diagnostic::Span;
use crate::model::*;

impl Resolver<'_> {
    pub(super) fn method_timeout(&mut self, method: &MethodDescriptor) -> Option<Duration> {
        let options = method.options();
        if !options.has_extension(&self.ext.method) {
            return None;
        }
        let rule = options.get_extension(&self.ext.method);
        let text = rule
            .as_message()?
            .get_field_by_name("timeout")?
            .as_str()?
            .to_owned();
        if text.is_empty() {
            return None;
        }
        let mut path = method.path().to_vec();
        path.extend([4, EXTENSION_NUMBER]);
        let site = self.site(method.parent_file().name(), &path, true);
        let (span, _) = Self::value_span(&site, &[("timeout".into(), 0)]);
        self.duration(&text, span)
    }

    /// A downstream method's resilience defaults: `idempotency_level` and the `mosaic.v1.method`
    /// annotation's `timeout`, `idempotent`, `retry_attempts` and `hedge_delay`.
    pub(super) fn call_defaults(&mut self, method: &MethodDescriptor) -> CallDefaults {
        if let Some(known) = self.call_defaults.get(method.full_name()) {
            return *known;
        }
        // NO_SIDE_EFFECTS = 1, IDEMPOTENT = 2 (descriptor.proto).
        let level = method
            .method_descriptor_proto()
            .options
            .as_ref()
            .and_then(|options| options.idempotency_level)
            .unwrap_or_default();
        let mut defaults = CallDefaults {
            idempotent: matches!(level, 1 | 2),
            ..CallDefaults::default()
        };
        let options = method.options();
        if options.has_extension(&self.ext.method) {
            let rule = options.get_extension(&self.ext.method);
            if let Some(rule) = rule.as_message() {
                let mut path = method.path().to_vec();
                path.extend([4, EXTENSION_NUMBER]);
                let site = self.site(method.parent_file().name(), &path, true);
                let span_of = |field: &str| Self::value_span(&site, &[(field.to_owned(), 0)]).0;
                defaults.timeout = self.method_timeout(method);
                if rule
                    .get_field_by_name("idempotent")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false)
                {
                    defaults.idempotent = true;
                }
                let attempts = rule
                    .get_field_by_name("retry_attempts")
                    .and_then(|v| v.as_u32())
                    .unwrap_or(0);
                match attempts {
                    0 => {}
                    1..=5 => defaults.max_attempts = Some(attempts),
                    _ => self.error_hint(
                        format!("`retry_attempts` of {attempts} is more than 5"),
                        span_of("retry_attempts"),
                        "gRPC caps attempts at 5 (the first included); write 1 to 5",
                    ),
                }
                let hedge = rule
                    .get_field_by_name("hedge_delay")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                if !hedge.is_empty() {
                    let span = span_of("hedge_delay");
                    defaults.hedge_delay = self.duration(&hedge, span.clone());
                    if !defaults.idempotent {
                        self.error_hint(
                            format!(
                                "`{}/{}` is hedged but not declared idempotent; a hedge repeats the call",
                                method.parent_service().full_name(),
                                method.name()
                            ),
                            span,
                            "add `idempotent: true` to its `mosaic.v1.method`, or \
                             `option idempotency_level = IDEMPOTENT;`",
                        );
                        defaults.hedge_delay = None;
                    }
                }
            }
        }
        self.call_defaults
            .insert(method.full_name().to_owned(), defaults);
        defaults
    }

    pub(super) fn duration(&mut self, text: &str, span: Option<Span>) -> Option<Duration> {
        match parse_duration(text) {
            Ok(duration) => Some(duration),
            Err(problem) => {
                self.error_hint(
                    format!("malformed duration `{text}`: {problem}"),
                    span,
                    "write a number and a unit: `800ms`, `2s`, `1.5s`, `1m` (units: ns, us, ms, s, m, h)",
                );
                None
            }
        }
    }
}

pub(super) struct Extensions {
    pub(super) service: ExtensionDescriptor,
    pub(super) method: ExtensionDescriptor,
    pub(super) message: ExtensionDescriptor,
    pub(super) field: ExtensionDescriptor,
}

/// The extension number every `mosaic.v1` option uses.
pub const EXTENSION_NUMBER: i32 = 52731;

/// Parses `800ms`, `2s`, `1.5s`, `1m`, `100us`, `10ns`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err("must be more than zero and at most a year".to_owned());
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| "missing a unit".to_owned())?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err("missing a number".to_owned());
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}`")),
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 365.0 * 86400.0 {
        return Err("must be more than zero and at most a year".to_owned());
    }
    Ok(Duration::from_secs_f64(seconds))
}

pub(super) fn get_str(message: &DynamicMessage, field: &str) -> String {
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn get_bool(message: &DynamicMessage, field: &str) -> bool {
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

pub(super) fn has_field(message: &DynamicMessage, field: &str) -> bool {
    message
        .descriptor()
        .get_field_by_name(field)
        .is_some_and(|f| message.has_field(&f))
}

pub(super) fn get_message(message: &DynamicMessage, field: &str) -> Option<DynamicMessage> {
    if !has_field(message, field) {
        return None;
    }
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_message().cloned())
}

pub(super) fn list(message: &DynamicMessage, field: &str) -> Vec<Value> {
    message
        .get_field_by_name(field)
        .and_then(|v| v.as_list().map(<[Value]>::to_vec))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("800ms"), Ok(Duration::from_millis(800)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(
            parse_duration("800")
                .unwrap_err()
                .contains("missing a unit")
        );
        assert!(
            parse_duration("8x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(
            parse_duration("ms")
                .unwrap_err()
                .contains("missing a number")
        );
        assert!(parse_duration("0s").is_err());
    }
}
