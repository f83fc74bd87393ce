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
//! types. Calls to methods safe to repeat are the one exception to streaming the request: a
//! small request is read whole first, so the call can be retried on another endpoint when the
//! one it went to drops it (`replay.rs` says which methods, and when).
//!
//! An `https://` upstream's TLS files are read here, once, when its stack is built
//! (`tls.rs`); its endpoints share the prepared client configuration.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use http::{HeaderValue, Request, Response, header};
use http_body_util::Full;
use tokio::time::Instant;
use tower::retry::budget::Budget;
use tower::retry::budget::TpsBudget;
use tower::{Layer, Service, ServiceExt};

use super::replay::{self, Buffered, ReplayableMethods};
use super::stats::UpstreamStats;
use super::tls;
use crate::config::UpstreamConfig;
use crate::grpc::Deadline;
use crate::grpc::headers::PREVIOUS_ATTEMPTS;
use crate::grpc::status::LocalError;
use crate::resilience::Discovery;
use crate::resilience::balance::{AvoidEndpoints, Balance, Balancer, ResponseBody};
use crate::resilience::deadline::{DeadlineLayer, DeadlineService};
use crate::resilience::endpoint::{Endpoint, EndpointAddr, EndpointTls, RequestBody};
use crate::resilience::limit::{ConcurrencyLimit, ConcurrencyLimitLayer};
use crate::resilience::policy::UpstreamPolicy;
use crate::telemetry::metrics::{ByStatus, CallerBody, Metrics, OTHER_METHOD};

/// The stack every call to an upstream goes through; cheap to clone.
pub(crate) type UpstreamStack = ConcurrencyLimit<DeadlineService<Balance>>;

/// A named downstream service with one or more endpoints and its resilience stack.
pub struct Upstream {
    name: Arc<str>,
    /// The section it was built from: a reload keeps this stack while the section is equal.
    config: UpstreamConfig,
    policy: Arc<UpstreamPolicy>,
    balancer: Arc<Balancer>,
    discovery: Arc<Discovery>,
    make_endpoint: Arc<dyn Fn(&EndpointAddr) -> Endpoint + Send + Sync>,
    limit: ConcurrencyLimitLayer,
    stack: UpstreamStack,
    budget: TpsBudget,
    /// Pass-through methods whose calls may be retried after a reset; set once the descriptor
    /// sets are known (`GatewayBuilder::bind`).
    replayable: OnceLock<ReplayableMethods>,
    /// Where calls to this upstream are recorded; `None` outside a gateway (unit tests).
    metrics: Option<Metrics>,
    /// `rpc_client_call_duration_seconds` per method the descriptors name, set with
    /// `replayable`.
    calls: OnceLock<ClientCalls>,
    /// `mosaic_compose_step_duration_seconds` per (edge method, step) of the composed calls
    /// that call this upstream, made on a step's first call (see [`Upstream::step_calls`]).
    steps: RwLock<HashMap<(usize, usize), Arc<ByStatus>>>,
    stats: UpstreamStats,
    /// Why the upstream's TLS files did not load; such an upstream has no endpoints.
    tls_problem: Option<String>,
}

/// The client-side call histograms of one upstream, by method (`pkg.Svc/Method`).
struct ClientCalls {
    by_method: HashMap<Box<str>, Arc<ByStatus>>,
    other: Arc<ByStatus>,
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
    ///
    /// The TLS files of an `https://` upstream are read now. When they do not load, the
    /// upstream gets no endpoints, so nothing is ever sent to it unverified or in plain text,
    /// and [`tls_problem`](Self::tls_problem) says why: a gateway refuses to start (or a
    /// reload to apply) with such an upstream.
    pub fn new(config: &UpstreamConfig) -> Self {
        Self::build(config, None)
    }

    /// [`new`](Self::new), recording its calls, attempts and endpoints into `metrics`.
    pub(crate) fn instrumented(config: &UpstreamConfig, metrics: &Metrics) -> Self {
        Self::build(config, Some(metrics.clone()))
    }

    fn build(config: &UpstreamConfig, metrics: Option<Metrics>) -> Self {
        let name: Arc<str> = config.name.as_str().into();
        let policy = Arc::new(config.policy.clone());
        let (tls, tls_problem): (Option<Arc<EndpointTls>>, _) = match &config.tls {
            None => (None, None),
            Some(settings) => match tls::endpoint_tls(settings) {
                Ok(tls) => (Some(Arc::new(tls)), None),
                Err(problem) => (None, Some(problem)),
            },
        };
        let authorities: Vec<_> = if tls_problem.is_some() {
            Vec::new()
        } else {
            config
                .endpoints
                .iter()
                .filter_map(|uri| uri.authority().cloned())
                .collect()
        };
        let (discovery, initial) = Discovery::new(&authorities, policy.dns_refresh);
        let make_endpoint: Arc<dyn Fn(&EndpointAddr) -> Endpoint + Send + Sync> = {
            let policy = Arc::clone(&policy);
            let connect_timeout = config.connect_timeout;
            let metrics = metrics.clone();
            let upstream = Arc::clone(&name);
            Arc::new(move |addr: &EndpointAddr| {
                let endpoint = Endpoint::new(
                    addr.clone(),
                    policy.connections_per_endpoint,
                    connect_timeout,
                    &policy.breaker,
                );
                let endpoint = match &tls {
                    Some(tls) => endpoint.with_tls(Arc::clone(tls)),
                    None => endpoint,
                };
                match &metrics {
                    Some(metrics) => {
                        endpoint.with_attempts(metrics.endpoint_attempts(&upstream, &addr.connect))
                    }
                    None => endpoint,
                }
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
            policy.budget.ratio,
        );
        Self {
            name,
            config: config.clone(),
            policy,
            balancer,
            discovery: Arc::new(discovery),
            make_endpoint,
            limit,
            stack,
            budget,
            replayable: OnceLock::new(),
            metrics,
            calls: OnceLock::new(),
            steps: RwLock::default(),
            stats: UpstreamStats::default(),
            tls_problem,
        }
    }

    /// Why the upstream's TLS files (`[upstreams.NAME.tls]`) did not load, naming the file;
    /// `None` when they did, or it has none.
    pub fn tls_problem(&self) -> Option<&str> {
        self.tls_problem.as_deref()
    }

    /// Decides, from the descriptor sets the gateway serves and this upstream's policy, which
    /// pass-through methods may be retried after a reset (see `replay.rs`). Only the first call
    /// counts: the set never changes while serving.
    pub(crate) fn learn_methods(
        &self,
        sets: &[prost_types::FileDescriptorSet],
        services: &[String],
    ) {
        let methods = replay::replayable_methods(sets, services, &self.policy);
        if !methods.is_empty() {
            tracing::debug!(upstream = %self.name, methods = methods.len(), "pass-through methods retried after resets");
        }
        let _ = self.replayable.set(methods);
        if let Some(metrics) = &self.metrics {
            let by_method =
                crate::grpc::method_paths(sets, |name| services.iter().any(|s| s == name))
                    .into_iter()
                    .map(|path| {
                        let method = path.trim_start_matches('/');
                        let calls = metrics.client_method(&self.name, method);
                        (method.into(), Arc::new(calls))
                    })
                    .collect();
            let other = Arc::new(metrics.client_method(&self.name, OTHER_METHOD));
            let _ = self.calls.set(ClientCalls { by_method, other });
        }
    }

    /// Where a call to `method` (`pkg.Svc/Method`, or the path `/pkg.Svc/Method`) is
    /// recorded, once the gateway is bound.
    pub(crate) fn client_calls(&self, method: &str) -> Option<&Arc<ByStatus>> {
        let calls = self.calls.get()?;
        let method = method.strip_prefix('/').unwrap_or(method);
        Some(calls.by_method.get(method).unwrap_or(&calls.other))
    }

    /// Where the call step `step` of edge method `method` is recorded.
    ///
    /// Generated code names its steps with string constants but holds no metric handles, so
    /// the handle is found here: one read-locked lookup keyed by the two constants' addresses
    /// (no hashing of the text, no formatting), the handle made on the step's first call.
    pub(crate) fn step_calls(
        &self,
        method: &'static str,
        step: &'static str,
    ) -> Option<Arc<ByStatus>> {
        let metrics = self.metrics.as_ref()?;
        let key = (method.as_ptr() as usize, step.as_ptr() as usize);
        if let Some(found) = self
            .steps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Some(Arc::clone(found));
        }
        let mut steps = self.steps.write().unwrap_or_else(PoisonError::into_inner);
        let made = steps
            .entry(key)
            .or_insert_with(|| Arc::new(metrics.step(method, step)));
        Some(Arc::clone(made))
    }

    /// What this upstream counted (retries, hedges, budget refusals).
    pub(crate) fn stats(&self) -> &UpstreamStats {
        &self.stats
    }

    /// The upstream's concurrency limit.
    pub(crate) fn limit(&self) -> &ConcurrencyLimitLayer {
        &self.limit
    }

    /// The upstream's name from `gateway.toml`.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The `gateway.toml` section it was built from.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
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
    pub(crate) fn stack(&self) -> UpstreamStack {
        if self.discovery.pending() {
            self.discovery
                .start_once(&self.balancer, Arc::clone(&self.make_endpoint));
        }
        self.stack.clone()
    }

    /// Forwards one call unchanged and returns the upstream's response head and streaming body.
    pub(crate) async fn forward(
        &self,
        mut request: Request<CallerBody>,
    ) -> Result<Response<ResponseBody>, LocalError> {
        let headers = request.headers_mut();
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
        // HTTP/1 callers name the host in `Host`; HTTP/2 carries it as `:authority`.
        headers.remove(header::HOST);
        let replayable = self
            .replayable
            .get()
            .is_some_and(|methods| !methods.is_empty() && methods.contains(request.uri().path()));
        if replayable {
            return self.forward_replayable(request).await;
        }
        self.send(request.map(RequestBody::new)).await
    }

    /// One attempt through the stack.
    async fn send(
        &self,
        request: Request<RequestBody>,
    ) -> Result<Response<ResponseBody>, LocalError> {
        let mut service = self.stack();
        let ready = service.ready().await;
        let result = match ready {
            Ok(service) => service.call(request).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| LocalError::from_stack(&self.name, error))
    }

    /// Forwards a call to a replayable method: reads the request whole (within the limit) and
    /// retries it on another endpoint when an attempt fails before answering (`replay.rs`).
    async fn forward_replayable(
        &self,
        request: Request<CallerBody>,
    ) -> Result<Response<ResponseBody>, LocalError> {
        let (mut parts, body) = request.into_parts();
        // The deadline is fixed before reading the body: reading and every attempt share it
        // (the deadline layer keeps a `Deadline` it finds).
        let deadline = Deadline::from_headers(&parts.headers);
        if let Some(deadline) = deadline {
            parts.extensions.insert(deadline);
        }
        let reading = replay::buffer(body, self.policy.max_replay_bytes);
        let buffered = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline.at, reading).await {
                Ok(read) => read,
                Err(_elapsed) => {
                    return Err(LocalError::UpstreamDeadline {
                        upstream: self.name.to_string(),
                        timeout: deadline.timeout,
                    });
                }
            },
            None => reading.await,
        }
        .map_err(|error| LocalError::RequestBroken { source: error })?;
        let message = match buffered {
            Buffered::Whole(message) => message,
            Buffered::Partial(body) => {
                return self
                    .send(Request::from_parts(parts, RequestBody::new(body)))
                    .await;
            }
        };

        self.budget.deposit();
        let max_attempts = self
            .policy
            .methods
            .get(parts.uri.path().trim_start_matches('/'))
            .and_then(|method| method.retry.as_ref())
            .unwrap_or(&self.policy.retry)
            .max_attempts;
        let (method, uri, version, headers) = (
            parts.method.clone(),
            parts.uri.clone(),
            parts.version,
            parts.headers.clone(),
        );
        let mut request = Request::from_parts(parts, RequestBody::new(Full::new(message.clone())));
        let mut avoid = AvoidEndpoints::default();
        let mut attempt: u32 = 1;
        loop {
            let error = match self.send(request).await {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            // Only a transport failure before any answer (a reset, a refused stream, a lost
            // connection) is retried: nothing of the response has reached the caller yet.
            let LocalError::UpstreamFailed {
                endpoint: Some(endpoint),
                ..
            } = &error
            else {
                return Err(error);
            };
            let time_left = deadline.is_none_or(|deadline| Instant::now() < deadline.at);
            if attempt >= max_attempts || !time_left || !self.balancer.has_ready_endpoint() {
                return Err(error);
            }
            if !self.budget.withdraw() {
                UpstreamStats::count(&self.stats.budget_exhausted);
                return Err(error);
            }
            UpstreamStats::count(&self.stats.retries);
            tracing::debug!(upstream = %self.name, %endpoint, %error, attempt = attempt + 1, "retrying a pass-through call after a transport failure");
            avoid.0.push(endpoint.clone());
            let mut retry = Request::new(RequestBody::new(Full::new(message.clone())));
            *retry.method_mut() = method.clone();
            *retry.uri_mut() = uri.clone();
            *retry.version_mut() = version;
            *retry.headers_mut() = headers.clone();
            retry
                .headers_mut()
                .insert(PREVIOUS_ATTEMPTS, HeaderValue::from(attempt));
            if let Some(deadline) = deadline {
                retry.extensions_mut().insert(deadline);
            }
            retry.extensions_mut().insert(avoid.clone());
            request = retry;
            attempt += 1;
        }
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
