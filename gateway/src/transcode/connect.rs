//! The Connect protocol in front of gRPC, so that connect-web, connect-go and
//! `buf curl --protocol connect` call every gRPC route without a proxy.
//!
//! A request is Connect when it says so (`Connect-Protocol-Version`), when its content type is
//! Connect's (`application/proto`, `application/connect+proto`, `application/connect+json`),
//! or when it is a `GET` with `connect=v1` in the query. `application/json` without the header
//! is HTTP/JSON transcoding's.
//!
//! - Unary (`POST`, or `GET ?connect=v1&encoding=..&message=..[&base64=1]` for side-effect-free
//!   methods): the body is the bare message; the answer is the bare message with the metadata
//!   as headers and the trailers as `trailer-<name>` headers. An error has its HTTP status
//!   (the same table as transcoding) and Connect's JSON body
//!   `{"code": "not_found", "message": .., "details": [{"type", "value"}]}`.
//! - Streaming (`application/connect+<codec>`): envelopes (a flag byte and a length, as gRPC's
//!   frames) both ways; the response ends with an end-of-stream envelope (flag `0x02`) holding
//!   `{"error"?: .., "metadata": {..}}`. With the proto codec the request envelopes are gRPC
//!   frames already and stream through; JSON is converted message by message.
//! - `Connect-Timeout-Ms` becomes the call's `grpc-timeout`. Compressed requests are refused.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use http_body::{Body, Frame};
use http_body_util::Full;
use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, MethodDescriptor, SerializeOptions};
use tonic::Code;

use super::read::{ReadError, read_limited};
use super::response::{HttpBody, Piece, Reader, copy_metadata};
use super::status::{GrpcStatus, http_status};
use crate::grpc::body::CallerStream;

/// The message codec of a Connect call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Proto,
    Json,
}

/// What kind of Connect call a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnectCall {
    pub(crate) codec: Codec,
    pub(crate) streaming: bool,
    /// A unary call whose message is in the query.
    pub(crate) get: bool,
}

impl ConnectCall {
    /// The kind of `request`, if it is a Connect call.
    pub(crate) fn of<B>(request: &Request<B>) -> Option<Self> {
        let headers = request.headers();
        if request.method() == Method::GET {
            let query = request.uri().query()?;
            if !query.split('&').any(|pair| pair == "connect=v1") {
                return None;
            }
            let codec = match query_value(query, "encoding").as_deref() {
                Some("json") => Codec::Json,
                _ => Codec::Proto,
            };
            return Some(Self {
                codec,
                streaming: false,
                get: true,
            });
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })?;
        let declared = headers.contains_key("connect-protocol-version");
        let (codec, streaming) = match content_type.as_str() {
            "application/proto" => (Codec::Proto, false),
            "application/json" if declared => (Codec::Json, false),
            "application/connect+proto" => (Codec::Proto, true),
            "application/connect+json" => (Codec::Json, true),
            _ => return None,
        };
        Some(Self {
            codec,
            streaming,
            get: false,
        })
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match (self.streaming, self.codec) {
            (false, Codec::Proto) => "application/proto",
            (false, Codec::Json) => "application/json",
            (true, Codec::Proto) => "application/connect+proto",
            (true, Codec::Json) => "application/connect+json",
        })
    }
}

/// The methods Connect's JSON codec can convert, by gRPC path.
#[derive(Debug, Default)]
pub(crate) struct ConnectMethods {
    methods: HashMap<Box<str>, MethodDescriptor>,
}

impl ConnectMethods {
    pub(crate) fn new(methods: impl IntoIterator<Item = MethodDescriptor>) -> Self {
        Self {
            methods: methods
                .into_iter()
                .map(|m| {
                    (
                        format!("/{}/{}", m.parent_service().full_name(), m.name()).into(),
                        m,
                    )
                })
                .collect(),
        }
    }
}

impl ConnectMethods {
    /// Every method, in no particular order.
    pub(crate) fn methods(&self) -> impl Iterator<Item = &MethodDescriptor> {
        self.methods.values()
    }
}

fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| {
            mosaic_http_rule::escape::decode(value, mosaic_http_rule::escape::Mode::Query)
                .unwrap_or_else(|_| value.to_owned())
        })
    })
}

/// A Connect error answer.
fn refuse(call: ConnectCall, code: Code, message: String) -> Response<HttpBody> {
    let status = GrpcStatus::new(code, message);
    error_response(call, &status, &HeaderMap::new(), None)
}

/// The gRPC call for a Connect request, and how to answer it.
pub(crate) async fn request(
    request: Request<hyper::body::Incoming>,
    call: ConnectCall,
    methods: &ConnectMethods,
    limit: usize,
) -> Result<(Request<CallerStream>, Reply), Response<HttpBody>> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let method = methods.methods.get(path.as_str()).cloned();
    if call.codec == Codec::Json && method.is_none() {
        return Err(refuse(
            call,
            Code::Unimplemented,
            format!(
                "no descriptor describes `{path}`, so its JSON cannot be read; send application/proto"
            ),
        ));
    }
    if let Some(encoding) = parts.headers.get(header::CONTENT_ENCODING)
        && encoding != "identity"
    {
        return Err(refuse(
            call,
            Code::Unimplemented,
            format!("compressed requests ({encoding:?}) are not taken; send them uncompressed"),
        ));
    }
    let reply = Reply {
        call,
        method: method.clone(),
    };
    let grpc_body = if call.get {
        let query = parts.uri.query().unwrap_or_default();
        let text = query_value(query, "message").unwrap_or_default();
        let raw = if query_value(query, "base64").as_deref() == Some("1") {
            let trimmed = text.trim_end_matches('=');
            let decoded = URL_SAFE_NO_PAD
                .decode(trimmed)
                .or_else(|_| STANDARD_NO_PAD.decode(trimmed));
            match decoded {
                Ok(bytes) => Bytes::from(bytes),
                Err(_) => {
                    return Err(refuse(
                        call,
                        Code::InvalidArgument,
                        "`message` is not base64".into(),
                    ));
                }
            }
        } else {
            Bytes::from(text.into_bytes())
        };
        let message = to_proto(call.codec, method.as_ref(), &raw)
            .map_err(|m| refuse(call, Code::InvalidArgument, m))?;
        CallerStream::Made(Full::new(frame(&[message])))
    } else if call.streaming && call.codec == Codec::Proto {
        // Connect's envelopes are gRPC's frames (flag 0, length, message).
        CallerStream::Wire(body)
    } else {
        let data = match read_limited(body, &parts.headers, limit).await {
            Ok(data) => data,
            Err(ReadError::TooLarge) => {
                return Err(refuse(
                    call,
                    Code::ResourceExhausted,
                    format!("the request body is larger than the limit of {limit} bytes"),
                ));
            }
            Err(ReadError::Broken(error)) => {
                return Err(refuse(
                    call,
                    Code::Cancelled,
                    format!("reading the request failed: {error}"),
                ));
            }
        };
        let messages = if call.streaming {
            envelopes(&data)
                .and_then(|list| {
                    list.iter()
                        .map(|m| to_proto(call.codec, method.as_ref(), m))
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(|m| refuse(call, Code::InvalidArgument, m))?
        } else {
            vec![
                to_proto(call.codec, method.as_ref(), &data)
                    .map_err(|m| refuse(call, Code::InvalidArgument, m))?,
            ]
        };
        CallerStream::Made(Full::new(frame(&messages)))
    };
    let headers = &mut parts.headers;
    if let Some(timeout) = headers
        .get("connect-timeout-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && let Ok(value) = HeaderValue::from_str(&format!("{timeout}m"))
    {
        headers.insert("grpc-timeout", value);
    }
    for name in [
        header::CONTENT_LENGTH,
        header::HOST,
        header::CONNECTION,
        header::ACCEPT_ENCODING,
        header::CONTENT_ENCODING,
        header::ACCEPT,
    ] {
        headers.remove(name);
    }
    let connect_headers: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("connect-"))
        .cloned()
        .collect();
    for name in connect_headers {
        headers.remove(name);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    parts.method = Method::POST;
    parts.version = http::Version::HTTP_2;
    parts.uri = http::Uri::from_maybe_shared(Bytes::from(path)).unwrap_or_default();
    Ok((Request::from_parts(parts, grpc_body), reply))
}

/// A message in `codec` as protobuf bytes.
fn to_proto(codec: Codec, method: Option<&MethodDescriptor>, data: &[u8]) -> Result<Bytes, String> {
    match (codec, method) {
        (Codec::Proto, _) => Ok(Bytes::copy_from_slice(data)),
        (Codec::Json, Some(method)) => {
            let mut deserializer = serde_json::Deserializer::from_slice(data);
            let message = DynamicMessage::deserialize_with_options(
                method.input(),
                &mut deserializer,
                &DeserializeOptions::new(),
            )
            .and_then(|m| deserializer.end().map(|()| m))
            .map_err(|e| {
                format!(
                    "the message is not a valid `{}`: {e}",
                    method.input().full_name()
                )
            })?;
            Ok(Bytes::from(message.encode_to_vec()))
        }
        (Codec::Json, None) => Err("no descriptor for the JSON codec".into()),
    }
}

/// The messages of a body of Connect envelopes.
fn envelopes(mut data: &[u8]) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 5 {
            return Err("the request ends inside an envelope header".into());
        }
        let flags = data[0];
        let length = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        if data.len() < 5 + length {
            return Err("the request ends inside an envelope".into());
        }
        if flags & 0x01 != 0 {
            return Err("compressed envelopes are not taken".into());
        }
        out.push(Bytes::copy_from_slice(&data[5..5 + length]));
        data = &data[5 + length..];
    }
    Ok(out)
}

fn frame(messages: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for message in messages {
        out.put_u8(0);
        out.put_u32(message.len() as u32);
        out.put_slice(message);
    }
    out.freeze()
}

/// How to answer a Connect call once the gRPC response is in.
pub(crate) struct Reply {
    call: ConnectCall,
    method: Option<MethodDescriptor>,
}

/// Connect's name for a code.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// Connect's error JSON: code name, message, and the details of `grpc-status-details-bin`
/// as `{type, value}` (value: base64 of the detail's bytes).
fn error_json(status: &GrpcStatus) -> serde_json::Value {
    let mut error = serde_json::json!({ "code": code_name(status.code) });
    if !status.message.is_empty() {
        error["message"] = serde_json::Value::String(status.message.clone());
    }
    if let Some(details) = &status.details
        && let Ok(decoded) = RpcStatus::decode(details.as_ref())
        && !decoded.details.is_empty()
    {
        let list: Vec<serde_json::Value> = decoded
            .details
            .iter()
            .map(|any| {
                let name = any.type_url.rsplit('/').next().unwrap_or_default();
                serde_json::json!({ "type": name, "value": STANDARD_NO_PAD.encode(&any.value) })
            })
            .collect();
        error["details"] = serde_json::Value::Array(list);
    }
    error
}

/// `google.rpc.Status`, for its details only.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

fn error_response(
    call: ConnectCall,
    status: &GrpcStatus,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
) -> Response<HttpBody> {
    if call.streaming {
        let mut response = Response::new(HttpBody::full(end_stream(Some(status), trailers)));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, call.content_type());
        copy_metadata(headers, response.headers_mut());
        return response;
    }
    let body = serde_json::to_vec(&error_json(status)).unwrap_or_default();
    let mut response = Response::new(HttpBody::full(body));
    *response.status_mut() = http_status(status.code);
    let out = response.headers_mut();
    copy_metadata(headers, out);
    if let Some(trailers) = trailers {
        add_trailers(trailers, out);
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A unary answer's trailers, as `trailer-<name>` headers.
fn add_trailers(trailers: &HeaderMap, out: &mut HeaderMap) {
    for (name, value) in trailers {
        if name.as_str().starts_with("grpc-") {
            continue;
        }
        if let Ok(prefixed) = HeaderName::from_bytes(format!("trailer-{name}").as_bytes()) {
            out.append(prefixed, value.clone());
        }
    }
}

/// The end-of-stream envelope: flag `0x02`, `{"error"?, "metadata"}`.
fn end_stream(status: Option<&GrpcStatus>, trailers: Option<&HeaderMap>) -> Bytes {
    let mut metadata = serde_json::Map::new();
    for (name, value) in trailers.into_iter().flatten() {
        if name.as_str().starts_with("grpc-") {
            continue;
        }
        let entry = metadata
            .entry(name.as_str().to_owned())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let (serde_json::Value::Array(list), Ok(text)) = (entry, value.to_str()) {
            list.push(serde_json::Value::String(text.to_owned()));
        }
    }
    let mut end = serde_json::json!({ "metadata": metadata });
    if let Some(status) = status.filter(|s| s.code != Code::Ok) {
        end["error"] = error_json(status);
    }
    let json = serde_json::to_vec(&end).unwrap_or_default();
    let mut out = BytesMut::with_capacity(5 + json.len());
    out.put_u8(0x02);
    out.put_u32(json.len() as u32);
    out.put_slice(&json);
    out.freeze()
}

/// A response message in the call's codec.
fn from_proto(
    codec: Codec,
    method: Option<&MethodDescriptor>,
    data: &Bytes,
) -> Result<Bytes, GrpcStatus> {
    match (codec, method) {
        (Codec::Proto, _) => Ok(data.clone()),
        (Codec::Json, Some(method)) => {
            let message = DynamicMessage::decode(method.output(), data.as_ref()).map_err(|e| {
                GrpcStatus::new(Code::Internal, format!("the response does not decode: {e}"))
            })?;
            let mut out = Vec::with_capacity(data.len() * 2);
            let mut serializer = serde_json::Serializer::new(&mut out);
            message
                .serialize_with_options(&mut serializer, &SerializeOptions::new())
                .map_err(|e| {
                    GrpcStatus::new(Code::Internal, format!("the response does not render: {e}"))
                })?;
            Ok(Bytes::from(out))
        }
        (Codec::Json, None) => Err(GrpcStatus::new(
            Code::Internal,
            "no descriptor for the JSON codec",
        )),
    }
}

impl Reply {
    /// The Connect response for a gRPC response.
    pub(crate) async fn respond<B>(self, response: Response<B>) -> Response<HttpBody>
    where
        B: Body<Data = Bytes, Error = tonic::Status> + Send + Unpin + 'static,
    {
        let (head, body) = response.into_parts();
        if let Some(status) = GrpcStatus::from_headers(&head.headers)
            && status.code != Code::Ok
        {
            return error_response(self.call, &status, &head.headers, None);
        }
        let reader = Reader::new(body);
        if self.call.streaming {
            let content_type = self.call.content_type();
            let mut response = Response::new(HttpBody::Stream(Box::pin(envelope_stream(
                reader,
                Arc::new(self),
            ))));
            let out = response.headers_mut();
            copy_metadata(&head.headers, out);
            out.insert(header::CONTENT_TYPE, content_type);
            return response;
        }
        let (message, trailers) = reader.unary().await;
        let message = match message {
            Ok(message) => message,
            Err(status) => {
                return error_response(self.call, &status, &head.headers, Some(&trailers));
            }
        };
        match from_proto(self.call.codec, self.method.as_ref(), &message) {
            Ok(data) => {
                let mut response = Response::new(HttpBody::full(data));
                let out = response.headers_mut();
                copy_metadata(&head.headers, out);
                add_trailers(&trailers, out);
                out.insert(header::CONTENT_TYPE, self.call.content_type());
                response
            }
            Err(status) => error_response(self.call, &status, &head.headers, Some(&trailers)),
        }
    }
}

/// A gRPC response stream as Connect envelopes, the last one the end-of-stream message.
fn envelope_stream<B>(
    reader: Reader<B>,
    reply: Arc<Reply>,
) -> impl Stream<Item = Result<Frame<Bytes>, tonic::Status>> + Send
where
    B: Body<Data = Bytes, Error = tonic::Status> + Send + Unpin + 'static,
{
    futures_util::stream::unfold((Some(reader), reply), |(reader, reply)| async move {
        let mut reader = reader?;
        let envelope = match reader.next().await? {
            Piece::Message(data) => {
                match from_proto(reply.call.codec, reply.method.as_ref(), &data) {
                    Ok(message) => {
                        return Some((Ok(Frame::data(frame(&[message]))), (Some(reader), reply)));
                    }
                    Err(status) => end_stream(Some(&status), None),
                }
            }
            Piece::End(status, trailers) => end_stream(Some(&status), Some(&trailers)),
        };
        Some((Ok(Frame::data(envelope)), (None, reply)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(
        method: Method,
        uri: &str,
        headers: &[(&'static str, &'static str)],
    ) -> Option<ConnectCall> {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        ConnectCall::of(&request.body(()).unwrap())
    }

    #[test]
    fn connect_calls_are_told_apart_from_http_json() {
        let post = |ct| kind(Method::POST, "/a.B/C", &[("content-type", ct)]);
        assert_eq!(
            post("application/proto").map(|c| c.codec),
            Some(Codec::Proto)
        );
        assert_eq!(
            post("application/json"),
            None,
            "HTTP/JSON's unless declared"
        );
        let declared = kind(
            Method::POST,
            "/a.B/C",
            &[
                ("content-type", "application/json"),
                ("connect-protocol-version", "1"),
            ],
        );
        assert_eq!(
            declared.map(|c| (c.codec, c.streaming)),
            Some((Codec::Json, false))
        );
        assert!(post("application/connect+json").is_some_and(|c| c.streaming));
        let get = kind(
            Method::GET,
            "/a.B/C?connect=v1&encoding=json&message=%7B%7D",
            &[],
        );
        assert!(get.is_some_and(|c| c.get && c.codec == Codec::Json));
        assert_eq!(kind(Method::GET, "/v1/x?y=1", &[]), None);
    }

    #[test]
    fn errors_use_connect_code_names_and_details() {
        let detail = prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
            value: vec![10, 1, b'x'],
        };
        let encoded = RpcStatus {
            code: 5,
            message: "gone".into(),
            details: vec![detail],
        }
        .encode_to_vec();
        let status = GrpcStatus {
            code: Code::NotFound,
            message: "gone".into(),
            details: Some(Bytes::from(encoded)),
        };
        assert_eq!(
            error_json(&status),
            serde_json::json!({
                "code": "not_found",
                "message": "gone",
                "details": [{"type": "google.rpc.ErrorInfo", "value": "CgF4"}]
            })
        );
        let end = end_stream(Some(&status), None);
        assert_eq!(end[0], 0x02);
        let json: serde_json::Value = serde_json::from_slice(&end[5..]).unwrap();
        assert_eq!(json["error"]["code"], "not_found");
    }
}
