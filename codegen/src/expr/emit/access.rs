//! Reading stored values: fields (through unset messages, optionals, oneofs, boxes),
//! presence tests, and list and map indexing. Each read yields an [`Out`] in the form the
//! value is stored in, so nothing is cloned on the way.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Emitter, Form, Narrow, Out, Prec, Stored, compile_error, wide};
use crate::expr::ast::Span;
use crate::expr::check::typed::Typed;
use crate::expr::types::{Cardinality, FieldInfo, Scalar, Type};
use crate::names::rust_field_ident as field_ident;

impl Emitter<'_> {
    /// The tokens to select a field from: the operand as an atom. An owned operand is a
    /// temporary, so what is read from it is too.
    fn base(&self, operand: &Typed) -> (TokenStream, bool) {
        let out = self.out(operand);
        let temporary = out.temporary || out.form == Form::Owned;
        (out.at(Prec::Atom), temporary)
    }

    /// `Option<M>` for a singular message field, keeping whether it is set; `Option<&M>`
    /// with `by_ref`.
    pub(super) fn optional_message(
        &self,
        operand: &Typed,
        field: &FieldInfo,
        by_ref: bool,
    ) -> Option<TokenStream> {
        let ident = rust_ident(&field_ident(&field.name))?;
        let (base, temporary) = self.base(operand);
        if by_ref && temporary {
            return None;
        }
        match (&field.cardinality, by_ref) {
            (Cardinality::Message, false) => Some(quote!(#base.#ident.clone())),
            (Cardinality::Message, true) => Some(quote!(#base.#ident.as_ref())),
            (Cardinality::BoxedMessage, false) => Some(quote!(#base.#ident.as_deref().cloned())),
            (Cardinality::BoxedMessage, true) => Some(quote!(#base.#ident.as_deref())),
            _ => None,
        }
    }

    /// `Option<T>` for a scalar field with presence, keeping whether it is set.
    pub(super) fn optional_scalar(
        &self,
        operand: &Typed,
        field: &FieldInfo,
    ) -> Option<TokenStream> {
        if !matches!(field.cardinality, Cardinality::Optional) {
            return None;
        }
        let ident = rust_ident(&field_ident(&field.name))?;
        let (base, _) = self.base(operand);
        Some(if field.ty.is_copy() {
            quote!(#base.#ident)
        } else {
            quote!(#base.#ident.clone())
        })
    }

    pub(super) fn field(&self, operand: &Typed, field: &FieldInfo) -> Out {
        let (base, temporary) = self.base(operand);
        let cel = self.schema.cel_path();
        let Some(ident) = rust_ident(&field_ident(&field.name)) else {
            return compile_error(&format!("`{}` is not a Rust identifier", field.name));
        };
        let mut out = match &field.cardinality {
            Cardinality::Singular => Out::new(
                quote!(#base.#ident),
                Form::Place(narrow_of(field.scalar)),
                Prec::Atom,
            ),
            Cardinality::Optional if field.ty.is_copy() => {
                let value = quote!(#base.#ident.unwrap_or_default());
                match narrow_of(field.scalar) {
                    Stored::Narrow(narrow) => {
                        let wide = wide(narrow);
                        Out::owned(quote!(#wide::from(#value)), Prec::Atom)
                    }
                    _ => Out::owned(value, Prec::Atom),
                }
            }
            Cardinality::Optional | Cardinality::Message => Out::new(
                match field.scalar {
                    Some(Scalar::String) => quote!(#cel::or_empty_string(&#base.#ident)),
                    Some(Scalar::Bytes) => quote!(#cel::or_empty_bytes(&#base.#ident)),
                    _ => quote!(#cel::or_default(&#base.#ident)),
                },
                Form::Ref(Stored::Canonical),
                Prec::Atom,
            ),
            Cardinality::BoxedMessage => Out::new(
                quote!(#cel::or_default_boxed(&#base.#ident)),
                Form::Ref(Stored::Canonical),
                Prec::Atom,
            ),
            Cardinality::Repeated => {
                let stored = match narrow_of(field.scalar) {
                    Stored::Narrow(narrow) => Stored::NarrowList(narrow),
                    _ => Stored::Canonical,
                };
                Out::new(quote!(#base.#ident), Form::Place(stored), Prec::Atom)
            }
            Cardinality::Map => {
                let stored = if map_may_narrow(&field.ty) {
                    Stored::AnyMap
                } else {
                    Stored::Canonical
                };
                Out::new(quote!(#base.#ident), Form::Place(stored), Prec::Atom)
            }
            Cardinality::Oneof { oneof, boxed } => {
                let Some((oneof, variant)) = self.oneof(operand, oneof, field) else {
                    return compile_error(&format!("`{oneof}` is not a Rust identifier"));
                };
                let value = if *boxed {
                    quote!(#cel::unbox(value))
                } else {
                    quote!(value)
                };
                let default = match field.scalar {
                    Some(Scalar::String) => quote!(#cel::empty_string()),
                    Some(Scalar::Bytes) => quote!(#cel::empty_bytes()),
                    _ => quote!(#cel::default_ref()),
                };
                Out::new(
                    quote! {
                        if let ::core::option::Option::Some(#variant(value)) = &#base.#oneof {
                            #value
                        } else {
                            #default
                        }
                    },
                    Form::Ref(narrow_of(field.scalar)),
                    Prec::Lowest,
                )
            }
        };
        out.temporary = temporary;
        out
    }

    pub(super) fn has(&self, operand: &Typed, field: &FieldInfo) -> Out {
        if let Cardinality::Oneof { .. } = field.cardinality {
            return self.presence(operand, field, true);
        }
        let (base, _) = self.base(operand);
        let Some(ident) = rust_ident(&field_ident(&field.name)) else {
            return compile_error(&format!("`{}` is not a Rust identifier", field.name));
        };
        let place = quote!(#base.#ident);
        match &field.cardinality {
            Cardinality::Optional | Cardinality::Message | Cardinality::BoxedMessage => {
                Out::owned(quote!(#place.is_some()), Prec::Atom)
            }
            Cardinality::Repeated | Cardinality::Map => {
                Out::owned(quote!(!#place.is_empty()), Prec::Unary)
            }
            Cardinality::Oneof { .. } => compile_error("oneof presence"),
            Cardinality::Singular => match field.scalar {
                Some(Scalar::Bool) => Out::owned(place, Prec::Atom),
                Some(Scalar::String | Scalar::Bytes) => {
                    Out::owned(quote!(!#place.is_empty()), Prec::Unary)
                }
                // -0.0 is set too: proto3 decides presence on the bits.
                Some(Scalar::F32 | Scalar::F64) => {
                    Out::owned(quote!(#place.to_bits() != 0), Prec::Compare)
                }
                Some(_) => Out::owned(quote!(#place != 0), Prec::Compare),
                // A singular field without a scalar is a message field described as singular.
                None => Out::owned(quote!(#place.is_some()), Prec::Atom),
            },
        }
    }

    pub(super) fn presence(&self, operand: &Typed, field: &FieldInfo, present: bool) -> Out {
        let (base, _) = self.base(operand);
        if let Cardinality::Oneof { oneof, .. } = &field.cardinality {
            let Some((oneof, variant)) = self.oneof(operand, oneof, field) else {
                return compile_error(&format!("`{oneof}` is not a Rust identifier"));
            };
            let test =
                quote!(::core::matches!(#base.#oneof, ::core::option::Option::Some(#variant(_))));
            return if present {
                Out::owned(test, Prec::Atom)
            } else {
                Out::owned(quote!(!#test), Prec::Unary)
            };
        }
        let Some(ident) = rust_ident(&field_ident(&field.name)) else {
            return compile_error(&format!("`{}` is not a Rust identifier", field.name));
        };
        if present {
            Out::owned(quote!(#base.#ident.is_some()), Prec::Atom)
        } else {
            Out::owned(quote!(#base.#ident.is_none()), Prec::Atom)
        }
    }

    /// The Rust field of the oneof `oneof` on `operand`'s message, and the variant of its
    /// member `field`.
    fn oneof(
        &self,
        operand: &Typed,
        oneof: &str,
        field: &FieldInfo,
    ) -> Option<(proc_macro2::Ident, TokenStream)> {
        let Type::Message(message) = &operand.ty else {
            return None;
        };
        let ident = rust_ident(&field_ident(oneof))?;
        let variant = self.schema.oneof_variant(message, field)?;
        Some((ident, variant))
    }

    pub(super) fn index(&self, operand: &Typed, index: &Typed, span: &Span) -> Out {
        let cel = self.schema.cel_path();
        let src = self.source(span);
        let container = self.out(operand);
        let temporary = container.temporary || container.form == Form::Owned;
        let stored_element = match container.form {
            Form::Place(Stored::NarrowList(narrow)) | Form::Ref(Stored::NarrowList(narrow)) => {
                Stored::Narrow(narrow)
            }
            Form::Place(Stored::AnyMap) | Form::Ref(Stored::AnyMap) => {
                map_value_stored(&operand.ty)
            }
            _ => Stored::Canonical,
        };
        let mut out = match &operand.ty {
            Type::Map(key, _) => {
                let map = self.borrow(container);
                let key_out = self.out(index);
                if matches!(**key, Type::Int | Type::Uint) {
                    // The key may be stored narrower: convert it, a key out of range is absent.
                    let key = self.value(key_out, key).ts;
                    Out::new(
                        quote!(#cel::index_map_as(#map, #key, #src)?),
                        Form::Ref(stored_element),
                        Prec::Atom,
                    )
                } else {
                    let key = self.key_ref(key_out, key);
                    Out::new(
                        quote!(#cel::index_map(#map, #key, #src)?),
                        Form::Ref(stored_element),
                        Prec::Atom,
                    )
                }
            }
            _ => {
                let list = self.borrow(container);
                let function = if index.ty == Type::Uint {
                    quote!(index_uint)
                } else {
                    quote!(index)
                };
                let position = self.value(self.out(index), &index.ty).ts;
                Out::new(
                    quote!(#cel::#function(#list, #position, #src)?),
                    Form::Ref(stored_element),
                    Prec::Atom,
                )
            }
        };
        out.temporary = temporary;
        out
    }
}

fn narrow_of(scalar: Option<Scalar>) -> Stored {
    match scalar {
        Some(Scalar::I32) => Stored::Narrow(Narrow::I32),
        Some(Scalar::U32) => Stored::Narrow(Narrow::U32),
        Some(Scalar::F32) => Stored::Narrow(Narrow::F32),
        _ => Stored::Canonical,
    }
}

/// The Rust identifier of a field; `None` when the schema gave something that is not one.
fn rust_ident(text: &str) -> Option<proc_macro2::Ident> {
    use syn::ext::IdentExt;
    use syn::parse::Parser;
    syn::Ident::parse_any.parse_str(text).ok()
}

/// Whether a map type has numbers whose storage the schema may not pin down.
fn map_may_narrow(ty: &Type) -> bool {
    let numeric = |t: &Type| matches!(t, Type::Int | Type::Uint | Type::Double);
    match ty {
        Type::Map(key, value) => numeric(key) || numeric(value),
        _ => false,
    }
}

fn map_value_stored(ty: &Type) -> Stored {
    match ty {
        Type::Map(_, value) if matches!(**value, Type::Int | Type::Uint | Type::Double) => {
            Stored::AnyNumber
        }
        _ => Stored::Canonical,
    }
}
