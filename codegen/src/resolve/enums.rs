//! Conversions between enums: a value of one enum bound to a field of another converts by
//! value name, with the target's `(mosaic.v1.enum_value)` aliases where names differ and its
//! `default` for the rest. Decided here, whole, at build time: a source value with no
//! counterpart is a diagnostic, never a surprise at run time.

use heck::ToShoutySnakeCase;
use prost_reflect::{DynamicMessage, EnumDescriptor, EnumValueDescriptor};

use super::Resolver;
use super::options::{get_bool, list};
use crate::model::EnumConversion;

impl Resolver<'_> {
    /// The conversion of `from`'s values into `to`'s (both full names), computed once per
    /// pair; or why there is none.
    pub(super) fn enum_conversion(
        &mut self,
        from: &str,
        to: &str,
    ) -> Result<(), (String, Option<String>)> {
        if self
            .enum_conversions
            .iter()
            .any(|c| c.from.full_name() == from && c.to.full_name() == to)
        {
            return Ok(());
        }
        let pool = &self.loaded.pool;
        let (Some(source), Some(target)) = (pool.get_enum_by_name(from), pool.get_enum_by_name(to))
        else {
            return Err((format!("unknown enum `{from}` or `{to}`"), None));
        };
        let rule = |value: &EnumValueDescriptor| -> Option<DynamicMessage> {
            let ext = pool.get_extension_by_name("mosaic.v1.enum_value")?;
            let options = value.options();
            options
                .has_extension(&ext)
                .then(|| options.get_extension(&ext).as_message().cloned())
                .flatten()
        };
        let aliases = enum_aliases(&target);
        if !aliases.is_empty() && !aliases.iter().any(|a| a == from) {
            return Err((
                format!(
                    "`{to}` converts only from {}, not from `{from}`",
                    quoted(&aliases)
                ),
                Some(format!(
                    "add `{from}` to the `alias` of `{to}`'s `(mosaic.v1.enum)`"
                )),
            ));
        }
        let defaults: Vec<EnumValueDescriptor> = target
            .values()
            .filter(|v| rule(v).is_some_and(|r| get_bool(&r, "default")))
            .collect();
        if defaults.len() > 1 {
            let names: Vec<String> = defaults.iter().map(|v| v.name().to_owned()).collect();
            return Err((
                format!(
                    "`{to}` has more than one `default` value: {}",
                    quoted(&names)
                ),
                Some("mark one value `default: true`".to_owned()),
            ));
        }
        let default = defaults.first().map(EnumValueDescriptor::number);
        let mut values = Vec::new();
        let mut missing = Vec::new();
        for value in source.values() {
            if values.iter().any(|(number, _)| *number == value.number()) {
                continue; // an alias of a value already mapped
            }
            let qualified = format!("{from}.{}", value.name());
            let counterpart = target
                .values()
                .find(|t| {
                    rule(t).is_some_and(|r| {
                        list(&r, "alias").iter().any(|a| {
                            a.as_str()
                                .is_some_and(|a| a == value.name() || a == qualified)
                        })
                    })
                })
                .or_else(|| target.values().find(|t| t.name() == value.name()))
                .or_else(|| {
                    let name = unprefixed(&source, value.name());
                    target
                        .values()
                        .find(|t| unprefixed(&target, t.name()) == name)
                })
                .map(|t| t.number())
                .or(default);
            match counterpart {
                Some(number) => values.push((value.number(), number)),
                None => missing.push(value.name().to_owned()),
            }
        }
        if !missing.is_empty() {
            return Err((
                format!(
                    "cannot convert `{from}` into `{to}`: {} {} no counterpart",
                    quoted(&missing),
                    if missing.len() == 1 { "has" } else { "have" }
                ),
                Some(format!(
                    "give a value of `{to}` `[(mosaic.v1.enum_value) = {{alias: \"{}\"}}]`, or mark one `default: true`",
                    missing[0]
                )),
            ));
        }
        self.enum_conversions.push(EnumConversion {
            from: source,
            to: target,
            values,
            default,
        });
        Ok(())
    }
}

/// The `alias` of an enum's `(mosaic.v1.enum)`.
fn enum_aliases(enumeration: &EnumDescriptor) -> Vec<String> {
    let pool = enumeration.parent_pool();
    let Some(ext) = pool.get_extension_by_name("mosaic.v1.enum") else {
        return Vec::new();
    };
    let options = enumeration.options();
    if !options.has_extension(&ext) {
        return Vec::new();
    }
    options
        .get_extension(&ext)
        .as_message()
        .map(|rule| {
            list(rule, "alias")
                .iter()
                .filter_map(|a| a.as_str())
                .map(|name| {
                    // Relative to the enum's package, or fully qualified.
                    let name = name.trim_start_matches('.');
                    let package = enumeration.package_name();
                    let relative = format!("{package}.{name}");
                    if !package.is_empty() && pool.get_enum_by_name(&relative).is_some() {
                        relative
                    } else {
                        name.to_owned()
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A value's name without its enum's prefix: `ACTIVE` for `USER_STATUS_ACTIVE` of `UserStatus`.
fn unprefixed<'n>(enumeration: &EnumDescriptor, name: &'n str) -> &'n str {
    let prefix = format!("{}_", enumeration.name().to_shouty_snake_case());
    name.strip_prefix(&prefix).unwrap_or(name)
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
