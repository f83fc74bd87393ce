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

/// A bare HTTP/2 connection for several raw calls, so that connection set-up is not part of
/// any call's timing.
pub struct RawConnection {
    addr: SocketAddr,
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
}

impl RawConnection {
    /// Connects to `addr` (HTTP/2 with prior knowledge).
    pub async fn open(addr: SocketAddr) -> anyhow::Result<RawConnection> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        // As every gRPC client does: without it, small frames wait on delayed acknowledgements.
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await?;
        tokio::spawn(connection);
        Ok(RawConnection { addr, sender })
    }

    /// Sends one gRPC call with the given framed body and returns the response as received.
    pub async fn call(
        &mut self,
        path: &str,
        body: Bytes,
        extra_headers: &[(&str, &str)],
    ) -> anyhow::Result<RawResponse> {
        let mut request = Request::post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in extra_headers {
            request = request.header(*name, *value);
        }
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
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

    /// Sends one unary call whose `grpc-timeout` is `timeout` and returns the status it was
    /// answered with. A bare HTTP/2 client enforces no deadline of its own, unlike tonic's
    /// client, which ends the call itself at the deadline (reporting `CANCELLED`) and would
    /// hide what the server answered.
    pub async fn status_within(
        &mut self,
        path: &str,
        message: &impl prost::Message,
        timeout: std::time::Duration,
    ) -> anyhow::Result<tonic::Status> {
        let body = frame(&[message.encode_to_vec()]);
        let timeout = format!("{}m", timeout.as_millis());
        let response = self.call(path, body, &[("grpc-timeout", &timeout)]).await?;
        let trailers = response.trailers.as_ref().unwrap_or(&response.headers);
        tonic::Status::from_header_map(trailers)
            .ok_or_else(|| anyhow::anyhow!("no grpc-status in {response:?}"))
    }
}

/// Sends one gRPC call on a new connection and returns the response as received.
pub async fn call(
    addr: SocketAddr,
    path: &str,
    body: Bytes,
    extra_headers: &[(&str, &str)],
) -> anyhow::Result<RawResponse> {
    RawConnection::open(addr)
        .await?
        .call(path, body, extra_headers)
        .await
}

/// [`RawConnection::status_within`] on a new connection.
pub async fn status_within(
    addr: SocketAddr,
    path: &str,
    message: &impl prost::Message,
    timeout: std::time::Duration,
) -> anyhow::Result<tonic::Status> {
    RawConnection::open(addr)
        .await?
        .status_within(path, message, timeout)
        .await
}
