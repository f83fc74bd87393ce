//! Channels to the downstream services that generated handlers call, by gRPC service name.
//!
//! The generator knows *which* service a step calls (`demo.users.v1.UserService`); only
//! `gateway.toml` knows *where* it runs. [`Downstreams`] joins the two: one tonic [`Channel`]
//! per upstream, shared by every service that upstream serves, found by service name.
//!
//! Channels connect lazily, on the first call, so a gateway starts while its downstreams are
//! still coming up, and an upstream's `connect_timeout` bounds each connection attempt. An
//! upstream with one endpoint gets a plain channel; one with several gets a channel that
//! balances over them (tonic's power-of-two-choices balancer).
//!
//! A channel is built the first time a handler asks for it rather than in
//! [`Downstreams::from_upstreams`], because building one spawns its connection worker on the
//! current Tokio runtime: construction then never depends on a runtime, and upstreams no handler
//! calls cost nothing.
//!
//! A service no upstream serves is a deployment bug (the protos call it, the configuration
//! forgot it), so [`Downstreams::channel`] fails with `INTERNAL` and a message saying what to
//! add to `gateway.toml`, never with `UNAVAILABLE`, which clients would retry in vain.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tokio::runtime::Handle;
use tonic::Status;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

use super::error::ComposeError;
use crate::config::UpstreamConfig;

/// Downstream channels by gRPC service name, built from the gateway's upstream configuration.
///
/// Cheap to clone: clones share the routes and the channels.
#[derive(Clone, Debug)]
pub struct Downstreams {
    inner: Arc<Routes>,
}

#[derive(Debug)]
struct Routes {
    /// Service name → index into `upstreams`.
    by_service: HashMap<String, usize>,
    upstreams: Vec<UpstreamChannel>,
}

/// One upstream's endpoints and the channel built from them on first use.
#[derive(Debug)]
struct UpstreamChannel {
    name: String,
    endpoints: Vec<Endpoint>,
    channel: OnceLock<Channel>,
}

// === impl Downstreams ===

impl Downstreams {
    /// Routes every service of every upstream to that upstream's (lazily built) channel.
    ///
    /// If two upstreams list the same service the first one wins, as in
    /// `GatewayConfig::upstream_for` (the configuration's validation is the place to reject
    /// that).
    pub fn from_upstreams(upstreams: &[UpstreamConfig]) -> Downstreams {
        let mut by_service = HashMap::new();
        for (index, upstream) in upstreams.iter().enumerate() {
            for service in &upstream.services {
                by_service.entry(service.clone()).or_insert(index);
            }
        }
        let upstreams = upstreams
            .iter()
            .map(|upstream| UpstreamChannel {
                name: upstream.name.clone(),
                endpoints: upstream
                    .endpoints
                    .iter()
                    .map(|uri| {
                        Endpoint::from(uri.clone()).connect_timeout(upstream.connect_timeout)
                    })
                    .collect(),
                channel: OnceLock::new(),
            })
            .collect();
        Downstreams {
            inner: Arc::new(Routes {
                by_service,
                upstreams,
            }),
        }
    }

    /// Whether some upstream serves `grpc_service`; for checking at start-up that every
    /// service the generated handlers call is configured.
    pub fn serves(&self, grpc_service: &str) -> bool {
        self.inner.by_service.contains_key(grpc_service)
    }

    /// The channel to the upstream serving `grpc_service` (`demo.users.v1.UserService`).
    ///
    /// Fails with `INTERNAL` when no upstream serves it (add it to an upstream's `services` in
    /// `gateway.toml`), `UNAVAILABLE` when that upstream has no endpoints, and `INTERNAL` when
    /// called outside a Tokio runtime the first time.
    pub fn channel(&self, grpc_service: &str) -> Result<Channel, Status> {
        let upstream = self
            .inner
            .by_service
            .get(grpc_service)
            .and_then(|&index| self.inner.upstreams.get(index))
            .ok_or_else(|| ComposeError::NoUpstream {
                service: grpc_service.to_owned(),
            })?;
        upstream.channel(grpc_service)
    }
}

// === impl UpstreamChannel ===

impl UpstreamChannel {
    fn channel(&self, grpc_service: &str) -> Result<Channel, Status> {
        if let Some(channel) = self.channel.get() {
            return Ok(channel.clone());
        }
        if self.endpoints.is_empty() {
            // A balancer over no endpoints would hold every call until its deadline.
            return Err(ComposeError::NoEndpoints {
                upstream: self.name.clone(),
                service: grpc_service.to_owned(),
            }
            .into());
        }
        if Handle::try_current().is_err() {
            return Err(ComposeError::NoRuntime.into());
        }
        Ok(self.channel.get_or_init(|| self.build()).clone())
    }

    fn build(&self) -> Channel {
        match self.endpoints.as_slice() {
            [single] => single.connect_lazy(),
            several => {
                // `Channel::balance_list` panics past 1 024 endpoints; a channel sized to the
                // list takes them all.
                let (channel, changes) = Channel::balance_channel(several.len().max(1));
                for endpoint in several {
                    let change = Change::Insert(endpoint.uri().clone(), endpoint.clone());
                    if changes.try_send(change).is_err() {
                        let uri = endpoint.uri();
                        tracing::warn!(upstream = %self.name, %uri, "endpoint not added to the balancer");
                    }
                }
                channel
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::Code;

    use super::*;

    fn upstream(name: &str, endpoints: &[&str], services: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            name: name.to_owned(),
            endpoints: endpoints.iter().map(|e| e.parse().expect("uri")).collect(),
            services: services.iter().map(|&s| s.to_owned()).collect(),
            connect_timeout: Duration::from_millis(250),
        }
    }

    fn demo() -> Downstreams {
        Downstreams::from_upstreams(&[
            upstream(
                "users",
                &["http://127.0.0.1:50051"],
                &["demo.users.v1.UserService", "demo.faults.v1.FaultService"],
            ),
            upstream(
                "catalog",
                &["http://127.0.0.1:50052", "http://127.0.0.1:50062"],
                &["demo.catalog.v1.CatalogService"],
            ),
            upstream("empty", &[], &["demo.empty.v1.EmptyService"]),
        ])
    }

    #[tokio::test]
    async fn known_services_get_a_lazy_channel_without_network() {
        let downstreams = demo();
        for service in [
            "demo.users.v1.UserService",
            "demo.faults.v1.FaultService",
            "demo.catalog.v1.CatalogService",
        ] {
            assert!(downstreams.serves(service));
            assert!(downstreams.channel(service).is_ok(), "{service}");
        }
        let users = &downstreams.inner.upstreams[0];
        assert!(
            users.channel.get().is_some(),
            "built once, shared by both services"
        );
        let clone = downstreams.clone();
        assert!(clone.channel("demo.users.v1.UserService").is_ok());
    }

    #[tokio::test]
    async fn an_unknown_service_is_a_configuration_bug() {
        let status = demo()
            .channel("demo.reviews.v1.ReviewService")
            .expect_err("not configured");
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(
            status.message(),
            "no upstream in gateway.toml serves `demo.reviews.v1.ReviewService`; add it to the \
             `services` of the upstream that runs it"
        );
        assert!(!demo().serves("demo.reviews.v1.ReviewService"));
    }

    #[tokio::test]
    async fn an_upstream_without_endpoints_is_unavailable() {
        let status = demo()
            .channel("demo.empty.v1.EmptyService")
            .expect_err("no endpoints");
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("upstream `empty`"), "{status:?}");
    }

    #[test]
    fn outside_a_runtime_channel_fails_instead_of_panicking() {
        let downstreams = demo();
        let status = downstreams
            .channel("demo.users.v1.UserService")
            .expect_err("no runtime");
        assert_eq!(status.code(), Code::Internal);
    }

    #[test]
    fn the_first_upstream_listing_a_service_wins() {
        let downstreams = Downstreams::from_upstreams(&[
            upstream("a", &["http://127.0.0.1:1"], &["x.v1.S"]),
            upstream("b", &["http://127.0.0.1:2"], &["x.v1.S"]),
        ]);
        assert_eq!(downstreams.inner.by_service.get("x.v1.S"), Some(&0));
    }
}
