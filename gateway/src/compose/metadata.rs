//! Metadata a composition sends with one downstream call (`call { metadata {…} }`), and the
//! edge request's headers it forwards.
//!
//! The generated handler picks the incoming headers its rules forward ([`pick_incoming`]) and
//! runs the composition with them ([`with_incoming`]); a call step builds its [`Outgoing`]
//! metadata once, before its first attempt, and every attempt (retries and hedges included)
//! carries it. The gateway's own headers (`grpc-timeout`, `grpc-previous-rpc-attempts`) are
//! never among them: the generator refuses reserved names.
//!
//! A call step with `response_metadata` keeps what its downstream answered beside the
//! response: [`ResponseMetadata`], filled by [`call_downstream_capturing`] from the attempt
//! that succeeded.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use tonic::Request;
use tonic::metadata::{
    AsciiMetadataValue, BinaryMetadataValue, KeyAndValueRef, MetadataKey, MetadataMap,
};

use crate::grpc::context;
use crate::grpc::status::ComposeError;

/// The metadata of one downstream call.
#[derive(Debug, Default)]
pub struct Outgoing {
    map: MetadataMap,
}

impl Outgoing {
    /// No metadata yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets text metadata `name` (lower-case, checked by the generator) to `value`; a value
    /// that is not header text ends the call with `INVALID_ARGUMENT`, naming the step.
    pub fn text(
        &mut self,
        step: &'static str,
        name: &'static str,
        value: &str,
    ) -> Result<(), tonic::Status> {
        let value = AsciiMetadataValue::try_from(value)
            .map_err(|_| ComposeError::InvalidMetadata { step, name }.to_status())?;
        self.map.insert(MetadataKey::from_static(name), value);
        Ok(())
    }

    /// Sets binary metadata `name` (ending in `-bin`) to `value`.
    pub fn binary(&mut self, name: &'static str, value: &[u8]) {
        self.map.insert_bin(
            MetadataKey::from_static(name),
            BinaryMetadataValue::from_bytes(value),
        );
    }

    /// Sends every value of the edge request's header `from` as `name`; nothing when the edge
    /// request has no such header.
    pub fn forward(&mut self, name: &'static str, from: &'static str) {
        let _ = context::incoming(|incoming| {
            if from.ends_with("-bin") {
                for value in incoming.get_all_bin(from) {
                    self.map
                        .append_bin(MetadataKey::from_static(name), value.clone());
                }
            } else {
                for value in incoming.get_all(from) {
                    self.map
                        .append(MetadataKey::from_static(name), value.clone());
                }
            }
        });
    }

    /// Adds this metadata to `request`, replacing what it has under the same names.
    pub fn apply<M>(&self, request: &mut Request<M>) {
        let metadata = request.metadata_mut();
        for name in self.map.keys() {
            match name {
                tonic::metadata::KeyRef::Ascii(key) => {
                    metadata.remove(key.as_str());
                }
                tonic::metadata::KeyRef::Binary(key) => {
                    metadata.remove_bin(key.as_str());
                }
            }
        }
        for entry in self.map.iter() {
            match entry {
                KeyAndValueRef::Ascii(key, value) => {
                    metadata.append(key.clone(), value.clone());
                }
                KeyAndValueRef::Binary(key, value) => {
                    metadata.append_bin(key.clone(), value.clone());
                }
            }
        }
    }
}

/// The headers named in `names` from the edge request's `metadata`, every value of each.
pub fn pick_incoming(metadata: &MetadataMap, names: &[&'static str]) -> Arc<MetadataMap> {
    let mut picked = MetadataMap::new();
    for &name in names {
        if name.ends_with("-bin") {
            for value in metadata.get_all_bin(name) {
                picked.append_bin(MetadataKey::from_static(name), value.clone());
            }
        } else {
            for value in metadata.get_all(name) {
                picked.append(MetadataKey::from_static(name), value.clone());
            }
        }
    }
    Arc::new(picked)
}

/// Runs `future`, a composition, with `incoming` as the headers its calls may forward; steps
/// spawned on other tasks carry them along.
pub async fn with_incoming<F: Future>(incoming: Arc<MetadataMap>, future: F) -> F::Output {
    context::with_incoming(Some(incoming), future).await
}

/// The response headers and trailers of one call step's downstream answer, as expressions read
/// them: a map of text. Keys are lower-case; a key sent several times holds its values joined
/// by `", "` (as HTTP combines them); binary (`-bin`) keys, gRPC's own (`grpc-*`) and
/// `content-type` are left out. Empty when the call failed (and a handler ignored it) or its
/// step did not run. tonic hands a unary call's trailers over merged into its headers, so one
/// map holds both; a trailer wins over a header of the same key only by coming later in it.
#[derive(Clone, Debug, Default)]
pub struct ResponseMetadata(Arc<OnceLock<BTreeMap<String, String>>>);

impl ResponseMetadata {
    /// Nothing captured yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `metadata`, unless an answer was kept already (a hedged call's first answer wins).
    fn record(&self, metadata: &MetadataMap) {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for entry in metadata.iter() {
            let KeyAndValueRef::Ascii(key, value) = entry else {
                continue;
            };
            let key = key.as_str();
            if key.starts_with("grpc-") || key == "content-type" {
                continue;
            }
            let Ok(value) = value.to_str() else {
                continue;
            };
            map.entry(key.to_owned())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
        let _ = self.0.set(map);
    }

    /// What was captured; empty when nothing was.
    pub fn get(&self) -> BTreeMap<String, String> {
        self.0.get().cloned().unwrap_or_default()
    }
}

/// [`call_downstream`](super::call_downstream), keeping the response metadata of the attempt
/// that succeeds in `captured`.
pub async fn call_downstream_capturing<M, R, F, Fut>(
    call: &super::EdgeCall,
    downstreams: &super::Downstreams,
    service: &str,
    spec: &super::CallSpec,
    message: M,
    captured: &ResponseMetadata,
    send: F,
) -> Result<R, tonic::Status>
where
    M: Clone + prost::Message,
    R: Clone + Send + Sync + 'static,
    F: Fn(super::DownstreamChannel, Request<M>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let send = |channel, request| {
        let attempt = send(channel, request);
        async move {
            let response = attempt.await?;
            captured.record(response.metadata());
            Ok(response)
        }
    };
    super::call_downstream(call, downstreams, service, spec, message, send).await
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn incoming() -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("accept-language", "fr-CH".parse().unwrap());
        metadata.append("x-tag", "a".parse().unwrap());
        metadata.append("x-tag", "b".parse().unwrap());
        metadata.insert("x-private", "secret".parse().unwrap());
        metadata.insert_bin("x-trace-bin", BinaryMetadataValue::from_bytes(b"\x00\x01"));
        metadata
    }

    #[tokio::test]
    async fn forwards_only_what_was_picked_every_value_and_binary_too() {
        let picked = pick_incoming(
            &incoming(),
            &["accept-language", "x-tag", "x-trace-bin", "x-absent"],
        );
        assert!(
            picked.get("x-private").is_none(),
            "unpicked headers stay behind"
        );
        let request = with_incoming(picked, async {
            let mut outgoing = Outgoing::new();
            outgoing.forward("x-locale", "accept-language");
            outgoing.forward("x-tag", "x-tag");
            outgoing.forward("x-trace-bin", "x-trace-bin");
            outgoing.forward("x-absent", "x-absent");
            outgoing.forward("x-private", "x-private");
            let mut request = Request::new(());
            outgoing.apply(&mut request);
            request
        })
        .await;
        let metadata = request.metadata();
        assert_eq!(metadata.get("x-locale").unwrap(), "fr-CH");
        let tags: Vec<_> = metadata.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(
            metadata.get_bin("x-trace-bin").unwrap().to_bytes().unwrap(),
            &b"\x00\x01"[..]
        );
        assert!(metadata.get("x-absent").is_none());
        assert!(metadata.get("x-private").is_none());
        assert_eq!(metadata.len(), 4);
    }

    #[tokio::test]
    async fn forwarding_outside_a_composition_sends_nothing() {
        let mut outgoing = Outgoing::new();
        outgoing.forward("accept-language", "accept-language");
        let mut request = Request::new(());
        outgoing.apply(&mut request);
        assert!(request.metadata().is_empty());
    }

    #[test]
    fn text_values_replace_what_the_request_had_and_bad_text_is_invalid_argument() {
        let mut outgoing = Outgoing::new();
        outgoing.text("p", "x-source", "mobile").unwrap();
        outgoing.binary("x-key-bin", b"\xff");
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("x-source", "stale".parse().unwrap());
        request
            .metadata_mut()
            .insert("x-kept", "yes".parse().unwrap());
        outgoing.apply(&mut request);
        let metadata = request.metadata();
        let sources: Vec<_> = metadata.get_all("x-source").iter().collect();
        assert_eq!(sources, ["mobile"]);
        assert_eq!(metadata.get("x-kept").unwrap(), "yes");
        assert_eq!(
            metadata.get_bin("x-key-bin").unwrap().to_bytes().unwrap(),
            &b"\xff"[..]
        );

        let status = outgoing.text("p", "x-user", "line\nbreak").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "step `p` cannot send metadata `x-user`: its value holds characters a header value \
             cannot (only visible ASCII, spaces and tabs)"
        );
    }

    #[test]
    fn response_metadata_keeps_text_joins_repeats_and_leaves_out_grpc_keys() {
        let mut metadata = MetadataMap::new();
        metadata.insert("x-total-count", "42".parse().unwrap());
        metadata.append("x-cache", "hit".parse().unwrap());
        metadata.append("x-cache", "edge".parse().unwrap());
        metadata.insert("grpc-status", "0".parse().unwrap());
        metadata.insert("content-type", "application/grpc".parse().unwrap());
        metadata.insert_bin("x-trace-bin", BinaryMetadataValue::from_bytes(b"\x01"));
        let captured = ResponseMetadata::new();
        assert!(captured.get().is_empty(), "nothing before an answer");
        captured.record(&metadata);
        let mut later = MetadataMap::new();
        later.insert("x-total-count", "7".parse().unwrap());
        captured.record(&later);
        let map = captured.get();
        assert_eq!(
            map.into_iter().collect::<Vec<_>>(),
            [
                ("x-cache".to_owned(), "hit, edge".to_owned()),
                ("x-total-count".to_owned(), "42".to_owned()),
            ],
            "the first answer is kept"
        );
    }
}
