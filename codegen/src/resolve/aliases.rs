//! Message aliases: an edge message declared, with `(mosaic.v1.message).alias`, as the
//! counterpart of one or more downstream messages. A value of such a source converts into the
//! edge message field by field: each field from the source field of the same name (or the one
//! its `(mosaic.v1.field).alias` names), recursively through nested aliases, enum conversions,
//! lists, maps and oneofs; or by its own `by` rule, which reads the source as `$`. A field
//! with neither is a diagnostic, so a conversion never silently leaves a value behind.
//!
//! Every declared pair is planned once, up front, whether or not a binding uses it, so that a
//! mistake in an alias is reported where it is written.

use std::collections::HashSet;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, OneofDescriptor};

use super::Resolver;
use super::bind::proto_type;
use super::options::{EXTENSION_NUMBER, get_str, has_field, list};
use crate::expr::{self, Type};
use crate::model::*;
use crate::schema::{field_info, stored_kind};
use crate::suggest::suggest;

impl Resolver<'_> {
    /// Plans the conversion of every declared alias pair.
    pub(super) fn plan_aliases(&mut self) {
        let targets: Vec<MessageDescriptor> = self
            .loaded
            .pool
            .all_messages()
            .filter(|m| !self.message_aliases(m).is_empty())
            .collect();
        // Known first, so that a nested field can name any declared pair.
        let mut pairs = Vec::new();
        for target in &targets {
            let site = self.message_site(target);
            for (i, name) in self.message_aliases(target).into_iter().enumerate() {
                let Some(source) = self.find_message(&name, target) else {
                    let span = Self::value_span(&site, &[("alias".into(), i)]).0;
                    let hint = self
                        .suggest_message(&name, target)
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            "name the downstream message in full, as `package.Message`".to_owned()
                        });
                    self.error_hint(format!("unknown message `{name}` in `alias`"), span, hint);
                    continue;
                };
                if source.full_name() == target.full_name() {
                    let span = Self::value_span(&site, &[("alias".into(), i)]).0;
                    self.error(
                        format!("`{}` cannot be an alias of itself", target.full_name()),
                        span,
                    );
                    continue;
                }
                pairs.push((source, target.clone()));
            }
        }
        self.alias_pairs = pairs
            .iter()
            .map(|(s, t)| (s.full_name().to_owned(), t.full_name().to_owned()))
            .collect();
        for (source, target) in pairs {
            if let Some(conversion) = self.plan_conversion(&source, &target) {
                self.message_conversions.push(conversion);
            }
        }
    }

    /// The `alias` of a message's `(mosaic.v1.message)`.
    pub(super) fn message_aliases(&self, message: &MessageDescriptor) -> Vec<String> {
        self.message_rule(message)
            .map(|rule| {
                list(&rule, "alias")
                    .iter()
                    .filter_map(|a| a.as_str().map(|s| s.trim_start_matches('.').to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `to` is declared an alias of `from` (both full names).
    pub(super) fn is_alias_pair(&self, from: &str, to: &str) -> bool {
        self.alias_pairs.iter().any(|(f, t)| f == from && t == to)
    }

    /// The messages (full names) `to` is declared an alias of and that exist.
    pub(super) fn alias_sources(&self, to: &str) -> Vec<&str> {
        self.alias_pairs
            .iter()
            .filter(|(_, t)| t == to)
            .map(|(f, _)| f.as_str())
            .collect()
    }

    fn plan_conversion(
        &mut self,
        source: &MessageDescriptor,
        target: &MessageDescriptor,
    ) -> Option<MessageConversion> {
        let mut ok = true;
        let mut fields = Vec::new();
        let mut oneofs: Vec<OneofConversion> = Vec::new();
        let scope = expr::Scope::new()
            .in_package(target.package_name())
            .with("$", Type::Message(source.full_name().to_owned()));
        for field in target.fields() {
            let site = self.site(field.parent_file().name(), field.path(), false);
            let span = Self::span_of_site(&site);
            let rule = self.field_rule(&field);
            let by = rule.as_ref().map(|r| get_str(r, "by")).unwrap_or_default();
            let alias = rule
                .as_ref()
                .map(|r| get_str(r, "alias"))
                .unwrap_or_default();
            let member = real_oneof(&field);
            if rule.as_ref().is_some_and(|r| has_field(r, "if")) {
                self.error_hint(
                    format!(
                        "field `{}` of alias message `{}` has an `if`",
                        field.name(),
                        target.full_name()
                    ),
                    span,
                    "an alias converts every field; compute a conditional value with `by` and `?:`",
                );
                ok = false;
                continue;
            }
            if !by.is_empty() {
                if member.is_some() {
                    self.error_hint(
                        format!(
                            "field `{}` of alias message `{}` is a oneof member with a `by` rule",
                            field.name(),
                            target.full_name()
                        ),
                        span,
                        "convert oneof members from the source's oneof, by name or `alias`",
                    );
                    ok = false;
                    continue;
                }
                let mut path = field.path().to_vec();
                path.extend([8, EXTENSION_NUMBER, 1]);
                let (by_span, value) = self.field_rule_span(&field, &path);
                let mut reads = HashSet::new();
                let Some(e) = self.checked_expression(
                    &scope,
                    &by,
                    by_span.clone(),
                    value,
                    &mut reads,
                    None,
                    "a field's `by`",
                    None,
                ) else {
                    ok = false;
                    continue;
                };
                let before = self.diagnostics.len();
                self.check_binding(&e.checked.ty, &field, &field_info(&field).ty, by_span);
                ok &= self.diagnostics.len() == before;
                fields.push((field, FieldFrom::Rule(e)));
                continue;
            }
            let name = if alias.is_empty() {
                field.name().to_owned()
            } else {
                alias
            };
            let Some(from) = source.get_field_by_name(&name) else {
                let names: Vec<String> = source.fields().map(|f| f.name().to_owned()).collect();
                let message = if name == field.name() {
                    format!(
                        "field `{name}` of `{}` has no counterpart in `{}`, which it is an alias of",
                        target.full_name(),
                        source.full_name()
                    )
                } else {
                    format!(
                        "no field `{name}` in `{}`, named by the `alias` of field `{}`",
                        source.full_name(),
                        field.name()
                    )
                };
                let hint = match suggest(&name, &names) {
                    Some(s) => format!(
                        "did you mean `{s}`? name the source field with `(mosaic.v1.field).alias`, or compute it with `by` (reading the source as `$`)"
                    ),
                    None => "name the source field with `(mosaic.v1.field).alias`, or compute it with `by` (reading the source as `$`)".to_owned(),
                };
                self.error_hint(message, span, hint);
                ok = false;
                continue;
            };
            let shape = match self.field_conversion(&from, &field) {
                Ok(shape) => shape,
                Err(why) => {
                    self.error_hint(
                        format!(
                            "field `{}` of `{}` ({}) cannot convert from `{}.{}` ({}): {why}",
                            field.name(),
                            target.full_name(),
                            proto_type(&field),
                            source.full_name(),
                            from.name(),
                            proto_type(&from),
                        ),
                        span,
                        "give the field a `by` rule (reading the source as `$`), or a type that converts",
                    );
                    ok = false;
                    continue;
                }
            };
            match (&member, real_oneof(&from)) {
                (None, None) => fields.push((field, FieldFrom::Field(from, shape))),
                (Some(oneof), Some(source_oneof)) => {
                    match oneofs.iter_mut().find(|o| o.target.name() == oneof.name()) {
                        Some(known) if known.source.name() != source_oneof.name() => {
                            self.error(
                                format!(
                                    "the members of oneof `{}` of `{}` come from two oneofs of `{}`: `{}` and `{}`",
                                    oneof.name(),
                                    target.full_name(),
                                    source.full_name(),
                                    known.source.name(),
                                    source_oneof.name()
                                ),
                                span,
                            );
                            ok = false;
                        }
                        Some(known) => known.members.push((field, from, shape)),
                        None => oneofs.push(OneofConversion {
                            target: oneof.clone(),
                            source: source_oneof,
                            members: vec![(field, from, shape)],
                        }),
                    }
                }
                (Some(oneof), None) => {
                    self.error(
                        format!(
                            "field `{}` is a member of oneof `{}`, but its counterpart `{}.{}` is in no oneof",
                            field.name(),
                            oneof.name(),
                            source.full_name(),
                            from.name()
                        ),
                        span,
                    );
                    ok = false;
                }
                (None, Some(source_oneof)) => {
                    self.error(
                        format!(
                            "field `{}` is in no oneof, but its counterpart `{}.{}` is a member of oneof `{}`",
                            field.name(),
                            source.full_name(),
                            from.name(),
                            source_oneof.name()
                        ),
                        span,
                    );
                    ok = false;
                }
            }
        }
        ok.then(|| MessageConversion {
            from: source.clone(),
            to: target.clone(),
            fields,
            oneofs,
        })
    }

    /// How a value of field `from` becomes one of field `to`, by their shapes (singular,
    /// repeated, map) and element kinds.
    fn field_conversion(
        &mut self,
        from: &FieldDescriptor,
        to: &FieldDescriptor,
    ) -> Result<ElementConversion, String> {
        match (map_entry(from), map_entry(to)) {
            (Some((from_key, from_value)), Some((to_key, to_value))) => {
                if rust_scalar(&from_key.kind()) != rust_scalar(&to_key.kind()) {
                    return Err("their map keys differ".to_owned());
                }
                return self.element_conversion(
                    &stored_kind(&from_value.kind()),
                    &stored_kind(&to_value.kind()),
                );
            }
            (None, None) => {}
            _ => return Err("one is a map and the other is not".to_owned()),
        }
        if from.is_list() != to.is_list() {
            return Err("one is repeated and the other is not".to_owned());
        }
        self.element_conversion(&stored_kind(&from.kind()), &stored_kind(&to.kind()))
    }

    /// How one value of kind `from` (as prost stores it) becomes one of kind `to`.
    fn element_conversion(&mut self, from: &Kind, to: &Kind) -> Result<ElementConversion, String> {
        match (from, to) {
            (Kind::Message(a), Kind::Message(b)) if a.full_name() == b.full_name() => {
                Ok(ElementConversion::Same)
            }
            (Kind::Message(a), Kind::Message(b)) => {
                if self.is_alias_pair(a.full_name(), b.full_name()) {
                    Ok(ElementConversion::Message {
                        from: a.full_name().to_owned(),
                        to: b.full_name().to_owned(),
                    })
                } else {
                    Err(format!(
                        "declare `{}` an alias of `{}`",
                        b.full_name(),
                        a.full_name()
                    ))
                }
            }
            (Kind::Enum(a), Kind::Enum(b)) if a.full_name() == b.full_name() => {
                Ok(ElementConversion::Same)
            }
            (Kind::Enum(a), Kind::Enum(b)) => {
                let (from, to) = (a.full_name().to_owned(), b.full_name().to_owned());
                self.enum_conversion(&from, &to).map_err(|(why, _)| why)?;
                Ok(ElementConversion::Enum { from, to })
            }
            _ => match (rust_scalar(from), rust_scalar(to)) {
                (Some(a), Some(b)) if a == b => Ok(ElementConversion::Same),
                (Some(a), Some(b)) if widens(a, b) => Ok(ElementConversion::Widen),
                (Some(a), Some(b)) if numeric(a) && numeric(b) => {
                    Err("not every source value fits".to_owned())
                }
                _ => Err("their types differ".to_owned()),
            },
        }
    }
}

/// The oneof `field` is a member of, if it is a real one (not a proto3 `optional`).
fn real_oneof(field: &FieldDescriptor) -> Option<OneofDescriptor> {
    field
        .containing_oneof()
        .filter(|_| !field.field_descriptor_proto().proto3_optional())
}

fn map_entry(field: &FieldDescriptor) -> Option<(FieldDescriptor, FieldDescriptor)> {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => {
            Some((entry.map_entry_key_field(), entry.map_entry_value_field()))
        }
        _ => None,
    }
}

/// The Rust type prost stores a scalar kind as.
fn rust_scalar(kind: &Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Double => "f64",
        Kind::Float => "f32",
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => "i32",
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => "i64",
        Kind::Uint32 | Kind::Fixed32 => "u32",
        Kind::Uint64 | Kind::Fixed64 => "u64",
        Kind::Bool => "bool",
        Kind::String => "String",
        Kind::Bytes => "Vec<u8>",
        Kind::Enum(_) | Kind::Message(_) => return None,
    })
}

fn numeric(ty: &str) -> bool {
    matches!(ty, "i32" | "i64" | "u32" | "u64" | "f32" | "f64")
}

/// Whether every value of Rust type `from` converts losslessly into `to` (`From`).
fn widens(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("i32", "i64") | ("u32", "u64") | ("u32", "i64") | ("f32", "f64")
    )
}
