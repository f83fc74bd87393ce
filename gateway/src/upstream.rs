//! Upstreams: the downstream services a gateway calls, each behind its resilience stack.
//!
//! An [`Upstream`] is built once at start from its `gateway.toml` section and shared by every
//! call to it: the typed calls of generated handlers ([`Upstream::service`], through
//! `compose::Downstreams`) and the raw pass-through calls ([`Upstream::forward`]). Both go
//! through the same stack (`resilience/mod.rs` draws it), so one limit, one set of breakers and
//! one retry budget cover all traffic to the upstream.
//!
//! A pass-through call is forwarded as raw HTTP/2: headers, message frames and trailers go
//! through as they are, and the messages are never decoded. That keeps the sidecar path lean
//! and makes it correct for any method, streaming of any kind included, without knowing its
//! types.

use std::sync::Arc;

use http::{Request, Response, header};
use hyper::body::Incoming;
use tower::retry::budget::TpsBudget;
use tower::{Layer, Service, ServiceExt};

use crate::config::UpstreamConfig;
use crate::resilience::Discovery;
use crate::resilience::balance::{Balance, Balancer, ResponseBody};
use crate::resilience::deadline::{DeadlineLayer, DeadlineService};
use crate::resilience::endpoint::{Endpoint, EndpointAddr, RequestBody};
use crate::resilience::limit::{ConcurrencyLimit, ConcurrencyLimitLayer};
use crate::resilience::policy::UpstreamPolicy;
use crate::status::LocalError;

/// The stack every call to an upstream goes through; cheap to clone.
pub type UpstreamService = ConcurrencyLimit<DeadlineService<Balance>>;

/// A named downstream service with one or more endpoints and its resilience stack.
pub struct Upstream {
    name: Arc<str>,
    policy: Arc<UpstreamPolicy>,
    balancer: Arc<Balancer>,
    discovery: Arc<Discovery>,
    make_endpoint: Arc<dyn Fn(&EndpointAddr) -> Endpoint + Send + Sync>,
    limit: ConcurrencyLimitLayer,
    stack: UpstreamService,
    budget: TpsBudget,
}

/// Headers that describe one HTTP/1 connection rather than the request; never forwarded.
const HOP_BY_HOP: [header::HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

// === impl Upstream ===

impl Upstream {
    /// Builds the stack of an upstream. Connections are opened lazily, on the first call, so a
    /// gateway starts even while its upstreams are still coming up, and no runtime is needed.
    pub fn new(config: &UpstreamConfig) -> Self {
        let name: Arc<str> = config.name.as_str().into();
        let policy = Arc::new(config.policy.clone());
        let authorities: Vec<_> = config
            .endpoints
            .iter()
            .filter_map(|uri| uri.authority().cloned())
            .collect();
        let (discovery, initial) = Discovery::new(&authorities, policy.dns_refresh);
        let make_endpoint: Arc<dyn Fn(&EndpointAddr) -> Endpoint + Send + Sync> = {
            let policy = Arc::clone(&policy);
            let connect_timeout = config.connect_timeout;
            Arc::new(move |addr: &EndpointAddr| {
                Endpoint::new(
                    addr.clone(),
                    policy.connections_per_endpoint,
                    connect_timeout,
                    &policy.breaker,
                )
            })
        };
        let endpoints = initial.iter().map(|addr| make_endpoint(addr)).collect();
        let balancer = Arc::new(Balancer::new(
            Arc::clone(&name),
            Arc::clone(&policy),
            endpoints,
        ));
        let limit = ConcurrencyLimitLayer::new(policy.max_concurrent, Arc::clone(&name));
        let stack = limit.layer(
            DeadlineLayer::new(Arc::clone(&name)).layer(Balance::new(Arc::clone(&balancer))),
        );
        // The policy is validated (ttl 1–60 s, percent 0–1000), so TpsBudget's asserts hold.
        let budget = TpsBudget::new(
            policy.budget.ttl,
            policy.budget.min_per_second,
            policy.budget.percent,
        );
        Self {
            name,
            policy,
            balancer,
            discovery: Arc::new(discovery),
            make_endpoint,
            limit,
            stack,
            budget,
        }
    }

    /// The upstream's name from `gateway.toml`.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Its resilience policy.
    pub fn policy(&self) -> &UpstreamPolicy {
        &self.policy
    }

    /// The retry budget shared by every typed call to this upstream.
    pub fn budget(&self) -> &TpsBudget {
        &self.budget
    }

    /// The balancer, for readiness checks (retries never go to an upstream with no ready
    /// endpoint).
    pub fn balancer(&self) -> &Arc<Balancer> {
        &self.balancer
    }

    /// Calls admitted by the concurrency limit and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.limit.in_flight()
    }

    /// A clone of the upstream's stack, for one call. Starts endpoint discovery the first time
    /// it is asked for from inside a runtime.
    pub fn service(&self) -> UpstreamService {
        if self.discovery.pending() {
            self.discovery
                .start_once(&self.balancer, Arc::clone(&self.make_endpoint));
        }
        self.stack.clone()
    }

    /// Forwards one call unchanged and returns the upstream's response head and streaming body.
    pub(crate) async fn forward(
        &self,
        mut request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, LocalError> {
        let headers = request.headers_mut();
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
        // HTTP/1 callers name the host in `Host`; HTTP/2 carries it as `:authority`.
        headers.remove(header::HOST);
        let request: Request<RequestBody> = request.map(RequestBody::new);
        let mut service = self.service();
        let ready = service.ready().await;
        let result = match ready {
            Ok(service) => service.call(request).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| LocalError::from_stack(&self.name, error))
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("endpoints", &self.balancer.endpoints().len())
            .finish_non_exhaustive()
    }
}
