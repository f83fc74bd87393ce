//! gRPC-Web in front of gRPC, for browsers (which cannot read HTTP/2 trailers): the same
//! messages in the same framing, over HTTP/1.1 or HTTP/2, with the trailers sent as a last
//! frame of the body (flag `0x80`, then `name: value\r\n` lines).
//!
//! `application/grpc-web` and `application/grpc-web+proto` carry the frames as they are, and
//! the request streams through without being buffered; `application/grpc-web-text` (and
//! `+proto`) carry them in base64, which is decoded whole (within the request limit) on the
//! way in and encoded per chunk on the way out (each chunk padded on its own, as Envoy does;
//! clients decode in groups of four characters). A trailers-only answer (an error before any
//! message) keeps its status in the response headers, which the protocol allows.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::Full;

use super::read::{ReadError, read_limited};
use super::response::HttpBody;
use crate::grpc::body::CallerStream;

/// Which gRPC-Web encoding a request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WebMode {
    Binary,
    Text,
}

impl WebMode {
    /// The mode of `headers`' content type, if it is gRPC-Web (with the protobuf codec).
    pub(crate) fn of(headers: &HeaderMap) -> Option<Self> {
        let content_type = headers.get(header::CONTENT_TYPE)?.as_bytes();
        let essence = content_type
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        match essence {
            b"application/grpc-web" | b"application/grpc-web+proto" => Some(Self::Binary),
            b"application/grpc-web-text" | b"application/grpc-web-text+proto" => Some(Self::Text),
            _ => None,
        }
    }

    fn content_type(self) -> HeaderValue {
        match self {
            Self::Binary => HeaderValue::from_static("application/grpc-web+proto"),
            Self::Text => HeaderValue::from_static("application/grpc-web-text+proto"),
        }
    }
}

/// The gRPC call for a gRPC-Web request, or the HTTP answer that refuses it.
pub(crate) async fn request(
    request: Request<hyper::body::Incoming>,
    mode: WebMode,
    limit: usize,
) -> Result<Request<CallerStream>, Response<HttpBody>> {
    let (mut parts, body) = request.into_parts();
    let body = match mode {
        WebMode::Binary => CallerStream::Wire(body),
        WebMode::Text => {
            let text = match read_limited(body, &parts.headers, limit).await {
                Ok(text) => text,
                Err(ReadError::TooLarge) => {
                    return Err(plain(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the request body is larger than the limit of {limit} bytes"),
                    ));
                }
                Err(ReadError::Broken(error)) => {
                    return Err(plain(
                        StatusCode::BAD_REQUEST,
                        format!("reading the request body failed: {error}"),
                    ));
                }
            };
            match decode_text(&text) {
                Some(frames) => CallerStream::Made(Full::new(frames)),
                None => {
                    return Err(plain(
                        StatusCode::BAD_REQUEST,
                        "the grpc-web-text body is not base64".to_owned(),
                    ));
                }
            }
        }
    };
    let headers = &mut parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::HOST);
    headers.remove(header::CONNECTION);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    parts.version = http::Version::HTTP_2;
    parts.method = http::Method::POST;
    Ok(Request::from_parts(parts, body))
}

/// Decodes base64 text that may be several padded chunks one after the other.
fn decode_text(text: &[u8]) -> Option<Bytes> {
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    // A chunk ends after its padding.
    let mut start = 0;
    let mut at = 0;
    while at < clean.len() {
        if clean[at] == b'=' {
            while at < clean.len() && clean[at] == b'=' {
                at += 1;
            }
            STANDARD.decode_vec(&clean[start..at], &mut out).ok()?;
            start = at;
        } else {
            at += 1;
        }
    }
    if start < clean.len() {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode_vec(&clean[start..], &mut out)
            .ok()?;
    }
    Some(Bytes::from(out))
}

/// The gRPC-Web response for a gRPC response.
pub(crate) fn response<B>(response: Response<B>, mode: WebMode) -> Response<HttpBody>
where
    B: Body<Data = Bytes, Error = tonic::Status> + Send + Unpin + 'static,
{
    let (mut head, body) = response.into_parts();
    head.headers.remove(header::CONTENT_LENGTH);
    head.headers.remove(header::TRAILER);
    head.headers
        .insert(header::CONTENT_TYPE, mode.content_type());
    let body = HttpBody::Stream(Box::pin(WebFrames {
        inner: body,
        mode,
        done: false,
    }));
    Response::from_parts(head, body)
}

/// A gRPC body as gRPC-Web: data as it is (or in base64), trailers as a last frame.
struct WebFrames<B> {
    inner: B,
    mode: WebMode,
    done: bool,
}

impl<B> WebFrames<B> {
    fn encode(&self, data: Bytes) -> Bytes {
        match self.mode {
            WebMode::Binary => data,
            WebMode::Text => Bytes::from(STANDARD.encode(&data)),
        }
    }
}

/// The trailers frame: flag `0x80`, length, then `name: value\r\n` per trailer.
fn trailers_frame(trailers: &HeaderMap) -> Bytes {
    let mut lines = BytesMut::new();
    for (name, value) in trailers {
        lines.put_slice(name.as_str().as_bytes());
        lines.put_slice(b": ");
        lines.put_slice(value.as_bytes());
        lines.put_slice(b"\r\n");
    }
    let mut frame = BytesMut::with_capacity(5 + lines.len());
    frame.put_u8(0x80);
    frame.put_u32(lines.len() as u32);
    frame.put_slice(&lines);
    frame.freeze()
}

impl<B> Stream for WebFrames<B>
where
    B: Body<Data = Bytes, Error = tonic::Status> + Unpin,
{
    type Item = Result<Frame<Bytes>, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let frame = match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            None => {
                self.done = true;
                return Poll::Ready(None);
            }
            Some(Err(status)) => {
                // Said in a trailers frame, as the upstream's own failure would be.
                self.done = true;
                let trailers = crate::grpc::status::trailers(&status);
                let frame = trailers_frame(&trailers);
                return Poll::Ready(Some(Ok(Frame::data(self.encode(frame)))));
            }
            Some(Ok(frame)) => frame,
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                self.done = true;
                trailers_frame(&frame.into_trailers().unwrap_or_default())
            }
        };
        Poll::Ready(Some(Ok(Frame::data(self.encode(data)))))
    }
}

fn plain(status: StatusCode, message: String) -> Response<HttpBody> {
    let mut response = Response::new(HttpBody::full(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_come_from_the_content_type() {
        let with = |ct: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            WebMode::of(&headers)
        };
        assert_eq!(with("application/grpc-web"), Some(WebMode::Binary));
        assert_eq!(with("application/grpc-web+proto"), Some(WebMode::Binary));
        assert_eq!(with("application/grpc-web-text"), Some(WebMode::Text));
        assert_eq!(
            with("application/grpc-web-text+proto; charset=x"),
            Some(WebMode::Text)
        );
        assert_eq!(with("application/grpc-web+json"), None);
        assert_eq!(with("application/grpc"), None);
    }

    #[test]
    fn text_bodies_may_be_several_padded_chunks() {
        let one = STANDARD.encode(b"\x00\x00\x00\x00\x01a");
        let two = STANDARD.encode(b"\x00\x00\x00\x00\x02bc");
        let joined = format!("{one}{two}\n");
        assert_eq!(
            decode_text(joined.as_bytes()).unwrap().as_ref(),
            b"\x00\x00\x00\x00\x01a\x00\x00\x00\x00\x02bc"
        );
        assert!(decode_text(b"!!!").is_none());
    }

    #[test]
    fn trailers_become_the_last_frame() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("x-cost", HeaderValue::from_static("3"));
        let frame = trailers_frame(&trailers);
        assert_eq!(frame[0], 0x80);
        let length = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        assert_eq!(&frame[5..], b"grpc-status: 0\r\nx-cost: 3\r\n");
        assert_eq!(length, frame.len() - 5);
    }
}
