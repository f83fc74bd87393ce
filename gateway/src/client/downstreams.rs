//! The downstream services that generated handlers call, by gRPC service name.
//!
//! The generator knows *which* service a step calls (`demo.users.v1.UserService`); only
//! `gateway.toml` knows *where* it runs and with which policy. [`Downstreams`] joins the two:
//! it maps each service name to its [`Upstream`], the same instance the pass-through routes use,
//! so typed calls and pass-through calls share one concurrency limit, one set of per-endpoint
//! breakers and one retry budget.
//!
//! A typed call reaches the upstream's stack through a [`DownstreamChannel`], the transport the
//! generated tonic clients are built on. It maps every local failure of the stack (shed, no
//! ready endpoint, unreachable, deadline) to its one documented status (`status.rs`), keeping
//! the local error as the status's source so the retry logic can tell a local rejection, which
//! it must not retry, from an upstream's own `UNAVAILABLE`.
//!
//! A service no upstream serves is a deployment bug (the protos call it, the configuration
//! forgot it), so [`Downstreams::get`] fails with `INTERNAL` and a message saying what to add
//! to `gateway.toml`, never with `UNAVAILABLE`, which clients would retry in vain.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::{Request, Response};
use tonic::Status;
use tower::Service;

use super::upstream::{Upstream, UpstreamStack};
use crate::config::UpstreamConfig;
use crate::grpc::status::ComposeError;
use crate::grpc::status::LocalError;
use crate::resilience::balance::ResponseBody;

/// Upstreams by the gRPC services they serve, replaced whole when the gateway reloads.
pub(crate) type DownstreamMap = Arc<ArcSwap<HashMap<String, Arc<Upstream>>>>;

/// Upstreams by gRPC service name; cheap to clone (clones share everything, and all see the
/// upstreams of the configuration in force, a reloaded one included).
#[derive(Clone, Debug)]
pub struct Downstreams {
    by_service: DownstreamMap,
}

/// The transport of a generated tonic client: one call through an upstream's stack.
#[derive(Clone, Debug)]
pub struct DownstreamChannel {
    inner: UpstreamStack,
    upstream: Arc<str>,
}

// === impl Downstreams ===

impl Downstreams {
    /// Routes every service of every upstream config to the matching built upstream (the
    /// two slices are in the same order, as `GatewayBuilder` keeps them). If two upstreams
    /// list the same service the first one wins (the configuration's validation rejects that).
    pub fn new(configs: &[UpstreamConfig], upstreams: &[Arc<Upstream>]) -> Downstreams {
        let mut by_service = HashMap::new();
        for (config, upstream) in configs.iter().zip(upstreams) {
            for service in &config.services {
                by_service
                    .entry(service.clone())
                    .or_insert_with(|| Arc::clone(upstream));
            }
        }
        Downstreams {
            by_service: Arc::new(ArcSwap::from_pointee(by_service)),
        }
    }

    /// The shared map behind these downstreams, for the gateway to replace on reload.
    pub(crate) fn map(&self) -> &DownstreamMap {
        &self.by_service
    }

    /// Builds upstreams from their configs; for handlers and tests used without a gateway.
    pub fn from_upstreams(configs: &[UpstreamConfig]) -> Downstreams {
        let upstreams: Vec<Arc<Upstream>> = configs
            .iter()
            .map(|config| Arc::new(Upstream::new(config)))
            .collect();
        Self::new(configs, &upstreams)
    }

    /// Whether some upstream serves `grpc_service`; for checking at start-up that every
    /// service the generated handlers call is configured.
    pub fn serves(&self, grpc_service: &str) -> bool {
        self.by_service.load().contains_key(grpc_service)
    }

    /// The upstream serving `grpc_service` (`demo.users.v1.UserService`).
    ///
    /// Fails with `INTERNAL` when no upstream serves it (add it to an upstream's `services` in
    /// `gateway.toml`) and `UNAVAILABLE` when that upstream has no endpoints.
    pub fn get(&self, grpc_service: &str) -> Result<Arc<Upstream>, Status> {
        let upstream = self
            .by_service
            .load()
            .get(grpc_service)
            .cloned()
            .ok_or_else(|| ComposeError::NoUpstream {
                service: grpc_service.to_owned(),
            })?;
        if upstream.balancer().endpoint_count() == 0 {
            return Err(ComposeError::NoEndpoints {
                upstream: upstream.name().to_string(),
                service: grpc_service.to_owned(),
            }
            .into());
        }
        Ok(upstream)
    }

    /// A channel to the upstream serving `grpc_service`, for a tonic client (see [`get`](Self::get)).
    pub fn channel(&self, grpc_service: &str) -> Result<DownstreamChannel, Status> {
        self.get(grpc_service)
            .map(|upstream| DownstreamChannel::new(&upstream))
    }
}

// === impl DownstreamChannel ===

impl DownstreamChannel {
    /// A channel through `upstream`'s stack.
    pub fn new(upstream: &Upstream) -> Self {
        Self {
            inner: upstream.stack(),
            upstream: Arc::clone(upstream.name()),
        }
    }
}

impl Service<Request<tonic::body::Body>> for DownstreamChannel {
    type Response = Response<ResponseBody>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Status>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        let upstream = &self.upstream;
        self.inner
            .poll_ready(cx)
            .map_err(|error| LocalError::from_stack(upstream, error).into_status())
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let upstream = Arc::clone(&self.upstream);
        let call = self.inner.call(request);
        Box::pin(async move {
            call.await
                .map_err(|error| LocalError::from_stack(&upstream, error).into_status())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::Code;

    use super::*;
    use crate::resilience::UpstreamPolicy;

    fn upstream(name: &str, endpoints: &[&str], services: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            name: name.to_owned(),
            endpoints: endpoints.iter().map(|e| e.parse().expect("uri")).collect(),
            services: services.iter().map(|&s| s.to_owned()).collect(),
            connect_timeout: Duration::from_millis(250),
            policy: UpstreamPolicy::default(),
            tls: None,
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

    #[test]
    fn services_of_one_upstream_share_it_without_network_or_runtime() {
        let downstreams = demo();
        let users = downstreams.get("demo.users.v1.UserService").expect("users");
        let faults = downstreams
            .get("demo.faults.v1.FaultService")
            .expect("faults");
        assert!(Arc::ptr_eq(&users, &faults), "one upstream, one stack");
        assert_eq!(&**users.name(), "users");
        let catalog = downstreams
            .get("demo.catalog.v1.CatalogService")
            .expect("catalog");
        assert_eq!(catalog.balancer().endpoint_count(), 2);
        assert!(downstreams.channel("demo.users.v1.UserService").is_ok());
    }

    #[test]
    fn an_unknown_service_is_a_configuration_bug() {
        let status = demo()
            .get("demo.reviews.v1.ReviewService")
            .expect_err("not configured");
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(
            status.message(),
            "no upstream in gateway.toml serves `demo.reviews.v1.ReviewService`; add it to the \
             `services` of the upstream that runs it"
        );
        assert!(!demo().serves("demo.reviews.v1.ReviewService"));
    }

    #[test]
    fn an_upstream_without_endpoints_is_unavailable() {
        let status = demo()
            .get("demo.empty.v1.EmptyService")
            .expect_err("no endpoints");
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("upstream `empty`"), "{status:?}");
    }

    #[test]
    fn the_first_upstream_listing_a_service_wins() {
        let downstreams = Downstreams::from_upstreams(&[
            upstream("a", &["http://127.0.0.1:1"], &["x.v1.S"]),
            upstream("b", &["http://127.0.0.1:2"], &["x.v1.S"]),
        ]);
        assert_eq!(&**downstreams.get("x.v1.S").expect("routed").name(), "a");
    }
}
