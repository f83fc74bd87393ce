//! What the gateway serves under one configuration, assembled whole and swapped in whole.
//!
//! A [`Snapshot`] holds everything a configuration decides: the routing table, the upstreams
//! with their stacks, what health watches, the route owners for `/routes`. It is built from a
//! validated `GatewayConfig` and the [`Base`] (what code registered and no file can change: the
//! hosted services, what composers call, descriptor sets given in code, the metric families,
//! the access log), then published with one atomic store, so a call sees either the old
//! snapshot or the new one, never a mix.
//!
//! Upstreams are carried over: one whose `gateway.toml` section is unchanged keeps its very
//! stack (connections, breakers, load estimates, retry budget) in the new snapshot; a changed
//! or new one gets a fresh stack. Calls in flight on a replaced stack finish on it (they hold
//! it), and its connections close when the last of them is done.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::access::Access;

use arc_swap::ArcSwap;
use prost::Message;
use prost_types::FileDescriptorSet;
use tower::util::BoxCloneSyncService;

use super::access_log::AccessLog;
use super::error::GatewayError;
use super::router::{LocalService, Route, Router};
use crate::client::{DownstreamMap, Upstream};
use crate::config::{GatewayConfig, UpstreamConfig};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::trace::Tracing;
use crate::transcode::connect::ConnectMethods;
use crate::transcode::{HttpRoutes, edge_pool};

/// The health service's name: routed like any other service, never watched.
pub(super) const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// One routed service and what its health depends on (`health.rs` says the rule).
pub(crate) struct Watched {
    pub(crate) service: String,
    /// The upstreams that must take calls for it to be serving (none: always serving).
    pub(crate) upstreams: Vec<Arc<Upstream>>,
}

/// What stays the same across reloads.
pub(super) struct Base {
    /// Services hosted in process (composers, hand-written services).
    pub(super) local: Vec<(&'static str, LocalService)>,
    /// Services composers call: a configuration must route each.
    pub(super) required: Vec<&'static str>,
    /// Composed services and the downstream services each calls, for health.
    pub(super) composed: Vec<(&'static str, &'static [&'static str])>,
    /// Descriptor sets registered in code.
    pub(super) descriptor_sets: Vec<FileDescriptorSet>,
    /// The same, encoded, options kept (by origin).
    pub(super) encoded_sets: Vec<(String, bytes::Bytes)>,
    /// `grpc.health.v1.Health`, sharing its state with the gateway's reporter.
    pub(super) health: LocalService,
    /// The metric families upstreams record into (`None` with `[metrics] enabled = false`).
    pub(super) metrics: Option<Metrics>,
    /// What the router records each call into: `metrics`, or families registered nowhere
    /// when metrics are off but the access log or tracing need each call's record.
    pub(super) recording: Option<Metrics>,
    pub(super) access_log: Option<Arc<AccessLog>>,
    pub(super) tracing: Option<Arc<Tracing>>,
    /// Shared with every `Downstreams` handed to a composer.
    pub(super) downstreams: DownstreamMap,
}

/// What the gateway serves under one configuration.
pub(crate) struct Snapshot {
    /// 1 for the configuration the gateway started with, then one more per reload applied.
    pub(crate) generation: u64,
    pub(crate) config: GatewayConfig,
    pub(crate) router: Arc<Router>,
    /// In configuration (name) order, each with the generation that built its stack.
    pub(crate) upstreams: Vec<(Arc<Upstream>, u64)>,
    pub(crate) watched: Vec<Watched>,
    /// gRPC service → who serves it.
    pub(crate) routes: BTreeMap<String, String>,
    /// The downstream map the composers get once the snapshot is published.
    downstreams: HashMap<String, Arc<Upstream>>,
}

/// How a reload changed the upstreams.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct UpstreamChanges {
    /// Unchanged: their stacks (breakers, connections, load) carried over.
    pub(crate) kept: Vec<String>,
    /// Changed settings: new stacks; calls in flight finish on the old ones.
    pub(crate) replaced: Vec<String>,
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Base {
    /// Builds the snapshot for `config`, reusing the upstreams of `previous` whose settings are
    /// unchanged. Nothing is published: see [`Base::publish`].
    pub(super) fn assemble(
        &self,
        config: GatewayConfig,
        generation: u64,
        previous: &[(Arc<Upstream>, u64)],
        access: Option<Arc<Access>>,
    ) -> Result<(Snapshot, UpstreamChanges), GatewayError> {
        if let Some(service) = self
            .required
            .iter()
            .find(|service| config.upstream_for(service).is_none())
        {
            return Err(GatewayError::MissingUpstream {
                service: (*service).to_owned(),
            });
        }
        let mut descriptor_sets = self.descriptor_sets.clone();
        let mut encoded_sets = self.encoded_sets.clone();
        for path in &config.descriptor_sets {
            let encoded = std::fs::read(path).map_err(|err| GatewayError::DescriptorSet {
                origin: path.display().to_string(),
                reason: err.to_string(),
            })?;
            let set = FileDescriptorSet::decode(encoded.as_slice()).map_err(|err| {
                GatewayError::DescriptorSet {
                    origin: path.display().to_string(),
                    reason: err.to_string(),
                }
            })?;
            descriptor_sets.push(set);
            encoded_sets.push((path.display().to_string(), encoded.into()));
        }

        let mut changes = UpstreamChanges::default();
        let mut upstreams = Vec::with_capacity(config.upstreams.len());
        for upstream_config in &config.upstreams {
            let same_name = previous
                .iter()
                .find(|(old, _)| old.config().name == upstream_config.name);
            let upstream = match same_name {
                Some((old, built)) if old.config() == upstream_config => {
                    changes.kept.push(upstream_config.name.clone());
                    (Arc::clone(old), *built)
                }
                found => {
                    let list = if found.is_some() {
                        &mut changes.replaced
                    } else {
                        &mut changes.added
                    };
                    list.push(upstream_config.name.clone());
                    (self.build_upstream(upstream_config), generation)
                }
            };
            // Built here or by the builder the gateway started from: either way, an upstream
            // whose TLS files did not load is never served.
            if let Some(reason) = upstream.0.tls_problem() {
                return Err(GatewayError::UpstreamTls {
                    upstream: upstream_config.name.clone(),
                    reason: reason.to_owned(),
                });
            }
            // Only an upstream's first lesson counts: one carried over keeps what it learnt
            // (the stacks a gateway starts with learn here, at their first assembly).
            upstream
                .0
                .learn_methods(&descriptor_sets, &upstream_config.services);
            upstreams.push(upstream);
        }
        changes.removed = previous
            .iter()
            .map(|(old, _)| old.config().name.clone())
            .filter(|name| !config.upstreams.iter().any(|u| &u.name == name))
            .collect();

        let mut claims = RouteClaims::default();
        for (name, service) in &self.local {
            claims.claim(
                name,
                "a service hosted in the gateway",
                Route::Local(service.clone()),
            )?;
        }
        let mut downstreams = HashMap::new();
        for (upstream, _) in &upstreams {
            let owner = format!("upstream `{}`", upstream.name());
            for service in &upstream.config().services {
                claims.claim(service, &owner, Route::Upstream(Arc::clone(upstream)))?;
                downstreams
                    .entry(service.clone())
                    .or_insert_with(|| Arc::clone(upstream));
            }
        }
        claims.claim(
            HEALTH_SERVICE,
            "the health service",
            Route::Local(self.health.clone()),
        )?;
        let mut served: Vec<String> = claims.owners.keys().cloned().collect();
        served.sort_unstable();
        let (v1, v1alpha) = reflection_services(&descriptor_sets, &served)?;
        claims.claim(
            "grpc.reflection.v1.ServerReflection",
            "the reflection service",
            Route::Local(v1),
        )?;
        claims.claim(
            "grpc.reflection.v1alpha.ServerReflection",
            "the reflection service",
            Route::Local(v1alpha),
        )?;

        let mut router = claims.router;
        router.limit_requests_to(config.http.max_request_bytes);
        router.limit_messages_to(config.listener.limits.max_message_bytes);
        if let Some(cors) = &config.http.cors {
            router.cors_by(cors.clone());
        }
        let sets = encoded_sets
            .iter()
            .map(|(origin, encoded)| (origin.as_str(), encoded.as_ref()));
        let pool = edge_pool(sets)
            .map_err(|(origin, reason)| GatewayError::DescriptorSet { origin, reason })?;
        let served_methods = pool
            .services()
            .filter(|service| claims.owners.contains_key(service.full_name()))
            .flat_map(|service| service.methods().collect::<Vec<_>>());
        router.connect_with(ConnectMethods::new(served_methods));
        if config.http.enabled {
            let routes = HttpRoutes::build(
                &pool,
                |service| claims.owners.contains_key(service),
                &config.http,
            )
            .map_err(|problems| GatewayError::HttpRoutes { problems })?;
            if !routes.is_empty() {
                router.transcode_with(Arc::new(routes));
            }
        }
        if let Some(metrics) = &self.recording {
            let methods = crate::grpc::method_paths(&descriptor_sets, |service| {
                claims.owners.contains_key(service)
            });
            router.record_into(metrics, &methods);
        }
        if let Some(log) = &self.access_log {
            router.log_to(Arc::clone(log));
        }
        if let Some(tracing) = &self.tracing {
            router.trace_with(Arc::clone(tracing));
        }
        let served = |service: &str| claims.owners.contains_key(service);
        match access {
            Some(access) => router.guard_with(access.with_rules_of(&pool, served)),
            None => {
                let declared = crate::access::declared_rules(&pool, served);
                if !declared.is_empty() {
                    tracing::warn!(
                        rules = ?declared,
                        "the edge protos declare access rules, but gateway.toml has no [auth]: \
                         every method is open to anyone"
                    );
                }
            }
        }
        let watched = self.watched(&router, &downstreams);
        let snapshot = Snapshot {
            generation,
            config,
            router: Arc::new(router),
            upstreams,
            watched,
            routes: claims.owners.into_iter().collect(),
            downstreams,
        };
        Ok((snapshot, changes))
    }

    /// Publishes the first snapshot, as the gateway's current one.
    pub(super) fn publish_first(&self, snapshot: Snapshot) -> ArcSwap<Snapshot> {
        self.downstreams
            .store(Arc::new(snapshot.downstreams.clone()));
        ArcSwap::from_pointee(snapshot)
    }

    /// Publishes `snapshot`: new calls, composed ones included, go by it from now on.
    pub(super) fn publish(&self, current: &ArcSwap<Snapshot>, snapshot: Snapshot) {
        self.downstreams
            .store(Arc::new(snapshot.downstreams.clone()));
        current.store(Arc::new(snapshot));
    }

    fn build_upstream(&self, config: &UpstreamConfig) -> Arc<Upstream> {
        Arc::new(match &self.metrics {
            Some(metrics) => Upstream::instrumented(config, metrics),
            None => Upstream::new(config),
        })
    }

    /// What each routed service's health depends on (`health.rs`).
    fn watched(
        &self,
        router: &Router,
        downstreams: &HashMap<String, Arc<Upstream>>,
    ) -> Vec<Watched> {
        router
            .services()
            .into_iter()
            .map(|service| {
                let needed: Vec<&Arc<Upstream>> =
                    match self.composed.iter().find(|(name, _)| *name == service) {
                        Some((_, calls)) => {
                            calls.iter().filter_map(|s| downstreams.get(*s)).collect()
                        }
                        None => downstreams.get(service).into_iter().collect(),
                    };
                let mut upstreams: Vec<Arc<Upstream>> = Vec::with_capacity(needed.len());
                for upstream in needed {
                    if !upstreams.iter().any(|u| Arc::ptr_eq(u, upstream)) {
                        upstreams.push(Arc::clone(upstream));
                    }
                }
                Watched {
                    service: service.to_owned(),
                    upstreams,
                }
            })
            .collect()
    }
}

/// The routing table under construction, remembering who claimed each service so that a
/// double claim is reported with both owners.
#[derive(Default)]
struct RouteClaims {
    router: Router,
    owners: HashMap<String, String>,
}

impl RouteClaims {
    fn claim(&mut self, service: &str, owner: &str, route: Route) -> Result<(), GatewayError> {
        if let Some(first) = self.owners.insert(service.to_owned(), owner.to_owned()) {
            return Err(GatewayError::DuplicateService {
                service: service.to_owned(),
                first,
                second: owner.to_owned(),
            });
        }
        self.router.insert(service, route);
        Ok(())
    }
}

/// Builds reflection (v1 and v1alpha: many clients, grpcio among them, speak only v1alpha) that
/// lists exactly the services routed, and warns about routed services no descriptor describes.
fn reflection_services(
    descriptor_sets: &[FileDescriptorSet],
    served: &[String],
) -> Result<(LocalService, LocalService), GatewayError> {
    let described: BTreeSet<String> = descriptor_sets
        .iter()
        .flat_map(|set| &set.file)
        .flat_map(|file| {
            file.service
                .iter()
                .map(move |service| crate::grpc::service_name(file, service))
        })
        .collect();

    let health_set =
        FileDescriptorSet::decode(tonic_health::pb::FILE_DESCRIPTOR_SET).map_err(|err| {
            GatewayError::DescriptorSet {
                origin: "grpc.health.v1".into(),
                reason: err.to_string(),
            }
        })?;
    let build = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_file_descriptor_set(health_set.clone());
        for set in descriptor_sets {
            builder = builder.register_file_descriptor_set(set.clone());
        }
        for service in served {
            builder = builder.with_service_name(service.clone());
        }
        builder
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection")
    };
    for service in served {
        if service != HEALTH_SERVICE && !described.contains(service) {
            tracing::warn!(
                service,
                "no descriptor set describes this service; reflection lists it but cannot describe it"
            );
        }
    }
    Ok((
        BoxCloneSyncService::new(build().build_v1()?),
        BoxCloneSyncService::new(build().build_v1alpha()?),
    ))
}
