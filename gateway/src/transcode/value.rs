//! Text from a path variable or a query parameter, as a field's value.
//!
//! Scalars take their usual text forms (`42`, `1.5`, `true`, an enum's name or number, bytes in
//! standard or URL-safe base64, with or without padding); the well-known scalar types take
//! their proto3 JSON string forms (`2024-05-01T10:00:00Z`, `3.5s`, `a,b.c`), and wrappers their
//! wrapped scalar's. Every refusal names the parameter and says what was expected.

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, Value};

/// `value` (from the parameter `name`) as a value of `field`'s type.
pub(super) fn parse(field: &FieldDescriptor, name: &str, value: &str) -> Result<Value, String> {
    match field.kind() {
        Kind::Message(message) => {
            if let Some(inner) = wrapped(&message) {
                let value = scalar(&inner.kind(), name, value)?;
                let mut wrapper = DynamicMessage::new(message);
                wrapper.set_field(&inner, value);
                return Ok(Value::Message(wrapper));
            }
            let json = serde_json::Value::String(value.to_owned());
            DynamicMessage::deserialize(message.clone(), json)
                .map(Value::Message)
                .map_err(|error| {
                    format!(
                        "`{name}` takes a {} in its JSON string form: {error}",
                        message.name()
                    )
                })
        }
        kind => scalar(&kind, name, value),
    }
}

/// The `value` field of a `google.protobuf.*Value` wrapper.
fn wrapped(message: &prost_reflect::MessageDescriptor) -> Option<FieldDescriptor> {
    let name = message.full_name();
    let is_wrapper = name.starts_with("google.protobuf.")
        && name.ends_with("Value")
        && !matches!(name, "google.protobuf.Value" | "google.protobuf.ListValue");
    is_wrapper
        .then(|| message.get_field_by_name("value"))
        .flatten()
}

fn scalar(kind: &Kind, name: &str, text: &str) -> Result<Value, String> {
    fn number<T: std::str::FromStr>(name: &str, text: &str, what: &str) -> Result<T, String> {
        text.parse()
            .map_err(|_| format!("`{name}` must be {what}, not `{text}`"))
    }
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(number(name, text, "a 32-bit integer")?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(number(name, text, "a 64-bit integer")?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(number(name, text, "an unsigned 32-bit integer")?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(number(name, text, "an unsigned 64-bit integer")?)
        }
        Kind::Double => Value::F64(float(name, text)?),
        Kind::Float => Value::F32(float(name, text)? as f32),
        Kind::Bool => match text {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(format!("`{name}` must be `true` or `false`, not `{text}`")),
        },
        Kind::String => Value::String(text.to_owned()),
        Kind::Bytes => Value::Bytes(bytes(text).ok_or_else(|| {
            format!("`{name}` must be base64 (standard or URL-safe), not `{text}`")
        })?),
        Kind::Enum(descriptor) => {
            if let Some(value) = descriptor.get_value_by_name(text) {
                Value::EnumNumber(value.number())
            } else if let Ok(number) = text.parse::<i32>() {
                Value::EnumNumber(number)
            } else {
                let names: Vec<String> = descriptor.values().map(|v| v.name().to_owned()).collect();
                return Err(format!(
                    "`{name}` must be one of {} (or its number), not `{text}`",
                    names.join(", ")
                ));
            }
        }
        Kind::Message(message) => {
            return Err(format!(
                "`{name}` is a {}: set its fields one by one (`{name}.field=...`)",
                message.name()
            ));
        }
    })
}

fn float(name: &str, text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
            .ok_or_else(|| format!("`{name}` must be a number, not `{text}`")),
    }
}

fn bytes(text: &str) -> Option<bytes::Bytes> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = text.trim_end_matches('=');
    let engine = if text.contains(['-', '_']) {
        URL_SAFE_NO_PAD
    } else {
        STANDARD_NO_PAD
    };
    engine.decode(trimmed).ok().map(bytes::Bytes::from)
}

/// Sets `value` at `path` in `message`, making the messages on the way; a repeated leaf gets
/// `value` appended. Refuses a second member of a oneof that already has one set.
pub(super) fn set(
    message: &mut DynamicMessage,
    path: &[FieldDescriptor],
    name: &str,
    value: Value,
) -> Result<(), String> {
    let Some((leaf, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut target = message;
    for field in parents {
        let slot = target.get_field_mut(field);
        let Value::Message(inner) = slot else {
            return Err(format!("`{name}`: `{}` is not a message", field.name()));
        };
        target = inner;
    }
    if let Some(oneof) = leaf.containing_oneof()
        && !oneof.is_synthetic()
        && let Some(other) = oneof
            .fields()
            .find(|member| member != leaf && target.has_field(member))
    {
        return Err(format!(
            "`{name}` and `{}` are members of the oneof `{}`: set one",
            other.name(),
            oneof.name()
        ));
    }
    if leaf.is_list() {
        if let Value::List(list) = target.get_field_mut(leaf) {
            list.push(value);
        }
    } else {
        target.set_field(leaf, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(message: &str, name: &str) -> FieldDescriptor {
        let pool = prost_reflect::DescriptorPool::global();
        pool.get_message_by_name(message)
            .unwrap()
            .get_field_by_name(name)
            .unwrap()
    }

    #[test]
    fn scalars_parse_or_say_what_they_need() {
        assert_eq!(scalar(&Kind::Int64, "id", "-7").unwrap(), Value::I64(-7));
        let error = scalar(&Kind::Int64, "id", "abc").unwrap_err();
        assert_eq!(error, "`id` must be a 64-bit integer, not `abc`");
        assert!(scalar(&Kind::Uint32, "n", "-1").is_err());
        assert_eq!(scalar(&Kind::Bool, "b", "true").unwrap(), Value::Bool(true));
        assert!(scalar(&Kind::Bool, "b", "yes").is_err());
        assert!(matches!(scalar(&Kind::Double, "d", "NaN").unwrap(), Value::F64(v) if v.is_nan()));
        assert!(scalar(&Kind::Double, "d", "inf").is_err());
        assert_eq!(
            scalar(&Kind::Bytes, "b", "_w==").unwrap(),
            Value::Bytes(bytes::Bytes::from_static(&[0xff]))
        );
        assert_eq!(
            scalar(&Kind::Bytes, "b", "/w").unwrap(),
            Value::Bytes(bytes::Bytes::from_static(&[0xff]))
        );
        assert_eq!(
            scalar(&Kind::Bytes, "b", "aGk").unwrap(),
            Value::Bytes(bytes::Bytes::from_static(b"hi"))
        );
    }

    #[test]
    fn well_known_types_take_their_json_forms() {
        let api = field("google.protobuf.Api", "source_context");
        let parsed = parse(&api, "x", "a").unwrap_err();
        assert!(parsed.contains("JSON string form"), "{parsed}");
        let option = field("google.protobuf.Option", "value");
        assert!(parse(&option, "v", "x").is_err());
        let method = field("google.protobuf.Method", "request_streaming");
        assert_eq!(parse(&method, "s", "1").unwrap(), Value::Bool(true));
    }
}
