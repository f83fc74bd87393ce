//! Typing rules of map and message literals.
//!
//! - `{k: v, …}`: keys of one type (int, uint, bool or string), values of one type; `{}`
//!   takes its type from where it goes (a map field, the other branch of `?:`).
//! - `pkg.Msg{f: v, …}`: the message by its name, relative to the proto package or fully
//!   qualified; each field at most once, with a value of the field's type (a list for a
//!   repeated field, a map for a map field), `null` or an optional value only for a field with
//!   presence, and at most one member per oneof. Fields left out keep their defaults.

use super::typed::{Typed, TypedKind};
use super::{Checker, compatible};
use crate::expr::ast::{Ident, Node, Span};
use crate::expr::error::ExprError;
use crate::expr::types::{Cardinality, Type};
use crate::suggest::closest;

/// Whether a field stored this way can be unset: what `null` means when bound to it.
pub(crate) fn has_presence(cardinality: &Cardinality) -> bool {
    matches!(
        cardinality,
        Cardinality::Optional
            | Cardinality::Message
            | Cardinality::BoxedMessage
            | Cardinality::Oneof { .. }
    )
}

impl Checker<'_> {
    pub(super) fn map_literal(
        &mut self,
        entries: &[(Node, Node)],
        span: Span,
        expected: Option<&Type>,
    ) -> Typed {
        let (mut key_ty, mut value_ty) = match expected {
            Some(Type::Map(key, value)) => (Some((**key).clone()), Some((**value).clone())),
            _ => (None, None),
        };
        let expected_key = key_ty.clone();
        let expected_value = value_ty.clone();
        let mut checked = Vec::new();
        let mut ok = true;
        for (key, value) in entries {
            let key = self.node(key, key_ty.as_ref().or(expected_key.as_ref()));
            let value = self.node(value, value_ty.as_ref().or(expected_value.as_ref()));
            if !matches!(
                key.ty,
                Type::Int | Type::Uint | Type::Bool | Type::String | Type::Error
            ) {
                self.errors.push(ExprError::new(
                    key.span.clone(),
                    format!(
                        "a map key must be an int, uint, bool or string, found {}",
                        key.ty
                    ),
                ));
                ok = false;
            }
            for (typed, slot, what) in [
                (&key, &mut key_ty, "keys"),
                (&value, &mut value_ty, "values"),
            ] {
                match slot {
                    None if typed.ty != Type::Error => *slot = Some(typed.ty.clone()),
                    Some(first) if !compatible(first, &typed.ty) => {
                        self.errors.push(ExprError::new(
                            typed.span.clone(),
                            format!(
                                "the {what} of a map must have one type: expected {first}, found {}",
                                typed.ty
                            ),
                        ));
                        ok = false;
                    }
                    _ => {}
                }
            }
            checked.push((key, value));
        }
        let (Some(key), Some(value)) = (key_ty, value_ty) else {
            if entries.is_empty() {
                let error = ExprError::new(span, "the type of the empty map `{}` is unknown here")
                    .with_hint("use it where a map is expected, such as a map field's `by`");
                return self.error(error, Type::Error);
            }
            return Typed::poisoned(Type::Error, span);
        };
        let ty = Type::Map(Box::new(key), Box::new(value));
        if !ok || ty.contains_error() {
            return Typed::poisoned(Type::Error, span);
        }
        Typed::new(TypedKind::Map(checked), ty, span)
    }

    pub(super) fn message_literal(
        &mut self,
        name: &Ident,
        fields: &[(Ident, Node)],
        span: Span,
    ) -> Typed {
        let Some(message) = self
            .schema
            .resolve_message(&name.name, self.scope.package())
        else {
            for (_, value) in fields {
                self.node(value, None);
            }
            let error = ExprError::new(
                name.span.clone(),
                format!("unknown message `{}`", name.name),
            )
            .with_hint("name a message of this package, or fully qualified as `pkg.v1.Msg`");
            return self.error(error, Type::Error);
        };
        let mut checked = Vec::new();
        let mut ok = true;
        let mut oneofs: Vec<(String, String)> = Vec::new();
        for (field, value) in fields {
            let Some(info) = self.schema.field(&message, &field.name) else {
                self.node(value, None);
                let names = self.schema.field_names(&message);
                let error = ExprError::new(
                    field.span.clone(),
                    format!("no field `{}` on `{message}`", field.name),
                );
                let hint = match closest(&field.name, names.iter().map(String::as_str)) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("its fields are: {}", names.join(", ")),
                };
                self.errors.push(error.with_hint(hint));
                ok = false;
                continue;
            };
            if checked
                .iter()
                .any(|(f, _): &(crate::expr::FieldInfo, Typed)| f.name == info.name)
            {
                self.node(value, None);
                self.errors.push(
                    ExprError::new(
                        field.span.clone(),
                        format!("field `{}` is set twice", field.name),
                    )
                    .with_hint("set each field once"),
                );
                ok = false;
                continue;
            }
            if let Cardinality::Oneof { oneof, .. } = &info.cardinality {
                if let Some((_, other)) = oneofs.iter().find(|(o, _)| o == oneof) {
                    self.node(value, None);
                    self.errors.push(
                        ExprError::new(
                            field.span.clone(),
                            format!(
                                "`{other}` and `{}` are members of oneof `{oneof}`, which holds one value",
                                field.name
                            ),
                        )
                        .with_hint("set one member of the oneof"),
                    );
                    ok = false;
                    continue;
                }
                oneofs.push((oneof.clone(), field.name.clone()));
            }
            let typed = self.node(value, Some(&info.ty));
            let presence = has_presence(&info.cardinality);
            let fits = match &typed.ty {
                Type::Error => true,
                Type::Null => presence,
                Type::Optional(inner) => presence && compatible(inner, &info.ty),
                ty => compatible(ty, &info.ty),
            };
            if !fits {
                let message = match &typed.ty {
                    Type::Null | Type::Optional(_) => format!(
                        "field `{}` has no presence, so it cannot be null",
                        field.name
                    ),
                    ty => format!(
                        "field `{}` of `{message}` is {}, found {ty}",
                        field.name, info.ty
                    ),
                };
                self.errors
                    .push(ExprError::new(typed.span.clone(), message));
                ok = false;
                continue;
            }
            if matches!(info.ty, Type::Map(..)) && !map_storable(&info) {
                self.errors.push(
                    ExprError::new(
                        field.span.clone(),
                        format!(
                            "map field `{}` holds floating-point values, which a literal cannot set",
                            field.name
                        ),
                    )
                    .with_hint("build the message with a `message` step instead"),
                );
                ok = false;
                continue;
            }
            checked.push((info, typed));
        }
        if !ok {
            return Typed::poisoned(Type::Message(message), span);
        }
        Typed::new(
            TypedKind::MessageLiteral {
                message: message.clone(),
                fields: checked,
            },
            Type::Message(message),
            span,
        )
    }
}

/// Whether a literal can fill a map field: its keys and values convert by `TryFrom`, which
/// floats do not (`f64` into `f32`), and the schema does not say which a double map stores.
fn map_storable(info: &crate::expr::FieldInfo) -> bool {
    !matches!(&info.ty, Type::Map(_, value) if **value == Type::Double)
}
