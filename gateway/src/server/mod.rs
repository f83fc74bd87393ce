//! Assembling and running a gateway.
//!
//! [`GatewayBuilder`] takes the validated configuration, the services hosted in process and the
//! descriptor sets that describe everything served; [`GatewayBuilder::bind`] checks that they fit
//! together, builds the routing table once and binds the sockets. [`Gateway`] then serves until a
//! shutdown signal and drains in-flight calls.
//!
//! One listener speaks HTTP/2 (h2c, prior knowledge) and HTTP/1.1 on the same port: the protocol
//! is detected from the connection preface. gRPC needs HTTP/2; HTTP/1.1 is accepted so that
//! browsers and curl reach the gateway (gRPC-Web and HTTP/JSON routes build on it).

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use prost::Message;
use prost_types::FileDescriptorSet;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic_health::server::HealthReporter;
use tower::Service;
use tower::util::BoxCloneSyncService;

mod access_log;
mod admin;
mod body;
mod collector;
mod health;
mod listener;
mod record;
mod router;

use self::router::{LocalService, Route, Router};
use crate::client::Upstream;
use crate::config::GatewayConfig;
use crate::telemetry::metrics::Metrics;
use prometheus_client::registry::Registry;

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Why a gateway could not be assembled or started.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A socket could not be bound.
    #[error("cannot listen on {address} ({role}): {source}")]
    Bind {
        /// `listener` or `admin`.
        role: &'static str,
        /// The address from the configuration.
        address: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A descriptor set could not be read or decoded.
    #[error("cannot load descriptor set {origin}: {reason}")]
    DescriptorSet {
        /// File path, or the name given by the caller.
        origin: String,
        /// What went wrong.
        reason: String,
    },
    /// Two routes claim the same gRPC service.
    #[error("gRPC service `{service}` is routed twice: {first} and {second}")]
    DuplicateService {
        /// The service name.
        service: String,
        /// The route registered first.
        first: String,
        /// The route registered second.
        second: String,
    },
    /// A hosted service calls a downstream service that no upstream serves.
    #[error(
        "the composed services call `{service}`, but no upstream in gateway.toml serves it; \
         add it to the `services` of the upstream that runs it"
    )]
    MissingUpstream {
        /// The downstream gRPC service.
        service: String,
    },
    /// The access log's file could not be opened.
    #[error("cannot open the access log {target}: {source}")]
    AccessLog {
        /// Where the log was to go.
        target: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptor sets.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Collects what a gateway serves before it binds.
pub struct GatewayBuilder {
    config: GatewayConfig,
    descriptor_sets: Vec<FileDescriptorSet>,
    local: Vec<(&'static str, LocalService)>,
    required: Vec<&'static str>,
    /// Composed services and the downstream services each calls, for health.
    composed: Vec<(&'static str, &'static [&'static str])>,
    /// Built once, shared by pass-through routes and the handlers' downstream calls.
    upstreams: Vec<Arc<Upstream>>,
    /// Every metric family, served at the admin listener's `/metrics`.
    registry: Registry,
    /// `None` when `[metrics] enabled = false`.
    metrics: Option<Metrics>,
}

/// A gateway with its sockets bound, ready to serve.
pub struct Gateway {
    router: Arc<Router>,
    /// The access log's writer, which ends once the router (and its sender) is gone.
    access_log_task: Option<JoinHandle<()>>,
    admin_state: Arc<admin::AdminState>,
    health: HealthReporter,
    /// What each routed service's health depends on (`health.rs`).
    watched: Vec<health::Watched>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    drain_timeout: Duration,
}

/// A gateway serving in a background task; shut it down with [`GatewayHandle::shutdown`].
#[derive(Debug)]
pub struct GatewayHandle {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

// === impl GatewayBuilder ===

impl GatewayBuilder {
    /// Starts from a validated configuration.
    pub fn new(config: GatewayConfig) -> Self {
        let mut registry = Registry::default();
        let metrics = config
            .metrics
            .enabled
            .then(|| Metrics::register(&mut registry));
        let upstreams = config
            .upstreams
            .iter()
            .map(|upstream| match &metrics {
                Some(metrics) => Arc::new(Upstream::instrumented(upstream, metrics)),
                None => Arc::new(Upstream::new(upstream)),
            })
            .collect();
        Self {
            config,
            descriptor_sets: Vec::new(),
            local: Vec::new(),
            required: Vec::new(),
            composed: Vec::new(),
            upstreams,
            registry,
            metrics,
        }
    }

    /// Registers an encoded `google.protobuf.FileDescriptorSet` so reflection can describe the
    /// services, pass-through ones included, whose files it contains.
    pub fn descriptor_set(mut self, origin: &str, encoded: &[u8]) -> Result<Self, GatewayError> {
        let set =
            FileDescriptorSet::decode(encoded).map_err(|err| GatewayError::DescriptorSet {
                origin: origin.to_owned(),
                reason: err.to_string(),
            })?;
        self.descriptor_sets.push(set);
        Ok(self)
    }

    /// The configured upstreams by service name, for generated composition services. They
    /// share each upstream's stack (limit, breakers, budget) with the pass-through routes.
    pub fn downstreams(&self) -> crate::compose::Downstreams {
        crate::compose::Downstreams::new(&self.config.upstreams, &self.upstreams)
    }

    /// The upstreams, built from `gateway.toml`, in name order.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Hosts a composer generated by `mosaic-codegen`: its edge service is served, and
    /// [`bind`](Self::bind) fails unless `gateway.toml` routes every downstream service it
    /// calls, so a missing upstream is found at start rather than on the first call.
    pub fn composer<C: crate::compose::Composer>(mut self, composer: C) -> Self {
        self.required.extend_from_slice(C::DOWNSTREAM_SERVICES);
        self.composed
            .push((<C::Server as NamedService>::NAME, C::DOWNSTREAM_SERVICES));
        self.grpc_service(composer.into_server())
    }

    /// Hosts a tonic service (any `NamedService`: a hand-written service, a generated tonic
    /// server) in the gateway. Generated composers go through [`composer`](Self::composer).
    pub fn grpc_service<S>(mut self, service: S) -> Self
    where
        S: NamedService
            + Service<
                Request<tonic::body::Body>,
                Response = Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.local
            .push((S::NAME, BoxCloneSyncService::new(service)));
        self
    }

    /// Checks that everything fits together, builds the routing table and binds the sockets.
    pub async fn bind(mut self) -> Result<Gateway, GatewayError> {
        if let Some(service) = self
            .required
            .iter()
            .find(|service| self.config.upstream_for(service).is_none())
        {
            return Err(GatewayError::MissingUpstream {
                service: (*service).to_owned(),
            });
        }
        for path in std::mem::take(&mut self.config.descriptor_sets) {
            let encoded = read_descriptor_set(&path)?;
            self = self.descriptor_set(&path.display().to_string(), &encoded)?;
        }

        for (config, upstream) in self.config.upstreams.iter().zip(&self.upstreams) {
            upstream.learn_methods(&self.descriptor_sets, &config.services);
        }

        let mut routes = RouteClaims::default();
        for (name, service) in self.local {
            routes.claim(
                name,
                "a service hosted in the gateway",
                Route::Local(service),
            )?;
        }
        for (config, upstream) in self.config.upstreams.iter().zip(&self.upstreams) {
            let owner = format!("upstream `{}`", config.name);
            for service in &config.services {
                routes.claim(service, &owner, Route::Upstream(Arc::clone(upstream)))?;
            }
        }

        let (health, health_service) = tonic_health::server::health_reporter();
        routes.claim(
            HEALTH_SERVICE,
            "the health service",
            Route::Local(BoxCloneSyncService::new(health_service)),
        )?;

        let served: Vec<String> = routes
            .router
            .services()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let (v1, v1alpha) = reflection_services(&self.descriptor_sets, &served)?;
        routes.claim(
            "grpc.reflection.v1.ServerReflection",
            "the reflection service",
            Route::Local(v1),
        )?;
        routes.claim(
            "grpc.reflection.v1alpha.ServerReflection",
            "the reflection service",
            Route::Local(v1alpha),
        )?;
        let mut router = routes.router;
        let served_methods = crate::grpc::method_paths(&self.descriptor_sets, |service| {
            routes.owners.contains_key(service)
        });
        let mut access_log_task = None;
        if let (Some(config), Some(_)) = (&self.config.access_log, &self.metrics) {
            let (log, task) = access_log::AccessLog::start(config)
                .await
                .map_err(|source| GatewayError::AccessLog {
                    target: format!("{:?}", config.target),
                    source,
                })?;
            router.log_to(Arc::clone(&log));
            self.registry
                .register_collector(Box::new(collector::AccessLogCollector { log }));
            access_log_task = Some(task);
        }
        if let Some(metrics) = &self.metrics {
            router.record_into(metrics, &served_methods);
            self.registry
                .register_collector(Box::new(collector::UpstreamCollector {
                    upstreams: self.upstreams.clone(),
                }));
        }

        let upstream_of = |service: &str| {
            self.config
                .upstreams
                .iter()
                .position(|config| config.services.iter().any(|s| s == service))
                .map(|index| Arc::clone(&self.upstreams[index]))
        };
        let watched = router
            .services()
            .into_iter()
            .map(|service| {
                let needed: Vec<Arc<Upstream>> =
                    match self.composed.iter().find(|(name, _)| *name == service) {
                        Some((_, downstream)) => {
                            downstream.iter().filter_map(|s| upstream_of(s)).collect()
                        }
                        None => upstream_of(service).into_iter().collect(),
                    };
                let mut upstreams: Vec<Arc<Upstream>> = Vec::with_capacity(needed.len());
                for upstream in needed {
                    if !upstreams.iter().any(|u| Arc::ptr_eq(u, &upstream)) {
                        upstreams.push(upstream);
                    }
                }
                health::Watched {
                    service: service.to_owned(),
                    upstreams,
                }
            })
            .collect();

        let listener = bind("listener", self.config.listener.address).await?;
        let admin = match &self.config.admin {
            Some(admin) => Some(bind("admin", admin.address).await?),
            None => None,
        };
        let admin_state = Arc::new(admin::AdminState {
            registry: self.registry,
            upstreams: self.upstreams.clone(),
            routes: routes.owners.into_iter().collect(),
        });
        Ok(Gateway {
            router: Arc::new(router),
            access_log_task,
            admin_state,
            health,
            watched,
            listener,
            admin,
            drain_timeout: self.config.listener.drain_timeout,
        })
    }
}

/// The routing table under construction, remembering who claimed each service so that a
/// double claim is reported with both owners.
#[derive(Default)]
struct RouteClaims {
    router: Router,
    owners: std::collections::HashMap<String, String>,
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

fn read_descriptor_set(path: &PathBuf) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|err| GatewayError::DescriptorSet {
        origin: path.display().to_string(),
        reason: err.to_string(),
    })
}

async fn bind(role: &'static str, address: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| GatewayError::Bind {
            role,
            address,
            source,
        })
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

// === impl Gateway ===

impl Gateway {
    /// Starts assembling a gateway.
    pub fn builder(config: GatewayConfig) -> GatewayBuilder {
        GatewayBuilder::new(config)
    }

    /// The bound edge address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The bound admin address, if an admin listener is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Every gRPC service this gateway answers, sorted.
    pub fn services(&self) -> Vec<String> {
        self.router
            .services()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Serves until SIGINT or SIGTERM, then drains.
    pub async fn serve(self) {
        self.serve_with_shutdown(shutdown_signal()).await;
    }

    /// Serves until `signal` completes, then stops accepting, reports NOT_SERVING on health and
    /// gives in-flight calls up to the drain timeout to finish.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()> + Send) {
        let Gateway {
            router,
            access_log_task,
            admin_state,
            health,
            watched,
            listener,
            admin,
            drain_timeout,
        } = self;
        let local_addr = listener.local_addr().ok();
        let (draining_tx, draining) = watch::channel(false);
        let admin_task =
            admin.map(|listener| tokio::spawn(admin::serve(listener, admin_state, draining)));
        tracing::info!(
            address = ?local_addr,
            services = router.services().len(),
            "gateway serving"
        );

        let services: Vec<String> = watched.iter().map(|w| w.service.clone()).collect();
        let health_task = tokio::spawn(health::watch(health.clone(), watched));
        let mut connections = listener::serve(listener, router.clone(), signal).await;

        let _ = draining_tx.send(true);
        health_task.abort();
        let _ = health_task.await;
        health::not_serving(&health, &services).await;
        tracing::info!(?drain_timeout, "shutting down: draining in-flight calls");
        match tokio::time::timeout(drain_timeout, connections.drain()).await {
            Ok(()) => tracing::info!("gateway stopped: all calls drained"),
            Err(_) => {
                connections.cut();
                tracing::warn!(
                    ?drain_timeout,
                    "gateway stopped: drain timeout passed, remaining calls were cut off"
                );
            }
        }
        if let Some(task) = admin_task {
            task.abort();
        }
        // The last lines of the access log: the router was the writer's only sender.
        drop(router);
        if let Some(task) = access_log_task
            && tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
        {
            tracing::warn!("the access log's last lines were not all written within 1s");
        }
    }

    /// Serves in a background task until [`GatewayHandle::shutdown`] (or the handle is dropped).
    pub fn spawn(self) -> GatewayHandle {
        let local_addr = self.local_addr();
        let admin_addr = self.admin_addr();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve_with_shutdown(async move {
            let _ = signal.await;
        }));
        GatewayHandle {
            local_addr,
            admin_addr,
            shutdown: Some(shutdown),
            task,
        }
    }
}

// === impl GatewayHandle ===

impl GatewayHandle {
    /// The edge address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin address, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Starts a graceful shutdown and waits until the gateway has drained.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Err(err) = (&mut self.task).await {
            tracing::warn!(error = %err, "gateway task ended abnormally");
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        // Dropping without `shutdown` stops serving at once, so tests never leak servers.
        if self.shutdown.is_some() {
            self.task.abort();
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
