//! Values stored into prost fields: checked narrowing, presence, boxes.

use proc_macro2::TokenStream;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use quote::{format_ident, quote};

use super::paths::Paths;
use super::tokens::compose;
use crate::expr::{self, Type};
use crate::model::*;
use crate::names::rust_field_ident;
use crate::schema::{scalar_of_kind, stored_kind, wrapped};

/// The value of `e` as `field` stores it: a read of a field with the same narrow storage is
/// copied as is; anything else goes through [`store`].
pub(super) fn store_expression(
    e: &Expression,
    field: &FieldDescriptor,
    env: &expr::Env,
    paths: &Paths<'_>,
) -> TokenStream {
    if let Some(converted) = convert_message(e, field, env, paths) {
        return converted;
    }
    // A message field read from a message field keeps its presence (unset stays unset).
    if !field.is_list()
        && !field.is_map()
        && matches!(stored_kind(&field.kind()), Kind::Message(_))
        && let Some(value) = expr::emit_optional_message(&e.checked, env, paths)
    {
        return if is_boxed_field(field) {
            quote!(#value.map(Box::new))
        } else {
            value
        };
    }
    // A scalar with presence read from a scalar with presence stored alike keeps it too.
    let presence =
        field.field_descriptor_proto().proto3_optional() || wrapped(&field.kind()).is_some();
    if presence
        && !field.is_list()
        && e.checked.ty == crate::schema::field_info(field).ty
        && let Some((value, scalar)) = expr::emit_optional_scalar(&e.checked, env, paths)
        && scalar_of_kind(&stored_kind(&field.kind())) == Some(scalar)
    {
        return value;
    }
    if !field.is_list()
        && !field.is_map()
        && let Some(target) = scalar_of_kind(&stored_kind(&field.kind()))
    {
        let narrow = expr::emit_narrow(&e.checked, env, paths, target);
        if let Some(value) = narrow {
            return if field.supports_presence() {
                quote!(Some(#value))
            } else {
                value
            };
        }
    }
    let value = paths.expr(&e.checked, env);
    store(value, &e.checked.ty, field, paths)
}

/// A downstream message (or list of them) stored into a field of its alias: through the
/// alias conversion, borrowing the value where it is stored, keeping presence.
fn convert_message(
    e: &Expression,
    field: &FieldDescriptor,
    env: &expr::Env,
    paths: &Paths<'_>,
) -> Option<TokenStream> {
    let c = compose();
    let (from, list) = match &e.checked.ty {
        Type::Message(from) => (from, false),
        Type::List(element) => match &**element {
            Type::Message(from) => (from, true),
            _ => return None,
        },
        _ => return None,
    };
    let Kind::Message(to) = field.kind() else {
        return None;
    };
    if to.full_name() == from || field.is_map() {
        return None;
    }
    let convert = paths.conversion(from, to.full_name())?;
    let place = expr::emit_place(&e.checked, env, paths).unwrap_or_else(|| {
        let value = paths.expr(&e.checked, env);
        quote!(&#value)
    });
    if list {
        return Some(quote! {
            IntoIterator::into_iter(#place)
                .map(#convert)
                .collect::<Result<Vec<_>, #c::Status>>()?
        });
    }
    let converted = match expr::emit_optional_message_ref(&e.checked, env, paths) {
        Some(read) => quote!(#read.map(#convert).transpose()?),
        None => quote!(Some(#convert(#place)?)),
    };
    Some(if is_boxed_field(field) {
        quote!(#converted.map(Box::new))
    } else {
        converted
    })
}

/// The conversion function of values of enum `ty` (or of its list's elements) into
/// `field`'s enum, when they differ.
fn enum_conversion(ty: &Type, field: &FieldDescriptor, paths: &Paths<'_>) -> Option<TokenStream> {
    let from = match ty {
        Type::Enum(from) => from,
        Type::List(element) => match &**element {
            Type::Enum(from) => from,
            _ => return None,
        },
        _ => return None,
    };
    match field.kind() {
        Kind::Enum(to) if to.full_name() != from => paths.conversion(from, to.full_name()),
        _ => None,
    }
}

/// Converts an expression value into what `field` stores (checked narrowing, `Some` for
/// presence fields).
pub(super) fn store(
    value: TokenStream,
    ty: &Type,
    field: &FieldDescriptor,
    paths: &Paths<'_>,
) -> TokenStream {
    let c = compose();
    // A value or null (`c ? x : null`): null leaves the field unset.
    if let Type::Optional(inner) = ty {
        let some = store(quote!(value), inner, field, paths);
        if some.to_string() == quote!(Some(value)).to_string() {
            return value;
        }
        let cel = expr::RustSchema::cel_path(paths);
        return quote!(#cel::map_optional(#value, |value| Ok(#some))?);
    }
    if let Some(convert) = enum_conversion(ty, field, paths) {
        let converted = if field.is_list() {
            quote! {
                (#value)
                    .into_iter()
                    .map(#convert)
                    .collect::<Result<Vec<_>, #c::Status>>()?
            }
        } else {
            quote!(#convert(#value)?)
        };
        return if field.field_descriptor_proto().proto3_optional() {
            quote!(Some(#converted))
        } else {
            converted
        };
    }
    let out_of_range = format!("value out of range for field `{}`", field.full_name());
    // The conversion of one canonical value (`i64`, `u64`, `f64`) into a narrower stored
    // kind, or `None` when the kind stores the canonical type itself.
    let narrow = |value: TokenStream, kind: &Kind| -> Option<TokenStream> {
        match scalar_of_kind(kind)? {
            expr::Scalar::I32 | expr::Scalar::U32 => Some(quote! {
                TryFrom::try_from(#value)
                    .map_err(|_| #c::Status::out_of_range(#out_of_range))?
            }),
            expr::Scalar::F32 => Some(quote!((#value) as f32)),
            _ => None,
        }
    };
    if let Kind::Message(entry) = field.kind()
        && field.is_map()
    {
        let key = narrow(quote!(key), &entry.map_entry_key_field().kind());
        let val = narrow(
            quote!(value),
            &stored_kind(&entry.map_entry_value_field().kind()),
        );
        if key.is_none() && val.is_none() {
            return value;
        }
        let key = key.unwrap_or_else(|| quote!(key));
        let val = val.unwrap_or_else(|| quote!(value));
        return quote! {
            (#value)
                .into_iter()
                .map(|(key, value)| Result::<_, #c::Status>::Ok((#key, #val)))
                .collect::<Result<::std::collections::BTreeMap<_, _>, #c::Status>>()?
        };
    }
    let kind = stored_kind(&field.kind());
    if field.is_list() {
        return match narrow(quote!(element), &kind) {
            None => value,
            Some(converted) => quote! {
                (#value)
                    .into_iter()
                    .map(|element| Result::<_, #c::Status>::Ok(#converted))
                    .collect::<Result<Vec<_>, #c::Status>>()?
            },
        };
    }
    if matches!(kind, Kind::Message(_)) {
        return match ty {
            Type::Null => quote!(None),
            _ if is_boxed_field(field) => {
                quote!(Some(Box::new(#value)))
            }
            _ => quote!(Some(#value)),
        };
    }
    if *ty == Type::Null {
        return quote!(None);
    }
    let converted = narrow(value.clone(), &kind).unwrap_or(value);
    if field.field_descriptor_proto().proto3_optional() || wrapped(&field.kind()).is_some() {
        quote!(Some(#converted))
    } else {
        converted
    }
}

/// Whether prost stores `field` boxed (a recursive message).
pub(super) fn is_boxed_field(field: &FieldDescriptor) -> bool {
    matches!(
        crate::schema::field_info(field).cardinality,
        expr::Cardinality::BoxedMessage
    )
}

/// Whether `field` is a member of a real `oneof` (not the synthetic one of a proto3
/// `optional` field): prost stores the oneof as one field, an enum with a variant per member.
pub(super) fn is_oneof_member(field: &FieldDescriptor) -> bool {
    field.containing_oneof().is_some() && !field.field_descriptor_proto().proto3_optional()
}

/// A field bound by a rule: its value, and the condition it is set under.
pub(super) type Bound<'a> = (&'a FieldDescriptor, &'a Expression, Option<&'a Expression>);

/// `value` when `condition` holds, the field's default otherwise.
pub(super) fn guarded(
    value: TokenStream,
    condition: Option<&Expression>,
    env: &expr::Env,
    paths: &Paths<'_>,
) -> TokenStream {
    match condition {
        None => value,
        Some(condition) => {
            let condition = expr::emit_bool(&condition.checked, env, paths);
            quote!(if #condition { #value } else { Default::default() })
        }
    }
}

/// The struct fields of `message`'s oneofs, from the members bound: `kind: Some(Kind::Text(v))`
/// for a oneof with a bound member, and, with `all`, `kind: None` for the others. Members with
/// conditions are chosen at run time: the one whose condition holds, none when none does, and
/// an error when two do.
pub(super) fn oneof_fields(
    message: &MessageDescriptor,
    bound: &[Bound<'_>],
    all: bool,
    env: &expr::Env,
    paths: &Paths<'_>,
) -> Vec<TokenStream> {
    let cel = expr::RustSchema::cel_path(paths);
    let mut out = Vec::new();
    for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
        let ident = format_ident!("{}", rust_field_ident(oneof.name()));
        let members: Vec<&Bound<'_>> = bound
            .iter()
            .filter(|(field, _, _)| {
                field
                    .containing_oneof()
                    .is_some_and(|o| o.name() == oneof.name())
            })
            .collect();
        let variant = |(field, e, _): &Bound<'_>| {
            let info = crate::schema::field_info(field);
            let variant = expr::RustSchema::oneof_variant(paths, message.full_name(), &info);
            if let Type::Optional(_) = &e.checked.ty {
                // A value or null: null leaves the oneof unset.
                let value = paths.expr(&e.checked, env);
                let inner = match (&info.cardinality, &e.checked.ty) {
                    (expr::Cardinality::Oneof { boxed: true, .. }, _) => quote!(Box::new(value)),
                    (_, Type::Optional(inner)) if !matches!(**inner, Type::Message(_)) => {
                        store(quote!(value), inner, field, paths)
                    }
                    _ => quote!(value),
                };
                return quote!(#cel::map_optional(#value, |value| Ok(Some(#variant(#inner))))?);
            }
            let value = plain_value(e, field, env, paths);
            let value = match info.cardinality {
                expr::Cardinality::Oneof { boxed: true, .. } => quote!(Box::new(#value)),
                _ => value,
            };
            quote!(Some(#variant(#value)))
        };
        match members.as_slice() {
            [] if all => out.push(quote!(#ident: None,)),
            [] => {}
            [member @ (_, _, None)] => {
                let value = variant(member);
                out.push(quote!(#ident: #value,));
            }
            members => {
                // Every member has a condition (the checker refuses an unconditional one
                // beside others).
                let name = oneof.full_name();
                let tests = members.iter().map(|(field, _, condition)| {
                    let member = field.name();
                    let holds = match condition {
                        Some(condition) => expr::emit_bool(&condition.checked, env, paths),
                        None => quote!(true),
                    };
                    quote!((#member, #holds))
                });
                let arms = members.iter().enumerate().map(|(index, member)| {
                    let index = proc_macro2::Literal::usize_unsuffixed(index);
                    let value = variant(member);
                    quote!(Some(#index) => #value,)
                });
                out.push(quote! {
                    #ident: match #cel::one_member(#name, &[#(#tests),*])? {
                        #(#arms)*
                        _ => None,
                    },
                });
            }
        }
    }
    out
}

/// The value of `e` as a oneof variant holds it: checked narrowing, no presence.
fn plain_value(
    e: &Expression,
    field: &FieldDescriptor,
    env: &expr::Env,
    paths: &Paths<'_>,
) -> TokenStream {
    let kind = stored_kind(&field.kind());
    if let Some(target) = scalar_of_kind(&kind)
        && let Some(value) = expr::emit_narrow(&e.checked, env, paths, target)
    {
        return value;
    }
    let c = compose();
    if let (Type::Message(from), Kind::Message(to)) = (&e.checked.ty, &kind)
        && from != to.full_name()
        && let Some(convert) = paths.conversion(from, to.full_name())
    {
        let place = expr::emit_place(&e.checked, env, paths).unwrap_or_else(|| {
            let value = paths.expr(&e.checked, env);
            quote!(&#value)
        });
        return quote!(#convert(#place)?);
    }
    let value = paths.expr(&e.checked, env);
    if let Some(convert) = enum_conversion(&e.checked.ty, field, paths) {
        return quote!(#convert(#value)?);
    }
    let out_of_range = format!("value out of range for field `{}`", field.full_name());
    match scalar_of_kind(&kind) {
        Some(expr::Scalar::I32 | expr::Scalar::U32) => quote! {
            TryFrom::try_from(#value).map_err(|_| #c::Status::out_of_range(#out_of_range))?
        },
        Some(expr::Scalar::F32) => quote!((#value) as f32),
        _ => value,
    }
}
