//! Emission: a [`Checked`] expression → a Rust expression (a `proc_macro2::TokenStream`).
//!
//! The emitted expression has the canonical type of the expression's [`Type`] and may use `?`
//! (for indexing, integer overflow, conversions), so it belongs in a function returning
//! `Result<_, tonic::Status>`. It is usable as a `let` initializer, a function argument or a
//! block's value; as an operand of another operator, parenthesize it.
//!
//! Reading a field never clones what it passes through: each subexpression is emitted in a
//! [`Form`] (a place, a reference, an owned value, a `'static` literal) and converted only when
//! a consumer needs something else, so `rs.reviews[0].author.name` clones one `String`, and a
//! singular message field that is unset reads through
//! `::mosaic_gateway::compose::cel::or_default` as a shared default instance.
//!
//! # Lints
//!
//! The emitted code passes `clippy -D warnings` (checked by compiling the snapshots of
//! `tests/emit.rs` against prost structs), except for lints about what the *user wrote*, which
//! emission keeps as written. The module that holds generated code should allow them:
//!
//! ```text
//! #[allow(
//!     unused_comparisons,                // `$.page >= 0u`
//!     clippy::absurd_extreme_comparisons, // same
//!     clippy::eq_op,                     // `$.a == $.a`
//!     clippy::nonminimal_bool,           // `!(a < b)`, `!!a`
//!     clippy::overly_complex_bool_expr,  // `a && !a`
//!     clippy::double_comparisons,        // `a == b || a < b`
//!     clippy::neg_cmp_op_on_partial_ord, // `!(x < 1.0)`
//!     clippy::bool_comparison,           // `$.flag == true`
//!     clippy::comparison_to_empty,       // `$.name == ''`
//!     clippy::needless_bool,             // `c ? true : false`
//!     clippy::if_same_then_else,         // `c ? 1 : 1`
//!     clippy::neg_multiply,              // `x * -1.0`
//!     clippy::approx_constant,           // `3.14159`
//!     clippy::zero_divided_by_zero,      // `0.0 / 0.0`
//! )]
//! ```
//!
//! and, only if name accesses are written like `(&*step)` (see [`Env::insert`]),
//! `clippy::needless_borrow` and `clippy::explicit_auto_deref`; binding each step to a plain
//! reference (`let step = &*step;`, access `step`) avoids both.
//!
//! **Invariant: emission cannot fail and never panics.** Everything was decided by the
//! checker; the one thing looked up here, a name's access path in the [`Env`], becomes a
//! `compile_error!` if the caller passes an environment without it. Every runtime item is named by
//! an absolute path (`::std::…`, `::mosaic_gateway::compose::cel::…`), so user names cannot
//! clash with them.

mod access;
mod literals;
mod operators;
mod time;

use proc_macro2::{Literal as RustLiteral, TokenStream};
use quote::quote;

use crate::expr::ast::{Literal, Span};
use crate::expr::check::Checked;
use crate::expr::check::typed::{Macro, Typed, TypedKind};
use crate::expr::types::{FieldInfo, Scalar, Schema, Type};

/// How emitted code reaches each name an expression reads: the emission-side counterpart of
/// the checker's [`Scope`](crate::expr::Scope), which knows only types.
#[derive(Debug, Clone, Default)]
pub struct Env {
    bindings: Vec<(String, TokenStream)>,
}

impl Env {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `name` to `access`, replacing an earlier binding of the same name.
    ///
    /// `access` is a Rust expression of type `&T`, where `T` is the canonical representation
    /// of the name's type (see [`Type`]); it must be usable as an operand as it is (a path
    /// such as `input`, or parenthesized such as `(&*p)`). A plain reference variable
    /// (`let p = &*p;`, access `p`) gives the cleanest code: `(&*p).field` trips two clippy
    /// style lints.
    pub fn insert(&mut self, name: impl Into<String>, access: TokenStream) -> &mut Self {
        let name = name.into();
        match self.bindings.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = access,
            None => self.bindings.push((name, access)),
        }
        self
    }

    /// Like [`insert`](Self::insert), by value.
    pub fn with(mut self, name: impl Into<String>, access: TokenStream) -> Self {
        self.insert(name, access);
        self
    }

    /// Whether some name's access is exactly the Rust name `ident`.
    pub fn uses(&self, ident: &str) -> bool {
        self.bindings
            .iter()
            .any(|(_, access)| access.to_string() == ident)
    }

    /// The access of `name`.
    pub fn get(&self, name: &str) -> Option<&TokenStream> {
        self.bindings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, access)| access)
    }
}

/// The schema as emission needs it: the checker's [`Schema`] plus the Rust paths of prost's
/// types, relative to the module the code is emitted into.
pub trait RustSchema: Schema {
    /// The path of the prost type of `message`. `None` leaves an empty list of messages
    /// (`[]`) to type inference, which holds in every place the checker accepts `[]`.
    fn message_path(&self, message: &str) -> Option<TokenStream>;

    /// The path of the enum variant prost gives `field`, a oneof member of `message`, such as
    /// `filter::Kind::Text`.
    fn oneof_variant(&self, message: &str, field: &FieldInfo) -> Option<TokenStream>;

    /// The path of the prost enum variant of value `value` of `enumeration` (its full name),
    /// such as `users_v1::Status::Active`; `None` writes the value's number instead.
    fn enum_variant(&self, enumeration: &str, value: &str) -> Option<TokenStream> {
        let _ = (enumeration, value);
        None
    }

    /// The path of the runtime's expression helpers, as the emitted code reaches them.
    fn cel_path(&self) -> TokenStream {
        quote!(::mosaic_gateway::compose::cel)
    }
}

/// Emits the value of `checked`, as its canonical owned Rust type.
pub fn emit(checked: &Checked, env: &Env, schema: &dyn RustSchema) -> TokenStream {
    let emitter = Emitter::new(checked, env, schema);
    let out = emitter.out(&checked.root);
    // prost's `google.protobuf.Empty` is `()`: a plain read of one is the unit value itself
    // (clippy rejects passing a computed `()` on).
    if matches!(&checked.ty, Type::Message(name) if name == "google.protobuf.Empty")
        && plain_read(&checked.root)
    {
        return quote!(());
    }
    emitter.value(out, &checked.ty).ts
}

/// A name or a chain of field reads from one: what cannot fail and computes nothing.
fn plain_read(typed: &Typed) -> bool {
    match &typed.kind {
        TypedKind::Name(_) => true,
        TypedKind::Field { operand, .. } => plain_read(operand),
        _ => false,
    }
}

/// Emits a `bool` expression for a guard or a condition. A non-bool expression (which
/// [`check_condition`](super::check_condition) rejects) becomes a `compile_error!`.
pub fn emit_bool(checked: &Checked, env: &Env, schema: &dyn RustSchema) -> TokenStream {
    if checked.ty != Type::Bool {
        let message = format!(
            "mosaic: expected a bool expression, found {} in `{}`",
            checked.ty, checked.text
        );
        return quote!(::core::compile_error!(#message));
    }
    emit(checked, env, schema)
}

/// Emits a *borrowed* value: an expression of type `&T` (`T` the canonical Rust type) that
/// refers into the names in scope, when the expression is a path of fields and indexes that
/// reaches a value stored in its canonical form (such as `rs.reviews`, a `Vec<Review>`);
/// `None` otherwise (the caller then uses [`emit`]). Useful to iterate a list without
/// cloning it: `for r in <place> { … }`.
pub fn emit_place(checked: &Checked, env: &Env, schema: &dyn RustSchema) -> Option<TokenStream> {
    let emitter = Emitter::new(checked, env, schema);
    let out = emitter.out(&checked.root);
    if out.temporary {
        return None;
    }
    match out.form {
        Form::Place(Stored::Canonical) => {
            let ts = out.ts;
            Some(quote!(&#ts))
        }
        Form::Ref(Stored::Canonical) => Some(out.ts),
        _ => None,
    }
}

/// Emits a field read in its *stored* narrow form (`i32`, `u32` or `f32`) when the expression is
/// a plain read of a field stored that way and `target` is that same storage, so that binding
/// it to a field of the same type needs no widening and no checked narrowing; `None` otherwise.
pub fn emit_narrow(
    checked: &Checked,
    env: &Env,
    schema: &dyn RustSchema,
    target: Scalar,
) -> Option<TokenStream> {
    // A double literal that fits a `float` is written as one: no cast to lint.
    if let (TypedKind::Literal(Literal::Double(value)), Scalar::F32) = (&checked.root.kind, target)
    {
        #[allow(clippy::cast_possible_truncation)] // rounding to the nearest f32 is the point
        let narrow = *value as f32;
        if narrow.is_finite() {
            let literal = RustLiteral::f32_suffixed(narrow.abs());
            return Some(if narrow.is_sign_negative() {
                quote!(-#literal)
            } else {
                quote!(#literal)
            });
        }
    }
    let emitter = Emitter::new(checked, env, schema);
    let out = emitter.out(&checked.root);
    let matches = |narrow: Narrow| {
        matches!(
            (narrow, target),
            (Narrow::I32, Scalar::I32) | (Narrow::U32, Scalar::U32) | (Narrow::F32, Scalar::F32)
        )
    };
    match out.form {
        Form::Place(Stored::Narrow(narrow)) if matches(narrow) => Some(out.ts),
        Form::Ref(Stored::Narrow(narrow)) if matches(narrow) => {
            let ts = out.at(Prec::Unary);
            Some(quote!(*#ts))
        }
        _ => None,
    }
}

/// Emits a read of a singular message field *with its presence*: an expression of type
/// `Option<M>` (`None` when the field is unset), for binding to a message field of the same
/// type without turning an unset field into a default-valued one. `None` when the expression
/// is not a plain read of such a field.
pub fn emit_optional_message(
    checked: &Checked,
    env: &Env,
    schema: &dyn RustSchema,
) -> Option<TokenStream> {
    let TypedKind::Field { operand, field } = &checked.root.kind else {
        return None;
    };
    let emitter = Emitter::new(checked, env, schema);
    emitter.optional_message(operand, field, false)
}

/// Like [`emit_optional_message`], as an `Option<&M>` borrowing the field.
pub fn emit_optional_message_ref(
    checked: &Checked,
    env: &Env,
    schema: &dyn RustSchema,
) -> Option<TokenStream> {
    let TypedKind::Field { operand, field } = &checked.root.kind else {
        return None;
    };
    let emitter = Emitter::new(checked, env, schema);
    emitter.optional_message(operand, field, true)
}

/// Emits a read of a scalar field with presence (proto3 `optional`, a wrapper) *with its
/// presence*: an expression of type `Option<S>`, `S` the stored scalar, returned with it, for
/// binding to a field stored the same way without turning unset into a default. `None` when
/// the expression is not a plain read of such a field.
pub fn emit_optional_scalar(
    checked: &Checked,
    env: &Env,
    schema: &dyn RustSchema,
) -> Option<(TokenStream, Scalar)> {
    let TypedKind::Field { operand, field } = &checked.root.kind else {
        return None;
    };
    let emitter = Emitter::new(checked, env, schema);
    Some((emitter.optional_scalar(operand, field)?, field.scalar?))
}

/// How an emitted subexpression holds its value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// An owned value in the canonical representation.
    Owned,
    /// A place expression (`input.name`) of the stored type: it may be borrowed, copied or
    /// cloned.
    Place(Stored),
    /// An expression of type `&S`, `S` the stored type.
    Ref(Stored),
    /// A string literal: `&'static str`.
    Str,
    /// A bytes literal: `&'static [u8; N]`.
    StaticBytes,
}

/// How the stored Rust type relates to the canonical one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stored {
    Canonical,
    /// A narrower number (`i32` for int, `u32` for uint, `f32` for double).
    Narrow(Narrow),
    /// A list of narrower numbers.
    NarrowList(Narrow),
    /// A map whose numeric keys or values may be narrower; converted generically.
    AnyMap,
    /// A map value whose numeric type may be narrower; converted generically.
    AnyNumber,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Narrow {
    I32,
    U32,
    F32,
}

/// Rust operator precedence, loosest first, to parenthesize only where needed (the
/// `unused_parens` lint rejects the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    /// `if … else …`
    Lowest,
    Or,
    And,
    Compare,
    Add,
    Mul,
    /// `x as T`
    Cast,
    /// `!x`, `-x`, `*x`, `&x`
    Unary,
    /// Paths, calls, method calls, field accesses, `?`, literals, parenthesized.
    Atom,
}

#[derive(Debug, Clone)]
struct Out {
    ts: TokenStream,
    form: Form,
    prec: Prec,
    /// Borrows from a temporary, so it must be consumed within the expression.
    temporary: bool,
}

impl Out {
    fn new(ts: TokenStream, form: Form, prec: Prec) -> Self {
        Self {
            ts,
            form,
            prec,
            temporary: false,
        }
    }

    fn owned(ts: TokenStream, prec: Prec) -> Self {
        Self::new(ts, Form::Owned, prec)
    }

    /// The tokens, parenthesized unless they bind at least as tightly as `min`.
    fn at(&self, min: Prec) -> TokenStream {
        let ts = &self.ts;
        if self.prec >= min {
            ts.clone()
        } else {
            quote!((#ts))
        }
    }
}

fn wide(narrow: Narrow) -> TokenStream {
    match narrow {
        Narrow::I32 => quote!(i64),
        Narrow::U32 => quote!(u64),
        Narrow::F32 => quote!(f64),
    }
}

fn compile_error(message: &str) -> Out {
    let message = format!("mosaic: {message}");
    Out::owned(quote!(::core::compile_error!(#message)), Prec::Atom)
}

struct Emitter<'a> {
    env: &'a Env,
    schema: &'a dyn RustSchema,
    text: &'a str,
}

impl<'a> Emitter<'a> {
    fn new(checked: &'a Checked, env: &'a Env, schema: &'a dyn RustSchema) -> Self {
        Self {
            env,
            schema,
            text: &checked.text,
        }
    }

    /// The source text of a node, as a string literal for runtime error messages.
    fn source(&self, span: &Span) -> TokenStream {
        let text = self.text.get(span.clone()).unwrap_or("");
        let literal = RustLiteral::string(text);
        quote!(#literal)
    }

    /// The canonical Rust type of `ty`, where one can be written.
    fn rust_type(&self, ty: &Type) -> Option<TokenStream> {
        Some(match ty {
            Type::Int => quote!(i64),
            Type::Uint => quote!(u64),
            Type::Double => quote!(f64),
            Type::Bool => quote!(bool),
            Type::String => quote!(::std::string::String),
            Type::Bytes => quote!(::std::vec::Vec<u8>),
            Type::Enum(_) => quote!(i32),
            Type::Null => quote!(()),
            Type::Message(name) => self.schema.message_path(name)?,
            Type::List(element) => {
                let element = self.rust_type(element)?;
                quote!(::std::vec::Vec<#element>)
            }
            Type::Map(key, value) => {
                let key = self.rust_type(key)?;
                let value = self.rust_type(value)?;
                quote!(::std::collections::BTreeMap<#key, #value>)
            }
            Type::Optional(value) => {
                let value = self.rust_type(value)?;
                quote!(::core::option::Option<#value>)
            }
            Type::Error => return None,
        })
    }

    fn out(&self, node: &Typed) -> Out {
        match &node.kind {
            TypedKind::Literal(literal) => literal_out(literal),
            TypedKind::Name(name) => match self.env.get(name) {
                Some(access) => Out::new(access.clone(), Form::Ref(Stored::Canonical), Prec::Atom),
                None => compile_error(&format!("`{name}` is not in scope")),
            },
            TypedKind::Field { operand, field } => self.field(operand, field),
            TypedKind::Index { operand, index } => self.index(operand, index, &node.span),
            TypedKind::Has { operand, field } => self.has(operand, field),
            TypedKind::HasKey { operand, key } => {
                let cel = self.schema.cel_path();
                let map = self.borrow(self.out(operand));
                let key = RustLiteral::string(key);
                Out::owned(quote!(#cel::contains_key(#map, #key)), Prec::Atom)
            }
            TypedKind::Presence {
                operand,
                field,
                present,
            } => self.presence(operand, field, *present),
            TypedKind::Size(arg) => {
                let cel = self.schema.cel_path();
                let arg = self.slice_like(self.out(arg));
                Out::owned(quote!(#cel::size(#arg)), Prec::Atom)
            }
            TypedKind::Convert(arg) => self.convert(arg, &node.ty, &node.span),
            TypedKind::StringTest {
                test,
                receiver,
                arg,
            } => self.string_test(*test, receiver, arg),
            TypedKind::Not(operand) => {
                let operand = self.value(self.out(operand), &Type::Bool).at(Prec::Unary);
                Out::owned(quote!(!#operand), Prec::Unary)
            }
            TypedKind::Neg(operand) => self.negate(operand, &node.span),
            TypedKind::Arith { op, lhs, rhs } => self.arithmetic(*op, lhs, rhs, &node.span),
            TypedKind::Concat { lhs, rhs } => self.concat(lhs, rhs, &node.ty),
            TypedKind::Compare { op, lhs, rhs } => self.compare(*op, lhs, rhs),
            TypedKind::In { item, container } => self.membership(item, container),
            TypedKind::And(lhs, rhs) => {
                let lhs = self.value(self.out(lhs), &Type::Bool).at(Prec::And);
                let rhs = self.value(self.out(rhs), &Type::Bool).at(Prec::Compare);
                Out::owned(quote!(#lhs && #rhs), Prec::And)
            }
            TypedKind::Or(lhs, rhs) => {
                let lhs = self.value(self.out(lhs), &Type::Bool).at(Prec::Or);
                let rhs = self.value(self.out(rhs), &Type::Bool).at(Prec::And);
                Out::owned(quote!(#lhs || #rhs), Prec::Or)
            }
            TypedKind::Conditional { .. } => self.conditional(node),
            TypedKind::List(items) => self.list(items, &node.ty),
            TypedKind::EnumValue {
                enumeration,
                value,
                number,
            } => match self.schema.enum_variant(enumeration, value) {
                Some(variant) => Out::owned(quote!(#variant as i32), Prec::Cast),
                None => Out::owned(quote!(#number), Prec::Atom),
            },
            TypedKind::Comprehension {
                kind,
                list,
                var,
                body,
            } => self.comprehension(*kind, list, var, body),
            TypedKind::Map(entries) => self.map_literal(entries, &node.ty),
            TypedKind::MessageLiteral { message, fields } => {
                self.message_literal(message, fields, &node.span)
            }
            TypedKind::OrValue { optional, default } => self.or_value(optional, default, &node.ty),
            TypedKind::StepRan(guard) => {
                let guard = self.value(self.out(guard), &Type::Bool).at(Prec::Lowest);
                Out::owned(guard, Prec::Lowest)
            }
            TypedKind::HasValue(optional) => {
                let optional = self.borrow(self.out(optional));
                Out::owned(
                    quote!(::core::option::Option::is_some(#optional)),
                    Prec::Atom,
                )
            }
            TypedKind::Some(value) => {
                let value = self.value(self.out(value), &value.ty).ts;
                Out::owned(quote!(Some(#value)), Prec::Atom)
            }
            TypedKind::Library {
                function,
                receiver,
                args,
            } => self.library(*function, receiver, args),
            TypedKind::Time { op, args } => self.time(op, args, &node.span),
            TypedKind::Partial => {
                let cel = self.schema.cel_path();
                Out::owned(quote!(#cel::partial()), Prec::Atom)
            }
            TypedKind::Poisoned => compile_error("an expression with errors was emitted"),
        }
    }

    /// `if c { a } else if d { b } else { e }`: a chain of `?:` in the else branch stays flat.
    /// When both branches can be borrowed (`c ? $.user : rs.author`), the result is a
    /// reference, so selecting from it (`(c ? x : y).name`) clones only what is selected.
    fn conditional(&self, node: &Typed) -> Out {
        let TypedKind::Conditional {
            cond,
            then,
            otherwise,
        } = &node.kind
        else {
            return compile_error("a conditional was expected");
        };
        let cond = self.value(self.out(cond), &Type::Bool).ts;
        if let Type::Optional(_) = &node.ty {
            let then = self.optional_branch(then);
            let otherwise = self.optional_branch(otherwise);
            return Out::owned(quote!(if #cond { #then } else { #otherwise }), Prec::Lowest);
        }
        let then = self.out(then);
        let else_out = self.out(otherwise);
        let by_ref = !node.ty.is_copy() && borrowable(&then) && borrowable(&else_out);
        // A nested conditional in the else branch is already an `if` of the right form.
        let flat = matches!(otherwise.kind, TypedKind::Conditional { .. })
            && if by_ref {
                matches!(else_out.form, Form::Ref(_))
            } else {
                else_out.form == Form::Owned
            };
        let (then, otherwise) = if by_ref {
            (self.borrow(then), self.borrow(else_out))
        } else {
            (
                self.value(then, &node.ty).ts,
                self.value(else_out, &node.ty).ts,
            )
        };
        let otherwise = if flat {
            otherwise
        } else {
            quote!({ #otherwise })
        };
        let ts = quote!(if #cond { #then } else #otherwise);
        if by_ref {
            Out::new(ts, Form::Ref(Stored::Canonical), Prec::Lowest)
        } else {
            Out::owned(ts, Prec::Lowest)
        }
    }

    fn list(&self, items: &[Typed], ty: &Type) -> Out {
        if items.is_empty() {
            let element = match ty {
                Type::List(element) => self.rust_type(element),
                _ => None,
            };
            return match element {
                Some(element) => Out::owned(quote!(::std::vec::Vec::<#element>::new()), Prec::Atom),
                None => Out::owned(quote!(::std::vec::Vec::new()), Prec::Atom),
            };
        }
        let values = items
            .iter()
            .map(|item| self.value(self.out(item), &item.ty).ts);
        Out::owned(quote!(::std::vec![#(#values),*]), Prec::Atom)
    }

    /// An owned value of the canonical type.
    fn value(&self, out: Out, ty: &Type) -> Out {
        let cel = self.schema.cel_path();
        let ts = match out.form {
            Form::Owned => return out,
            Form::Str => {
                let ts = &out.ts;
                quote!(::std::string::String::from(#ts))
            }
            Form::StaticBytes => {
                let ts = &out.ts;
                quote!(#ts.to_vec())
            }
            Form::Place(Stored::Canonical) if ty.is_copy() => {
                return Out::owned(out.ts, out.prec);
            }
            Form::Ref(Stored::Canonical) if ty.is_copy() => {
                let ts = out.at(Prec::Unary);
                return Out::owned(quote!(*#ts), Prec::Unary);
            }
            Form::Place(Stored::Canonical) | Form::Ref(Stored::Canonical) => {
                let ts = out.at(Prec::Atom);
                quote!(#ts.clone())
            }
            Form::Place(Stored::Narrow(narrow)) => {
                let wide = wide(narrow);
                let ts = &out.ts;
                quote!(#wide::from(#ts))
            }
            Form::Ref(Stored::Narrow(narrow)) => {
                let wide = wide(narrow);
                let ts = out.at(Prec::Unary);
                quote!(#wide::from(*#ts))
            }
            Form::Place(Stored::NarrowList(narrow)) | Form::Ref(Stored::NarrowList(narrow)) => {
                let wide = wide(narrow);
                let list = self.borrow(out);
                quote!(#cel::widen_list::<_, #wide>(#list))
            }
            Form::Place(Stored::AnyNumber) => {
                let target = self.rust_type(ty).unwrap_or_else(|| quote!(_));
                let ts = &out.ts;
                quote!(#cel::widen::<_, #target>(#ts))
            }
            Form::Ref(Stored::AnyNumber) => {
                let target = self.rust_type(ty).unwrap_or_else(|| quote!(_));
                let ts = out.at(Prec::Unary);
                quote!(#cel::widen::<_, #target>(*#ts))
            }
            Form::Place(Stored::AnyMap) | Form::Ref(Stored::AnyMap) => {
                let (key, value) = match ty {
                    Type::Map(key, value) => (self.rust_type(key), self.rust_type(value)),
                    _ => (None, None),
                };
                let key = key.unwrap_or_else(|| quote!(_));
                let value = value.unwrap_or_else(|| quote!(_));
                let map = self.borrow(out);
                quote!(#cel::widen_map::<_, _, #key, #value>(#map))
            }
        };
        Out::owned(ts, Prec::Atom)
    }

    /// A reference to the stored value (`&S`), as a function argument.
    /// A list macro: the list borrowed in its canonical form (widened first if it is stored
    /// narrow), and the body as a closure over each element by reference.
    fn comprehension(&self, kind: Macro, list: &Typed, var: &str, body: &Typed) -> Out {
        let cel = self.schema.cel_path();
        let out = self.out(list);
        let items = match out.form {
            Form::Place(Stored::Canonical) | Form::Ref(Stored::Canonical) => self.borrow(out),
            _ => {
                let owned = self.value(out, &list.ty);
                self.borrow(owned)
            }
        };
        // The element's Rust name, unless it would shadow a name the body's code uses.
        let name = crate::names::rust_field_ident(var);
        let taken = [
            "input",
            "caller",
            "call",
            "downstreams",
            "error",
            "status",
            "details",
        ];
        let name = if taken.contains(&name.as_str()) || self.env.uses(&name) {
            format!("mosaic_{}", name.trim_start_matches("r#"))
        } else {
            name
        };
        let Ok(ident) = syn::parse_str::<syn::Ident>(&name) else {
            return compile_error(&format!("`{var}` is not a Rust identifier"));
        };
        let env = self.env.clone().with(var, quote!(#ident));
        let inner = Emitter {
            env: &env,
            schema: self.schema,
            text: self.text,
        };
        let value = inner.value(inner.out(body), &body.ty).ts;
        let function = match kind {
            Macro::Map => quote!(map_list),
            Macro::Filter => quote!(filter_list),
            Macro::Exists => quote!(exists),
            Macro::All => quote!(all),
            Macro::ExistsOne => quote!(exists_one),
        };
        Out::owned(
            quote!(#cel::#function(#items, |#ident| Ok(#value))?),
            Prec::Atom,
        )
    }

    fn borrow(&self, out: Out) -> TokenStream {
        match out.form {
            Form::Ref(_) | Form::Str | Form::StaticBytes => out.ts,
            Form::Place(_) | Form::Owned => {
                let ts = out.at(Prec::Unary);
                quote!(&#ts)
            }
        }
    }

    /// A reference for `size()` and slices: like [`borrow`](Self::borrow), with a bytes
    /// literal as a slice.
    fn slice_like(&self, out: Out) -> TokenStream {
        if out.form == Form::StaticBytes {
            let ts = &out.ts;
            return quote!(#ts.as_slice());
        }
        self.borrow(out)
    }

    /// A reference to a map key or list element of canonical type `ty`, for lookups.
    fn key_ref(&self, out: Out, ty: &Type) -> TokenStream {
        match out.form {
            Form::Str => out.ts,
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
}

/// Whether `out` can be borrowed for as long as the names in scope live.
fn borrowable(out: &Out) -> bool {
    matches!(
        out.form,
        Form::Place(Stored::Canonical) | Form::Ref(Stored::Canonical)
    ) && !out.temporary
}

fn literal_out(literal: &Literal) -> Out {
    match literal {
        Literal::Int(value) => {
            if *value == i64::MIN {
                Out::owned(quote!(i64::MIN), Prec::Atom)
            } else if *value < 0 {
                let magnitude = RustLiteral::i64_suffixed(value.unsigned_abs().cast_signed());
                Out::owned(quote!(-#magnitude), Prec::Unary)
            } else {
                let literal = RustLiteral::i64_suffixed(*value);
                Out::owned(quote!(#literal), Prec::Atom)
            }
        }
        Literal::Uint(value) => {
            let literal = RustLiteral::u64_suffixed(*value);
            Out::owned(quote!(#literal), Prec::Atom)
        }
        Literal::Double(value) if value.is_finite() => {
            let literal = RustLiteral::f64_unsuffixed(value.abs());
            if value.is_sign_negative() {
                Out::owned(quote!(-#literal), Prec::Unary)
            } else {
                Out::owned(quote!(#literal), Prec::Atom)
            }
        }
        Literal::Double(_) => compile_error("a double literal is not finite"),
        Literal::String(text) => {
            let literal = RustLiteral::string(text);
            Out::new(quote!(#literal), Form::Str, Prec::Atom)
        }
        Literal::Bytes(bytes) => {
            let literal = RustLiteral::byte_string(bytes);
            Out::new(quote!(#literal), Form::StaticBytes, Prec::Atom)
        }
        Literal::Bool(true) => Out::owned(quote!(true), Prec::Atom),
        Literal::Bool(false) => Out::owned(quote!(false), Prec::Atom),
        Literal::Null => Out::owned(quote!(()), Prec::Atom),
    }
}
