//! Retrying pass-through calls that an endpoint dropped: which methods, and the request copy.
//!
//! A pass-through request body streams from the caller to the upstream and is gone once sent,
//! so a call in flight on an endpoint that dies (a crash, a reset connection, a refused stream)
//! could not be sent again, and the caller saw `UNAVAILABLE` although another endpoint was
//! healthy. Envoy retries such resets by keeping a bounded copy of the request; so does Mosaic,
//! for the calls where that is safe and cheap:
//!
//! - the method is safe to repeat: `idempotency_level` `NO_SIDE_EFFECTS` or `IDEMPOTENT` in a
//!   descriptor set the gateway was given, or `idempotent = true` for the method in
//!   `gateway.toml` (which also wins when it says `false`);
//! - a descriptor says the caller sends exactly one message (unary or server streaming). A
//!   method whose shape is unknown is never buffered: waiting for the end of a stream the
//!   caller keeps open would stall a bidirectional call;
//! - the whole request body arrives within `max_replay_bytes` (64 KiB by default); a larger one
//!   is sent on as it streams, without a copy, and is not retried;
//! - the upstream's `retry.max_attempts` (per method or per upstream) allows another attempt.
//!
//! The retry itself (in `upstream.rs`) happens only when the attempt failed before any of the
//! response reached the caller, with a transport failure (reset, refused stream, connection
//! lost), on another endpoint, within the call's deadline and the upstream's retry budget, and
//! never while the upstream has no ready endpoint.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use prost_types::FileDescriptorSet;
use prost_types::method_options::IdempotencyLevel;

use crate::resilience::UpstreamPolicy;
use crate::telemetry::metrics::CallerBody;

/// The paths (`/package.Service/Method`) of the methods an upstream may replay.
pub(crate) type ReplayableMethods = HashSet<Box<str>>;

/// The methods of `services` that may be replayed (see the module docs), from the descriptor
/// sets and the upstream's policy. Methods `gateway.toml` marks idempotent that no descriptor
/// describes are logged: their calls are not retried.
pub(crate) fn replayable_methods(
    sets: &[FileDescriptorSet],
    services: &[String],
    policy: &UpstreamPolicy,
) -> ReplayableMethods {
    let mut replayable = ReplayableMethods::new();
    if policy.max_replay_bytes == 0 {
        return replayable;
    }
    let mut described = HashSet::new();
    for file in sets.iter().flat_map(|set| &set.file) {
        for service in &file.service {
            let name = crate::grpc::service_name(file, service);
            if !services.contains(&name) {
                continue;
            }
            for method in &service.method {
                let key = format!("{name}/{}", method.name());
                let configured = policy.methods.get(&key);
                let idempotent = configured.and_then(|m| m.idempotent).unwrap_or_else(|| {
                    method.options.as_ref().is_some_and(|options| {
                        matches!(
                            options.idempotency_level(),
                            IdempotencyLevel::NoSideEffects | IdempotencyLevel::Idempotent
                        )
                    })
                });
                let attempts = configured
                    .and_then(|m| m.retry.as_ref())
                    .unwrap_or(&policy.retry)
                    .max_attempts;
                if idempotent && !method.client_streaming() && attempts > 1 {
                    replayable.insert(format!("/{key}").into());
                }
                described.insert(key);
            }
        }
    }
    for (method, _) in policy
        .methods
        .iter()
        .filter(|(method, config)| config.idempotent == Some(true) && !described.contains(*method))
    {
        tracing::warn!(
            %method,
            "no descriptor set describes this method, so its pass-through calls are not retried \
             after a connection reset (add the descriptor set to [reflection] to enable it)"
        );
    }
    replayable
}

/// A request body read ahead for a possible retry.
pub(crate) enum Buffered {
    /// The whole body, within the limit: it can be sent as many times as needed.
    Whole(Bytes),
    /// Over the limit (or carrying trailers): the frames read so far, then the rest as it
    /// streams; it can be sent once.
    Partial(PrefixedBody),
}

/// Reads `body` to its end while it stays within `limit` bytes.
pub(crate) async fn buffer(
    mut body: CallerBody,
    limit: usize,
) -> Result<Buffered, tower::BoxError> {
    let mut data = BytesMut::new();
    loop {
        let Some(frame) = body.frame().await.transpose()? else {
            return Ok(Buffered::Whole(data.freeze()));
        };
        match frame.into_data() {
            Ok(chunk) if data.len() + chunk.len() <= limit => data.extend_from_slice(&chunk),
            Ok(chunk) => {
                let prefix = [data.freeze(), chunk].map(Frame::data);
                return Ok(Buffered::Partial(PrefixedBody::new(prefix, body)));
            }
            Err(trailers) => {
                let prefix = [Frame::data(data.freeze()), trailers];
                return Ok(Buffered::Partial(PrefixedBody::new(prefix, body)));
            }
        }
    }
}

/// Frames already read, then the rest of the caller's body.
#[derive(Debug)]
pub(crate) struct PrefixedBody {
    prefix: VecDeque<Frame<Bytes>>,
    rest: CallerBody,
}

impl PrefixedBody {
    fn new(prefix: impl IntoIterator<Item = Frame<Bytes>>, rest: CallerBody) -> Self {
        let prefix = prefix
            .into_iter()
            .filter(|frame| frame.data_ref().is_none_or(|data| !data.is_empty()))
            .collect();
        Self { prefix, rest }
    }
}

impl Body for PrefixedBody {
    type Data = Bytes;
    type Error = tower::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tower::BoxError>>> {
        if let Some(frame) = self.prefix.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use prost_types::{
        FileDescriptorProto, MethodDescriptorProto, MethodOptions, ServiceDescriptorProto,
    };

    use super::*;
    use crate::config::{MethodPolicy, RetryPolicy};

    fn method(
        name: &str,
        level: Option<IdempotencyLevel>,
        client_streaming: bool,
    ) -> MethodDescriptorProto {
        MethodDescriptorProto {
            name: Some(name.into()),
            client_streaming: Some(client_streaming),
            options: level.map(|level| MethodOptions {
                idempotency_level: Some(level as i32),
                ..MethodOptions::default()
            }),
            ..MethodDescriptorProto::default()
        }
    }

    fn sets() -> Vec<FileDescriptorSet> {
        vec![FileDescriptorSet {
            file: vec![FileDescriptorProto {
                package: Some("demo.inventory.v1".into()),
                service: vec![ServiceDescriptorProto {
                    name: Some("InventoryService".into()),
                    method: vec![
                        method("GetStock", Some(IdempotencyLevel::NoSideEffects), false),
                        method("Reserve", None, false),
                        method("SumStock", Some(IdempotencyLevel::Idempotent), true),
                        method("Recount", Some(IdempotencyLevel::Idempotent), false),
                    ],
                    ..ServiceDescriptorProto::default()
                }],
                ..FileDescriptorProto::default()
            }],
        }]
    }

    fn services() -> Vec<String> {
        vec!["demo.inventory.v1.InventoryService".into()]
    }

    fn names(methods: &ReplayableMethods) -> Vec<&str> {
        let mut names: Vec<&str> = methods.iter().map(AsRef::as_ref).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn idempotent_single_request_methods_are_replayable() {
        let methods = replayable_methods(&sets(), &services(), &UpstreamPolicy::default());
        assert_eq!(
            names(&methods),
            [
                "/demo.inventory.v1.InventoryService/GetStock",
                "/demo.inventory.v1.InventoryService/Recount",
            ],
            "not Reserve (may have side effects), not SumStock (client streaming)"
        );
        let other = vec!["demo.users.v1.UserService".to_owned()];
        assert!(replayable_methods(&sets(), &other, &UpstreamPolicy::default()).is_empty());
    }

    #[test]
    fn gateway_toml_overrides_the_descriptor_and_can_turn_replay_off() {
        let mut policy = UpstreamPolicy::default();
        let set = |idempotent, attempts: Option<u32>| MethodPolicy {
            idempotent,
            retry: attempts.map(|max_attempts| RetryPolicy {
                max_attempts,
                ..RetryPolicy::default()
            }),
            ..MethodPolicy::default()
        };
        policy.methods.insert(
            "demo.inventory.v1.InventoryService/Reserve".into(),
            set(Some(true), None),
        );
        policy.methods.insert(
            "demo.inventory.v1.InventoryService/GetStock".into(),
            set(Some(false), None),
        );
        policy.methods.insert(
            "demo.inventory.v1.InventoryService/Recount".into(),
            set(None, Some(1)),
        );
        let methods = replayable_methods(&sets(), &services(), &policy);
        assert_eq!(
            names(&methods),
            ["/demo.inventory.v1.InventoryService/Reserve"]
        );
        policy.max_replay_bytes = 0;
        assert!(replayable_methods(&sets(), &services(), &policy).is_empty());
    }
}
