//! A gRPC answer as an HTTP response.
//!
//! Unary: the one message as JSON (or its `response_body` field, or the raw bytes of a
//! `google.api.HttpBody`), once the trailers say OK. Server streaming, framed by what the
//! caller accepts: NDJSON (`application/x-ndjson`, the default: one JSON value per line) or
//! Server-Sent Events (`text/event-stream`: `data: <json>` per message), with no envelope
//! around the messages. The head waits for the first message, so an error before it gets its
//! real HTTP status and a `Status` body; an error after it ends the stream with a last NDJSON
//! line `{"error": <Status>}` or an SSE `event: error` whose data is the `Status`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use prost_reflect::{DynamicMessage, Kind, SerializeOptions, Value};
use tonic::Code;

use super::route::HttpRoute;
use super::status::GrpcStatus;
use super::{JsonOptions, Shared};

/// How a server stream is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Ndjson,
    Sse,
}

impl Framing {
    /// From the request's `Accept`: SSE when it names `text/event-stream`, NDJSON otherwise.
    pub(crate) fn negotiate(accept: Option<&HeaderValue>) -> Self {
        let sse = accept
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/event-stream"));
        if sse { Self::Sse } else { Self::Ndjson }
    }

    fn content_type(self) -> HeaderValue {
        match self {
            Self::Ndjson => HeaderValue::from_static("application/x-ndjson"),
            Self::Sse => HeaderValue::from_static("text/event-stream"),
        }
    }
}

type BoxStream = Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, tonic::Status>> + Send>>;

/// The body of a transcoded response.
pub(crate) enum HttpBody {
    Full(Option<Bytes>),
    Stream(BoxStream),
}

impl std::fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(data) => f.debug_tuple("Full").field(data).finish(),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl HttpBody {
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        Self::Full(Some(data.into()))
    }
}

impl Body for HttpBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        match self.get_mut() {
            Self::Full(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            Self::Stream(stream) => stream.as_mut().poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}

/// Splits a gRPC body's data into messages.
#[derive(Default)]
struct Messages {
    buffer: BytesMut,
}

impl Messages {
    fn push(&mut self, data: Bytes) {
        self.buffer.extend_from_slice(&data);
    }

    /// The next whole message, if buffered.
    fn next(&mut self) -> Option<Result<Bytes, GrpcStatus>> {
        if self.buffer.len() < 5 {
            return None;
        }
        let compressed = self.buffer[0];
        let length = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if self.buffer.len() < 5 + length {
            return None;
        }
        if compressed != 0 {
            return Some(Err(GrpcStatus::new(
                Code::Internal,
                "the upstream sent a compressed message, which the HTTP edge does not decode",
            )));
        }
        self.buffer.advance(5);
        Some(Ok(self.buffer.split_to(length).freeze()))
    }

    fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }
}

/// What reading a gRPC response body gives, one piece at a time.
pub(super) enum Piece {
    Message(Bytes),
    /// The call's status (trailers, or the body ending without them), and the trailers.
    End(GrpcStatus, HeaderMap),
}

/// Reads `body` to its next message or its end.
pub(super) struct Reader<B> {
    body: B,
    messages: Messages,
    done: bool,
}

impl<B> Reader<B>
where
    B: Body<Data = Bytes, Error = tonic::Status> + Unpin,
{
    pub(super) fn new(body: B) -> Self {
        Self {
            body,
            messages: Messages::default(),
            done: false,
        }
    }

    /// Reads a unary call's answer to its end: its one message when the status is OK (or the
    /// status that says why there is none), and the trailers.
    pub(super) async fn unary(mut self) -> (Result<Bytes, GrpcStatus>, HeaderMap) {
        let mut message = None;
        let (status, trailers) = loop {
            match self.next().await {
                Some(Piece::Message(data)) if message.is_none() => message = Some(data),
                Some(Piece::Message(_)) => {
                    let status = GrpcStatus::new(
                        Code::Internal,
                        "a unary call answered with several messages",
                    );
                    break (status, HeaderMap::new());
                }
                Some(Piece::End(status, trailers)) => break (status, trailers),
                None => {
                    let status = GrpcStatus::new(Code::Unknown, "the call ended without a status");
                    break (status, HeaderMap::new());
                }
            }
        };
        let outcome = match (status.code, message) {
            (Code::Ok, Some(message)) => Ok(message),
            (Code::Ok, None) => Err(GrpcStatus::new(
                Code::Internal,
                "the call answered OK with no message",
            )),
            _ => Err(status),
        };
        (outcome, trailers)
    }

    pub(super) async fn next(&mut self) -> Option<Piece> {
        loop {
            if let Some(message) = self.messages.next() {
                return Some(match message {
                    Ok(message) => Piece::Message(message),
                    Err(status) => {
                        self.done = true;
                        Piece::End(status, HeaderMap::new())
                    }
                });
            }
            if self.done {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.messages.push(data),
                    Err(frame) => {
                        self.done = true;
                        let trailers = frame.into_trailers().unwrap_or_default();
                        let status = GrpcStatus::from_headers(&trailers).unwrap_or_else(|| {
                            GrpcStatus::new(Code::Unknown, "the call ended without a status")
                        });
                        let status = if self.messages.is_empty() || status.code != Code::Ok {
                            status
                        } else {
                            GrpcStatus::new(Code::Internal, "the call ended inside a message")
                        };
                        return Some(Piece::End(status, trailers));
                    }
                },
                Some(Err(status)) => {
                    self.done = true;
                    let status = GrpcStatus::new(status.code(), status.message());
                    return Some(Piece::End(status, HeaderMap::new()));
                }
                None => {
                    self.done = true;
                    return Some(Piece::End(
                        GrpcStatus::new(Code::Unknown, "the call ended without a status"),
                        HeaderMap::new(),
                    ));
                }
            }
        }
    }
}

/// Response metadata that does not pass to HTTP callers under its own name.
fn is_withheld(name: &HeaderName) -> bool {
    name == header::CONTENT_TYPE
        || name == header::CONTENT_LENGTH
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || name.as_str().starts_with("grpc-")
}

pub(super) fn copy_metadata(from: &HeaderMap, into: &mut HeaderMap) {
    for (name, value) in from {
        if !is_withheld(name) {
            into.append(name.clone(), value.clone());
        }
    }
}

/// The JSON of one response message, or its `response_body` field.
fn render(route: &HttpRoute, options: &JsonOptions, message: &[u8]) -> Result<Bytes, GrpcStatus> {
    let decoded = DynamicMessage::decode(route.method.output(), message).map_err(|error| {
        GrpcStatus::new(
            Code::Internal,
            format!(
                "the response is not a valid `{}`: {error}",
                route.method.output().full_name()
            ),
        )
    })?;
    let serialize = SerializeOptions::new()
        .use_proto_field_name(options.proto_field_names)
        .skip_default_fields(!options.emit_defaults)
        .use_enum_numbers(options.enum_numbers);
    let mut out = Vec::with_capacity(message.len() * 2 + 16);
    let failed = |error: serde_json::Error| {
        GrpcStatus::new(
            Code::Internal,
            format!("the response does not render as JSON: {error}"),
        )
    };
    match &route.binding.response_body {
        None => {
            let mut serializer = serde_json::Serializer::new(&mut out);
            decoded
                .serialize_with_options(&mut serializer, &serialize)
                .map_err(failed)?;
        }
        Some(field) => match (field.kind(), decoded.get_field(field).as_ref()) {
            (Kind::Message(_), Value::Message(inner)) if !field.is_list() => {
                let mut serializer = serde_json::Serializer::new(&mut out);
                inner
                    .serialize_with_options(&mut serializer, &serialize)
                    .map_err(failed)?;
            }
            _ => {
                // A scalar, list or map: render the message with that field alone, and take
                // the field's value out of it.
                let mut only = DynamicMessage::new(route.method.output());
                only.set_field(field, decoded.get_field(field).into_owned());
                let value = only
                    .serialize_with_options(
                        serde_json::value::Serializer,
                        &serialize.clone().skip_default_fields(false),
                    )
                    .map_err(failed)?;
                let key = if options.proto_field_names {
                    field.name()
                } else {
                    field.json_name()
                };
                let inner = value.get(key).cloned().unwrap_or(serde_json::Value::Null);
                serde_json::to_writer(&mut out, &inner).map_err(failed)?;
            }
        },
    }
    Ok(Bytes::from(out))
}

/// An `HttpBody` response message's content type and data.
fn raw_body(route: &HttpRoute, message: &[u8]) -> Result<(Option<HeaderValue>, Bytes), GrpcStatus> {
    let decoded = DynamicMessage::decode(route.method.output(), message).map_err(|error| {
        GrpcStatus::new(
            Code::Internal,
            format!("the response does not decode: {error}"),
        )
    })?;
    let body = match &route.binding.response_body {
        Some(field) => match decoded.get_field(field).as_ref() {
            Value::Message(inner) => inner.clone(),
            _ => DynamicMessage::new(route.method.output()),
        },
        None => decoded,
    };
    let content_type = match body.get_field_by_name("content_type").as_deref() {
        Some(Value::String(text)) if !text.is_empty() => HeaderValue::from_str(text).ok(),
        _ => None,
    };
    let data = match body.get_field_by_name("data").as_deref() {
        Some(Value::Bytes(data)) => data.clone(),
        _ => Bytes::new(),
    };
    Ok((content_type, data))
}

/// Builds the HTTP response for a gRPC response, once its first message (or its end) is in.
pub(crate) async fn respond<B>(
    route: Arc<HttpRoute>,
    shared: Arc<Shared>,
    framing: Framing,
    response: Response<B>,
) -> Response<HttpBody>
where
    B: Body<Data = Bytes, Error = tonic::Status> + Send + Unpin + 'static,
{
    let (head, body) = response.into_parts();
    if let Some(status) = GrpcStatus::from_headers(&head.headers)
        && status.code != Code::Ok
    {
        return error(&shared, &status, &head.headers, None);
    }
    let reader = Reader::new(body);
    if route.method.is_server_streaming() {
        return stream(route, shared, framing, head.headers, reader).await;
    }
    let (message, trailers) = reader.unary().await;
    let message = match message {
        Ok(message) => message,
        Err(status) => return error(&shared, &status, &head.headers, Some(&trailers)),
    };
    let rendered = if route.http_body_response {
        raw_body(&route, &message)
    } else {
        render(&route, &shared.config.json, &message)
            .map(|json| (Some(HeaderValue::from_static("application/json")), json))
    };
    match rendered {
        Ok((content_type, data)) => {
            let mut response = Response::new(HttpBody::full(data));
            let headers = response.headers_mut();
            copy_metadata(&head.headers, headers);
            copy_metadata(&trailers, headers);
            if let Some(content_type) = content_type {
                headers.insert(header::CONTENT_TYPE, content_type);
            }
            response
        }
        Err(status) => error(&shared, &status, &head.headers, Some(&trailers)),
    }
}

/// An error response: the table's status, metadata as headers, the `Status` body.
pub(crate) fn error(
    shared: &Shared,
    status: &GrpcStatus,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
) -> Response<HttpBody> {
    let mut response = status.response(&shared.status, None).map(HttpBody::full);
    let out = response.headers_mut();
    copy_metadata(headers, out);
    if let Some(trailers) = trailers {
        copy_metadata(trailers, out);
    }
    response
}

/// A server stream as NDJSON or SSE.
async fn stream<B>(
    route: Arc<HttpRoute>,
    shared: Arc<Shared>,
    framing: Framing,
    headers: HeaderMap,
    mut reader: Reader<B>,
) -> Response<HttpBody>
where
    B: Body<Data = Bytes, Error = tonic::Status> + Send + Unpin + 'static,
{
    let first = match reader.next().await {
        Some(Piece::Message(message)) => Some(message),
        Some(Piece::End(status, trailers)) if status.code != Code::Ok => {
            return error(&shared, &status, &headers, Some(&trailers));
        }
        _ => None,
    };
    let raw = route.http_body_response;
    let mut content_type = framing.content_type();
    let mut pending = None;
    if let Some(first) = first {
        if raw {
            match raw_body(&route, &first) {
                Ok((declared, data)) => {
                    if let Some(declared) = declared {
                        content_type = declared;
                    }
                    pending = Some(Frame::data(data));
                }
                Err(status) => return error(&shared, &status, &headers, None),
            }
        } else {
            match render(&route, &shared.config.json, &first) {
                Ok(json) => pending = Some(Frame::data(element(framing, &json, false))),
                Err(status) => return error(&shared, &status, &headers, None),
            }
        }
    }
    let state = (reader, pending, route, shared, false);
    let stream = futures_util::stream::unfold(
        state,
        move |(mut reader, pending, route, shared, ended)| async move {
            if let Some(frame) = pending {
                return Some((Ok(frame), (reader, None, route, shared, ended)));
            }
            if ended {
                return None;
            }
            let frame = match reader.next().await? {
                Piece::Message(message) if raw => match raw_body(&route, &message) {
                    Ok((_, data)) => Frame::data(data),
                    Err(status) => Frame::data(failure(&shared, framing, &status)),
                },
                Piece::Message(message) => match render(&route, &shared.config.json, &message) {
                    Ok(json) => Frame::data(element(framing, &json, false)),
                    Err(status) => {
                        let frame = Frame::data(failure(&shared, framing, &status));
                        return Some((Ok(frame), (reader, None, route, shared, true)));
                    }
                },
                Piece::End(status, _) if status.code == Code::Ok => return None,
                Piece::End(status, _) if raw => {
                    return Some((
                        Err(tonic::Status::new(status.code, status.message)),
                        (reader, None, route, shared, true),
                    ));
                }
                Piece::End(status, _) => {
                    let frame = Frame::data(failure(&shared, framing, &status));
                    return Some((Ok(frame), (reader, None, route, shared, true)));
                }
            };
            Some((Ok(frame), (reader, None, route, shared, false)))
        },
    );
    let mut response = Response::new(HttpBody::Stream(Box::pin(stream)));
    *response.status_mut() = StatusCode::OK;
    let out = response.headers_mut();
    copy_metadata(&headers, out);
    out.insert(header::CONTENT_TYPE, content_type);
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One stream element in its framing.
fn element(framing: Framing, json: &[u8], error: bool) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    match framing {
        Framing::Ndjson if error => {
            out.extend_from_slice(b"{\"error\":");
            out.extend_from_slice(json);
            out.extend_from_slice(b"}\n");
        }
        Framing::Ndjson => {
            out.extend_from_slice(json);
            out.push(b'\n');
        }
        Framing::Sse => {
            if error {
                out.extend_from_slice(b"event: error\n");
            }
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(json);
            out.extend_from_slice(b"\n\n");
        }
    }
    Bytes::from(out)
}

/// A stream's last element when it fails.
fn failure(shared: &Shared, framing: Framing, status: &GrpcStatus) -> Bytes {
    element(framing, &status.to_json(&shared.status), true)
}

#[cfg(test)]
mod tests {
    use futures_util::stream;
    use http_body_util::StreamBody;
    use mosaic_http_rule::{HttpMethod, Rule};

    use super::*;

    /// `grpc.health.v1.Health/Watch` (a server stream) bound to `GET /watch`.
    fn watch_route() -> (Arc<HttpRoute>, Arc<Shared>) {
        let pool = super::super::edge_pool([]).unwrap();
        let method = pool
            .get_service_by_name("grpc.health.v1.Health")
            .unwrap()
            .methods()
            .find(|m| m.name() == "Watch")
            .unwrap();
        let rule = Rule {
            method: Some(HttpMethod::Get),
            path: "/watch".into(),
            ..Rule::default()
        };
        let (mut bindings, errors) = rule.bindings(&method);
        assert!(errors.is_empty(), "{errors:?}");
        let route = Arc::new(HttpRoute {
            grpc_path: "/grpc.health.v1.Health/Watch".into(),
            method,
            binding: bindings.remove(0),
            http_body_request: false,
            http_body_response: false,
            origin: "test",
        });
        let shared = Arc::new(Shared {
            config: super::super::HttpConfig::default(),
            status: pool.get_message_by_name("google.rpc.Status").unwrap(),
        });
        (route, shared)
    }

    /// A gRPC response: `SERVING`, `NOT_SERVING`, then `UNAVAILABLE` in the trailers.
    fn failing_stream() -> Response<impl Body<Data = Bytes, Error = tonic::Status> + Send + Unpin> {
        let message = |status: u8| Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("14"));
        trailers.insert("grpc-message", HeaderValue::from_static("gone%20away"));
        let frames = vec![
            Ok(Frame::data(message(1))),
            Ok(Frame::data(message(2))),
            Ok(Frame::trailers(trailers)),
        ];
        Response::new(StreamBody::new(stream::iter(frames)))
    }

    async fn text(response: Response<HttpBody>) -> String {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_stream_that_fails_midway_ends_with_an_error_line() {
        let (route, shared) = watch_route();
        let response = respond(route, shared, Framing::Ndjson, failing_stream()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            text(response).await,
            "{\"status\":\"SERVING\"}\n{\"status\":\"NOT_SERVING\"}\n\
             {\"error\":{\"code\":14,\"message\":\"gone away\",\"details\":[]}}\n"
        );
    }

    #[tokio::test]
    async fn sse_ends_a_failed_stream_with_an_error_event() {
        let (route, shared) = watch_route();
        let response = respond(route, shared, Framing::Sse, failing_stream()).await;
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        assert_eq!(
            text(response).await,
            "data: {\"status\":\"SERVING\"}\n\ndata: {\"status\":\"NOT_SERVING\"}\n\n\
             event: error\ndata: {\"code\":14,\"message\":\"gone away\",\"details\":[]}\n\n"
        );
    }

    #[tokio::test]
    async fn a_stream_that_fails_first_gets_the_http_status() {
        let (route, shared) = watch_route();
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("7"));
        let frames: Vec<Result<Frame<Bytes>, tonic::Status>> = vec![Ok(Frame::trailers(trailers))];
        let grpc = Response::new(StreamBody::new(stream::iter(frames)));
        let response = respond(route, shared, Framing::Ndjson, grpc).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            text(response).await,
            "{\"code\":7,\"message\":\"\",\"details\":[]}"
        );
    }

    #[test]
    fn framing_follows_accept() {
        let sse = HeaderValue::from_static("text/event-stream");
        assert_eq!(Framing::negotiate(Some(&sse)), Framing::Sse);
        let any = HeaderValue::from_static("*/*");
        assert_eq!(Framing::negotiate(Some(&any)), Framing::Ndjson);
        assert_eq!(Framing::negotiate(None), Framing::Ndjson);
    }
}
