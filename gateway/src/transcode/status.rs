//! gRPC statuses as HTTP errors: the status code of the standard table (the comments of
//! `google/rpc/code.proto`, which grpc-gateway, Envoy and vanguard all follow) and a
//! `google.rpc.Status` JSON body, `{"code", "message", "details"}`, with the details decoded
//! from `grpc-status-details-bin` through the descriptor pool (so `ErrorInfo`, `BadRequest`
//! and the other standard details, and any type the pool knows, appear as JSON objects with
//! their `@type`). Upstream errors and the gateway's own (shed, open breakers, deadlines) come
//! out the same way, since both arrive here as gRPC statuses.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions, Value};
use tonic::Code;

/// The HTTP status for a gRPC status code.
pub(crate) fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// A gRPC status read from a head or trailers.
#[derive(Clone, Debug)]
pub(crate) struct GrpcStatus {
    pub(crate) code: Code,
    pub(crate) message: String,
    /// The encoded `google.rpc.Status` of `grpc-status-details-bin`, if sent.
    pub(crate) details: Option<Bytes>,
}

impl GrpcStatus {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// The status in `headers`, if they carry `grpc-status`.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let code = crate::grpc::status::code_of(headers)?;
        let message = headers
            .get("grpc-message")
            .map(|value| percent_decode(value.as_bytes()))
            .unwrap_or_default();
        let details = headers.get("grpc-status-details-bin").and_then(|value| {
            let text = value.as_bytes();
            let trimmed = text
                .strip_suffix(b"==")
                .or(text.strip_suffix(b"="))
                .unwrap_or(text);
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(trimmed)
                .ok()
                .map(Bytes::from)
        });
        Some(Self {
            code: Code::from_i32(code as i32),
            message,
            details,
        })
    }

    /// The `google.rpc.Status` JSON of this status. The details come from
    /// `grpc-status-details-bin` when it decodes and agrees on the code; one whose type the
    /// pool does not know is left out (and logged) rather than failing the answer.
    pub(crate) fn to_json(&self, status: &MessageDescriptor) -> Vec<u8> {
        let mut message = DynamicMessage::new(status.clone());
        if let Some(details) = &self.details
            && let Ok(decoded) = DynamicMessage::decode(status.clone(), details.as_ref())
        {
            message = decoded;
        }
        message.set_field_by_name("code", Value::I32(self.code as i32));
        message.set_field_by_name("message", Value::String(self.message.clone()));
        let options = SerializeOptions::new().skip_default_fields(false);
        let mut out = Vec::with_capacity(128);
        let mut serializer = serde_json::Serializer::new(&mut out);
        if message
            .serialize_with_options(&mut serializer, &options)
            .is_ok()
        {
            return out;
        }
        tracing::debug!(
            code = ?self.code,
            "error details of a type the descriptor sets do not describe were left out"
        );
        message.clear_field_by_name("details");
        let mut out = Vec::with_capacity(128);
        let mut serializer = serde_json::Serializer::new(&mut out);
        match message.serialize_with_options(&mut serializer, &options) {
            Ok(()) => out,
            Err(_) => format!(
                "{{\"code\":{},\"message\":{},\"details\":[]}}",
                self.code as i32,
                serde_json::Value::String(self.message.clone())
            )
            .into_bytes(),
        }
    }

    /// The HTTP response for this status: the table's status code and the JSON body.
    pub(crate) fn response(
        &self,
        status: &MessageDescriptor,
        http: Option<StatusCode>,
    ) -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::from(self.to_json(status)));
        *response.status_mut() = http.unwrap_or_else(|| http_status(self.code));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Decodes `grpc-message` (percent-encoded, as the gRPC spec says); invalid UTF-8 is replaced.
fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn status_descriptor() -> MessageDescriptor {
        super::super::edge_pool([])
            .unwrap()
            .get_message_by_name("google.rpc.Status")
            .unwrap()
    }

    #[test]
    fn the_standard_table() {
        for (code, http) in [
            (Code::Cancelled, 499),
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::Aborted, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::Unauthenticated, 401),
            (Code::DataLoss, 500),
        ] {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn details_are_decoded_through_the_pool() {
        let descriptor = status_descriptor();
        let pool = descriptor.parent_pool().clone();
        let info = pool.get_message_by_name("google.rpc.ErrorInfo").unwrap();
        let mut detail = DynamicMessage::new(info);
        detail.set_field_by_name("reason", Value::String("STOCK_LOW".into()));
        detail.set_field_by_name("domain", Value::String("demo".into()));
        let any = prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
            value: detail.encode_to_vec(),
        };
        let mut encoded = DynamicMessage::new(descriptor.clone());
        encoded.set_field_by_name("code", Value::I32(9));
        encoded.set_field_by_name(
            "details",
            Value::List(vec![Value::Message(
                DynamicMessage::decode(
                    pool.get_message_by_name("google.protobuf.Any").unwrap(),
                    any.encode_to_vec().as_slice(),
                )
                .unwrap(),
            )]),
        );
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("9"));
        headers.insert("grpc-message", HeaderValue::from_static("not%20now"));
        let bin = base64::engine::general_purpose::STANDARD.encode(encoded.encode_to_vec());
        headers.insert(
            "grpc-status-details-bin",
            HeaderValue::from_str(&bin).unwrap(),
        );
        let status = GrpcStatus::from_headers(&headers).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&status.to_json(&descriptor)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": 9,
                "message": "not now",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "STOCK_LOW",
                    "domain": "demo",
                    "metadata": {}
                }]
            })
        );
    }

    #[test]
    fn unknown_detail_types_are_left_out() {
        let descriptor = status_descriptor();
        let any = prost_types::Any {
            type_url: "type.googleapis.com/x.Unknown".into(),
            value: vec![1, 2, 3],
        }
        .encode_to_vec();
        // `google.rpc.Status { details: [any] }`: field 3, length-delimited.
        let mut details = vec![0x1a, any.len() as u8];
        details.extend(any);
        let status = GrpcStatus {
            code: Code::Internal,
            message: "boom".into(),
            details: Some(Bytes::from(details)),
        };
        let json: serde_json::Value = serde_json::from_slice(&status.to_json(&descriptor)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": 13, "message": "boom", "details": []})
        );
    }
}
