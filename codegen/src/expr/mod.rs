//! The expression language of composition rules: a small, statically typed subset of CEL.
//!
//! Expressions come from proto options (`by`, `if`, `src`, a validation's `message`). The
//! generator [`parse`]s each one, [`check`]s it against the proto types (every error at once,
//! each with a byte span into the expression and a hint where one helps), and [`emit`]s plain
//! Rust for it: nothing is interpreted at run time, and rustc checks the result once more.
//!
//! ```text
//! text ──parse──▶ Expr ──check(scope, schema)──▶ Checked ──emit──▶ TokenStream
//!        (syntax,        (types, fields, names;         (Rust calling
//!         spans)          all errors)                    compose::cel helpers)
//! ```
//!
//! # The language
//!
//! Literals: `42`, `-3`, `0x1F` (int), `42u` (uint), `1.5`, `1e3` (double), `'text'` or
//! `"text"` with escapes (`\n \t \\ \' \" \xHH \uHHHH \UHHHHHHHH`, octal `\101`), raw `r'…'` and
//! triple-quoted `'''…'''` strings, bytes `b'…'`, `true`, `false`, `null`. Names: `$` (the
//! input) and step names. Field selection `a.b`, indexing `xs[0]` and `m["k"]` (and `m.k` on
//! string-keyed maps), lists `[a, b]`, `size()`, `has()`, the conversions `int() uint()
//! double() string() bytes()`, the string methods `contains() startsWith() endsWith()`, and
//! the operators below, with CEL's precedence (loosest first):
//!
//! `?:` · `||` · `&&` · `== != < <= > >= in` · `+ -` · `* / %` · `! -` (prefix) · `.f [i]`
//!
//! Typing (see `check/operators.rs` and `check/calls.rs` for the full rules): numbers never
//! mix implicitly in arithmetic (`int + double` asks for `double(x)`) but compare across types
//! by value; `&&`, `||`, `!` and conditions take bools; `x.f == null` tests presence of a
//! message or `optional` field; an unset message field reads as its default, as in proto.
//!
//! # Run-time semantics
//!
//! `&&`, `||` and `?:` evaluate left to right and short-circuit. Integer overflow, division by
//! zero, an index out of range, a missing map key and a failed conversion end the call with
//! `INVALID_ARGUMENT` and a message quoting the expression (see
//! `mosaic_gateway::compose::cel`). Double arithmetic follows IEEE 754.
//!
//! **Architecture invariant: no input string makes this module panic**, however malformed:
//! the parser bounds nesting, never slices off a `char` boundary, and reports every problem as
//! an [`ExprError`]. The robustness tests feed it tens of thousands of mutated expressions.

mod ast;
mod check;
mod emit;
mod error;
mod lexer;
mod parser;
mod types;

#[cfg(test)]
mod tests;

pub use ast::{BinaryOp, Expr, Ident, Literal, Node, NodeKind, Span, UnaryOp};
pub use check::{Checked, check, check_condition, check_expecting};
pub use emit::{
    Env, RustSchema, emit, emit_bool, emit_narrow, emit_optional_message,
    emit_optional_message_ref, emit_optional_scalar, emit_place,
};
pub use error::ExprError;
pub use parser::parse;
pub use types::{Cardinality, FieldInfo, Scalar, Schema, Scope, Type};
