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
mod apis;
mod body;
mod collector;
mod effective;
mod error;
mod health;
mod listener;
mod record;
mod reload;
mod router;
mod snapshot;
mod tls;

use prometheus_client::registry::Registry;

pub use self::error::GatewayError;
use self::reload::Reloader;
use self::router::LocalService;
use self::snapshot::Base;
use crate::client::Upstream;
use crate::config::GatewayConfig;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::trace::Tracing;

/// Collects what a gateway serves before it binds.
pub struct GatewayBuilder {
    config: GatewayConfig,
    descriptor_sets: Vec<FileDescriptorSet>,
    /// The same sets as given, with their options (the HTTP annotations) intact.
    encoded_sets: Vec<(String, bytes::Bytes)>,
    local: Vec<(&'static str, LocalService)>,
    required: Vec<&'static str>,
    /// The deployment values (`$env`) the hosted composers read.
    deployment_values: Vec<&'static str>,
    /// Composed services and the downstream services each calls, for health.
    composed: Vec<(&'static str, &'static [&'static str])>,
    /// Built once, shared by pass-through routes and the handlers' downstream calls.
    upstreams: Vec<Arc<Upstream>>,
    /// What the composers' `Downstreams` read; replaced on reload.
    downstreams: crate::compose::Downstreams,
    /// Every metric family, served at the admin listener's `/metrics`.
    registry: Registry,
    /// `None` when `[metrics] enabled = false`.
    metrics: Option<Metrics>,
    /// The file `SIGHUP` and `POST /reload` read again.
    reload_from: Option<PathBuf>,
}

/// A gateway with its sockets bound, ready to serve.
pub struct Gateway {
    /// Publishes what is served now (replaced whole by a reload) and reloads it.
    reloader: Arc<Reloader>,
    /// Exports spans; flushed once the calls are drained.
    tracing: Option<Arc<Tracing>>,
    access_log: Option<Arc<access_log::AccessLog>>,
    /// The access log's writer, told to finish once the calls are drained.
    access_log_task: Option<JoinHandle<()>>,
    admin_state: Arc<admin::AdminState>,
    health: HealthReporter,
    listener: TcpListener,
    /// TLS on the listener, and the certificate to refresh.
    tls: Option<(tokio_rustls::TlsAcceptor, Arc<tls::ReloadingCert>)>,
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
            .collect::<Vec<_>>();
        let downstreams = crate::compose::Downstreams::new(&config.upstreams, &upstreams);
        Self {
            config,
            descriptor_sets: Vec::new(),
            encoded_sets: Vec::new(),
            local: Vec::new(),
            required: Vec::new(),
            deployment_values: Vec::new(),
            composed: Vec::new(),
            upstreams,
            downstreams,
            registry,
            metrics,
            reload_from: None,
        }
    }

    /// Lets `SIGHUP` and the admin listener's `POST /reload` read `path` again and apply it
    /// while serving (`reload.rs` says what may change). Without it, a reload is refused.
    pub fn reload_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.reload_from = Some(path.into());
        self
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
        self.encoded_sets
            .push((origin.to_owned(), bytes::Bytes::copy_from_slice(encoded)));
        Ok(self)
    }

    /// The configured upstreams by service name, for generated composition services. They
    /// share each upstream's stack (limit, breakers, budget) with the pass-through routes.
    pub fn downstreams(&self) -> crate::compose::Downstreams {
        self.downstreams.clone()
    }

    /// The deployment values from `gateway.toml`'s `[env]` and the process environment, for
    /// the composers of edge services that declare `$env` variables (they load theirs when
    /// built).
    pub fn deployment(&self) -> crate::compose::Deployment {
        crate::compose::Deployment::new(self.config.env.clone())
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
        self.deployment_values
            .extend_from_slice(C::DEPLOYMENT_VALUES);
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
        let unread: Vec<String> = self
            .config
            .env
            .keys()
            .filter(|key| !self.deployment_values.contains(&key.as_str()))
            .cloned()
            .collect();
        if !unread.is_empty() {
            let mut read = std::mem::take(&mut self.deployment_values);
            read.sort_unstable();
            read.dedup();
            return Err(GatewayError::UnreadDeploymentValues {
                names: unread,
                read,
            });
        }
        let (health, health_service) = tonic_health::server::health_reporter();
        let tracing = match &self.config.tracing {
            Some(config) => {
                Some(Tracing::start(config).map_err(|reason| GatewayError::Tracing { reason })?)
            }
            None => None,
        };
        let mut access_log = None;
        let mut access_log_task = None;
        if let Some(config) = &self.config.access_log {
            let (log, task) = access_log::AccessLog::start(config)
                .await
                .map_err(|source| GatewayError::AccessLog {
                    target: format!("{:?}", config.target),
                    source,
                })?;
            self.registry
                .register_collector(Box::new(collector::AccessLogCollector {
                    log: Arc::clone(&log),
                }));
            access_log = Some(log);
            access_log_task = Some(task);
        }
        let metrics_on = self.metrics.is_some();
        let recording = match &self.metrics {
            Some(metrics) => Some(metrics.clone()),
            // The access log and traces need each call's record, not the exported families.
            None if access_log.is_some() || tracing.is_some() => {
                Some(Metrics::register(&mut Registry::default()))
            }
            None => None,
        };
        let base = Base {
            local: self.local,
            required: self.required,
            composed: self.composed,
            descriptor_sets: self.descriptor_sets,
            encoded_sets: self.encoded_sets,
            health: BoxCloneSyncService::new(health_service),
            metrics: self.metrics,
            recording,
            tracing: tracing.clone(),
            access_log: access_log.clone(),
            downstreams: Arc::clone(self.downstreams.map()),
        };
        let built: Vec<(Arc<Upstream>, u64)> = self
            .upstreams
            .into_iter()
            .map(|upstream| (upstream, 1))
            .collect();
        if let Some(metrics) = &base.recording {
            metrics.limit_consumers(self.config.metrics.max_consumers);
        }
        let access = match &self.config.access {
            Some(config) => Some(
                crate::access::Access::new(config)
                    .await
                    .map_err(|reason| GatewayError::Access { reason })?,
            ),
            None => None,
        };
        let (snapshot, _) = base.assemble(self.config, 1, &built, access)?;

        let tls = match &snapshot.config.listener.tls {
            Some(config) => Some(tls::acceptor(config)?),
            None => None,
        };
        let listener = bind("listener", snapshot.config.listener.address).await?;
        let admin = match &snapshot.config.admin {
            Some(admin) => Some(bind("admin", admin.address).await?),
            None => None,
        };
        let drain_timeout = snapshot.config.listener.drain_timeout;
        let current = Arc::new(base.publish_first(snapshot));
        let reloader = Arc::new(Reloader::new(self.reload_from, base, Arc::clone(&current)));
        if metrics_on {
            self.registry
                .register_collector(Box::new(collector::UpstreamCollector {
                    current: Arc::clone(&current),
                }));
        }
        self.registry
            .register_collector(Box::new(collector::ReloadCollector {
                reloader: Arc::clone(&reloader),
            }));
        let admin_state = Arc::new(admin::AdminState {
            registry: self.registry,
            reloader: Arc::clone(&reloader),
            edge: listener.local_addr().ok(),
        });
        Ok(Gateway {
            reloader,
            tracing,
            access_log,
            access_log_task,
            admin_state,
            health,
            listener,
            tls,
            admin,
            drain_timeout,
        })
    }
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
        self.reloader
            .current()
            .router
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
    /// gives in-flight calls up to the drain timeout to finish. `SIGHUP` reloads the
    /// configuration meanwhile, when the gateway was given a file to reload from.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()> + Send) {
        let Gateway {
            reloader,
            tracing,
            access_log,
            access_log_task,
            admin_state,
            health,
            listener,
            tls,
            admin,
            drain_timeout,
        } = self;
        let current = Arc::clone(reloader.published());
        let local_addr = listener.local_addr().ok();
        let (draining_tx, draining) = watch::channel(false);
        let admin_task =
            admin.map(|listener| tokio::spawn(admin::serve(listener, admin_state, draining)));
        let hangup_task = tokio::spawn(reload_on_hangup(Arc::clone(&reloader)));
        tracing::info!(
            address = ?local_addr,
            services = current.load().router.services().len(),
            "gateway serving"
        );

        let health_task = tokio::spawn(health::watch(health.clone(), Arc::clone(&current)));
        let (acceptor, tls_task) = match tls {
            Some((acceptor, resolver)) => (Some(acceptor), Some(tls::watch(resolver))),
            None => (None, None),
        };
        let limits = current.load().config.listener.limits.clone();
        let mut connections =
            listener::serve(listener, Arc::clone(&current), signal, acceptor, limits).await;
        if let Some(task) = tls_task {
            task.abort();
        }

        let _ = draining_tx.send(true);
        hangup_task.abort();
        health_task.abort();
        let _ = health_task.await;
        let services: Vec<String> = current
            .load()
            .watched
            .iter()
            .map(|watched| watched.service.clone())
            .collect();
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
        // The calls are over: the spans still queued are exported (the exporter waits for its
        // own task, so it runs off the runtime's workers), and the access log's writer writes
        // what is queued and ends.
        if let Some(tracing) = tracing {
            let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
        }
        if let Some(log) = access_log {
            log.finish();
        }
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

/// Reloads the configuration on every `SIGHUP` (Unix only), until aborted.
async fn reload_on_hangup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; reload through the admin listener");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            tracing::info!("received SIGHUP: reloading the configuration");
            // The outcome is logged by the reloader.
            let _ = reloader.reload().await;
        }
    }
    #[cfg(not(unix))]
    let _ = reloader;
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
