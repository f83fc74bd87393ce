//! Emission of map and message literals, optional values and the string and list library.

use proc_macro2::{Literal as RustLiteral, TokenStream};
use quote::{format_ident, quote};

use super::{Emitter, Out, Prec, compile_error};
use crate::expr::check::typed::{Library, Typed, TypedKind};
use crate::expr::types::{Cardinality, FieldInfo, Scalar, Type};

impl Emitter<'_> {
    /// `{k: v}` as a `BTreeMap` of owned canonical values.
    pub(super) fn map_literal(&self, entries: &[(Typed, Typed)], ty: &Type) -> Out {
        if entries.is_empty() {
            return match self.rust_type(ty) {
                Some(map) => Out::owned(quote!(<#map>::new()), Prec::Atom),
                None => Out::owned(quote!(::std::collections::BTreeMap::new()), Prec::Atom),
            };
        }
        let pairs = entries.iter().map(|(key, value)| {
            let key = self.value(self.out(key), &key.ty).ts;
            let value = self.value(self.out(value), &value.ty).ts;
            quote!((#key, #value))
        });
        Out::owned(
            quote!(::std::collections::BTreeMap::from([#(#pairs),*])),
            Prec::Atom,
        )
    }

    /// `pkg.Msg{f: v}` as the prost struct, the fields left out at their defaults.
    pub(super) fn message_literal(
        &self,
        message: &str,
        fields: &[(FieldInfo, Typed)],
        span: &crate::expr::Span,
    ) -> Out {
        if message == "google.protobuf.Empty" {
            return Out::owned(quote!(()), Prec::Atom);
        }
        let Some(path) = self.schema.message_path(message) else {
            return compile_error(&format!("no Rust path for `{message}`"));
        };
        let source = self.source(span);
        let set = fields.iter().map(|(info, value)| {
            let stored = self.stored(info, value, &source);
            match &info.cardinality {
                Cardinality::Oneof { oneof, boxed } => {
                    let ident = format_ident!("{}", crate::names::rust_field_ident(oneof));
                    let variant = self
                        .schema
                        .oneof_variant(message, info)
                        .unwrap_or_else(|| quote!(::core::compile_error!("no oneof variant")));
                    let wrap = |value: TokenStream| {
                        if *boxed {
                            quote!(#variant(Box::new(#value)))
                        } else {
                            quote!(#variant(#value))
                        }
                    };
                    let value = match &value.ty {
                        Type::Null => quote!(None),
                        Type::Optional(_) => {
                            let inner = wrap(quote!(value));
                            let cel = self.schema.cel_path();
                            quote!(#cel::map_optional(#stored, |value| Ok(Some(#inner)))?)
                        }
                        _ => {
                            let inner = wrap(stored);
                            quote!(Some(#inner))
                        }
                    };
                    quote!(#ident: #value,)
                }
                _ => {
                    let ident = format_ident!("{}", crate::names::rust_field_ident(&info.name));
                    quote!(#ident: #stored,)
                }
            }
        });
        // Fields left out keep their defaults; a literal setting every one needs no `..`.
        let mut slots: Vec<String> = Vec::new();
        for name in self.schema.field_names(message) {
            let slot = match self.schema.field(message, &name).map(|f| f.cardinality) {
                Some(Cardinality::Oneof { oneof, .. }) => format!("oneof {oneof}"),
                _ => name,
            };
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        let set_count = fields.len();
        let rest = (set_count < slots.len()).then(|| quote!(..::core::default::Default::default()));
        Out::owned(quote!(#path { #(#set)* #rest }), Prec::Atom)
    }

    /// `value` as field `info` stores it (a oneof member: as its variant holds it).
    fn stored(&self, info: &FieldInfo, value: &Typed, source: &TokenStream) -> TokenStream {
        let cel = self.schema.cel_path();
        let narrow = |v: TokenStream| match info.scalar {
            Some(Scalar::I32 | Scalar::U32) => quote!(#cel::narrow(#v, #source)?),
            Some(Scalar::F32) => quote!(#cel::to_float(#v)),
            _ => v,
        };
        if value.ty == Type::Null {
            return quote!(None);
        }
        let owned = self.value(self.out(value), &value.ty).ts;
        match &info.cardinality {
            Cardinality::Repeated => match info.scalar {
                Some(Scalar::I32 | Scalar::U32) => quote!(#cel::narrow_list(#owned, #source)?),
                Some(Scalar::F32) => {
                    quote!((#owned).into_iter().map(#cel::to_float).collect::<Vec<f32>>())
                }
                _ => owned,
            },
            Cardinality::Map => quote!(#cel::narrow_map(#owned, #source)?),
            Cardinality::Singular => narrow(owned),
            Cardinality::Oneof { .. } | Cardinality::Optional
                if matches!(value.ty, Type::Optional(_)) =>
            {
                let inner = narrow(quote!(value));
                if inner.to_string() == "value" {
                    owned
                } else {
                    quote!(#cel::map_optional(#owned, |value| Ok(Some(#inner)))?)
                }
            }
            Cardinality::Oneof { .. } => narrow(owned),
            Cardinality::Optional => {
                let inner = narrow(owned);
                quote!(Some(#inner))
            }
            Cardinality::Message => match &value.ty {
                Type::Optional(_) => owned,
                _ => quote!(Some(#owned)),
            },
            Cardinality::BoxedMessage => match &value.ty {
                Type::Optional(_) => quote!((#owned).map(Box::new)),
                _ => quote!(Some(Box::new(#owned))),
            },
        }
    }

    /// `opt.orValue(d)`: `d` is evaluated only when the optional is null.
    pub(super) fn or_value(&self, optional: &Typed, default: &Typed, ty: &Type) -> Out {
        let optional = self.value(self.out(optional), &optional.ty).ts;
        let default = self.value(self.out(default), ty).ts;
        let cel = self.schema.cel_path();
        Out::owned(
            quote!(#cel::or_value(#optional, || Ok(#default))?),
            Prec::Atom,
        )
    }

    /// A branch of a conditional whose type is optional, as an `Option`.
    pub(super) fn optional_branch(&self, branch: &Typed) -> TokenStream {
        match &branch.ty {
            Type::Null => quote!(None),
            Type::Optional(_) => self.value(self.out(branch), &branch.ty).ts,
            ty => {
                let value = self.value(self.out(branch), ty).ts;
                quote!(Some(#value))
            }
        }
    }

    pub(super) fn library(&self, function: Library, receiver: &Typed, args: &[Typed]) -> Out {
        let cel = self.schema.cel_path();
        let receiver_ref = self.slice_like(self.out(receiver));
        let arg = |index: usize| match args.get(index) {
            Some(arg) => self.borrow(self.out(arg)),
            None => quote!(""),
        };
        let ts = match function {
            Library::LowerAscii => quote!(#cel::lower_ascii(#receiver_ref)),
            Library::UpperAscii => quote!(#cel::upper_ascii(#receiver_ref)),
            Library::Trim => quote!(#cel::trim(#receiver_ref)),
            Library::Split => {
                let separator = arg(0);
                quote!(#cel::split(#receiver_ref, #separator))
            }
            Library::Join => {
                let separator = arg(0);
                quote!(#cel::join(#receiver_ref, #separator))
            }
            Library::Matches => {
                let pattern = match args.first().map(|a| &a.kind) {
                    Some(TypedKind::Literal(crate::expr::Literal::String(p))) => {
                        RustLiteral::string(p)
                    }
                    _ => return compile_error("the pattern of `matches()` is not a literal"),
                };
                quote!(#cel::matches(#receiver_ref, #pattern))
            }
            Library::Reverse if receiver.ty == Type::String => {
                quote!(#cel::reverse_string(#receiver_ref))
            }
            Library::Reverse => quote!(#cel::reverse_list(#receiver_ref)),
            Library::Sort => quote!(#cel::sort_list(#receiver_ref)),
        };
        Out::owned(ts, Prec::Atom)
    }
}
