//! gRPC status codes by name, for injected failures.
//!
//! `tonic::Code` has no parser, and the command line wants the snake-case names from the gRPC
//! spec (`unavailable`, `deadline_exceeded`). `OK` is refused at parse time because an injected
//! failure that succeeds would silently turn the knob off.

use tonic::Code;

/// Every gRPC status code with its snake-case name, as used on the command line.
const CODE_NAMES: [(Code, &str); 17] = [
    (Code::Ok, "ok"),
    (Code::Cancelled, "cancelled"),
    (Code::Unknown, "unknown"),
    (Code::InvalidArgument, "invalid_argument"),
    (Code::DeadlineExceeded, "deadline_exceeded"),
    (Code::NotFound, "not_found"),
    (Code::AlreadyExists, "already_exists"),
    (Code::PermissionDenied, "permission_denied"),
    (Code::ResourceExhausted, "resource_exhausted"),
    (Code::FailedPrecondition, "failed_precondition"),
    (Code::Aborted, "aborted"),
    (Code::OutOfRange, "out_of_range"),
    (Code::Unimplemented, "unimplemented"),
    (Code::Internal, "internal"),
    (Code::Unavailable, "unavailable"),
    (Code::DataLoss, "data_loss"),
    (Code::Unauthenticated, "unauthenticated"),
];

/// The snake-case name of a status code, e.g. `"deadline_exceeded"`.
pub fn error_code_name(code: Code) -> &'static str {
    CODE_NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("unknown", |(_, name)| name)
}

/// A status code name that is not an error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnknownErrorCode {
    /// `ok` was given: an injected failure has to fail.
    #[error("OK is not an error code: an injected failure has to fail")]
    Ok,
    /// The name matches no status code.
    #[error("unknown error code {0:?}, expected one of: {list}", list = error_code_list())]
    Unknown(String),
}

fn error_code_list() -> String {
    CODE_NAMES
        .iter()
        .skip(1)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses an error code by name, any case, `-` or `_` separated (`unavailable`,
/// `DEADLINE_EXCEEDED`, `resource-exhausted`), or by number (`14`). `ok` is rejected.
pub fn parse_error_code(text: &str) -> Result<Code, UnknownErrorCode> {
    let name = text.trim().to_ascii_lowercase().replace('-', "_");
    let code = match name.as_str() {
        "canceled" => Some(Code::Cancelled),
        _ => CODE_NAMES
            .iter()
            .find(|(code, known)| *known == name || i32::from(*code).to_string() == name)
            .map(|(code, _)| *code),
    };
    match code {
        Some(Code::Ok) => Err(UnknownErrorCode::Ok),
        Some(code) => Ok(code),
        None => Err(UnknownErrorCode::Unknown(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_parse_by_name_and_number() {
        assert_eq!(parse_error_code("unavailable"), Ok(Code::Unavailable));
        assert_eq!(
            parse_error_code("DEADLINE_EXCEEDED"),
            Ok(Code::DeadlineExceeded)
        );
        assert_eq!(
            parse_error_code("resource-exhausted"),
            Ok(Code::ResourceExhausted)
        );
        assert_eq!(parse_error_code("canceled"), Ok(Code::Cancelled));
        assert_eq!(parse_error_code("14"), Ok(Code::Unavailable));
        assert_eq!(parse_error_code("ok"), Err(UnknownErrorCode::Ok));
        assert_eq!(parse_error_code("0"), Err(UnknownErrorCode::Ok));
        let unknown = parse_error_code("teapot").expect_err("unknown");
        assert!(unknown.to_string().contains("unavailable"), "{unknown}");
        for (code, name) in CODE_NAMES.iter().skip(1) {
            assert_eq!(parse_error_code(name), Ok(*code));
            assert_eq!(error_code_name(*code), *name);
        }
    }
}
