//! Reading a request body whole, within a limit.
//!
//! A body over the limit is refused with 413, but what is left of it is still read (and
//! dropped), up to [`DRAIN_BYTES`] and [`DRAIN_TIME`]: an HTTP/2 server that answers before
//! the request has been read resets the stream, and clients that see the reset first (curl
//! does, at times) report a framing error instead of the 413. Beyond those bounds the answer
//! goes out anyway.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, header};
use http_body_util::BodyExt;

/// How much of a refused body is read to let the answer through cleanly.
pub(crate) const DRAIN_BYTES: usize = 1024 * 1024;
/// How long at most.
pub(crate) const DRAIN_TIME: Duration = Duration::from_millis(500);

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum ReadError {
    TooLarge,
    Broken(String),
}

/// Reads `body` whole if it stays within `limit` bytes (its declared length too).
pub(crate) async fn read_limited(
    mut body: hyper::body::Incoming,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ReadError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let mut data = BytesMut::new();
    let mut over = declared.is_some_and(|length| length > limit as u64);
    if !over {
        loop {
            match body.frame().await {
                None => return Ok(data.freeze()),
                Some(Err(error)) => return Err(ReadError::Broken(error.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(chunk) = frame.into_data() {
                        if data.len() + chunk.len() > limit {
                            over = true;
                            break;
                        }
                        data.extend_from_slice(&chunk);
                    }
                }
            }
        }
    }
    debug_assert!(over);
    let drain = async {
        let mut drained = 0;
        while drained < DRAIN_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => drained += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    Err(ReadError::TooLarge)
}
