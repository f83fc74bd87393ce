//! Values stored into prost fields: checked narrowing, presence, boxes.

use proc_macro2::TokenStream;
use prost_reflect::{FieldDescriptor, Kind};
use quote::quote;

use super::paths::{EmitSchema, Paths, emit_expr};
use super::tokens::compose;
use crate::expr::{self, Type};
use crate::model::*;
use crate::schema::{PoolSchema, scalar_of_kind};

/// The value of `e` as `field` stores it: a read of a field with the same narrow storage is
/// copied as is; anything else goes through [`store`].
pub(super) fn store_expression(
    e: &Expression,
    field: &FieldDescriptor,
    env: &expr::Env,
    schema: &PoolSchema,
    paths: &Paths,
) -> TokenStream {
    // A message field read from a message field keeps its presence (unset stays unset).
    if !field.is_list()
        && !field.is_map()
        && matches!(field.kind(), Kind::Message(_))
        && let Some(value) =
            expr::emit_optional_message(&e.checked, env, &EmitSchema { schema, paths })
    {
        return if is_boxed_field(field) {
            quote!(#value.map(::std::boxed::Box::new))
        } else {
            value
        };
    }
    if !field.is_list()
        && !field.is_map()
        && let Some(target) = scalar_of_kind(&field.kind())
    {
        let narrow = expr::emit_narrow(&e.checked, env, &EmitSchema { schema, paths }, target);
        if let Some(value) = narrow {
            return if field.supports_presence() {
                quote!(::core::option::Option::Some(#value))
            } else {
                value
            };
        }
    }
    let value = emit_expr(&e.checked, env, schema, paths);
    store(value, &e.checked.ty, field)
}

/// Converts an expression value into what `field` stores (checked narrowing, `Some` for
/// presence fields).
pub(super) fn store(value: TokenStream, ty: &Type, field: &FieldDescriptor) -> TokenStream {
    let c = compose();
    let out_of_range = format!("value out of range for field `{}`", field.full_name());
    // The conversion of one canonical value (`i64`, `u64`, `f64`) into a narrower stored
    // kind, or `None` when the kind stores the canonical type itself.
    let narrow = |value: TokenStream, kind: &Kind| -> Option<TokenStream> {
        match scalar_of_kind(kind)? {
            expr::Scalar::I32 | expr::Scalar::U32 => Some(quote! {
                ::core::convert::TryFrom::try_from(#value)
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
        let val = narrow(quote!(value), &entry.map_entry_value_field().kind());
        if key.is_none() && val.is_none() {
            return value;
        }
        let key = key.unwrap_or_else(|| quote!(key));
        let val = val.unwrap_or_else(|| quote!(value));
        return quote! {
            (#value)
                .into_iter()
                .map(|(key, value)| ::core::result::Result::<_, #c::Status>::Ok((#key, #val)))
                .collect::<::core::result::Result<::std::collections::BTreeMap<_, _>, #c::Status>>()?
        };
    }
    let kind = field.kind();
    if field.is_list() {
        return match narrow(quote!(element), &kind) {
            None => value,
            Some(converted) => quote! {
                (#value)
                    .into_iter()
                    .map(|element| ::core::result::Result::<_, #c::Status>::Ok(#converted))
                    .collect::<::core::result::Result<::std::vec::Vec<_>, #c::Status>>()?
            },
        };
    }
    if matches!(kind, Kind::Message(_)) {
        return match ty {
            Type::Null => quote!(::core::option::Option::None),
            _ if is_boxed_field(field) => {
                quote!(::core::option::Option::Some(::std::boxed::Box::new(#value)))
            }
            _ => quote!(::core::option::Option::Some(#value)),
        };
    }
    let converted = narrow(value.clone(), &kind).unwrap_or(value);
    if field.field_descriptor_proto().proto3_optional() {
        quote!(::core::option::Option::Some(#converted))
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
