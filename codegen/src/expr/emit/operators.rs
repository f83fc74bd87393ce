//! Emission of operators and functions.
//!
//! Integer arithmetic and conversions that can fail call checked helpers in
//! `::mosaic_gateway::compose::cel` that return `Result<_, Status>` (followed by `?`); their
//! error messages quote the expression's source text. Double arithmetic and comparisons are
//! plain Rust operators.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Emitter, Form, Out, Prec, Stored, compile_error};
use crate::expr::ast::{BinaryOp, Span};
use crate::expr::check::typed::{StringTest, Typed};
use crate::expr::types::Type;

impl Emitter<'_> {
    pub(super) fn negate(&self, operand: &Typed, span: &Span) -> Out {
        let value = self.value(self.out(operand), &operand.ty);
        if operand.ty == Type::Int {
            let cel = self.schema.cel_path();
            let src = self.source(span);
            let value = value.ts;
            return Out::owned(quote!(#cel::neg_int(#value, #src)?), Prec::Atom);
        }
        // `--x` would read as a decrement to people (and trips the `double_negations` lint).
        let starts_negative = matches!(
            value.ts.clone().into_iter().next(),
            Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == '-'
        );
        let value = if starts_negative {
            value.at(Prec::Atom)
        } else {
            value.at(Prec::Unary)
        };
        Out::owned(quote!(-#value), Prec::Unary)
    }

    pub(super) fn arithmetic(&self, op: BinaryOp, lhs: &Typed, rhs: &Typed, span: &Span) -> Out {
        let ty = &lhs.ty;
        let left = self.value(self.out(lhs), ty);
        let right = self.value(self.out(rhs), ty);
        if *ty == Type::Double {
            let (prec, symbol) = match op {
                BinaryOp::Add => (Prec::Add, quote!(+)),
                BinaryOp::Sub => (Prec::Add, quote!(-)),
                BinaryOp::Mul => (Prec::Mul, quote!(*)),
                BinaryOp::Div => (Prec::Mul, quote!(/)),
                _ => return compile_error("`%` on doubles"),
            };
            let right_min = if prec == Prec::Add {
                Prec::Mul
            } else {
                Prec::Unary
            };
            let (left, right) = (left.at(prec), right.at(right_min));
            return Out::owned(quote!(#left #symbol #right), prec);
        }
        let name = match op {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            _ => "rem",
        };
        let suffix = if *ty == Type::Uint { "uint" } else { "int" };
        let function = quote::format_ident!("{name}_{suffix}");
        let cel = self.schema.cel_path();
        let src = self.source(span);
        let (left, right) = (left.ts, right.ts);
        Out::owned(quote!(#cel::#function(#left, #right, #src)?), Prec::Atom)
    }

    pub(super) fn concat(&self, lhs: &Typed, rhs: &Typed, ty: &Type) -> Out {
        let cel = self.schema.cel_path();
        if *ty == Type::String {
            let left = self.str_ref(self.out(lhs));
            let right = self.str_ref(self.out(rhs));
            return Out::owned(quote!(#cel::concat(#left, #right)), Prec::Atom);
        }
        let left = self.canonical_slice(self.out(lhs), &lhs.ty);
        let right = self.canonical_slice(self.out(rhs), &rhs.ty);
        Out::owned(quote!(#cel::concat_lists(#left, #right)), Prec::Atom)
    }

    /// A `&str`-compatible argument (`&String` coerces).
    fn str_ref(&self, out: Out) -> TokenStream {
        self.borrow(out)
    }

    /// A reference to the value as a slice of canonical elements.
    fn canonical_slice(&self, out: Out, ty: &Type) -> TokenStream {
        match out.form {
            Form::StaticBytes => {
                let ts = &out.ts;
                quote!(#ts.as_slice())
            }
            Form::Place(Stored::Canonical) | Form::Ref(Stored::Canonical) | Form::Owned => {
                self.borrow(out)
            }
            _ => self.borrow(self.value(out, ty)),
        }
    }

    pub(super) fn compare(&self, op: BinaryOp, lhs: &Typed, rhs: &Typed) -> Out {
        let symbol = match op {
            BinaryOp::Eq => quote!(==),
            BinaryOp::Ne => quote!(!=),
            BinaryOp::Lt => quote!(<),
            BinaryOp::Le => quote!(<=),
            BinaryOp::Gt => quote!(>),
            _ => quote!(>=),
        };
        let binary = |left: TokenStream, right: TokenStream| {
            Out::owned(quote!(#left #symbol #right), Prec::Compare)
        };
        let (left_ty, right_ty) = (&lhs.ty, &rhs.ty);
        // `E::X as i32 < y` would read `i32<` as generic arguments: a cast on the left of `<`
        // is parenthesized.
        let left_min = if matches!(op, BinaryOp::Lt | BinaryOp::Le) {
            Prec::Unary
        } else {
            Prec::Add
        };
        // `xs == []`: an emptiness test, which needs no element type.
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne) && (lhs.is_empty_list() || rhs.is_empty_list())
        {
            let cel = self.schema.cel_path();
            let other = if lhs.is_empty_list() { rhs } else { lhs };
            let other = self.slice_like(self.out(other));
            return binary(quote!(#cel::size(#other)), quote!(0));
        }
        match (left_ty, right_ty) {
            (Type::Int, Type::Int)
            | (Type::Uint, Type::Uint)
            | (Type::Double, Type::Double)
            | (Type::Bool, Type::Bool)
            | (Type::Enum(_), Type::Enum(_)) => {
                let left = self.value(self.out(lhs), left_ty).at(left_min);
                let right = self.value(self.out(rhs), right_ty).at(Prec::Add);
                binary(left, right)
            }
            (Type::Int | Type::Uint | Type::Double | Type::Enum(_), _) => {
                let left = self.number(lhs);
                let right = self.number(rhs);
                if matches!(
                    (left_ty, right_ty),
                    (Type::Int, Type::Enum(_)) | (Type::Enum(_), Type::Int)
                ) {
                    return binary(left.at(left_min), right.at(Prec::Add));
                }
                let cel = self.schema.cel_path();
                let function = quote::format_ident!(
                    "num_{}",
                    match op {
                        BinaryOp::Eq => "eq",
                        BinaryOp::Ne => "ne",
                        BinaryOp::Lt => "lt",
                        BinaryOp::Le => "le",
                        BinaryOp::Gt => "gt",
                        _ => "ge",
                    }
                );
                let (left, right) = (left.ts, right.ts);
                Out::owned(quote!(#cel::#function(#left, #right)), Prec::Atom)
            }
            (Type::String, _) if matches!(op, BinaryOp::Eq | BinaryOp::Ne) => {
                let left = self.comparable(self.out(lhs), left_ty);
                let right = self.comparable(self.out(rhs), right_ty);
                binary(left, right)
            }
            (Type::String, _) => {
                let left = self.as_str(self.out(lhs));
                let right = self.as_str(self.out(rhs));
                binary(left, right)
            }
            (Type::Bytes, _) => {
                let left = self.as_slice(self.out(lhs));
                let right = self.as_slice(self.out(rhs));
                binary(left, right)
            }
            _ => {
                let left = self.comparable(self.out(lhs), left_ty);
                let right = self.comparable(self.out(rhs), right_ty);
                binary(left, right)
            }
        }
    }

    /// A numeric operand as `i64`, `u64` or `f64` (an enum as `i64`).
    fn number(&self, typed: &Typed) -> Out {
        let value = self.value(self.out(typed), &typed.ty);
        if matches!(typed.ty, Type::Enum(_)) {
            let ts = value.ts;
            return Out::owned(quote!(i64::from(#ts)), Prec::Atom);
        }
        value
    }

    /// A non-`Copy` value as a place for `==` (no borrow, no clone): `String == &str` and the
    /// reverse are both defined, so literals stay as they are.
    fn comparable(&self, out: Out, ty: &Type) -> TokenStream {
        match out.form {
            Form::Str | Form::Owned | Form::Place(Stored::Canonical) => out.at(Prec::Add),
            Form::Ref(Stored::Canonical) => {
                let ts = out.at(Prec::Unary);
                quote!(*#ts)
            }
            Form::StaticBytes => self.as_slice(out),
            _ => self.value(out, ty).at(Prec::Add),
        }
    }

    fn as_str(&self, out: Out) -> TokenStream {
        if out.form == Form::Str {
            return out.ts;
        }
        let ts = out.at(Prec::Atom);
        quote!(#ts.as_str())
    }

    fn as_slice(&self, out: Out) -> TokenStream {
        let ts = out.at(Prec::Atom);
        quote!(#ts.as_slice())
    }

    pub(super) fn membership(&self, item: &Typed, container: &Typed) -> Out {
        let cel = self.schema.cel_path();
        let container_out = self.out(container);
        match &container.ty {
            Type::Map(key, _) => {
                let map = self.borrow(container_out);
                if matches!(**key, Type::Int | Type::Uint) {
                    let key = self.value(self.out(item), key).ts;
                    return Out::owned(quote!(#cel::contains_key_as(#map, #key)), Prec::Atom);
                }
                let key = self.key_ref(self.out(item), key);
                Out::owned(quote!(#cel::contains_key(#map, #key)), Prec::Atom)
            }
            _ => {
                if let Form::Place(Stored::NarrowList(_)) | Form::Ref(Stored::NarrowList(_)) =
                    container_out.form
                {
                    let list = self.borrow(container_out);
                    let item = self.value(self.out(item), &item.ty).ts;
                    return Out::owned(quote!(#cel::contains_as(#list, #item)), Prec::Atom);
                }
                let list = self.canonical_slice(container_out, &container.ty);
                let item = self.key_ref(self.out(item), &item.ty);
                Out::owned(quote!(#cel::contains(#list, #item)), Prec::Atom)
            }
        }
    }

    pub(super) fn convert(&self, arg: &Typed, to: &Type, span: &Span) -> Out {
        let cel = self.schema.cel_path();
        let src = self.source(span);
        let from = &arg.ty;
        let out = self.out(arg);
        if from == to {
            return match out.form {
                Form::Str => out,
                _ => self.value(out, to),
            };
        }
        match (from, to) {
            (Type::String, Type::Int | Type::Uint | Type::Double) => {
                let function = match to {
                    Type::Int => quote!(int_from_string),
                    Type::Uint => quote!(uint_from_string),
                    _ => quote!(double_from_string),
                };
                let text = self.borrow(out);
                Out::owned(quote!(#cel::#function(#text, #src)?), Prec::Atom)
            }
            (Type::String, Type::Bytes) => {
                let text = self.borrow(out);
                Out::owned(quote!(#cel::bytes_from_string(#text)), Prec::Atom)
            }
            (Type::Bytes, Type::String) => {
                let bytes = self.slice_like(out);
                Out::owned(quote!(#cel::string_from_bytes(#bytes, #src)?), Prec::Atom)
            }
            (Type::Double, Type::String) => {
                let value = self.value(out, from).ts;
                Out::owned(quote!(#cel::string_from_double(#value)), Prec::Atom)
            }
            (_, Type::String) => {
                let value = self.value(out, from).ts;
                Out::owned(quote!(#cel::string_from(#value)), Prec::Atom)
            }
            (Type::Enum(_), Type::Int) => {
                let value = self.value(out, from).ts;
                Out::owned(quote!(i64::from(#value)), Prec::Atom)
            }
            (Type::Int | Type::Uint | Type::Double, Type::Int | Type::Uint | Type::Double) => {
                let value = self.value(out, from).ts;
                let (name, fallible) = match (from, to) {
                    (Type::Uint, Type::Int) => ("int_from_uint", true),
                    (Type::Double, Type::Int) => ("int_from_double", true),
                    (Type::Int, Type::Uint) => ("uint_from_int", true),
                    (Type::Double, Type::Uint) => ("uint_from_double", true),
                    (Type::Int, _) => ("double_from_int", false),
                    _ => ("double_from_uint", false),
                };
                let function = quote::format_ident!("{name}");
                if fallible {
                    Out::owned(quote!(#cel::#function(#value, #src)?), Prec::Atom)
                } else {
                    Out::owned(quote!(#cel::#function(#value)), Prec::Atom)
                }
            }
            _ => compile_error(&format!("no conversion from {from} to {to}")),
        }
    }

    pub(super) fn string_test(&self, test: StringTest, receiver: &Typed, arg: &Typed) -> Out {
        let method = match test {
            StringTest::Contains => quote!(contains),
            StringTest::StartsWith => quote!(starts_with),
            StringTest::EndsWith => quote!(ends_with),
        };
        let receiver = self.out(receiver).at(Prec::Atom);
        let pattern = self.borrow(self.out(arg));
        Out::owned(quote!(#receiver.#method(#pattern)), Prec::Atom)
    }
}
