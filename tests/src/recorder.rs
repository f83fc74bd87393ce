//! An upstream that records every request it receives, to check what the gateway sends on.
//!
//! The demo services see their calls only through tonic, which folds headers into metadata
//! and keeps no record of them; [`Recorder`] is a bare HTTP/2 server that keeps each request
//! exactly as it arrived (path, every header with every value, the body bytes, when it came)
//! and answers every call with one fixed gRPC message and `grpc-status: 0`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One request as the recorder received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// When its head arrived.
    pub at: Instant,
    /// The request path (`/package.Service/Method`).
    pub path: String,
    /// Every header, every value, in the order received.
    pub headers: HeaderMap,
    /// The whole request body, gRPC framing included.
    pub body: Bytes,
}

/// A loopback HTTP/2 upstream that records requests and answers each with `reply`.
#[derive(Debug)]
pub struct Recorder {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Listens on an ephemeral loopback port; `reply` is the framed gRPC response body
    /// ([`crate::raw::frame`]) every call gets, followed by `grpc-status: 0` trailers.
    pub async fn start(reply: Bytes) -> std::io::Result<Self> {
        let listener = TcpListener::bind(crate::loopback()).await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = Arc::clone(&log);
                let reply = reply.clone();
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let log = Arc::clone(&log);
                    let reply = reply.clone();
                    async move {
                        let at = Instant::now();
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|collected| collected.to_bytes())
                            .unwrap_or_default();
                        log.lock().expect("recorder log").push(Received {
                            at,
                            path: parts.uri.path().to_owned(),
                            headers: parts.headers,
                            body,
                        });
                        let mut trailers = HeaderMap::new();
                        trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        let frames: Vec<Result<Frame<Bytes>, Infallible>> =
                            vec![Ok(Frame::data(reply)), Ok(Frame::trailers(trailers))];
                        let response = Response::builder()
                            .header("content-type", "application/grpc")
                            .body(StreamBody::new(tokio_stream::iter(frames)))
                            .expect("a valid response head");
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Ok(Self {
            addr,
            received,
            task,
        })
    }

    /// `http://` URL of the recorder, for `gateway.toml`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far (and forgets them).
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().expect("recorder log"))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
