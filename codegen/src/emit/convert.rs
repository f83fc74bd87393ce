//! Conversion functions, defined in each package's module that uses them: between enums (one
//! arm per source variant) and from a downstream message into its edge alias (one struct
//! literal, every field accounted for, so rustc checks that none is missed).

use proc_macro2::TokenStream;
use prost_reflect::{FieldDescriptor, Kind};
use quote::{format_ident, quote};

use super::paths::Paths;
use super::store::{is_boxed_field, store_expression};
use super::tokens::compose;
use crate::expr::{self, RustSchema};
use crate::model::*;
use crate::names::rust_field_ident;
use crate::schema::{field_info, stored_kind, wrapped};

/// The function converting one enum's values into another's, as the model decided.
pub(super) fn emit_enum_conversion(conversion: &EnumConversion, paths: &Paths<'_>) -> TokenStream {
    let c = compose();
    let (from, to) = (conversion.from.full_name(), conversion.to.full_name());
    let Some(function) = paths.conversion_ident(from, to) else {
        return quote!();
    };
    let variant = |enumeration: &prost_reflect::EnumDescriptor, number: i32| {
        let value = enumeration.values().find(|v| v.number() == number)?;
        paths.enum_variant(enumeration.full_name(), value.name())
    };
    let source = paths.enum_path(&conversion.from);
    let arms = conversion.values.iter().filter_map(|(number, target)| {
        let from_variant = variant(&conversion.from, *number)?;
        let to_variant = variant(&conversion.to, *target)?;
        Some(quote!(Ok(#from_variant) => #to_variant,))
    });
    let otherwise = match conversion.default.and_then(|d| variant(&conversion.to, d)) {
        Some(default) => quote!(Err(_) => #default,),
        None => {
            let message = format!("value {{value}} of `{from}` has no counterpart in `{to}`");
            quote!(Err(_) => return Err(#c::Status::internal(format!(#message))),)
        }
    };
    let doc = format!(" Converts values of `{from}` into `{to}`, as the protos say.");
    quote! {
        #[doc = #doc]
        fn #function(value: i32) -> Result<i32, #c::Status> {
            let converted = match #source::try_from(value) {
                #(#arms)*
                #otherwise
            };
            Ok(converted as i32)
        }
    }
}

/// The function converting a downstream message into its edge alias.
pub(super) fn emit_message_conversion(
    conversion: &MessageConversion,
    paths: &Paths<'_>,
) -> TokenStream {
    let c = compose();
    let (from, to) = (conversion.from.full_name(), conversion.to.full_name());
    let Some(function) = paths.conversion_ident(from, to) else {
        return quote!();
    };
    let source = paths.descriptor_path(&conversion.from);
    let target = paths.descriptor_path(&conversion.to);
    let mut env = expr::Env::new();
    env.insert("$", quote!(from));
    let fields = conversion.fields.iter().map(|(field, value)| {
        let ident = format_ident!("{}", rust_field_ident(field.name()));
        let value = match value {
            FieldFrom::Rule(e) => store_expression(e, field, &env, paths),
            FieldFrom::Field(source, how) => field_value(source, field, how, paths),
        };
        quote!(#ident: #value,)
    });
    let oneofs = conversion.oneofs.iter().map(|oneof| {
        let target_ident = format_ident!("{}", rust_field_ident(oneof.target.name()));
        let source_ident = format_ident!("{}", rust_field_ident(oneof.source.name()));
        let arms = oneof
            .members
            .iter()
            .filter_map(|(to_field, from_field, how)| {
                let from_variant = paths.oneof_variant(from, &field_info(from_field))?;
                let to_variant = paths.oneof_variant(to, &field_info(to_field))?;
                let (from_boxed, to_boxed) =
                    (is_boxed_member(from_field), is_boxed_member(to_field));
                let same = *how == ElementConversion::Same;
                let value = match how {
                    // A box of the same message is cloned as it is.
                    ElementConversion::Same if from_boxed && to_boxed => quote!(value.clone()),
                    ElementConversion::Same if from_boxed => quote!((**value).clone()),
                    // `&Box<M>` derefs to the `&M` a conversion takes.
                    _ => element(quote!(value), true, how, to_field, paths),
                };
                let value = if to_boxed && !(from_boxed && same) {
                    quote!(Box::new(#value))
                } else {
                    value
                };
                Some(quote!(Some(#from_variant(value)) => Some(#to_variant(#value)),))
            });
        quote! {
            #target_ident: match &from.#source_ident {
                #(#arms)*
                _ => None,
            },
        }
    });
    let doc = format!(" Converts a `{from}` into `{to}`, its alias, field by field.");
    quote! {
        #[doc = #doc]
        fn #function(from: &#source) -> Result<#target, #c::Status> {
            Ok(#target {
                #(#fields)*
                #(#oneofs)*
            })
        }
    }
}

/// The value of target field `to` from source field `from` of `from`, by their shapes.
fn field_value(
    from: &FieldDescriptor,
    to: &FieldDescriptor,
    how: &ElementConversion,
    paths: &Paths<'_>,
) -> TokenStream {
    let c = compose();
    let ident = format_ident!("{}", rust_field_ident(from.name()));
    let place = quote!(from.#ident);
    if from.is_map() {
        if *how == ElementConversion::Same {
            return quote!(#place.clone());
        }
        let value = element(quote!(value), true, how, to, paths);
        return quote! {
            #place
                .iter()
                .map(|(key, value)| Ok::<_, #c::Status>((key.clone(), #value)))
                .collect::<Result<_, #c::Status>>()?
        };
    }
    // A message conversion is a function of a reference: mapped over by name.
    let function = match how {
        ElementConversion::Message { from, to } => paths.conversion(from, to),
        _ => None,
    };
    if from.is_list() {
        return match how {
            ElementConversion::Same => quote!(#place.clone()),
            _ if function.is_some() => {
                quote!(#place.iter().map(#function).collect::<Result<_, #c::Status>>()?)
            }
            ElementConversion::Widen => {
                quote!(#place.iter().map(|value| From::from(*value)).collect())
            }
            _ => {
                let value = element(quote!(value), true, how, to, paths);
                quote!(#place.iter().map(|value| Ok(#value)).collect::<Result<_, #c::Status>>()?)
            }
        };
    }
    match (has_presence(from), has_presence(to)) {
        (true, true)
            if *how == ElementConversion::Same && is_boxed_field(from) == is_boxed_field(to) =>
        {
            quote!(#place.clone())
        }
        (true, to_presence) => {
            let value = element(quote!(value), true, how, to, paths);
            let read = if is_boxed_field(from) {
                quote!(#place.as_deref())
            } else {
                quote!(#place.as_ref())
            };
            let mapped = if let Some(function) = &function {
                quote!(#read.map(#function).transpose()?)
            } else if fallible(how) {
                quote!(#read.map(|value| Ok::<_, #c::Status>(#value)).transpose()?)
            } else {
                quote!(#read.map(|value| #value))
            };
            match (to_presence, is_boxed_field(to)) {
                (true, true) => quote!(#mapped.map(Box::new)),
                (true, false) => mapped,
                (false, _) => quote!(#mapped.unwrap_or_default()),
            }
        }
        (false, true) => {
            let value = element(place, false, how, to, paths);
            if is_boxed_field(to) {
                quote!(Some(Box::new(#value)))
            } else {
                quote!(Some(#value))
            }
        }
        (false, false) => element(place, false, how, to, paths),
    }
}

/// One converted value from `value`: a reference to it (`by_ref`) or the place itself, of
/// a value that target field `to` stores.
fn element(
    value: TokenStream,
    by_ref: bool,
    how: &ElementConversion,
    to: &FieldDescriptor,
    paths: &Paths<'_>,
) -> TokenStream {
    let copied = if by_ref {
        quote!(*#value)
    } else {
        value.clone()
    };
    let copy = !matches!(
        element_kind(to),
        Kind::String | Kind::Bytes | Kind::Message(_)
    );
    match how {
        ElementConversion::Same if copy => copied,
        ElementConversion::Same => quote!(#value.clone()),
        ElementConversion::Widen => quote!(From::from(#copied)),
        ElementConversion::Enum { from, to } => match paths.conversion(from, to) {
            Some(convert) => quote!(#convert(#copied)?),
            None => quote!(::core::compile_error!("mosaic: no enum conversion")),
        },
        ElementConversion::Message { from, to } => match paths.conversion(from, to) {
            Some(convert) if by_ref => quote!(#convert(#value)?),
            Some(convert) => quote!(#convert(&#value)?),
            None => quote!(::core::compile_error!("mosaic: no message conversion")),
        },
    }
}

/// The kind of one value `field` stores: a map's value, a list's element, a wrapper's scalar.
fn element_kind(field: &FieldDescriptor) -> Kind {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => {
            stored_kind(&entry.map_entry_value_field().kind())
        }
        kind => stored_kind(&kind),
    }
}

fn fallible(how: &ElementConversion) -> bool {
    matches!(
        how,
        ElementConversion::Enum { .. } | ElementConversion::Message { .. }
    )
}

/// Whether prost stores `field` as an `Option`: a singular message field (a wrapper's
/// scalar too) or a proto3 `optional` scalar.
fn has_presence(field: &FieldDescriptor) -> bool {
    !field.is_list()
        && (field.field_descriptor_proto().proto3_optional()
            || wrapped(&field.kind()).is_some()
            || matches!(stored_kind(&field.kind()), Kind::Message(_)))
}

/// Whether prost boxes a oneof member (a recursive message).
fn is_boxed_member(field: &FieldDescriptor) -> bool {
    matches!(
        field_info(field).cardinality,
        expr::Cardinality::Oneof { boxed: true, .. }
    )
}
