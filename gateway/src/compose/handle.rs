//! What a call step's `error` handlers work with: the failure as the message `error`
//! (`mosaic.v1.CallError`, its `google.rpc` details decoded), the record that a step was
//! ignored (the response is then partial), and the statuses handlers answer with.

use prost::Message;
use tonic::{Code, Status};
use tonic_types::pb;

/// `mosaic.v1.CallError` on the wire: generated code decodes it into its own prost type, so
/// the runtime and every generated crate agree on the message without sharing Rust types.
#[derive(Clone, PartialEq, Message)]
struct CallErrorWire {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, optional, tag = "3")]
    error_info: Option<pb::ErrorInfo>,
    #[prost(message, optional, tag = "4")]
    bad_request: Option<pb::BadRequest>,
    #[prost(message, optional, tag = "5")]
    precondition_failure: Option<pb::PreconditionFailure>,
    #[prost(message, optional, tag = "6")]
    localized_message: Option<pb::LocalizedMessage>,
    #[prost(message, optional, tag = "7")]
    resource_info: Option<pb::ResourceInfo>,
    #[prost(message, optional, tag = "8")]
    retry_info: Option<pb::RetryInfo>,
    #[prost(message, optional, tag = "9")]
    quota_failure: Option<pb::QuotaFailure>,
}

/// The failure of a downstream call as `error` handlers read it: the downstream's code and
/// message (not the step-naming message the edge would answer with) and the first detail of
/// each `google.rpc` type it carried.
pub fn call_error<E: Message + Default>(status: &Status) -> E {
    // `step_failed` keeps the downstream's status as the source.
    let original = std::error::Error::source(status)
        .and_then(|source| source.downcast_ref::<Status>())
        .unwrap_or(status);
    let mut wire = CallErrorWire {
        code: status.code() as i32,
        message: original.message().to_owned(),
        ..CallErrorWire::default()
    };
    if let Ok(decoded) = pb::Status::decode(status.details()) {
        for any in decoded.details {
            let name = any.type_url.rsplit('/').next().unwrap_or_default();
            let value = any.value.as_slice();
            match name {
                "google.rpc.ErrorInfo" if wire.error_info.is_none() => {
                    wire.error_info = pb::ErrorInfo::decode(value).ok();
                }
                "google.rpc.BadRequest" if wire.bad_request.is_none() => {
                    wire.bad_request = pb::BadRequest::decode(value).ok();
                }
                "google.rpc.PreconditionFailure" if wire.precondition_failure.is_none() => {
                    wire.precondition_failure = pb::PreconditionFailure::decode(value).ok();
                }
                "google.rpc.LocalizedMessage" if wire.localized_message.is_none() => {
                    wire.localized_message = pb::LocalizedMessage::decode(value).ok();
                }
                "google.rpc.ResourceInfo" if wire.resource_info.is_none() => {
                    wire.resource_info = pb::ResourceInfo::decode(value).ok();
                }
                "google.rpc.RetryInfo" if wire.retry_info.is_none() => {
                    wire.retry_info = pb::RetryInfo::decode(value).ok();
                }
                "google.rpc.QuotaFailure" if wire.quota_failure.is_none() => {
                    wire.quota_failure = pb::QuotaFailure::decode(value).ok();
                }
                _ => {}
            }
        }
    }
    E::decode(wire.encode_to_vec().as_slice()).unwrap_or_default()
}

/// Records that `step` failed and an `error` handler ignored it: the edge response is partial,
/// which `partial()` and the response metadata `mosaic-partial` say.
pub fn ignored(step: &'static str) {
    crate::grpc::context::ignore(step);
}

/// The status an `error` handler answers with: its code, its message (the downstream's when
/// the handler gives none) and its details.
pub fn handler_status(
    code: Code,
    message: Option<String>,
    failed: &Status,
    details: tonic_types::ErrorDetails,
) -> Status {
    use tonic_types::StatusExt;
    let original = std::error::Error::source(failed)
        .and_then(|source| source.downcast_ref::<Status>())
        .unwrap_or(failed);
    let message = message.unwrap_or_else(|| original.message().to_owned());
    Status::with_error_details(code, message, details)
}

/// The status a validation rejects the request with, carrying its details.
pub fn rejection(code: Code, message: String, details: tonic_types::ErrorDetails) -> Status {
    use tonic_types::StatusExt;
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn the_error_carries_the_downstream_message_and_its_details() {
        let details = ErrorDetails::with_error_info(
            "OUT_OF_STOCK",
            "inventory",
            [("sku".to_owned(), "a1".to_owned())],
        );
        let downstream = Status::with_error_details(Code::FailedPrecondition, "no stock", details);
        let failed = super::super::step_failed("stock", "inv.Inv/Get", downstream);
        let error: CallErrorWire = call_error(&failed);
        assert_eq!(error.code, Code::FailedPrecondition as i32);
        assert_eq!(error.message, "no stock");
        let info = error.error_info.expect("decoded");
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("OUT_OF_STOCK", "inventory")
        );
        assert_eq!(info.metadata.get("sku").map(String::as_str), Some("a1"));
        assert!(error.bad_request.is_none());
    }

    #[test]
    fn a_handler_status_keeps_the_downstream_message_unless_it_has_one() {
        let failed =
            super::super::step_failed("p", "c.C/Get", Status::not_found("no such product"));
        let status = handler_status(Code::Unavailable, None, &failed, ErrorDetails::new());
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unavailable, "no such product")
        );
        let details = ErrorDetails::with_localized_message("en", "Try again later");
        let status = handler_status(Code::Unavailable, Some("down".into()), &failed, details);
        assert_eq!(status.message(), "down");
        let message = status.get_details_localized_message().expect("kept");
        assert_eq!(message.message, "Try again later");
    }
}
