//! The codec of generated edge servers: prost's, except that a request message that does not
//! decode is the caller's fault.
//!
//! tonic-prost's codec answers a message it cannot decode with `INTERNAL`, on both sides of a
//! call. For the response a tonic client decodes that is right (the downstream sent something
//! broken), but an edge server that cannot decode the *request* was sent a malformed message:
//! the caller must fix it, and `INTERNAL` would make it look like the gateway's bug. So
//! `mosaic-codegen` generates the tonic servers of edge (composed) services with [`EdgeCodec`],
//! which answers `INVALID_ARGUMENT` ([`ComposeError::MalformedRequest`]). Generated clients,
//! which decode downstream responses, keep tonic-prost's codec and its `INTERNAL`.
//!
//! A tonic server's codec encodes the response and decodes the request, so [`EdgeCodec`] is only
//! ever used where what it decodes is a request.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

use crate::grpc::status::ComposeError;

/// The codec of a generated edge server: encodes responses as tonic-prost does, decodes
/// requests answering a malformed one with `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct EdgeCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for EdgeCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for EdgeCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder { _type: PhantomData }
    }
}

/// Decodes an edge call's request message (see the module docs).
#[derive(Debug, Clone)]
pub struct RequestDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|error| {
            ComposeError::MalformedRequest {
                reason: error.to_string(),
            }
            .into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn malformed_requests_are_invalid_arguments_naming_the_cause() {
        // Field 1 as a varint whose continuation bit promises a byte that never comes.
        let error = prost_types::Duration::decode(&[0x08, 0x80][..]).unwrap_err();
        let status: Status = ComposeError::MalformedRequest {
            reason: error.to_string(),
        }
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            format!("the request message could not be decoded: {error}")
        );
    }
}
