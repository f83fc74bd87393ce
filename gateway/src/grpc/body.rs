//! A caller's request body as the routes receive it: hyper's, straight from the connection, or
//! one the gateway made (a transcoded HTTP/JSON or gRPC-Web request, already in gRPC framing).
//!
//! An enum rather than a boxed body, so that a pass-through call (by far the most frequent)
//! pays no allocation and no dynamic dispatch for the flexibility.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A gRPC request body.
#[derive(Debug)]
pub(crate) enum CallerStream {
    /// As received on the edge connection.
    Wire(hyper::body::Incoming),
    /// Made by the gateway from a request in another protocol.
    Made(http_body_util::Full<Bytes>),
}

impl From<hyper::body::Incoming> for CallerStream {
    fn from(body: hyper::body::Incoming) -> Self {
        Self::Wire(body)
    }
}

impl Body for CallerStream {
    type Data = Bytes;
    type Error = tower::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tower::BoxError>>> {
        match self.get_mut() {
            Self::Wire(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Self::Made(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Wire(body) => body.is_end_stream(),
            Self::Made(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Wire(body) => body.size_hint(),
            Self::Made(body) => body.size_hint(),
        }
    }
}
