//! Small literals written the way a person would: durations, status codes, the runtime's path.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// A duration as the most readable constructor: `from_millis(800)` rather than nanoseconds.
pub(super) fn duration_tokens(duration: std::time::Duration) -> TokenStream {
    let c = compose();
    let nanos = duration.as_nanos();
    let (constructor, value) = if nanos.is_multiple_of(1_000_000_000) {
        ("from_secs", nanos / 1_000_000_000)
    } else if nanos.is_multiple_of(1_000_000) {
        ("from_millis", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        ("from_micros", nanos / 1_000)
    } else {
        ("from_nanos", nanos)
    };
    let constructor = format_ident!("{constructor}");
    let value = proc_macro2::Literal::u64_unsuffixed(u64::try_from(value).unwrap_or(u64::MAX));
    quote!(#c::Duration::#constructor(#value))
}

/// A gRPC status code by name (`Code::OutOfRange`), as a person would write it.
pub(super) fn code_tokens(code: i32) -> TokenStream {
    let c = compose();
    let name = match code {
        0 => "Ok",
        1 => "Cancelled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => {
            return quote!(#c::Code::from_i32(#code));
        }
    };
    let name = format_ident!("{name}");
    quote!(#c::Code::#name)
}

/// The runtime of generated code, `::mosaic_gateway::compose`, as the composition module
/// imports it.
pub(super) fn compose() -> TokenStream {
    quote!(compose)
}

/// `Some(value)` or `None`.
pub(super) fn optional(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(Some(#value)),
        None => quote!(None),
    }
}
