//! Timestamps and durations: each operation is a call of the runtime's `cel` time functions on
//! borrowed `prost_types` values; the fallible ones name the expression when they fail.

use proc_macro2::{Literal as RustLiteral, TokenStream};
use quote::{format_ident, quote};

use super::{Emitter, Out, Prec, compile_error};
use crate::expr::ast::{BinaryOp, Span};
use crate::expr::check::time::DURATION;
use crate::expr::check::typed::{TimeOp, Typed};
use crate::expr::types::Type;

impl Emitter<'_> {
    pub(super) fn time(&self, op: &TimeOp, args: &[Typed], span: &Span) -> Out {
        let cel = self.schema.cel_path();
        let src = self.source(span);
        let arg = |index: usize| -> TokenStream {
            match args.get(index) {
                Some(arg) => self.borrow(self.out(arg)),
                None => compile_error("a time operation lacks an argument").ts,
            }
        };
        let ts = match op {
            TimeOp::Compare(op) => {
                let test = format_ident!(
                    "{}",
                    match op {
                        BinaryOp::Eq => "is_eq",
                        BinaryOp::Ne => "is_ne",
                        BinaryOp::Lt => "is_lt",
                        BinaryOp::Le => "is_le",
                        BinaryOp::Gt => "is_gt",
                        _ => "is_ge",
                    }
                );
                let (a, b) = (arg(0), arg(1));
                quote!(#cel::time_cmp(#a, #b).#test())
            }
            TimeOp::AddTimestamp
            | TimeOp::SubTimestamp
            | TimeOp::DiffTimestamps
            | TimeOp::AddDurations
            | TimeOp::SubDurations => {
                let function = format_ident!(
                    "{}",
                    match op {
                        TimeOp::AddTimestamp => "timestamp_add",
                        TimeOp::SubTimestamp => "timestamp_sub",
                        TimeOp::DiffTimestamps => "timestamp_diff",
                        TimeOp::AddDurations => "duration_add",
                        _ => "duration_sub",
                    }
                );
                let (a, b) = (arg(0), arg(1));
                quote!(#cel::#function(#a, #b, #src)?)
            }
            TimeOp::NegDuration => {
                let a = arg(0);
                quote!(#cel::duration_neg(#a, #src)?)
            }
            TimeOp::Parse => {
                let a = arg(0);
                quote!(#cel::timestamp_parse(#a, #src)?)
            }
            TimeOp::FromUnix => {
                let Some(seconds) = args.first() else {
                    return compile_error("`timestamp()` lacks its argument");
                };
                let seconds = self.value(self.out(seconds), &Type::Int).ts;
                quote!(#cel::timestamp_from_unix(#seconds, #src)?)
            }
            TimeOp::DurationLiteral { seconds, nanos } => {
                let Some(path) = self.schema.message_path(DURATION) else {
                    return compile_error("no Rust path for google.protobuf.Duration");
                };
                let (seconds, nanos) = (
                    RustLiteral::i64_unsuffixed(*seconds),
                    RustLiteral::i32_unsuffixed(*nanos),
                );
                quote!(#path { seconds: #seconds, nanos: #nanos })
            }
            TimeOp::Now => quote!(#cel::now()),
            TimeOp::TimestampString => {
                let a = arg(0);
                quote!(#cel::timestamp_string(#a, #src)?)
            }
            TimeOp::DurationString => {
                let a = arg(0);
                quote!(#cel::duration_string(#a))
            }
            TimeOp::Unix => {
                let a = arg(0);
                quote!(#cel::timestamp_unix(#a))
            }
            TimeOp::Get(part) => {
                let (a, part) = (arg(0), format_ident!("{part}"));
                quote!(#cel::timestamp_get(#a, #cel::TimePart::#part, #src)?)
            }
            TimeOp::DurationGet(part) => {
                let (a, part) = (arg(0), format_ident!("{part}"));
                quote!(#cel::duration_get(#a, #cel::TimePart::#part))
            }
            TimeOp::Format(pattern) => {
                let (a, pattern) = (arg(0), RustLiteral::string(pattern));
                quote!(#cel::timestamp_format(#a, #pattern, #src)?)
            }
        };
        Out::owned(ts, Prec::Atom)
    }
}
