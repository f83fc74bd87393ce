//! Raw gRPC over a bare HTTP/2 connection, for comparing responses byte for byte.
//!
//! tonic's client decodes messages and folds headers into `Status`/`MetadataMap`; to prove that
//! the gateway forwards responses unchanged, these helpers keep everything as received: the HTTP
//! status, every header, the exact body bytes (gRPC framing included) and the trailers.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A response exactly as it arrived.
#[derive(Debug, PartialEq, Eq)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// Response headers, without `date` (which differs between any two responses).
    pub headers: HeaderMap,
    /// The body bytes as received, gRPC length prefixes included.
    pub body: Bytes,
    /// The trailers, if any (absent for trailers-only responses).
    pub trailers: Option<HeaderMap>,
}

/// Frames protobuf-encoded messages the gRPC way: a zero flag byte and a big-endian length each.
pub fn frame(messages: &[Vec<u8>]) -> Bytes {
    let mut out = BytesMut::new();
    for message in messages {
        out.put_u8(0);
        out.put_u32(u32::try_from(message.len()).expect("message fits a gRPC frame"));
        out.put_slice(message);
    }
    out.freeze()
}

/// Sends one gRPC call with the given framed body and returns the response as received.
pub async fn call(
    addr: SocketAddr,
    path: &str,
    body: Bytes,
    extra_headers: &[(&str, &str)],
) -> anyhow::Result<RawResponse> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    let response = sender.send_request(request.body(Full::new(body))?).await?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    let mut headers = parts.headers;
    headers.remove("date");
    Ok(RawResponse {
        status: parts.status,
        headers,
        body: collected.to_bytes(),
        trailers,
    })
}
