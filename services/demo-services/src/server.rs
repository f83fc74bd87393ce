//! Assembling and running one demo server: the service, health, reflection and fault control.
//!
//! This is the one place where a server's stack is put together, so the invariant is visible
//! here: the fault layer wraps only the demo service's own routes. Health, reflection and
//! FaultControl must keep answering while the service is made to misbehave, otherwise a test
//! could not tell "the gateway handled a failing downstream" from "the downstream vanished",
//! and could not turn the faults off again.
//!
//! Around all of it, health and reflection included, sits the deadline layer: every call ends
//! at its caller's `grpc-timeout` with DEADLINE_EXCEEDED, as a real gRPC server's would, rather
//! than with tonic's CANCELLED "Timeout expired" (`deadline.rs` says why and how it wins).
//!
//! Servers run on a spawned task and are owned by a [`ServiceHandle`]; stopping is graceful but
//! bounded, and dropping the handle aborts the server, so tests never leak servers or ports.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::server::NamedService as _;
use tonic::transport::Server;
use tonic::transport::server::{Router, TcpIncoming};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tower::Layer as _;
use tower::layer::util::{Identity, Stack};

use crate::catalog::ProductCatalog;
use crate::data::Dataset;
use crate::deadline::DeadlineLayer;
use crate::demo_service::DemoService;
use crate::faults::{FaultConfig, FaultControlService, FaultHandle, FaultInjectionLayer};
use crate::inventory::StockLedger;
use crate::pb::catalog::v1::catalog_service_server::CatalogServiceServer;
use crate::pb::faults::v1::fault_control_server::FaultControlServer;
use crate::pb::inventory::v1::inventory_service_server::InventoryServiceServer;
use crate::pb::reviews::v1::review_service_server::ReviewServiceServer;
use crate::pb::users::v1::user_service_server::UserServiceServer;
use crate::reviews::ReviewArchive;
use crate::users::UserDirectory;

/// How long [`ServiceHandle::stop`] waits for in-flight calls before cutting them off.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Binds `addr` (port 0 picks a free port) and serves `service` on it.
///
/// Returns once the socket is listening, so a client may connect right away. Fails if the
/// address cannot be bound or `faults` is invalid.
pub async fn start(
    service: DemoService,
    addr: SocketAddr,
    faults: FaultConfig,
) -> anyhow::Result<ServiceHandle> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the {service} service to {addr}"))?;
    start_on(service, listener, faults).await
}

/// Serves `service` on an already-bound listener.
///
/// Useful when the caller must know the port before the server starts (for example to write
/// a gateway configuration), or to hand over a socket.
pub async fn start_on(
    service: DemoService,
    listener: TcpListener,
    faults: FaultConfig,
) -> anyhow::Result<ServiceHandle> {
    let faults = FaultHandle::new(faults)
        .map_err(|message| anyhow::anyhow!("invalid fault configuration: {message}"))?;
    let local_addr = listener
        .local_addr()
        .context("listener has no local address")?;
    let (stopping, stop_signal) = watch::channel(false);
    let health = HealthReporter::new();
    let router = assemble(service, &faults, &health, stop_signal.clone()).await?;

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut shutdown = stop_signal;
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                // Resolves on `stop` and when the handle (the sender) is dropped.
                let _ = shutdown.wait_for(|&stop| stop).await;
            })
            .await
    });
    tracing::info!(%service, addr = %local_addr, "demo service listening");
    Ok(ServiceHandle {
        service,
        local_addr,
        faults,
        health,
        stopping,
        task: Some(task),
    })
}

/// The server's routes, all behind the deadline layer.
type DemoRouter = Router<Stack<DeadlineLayer, Identity>>;

/// Builds the router: the demo service behind the fault layer, the rest beside it, and all of
/// it behind the deadline layer.
async fn assemble(
    service: DemoService,
    faults: &FaultHandle,
    health: &HealthReporter,
    stop_signal: watch::Receiver<bool>,
) -> anyhow::Result<DemoRouter> {
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_service_status(service.grpc_service(), ServingStatus::Serving)
        .await;
    let health_service = HealthServer::new(HealthService::from_health_reporter(health.clone()));
    let reflection_v1 = reflection(service)
        .build_v1()
        .context("building reflection v1")?;
    let reflection_v1alpha = reflection(service)
        .build_v1alpha()
        .context("building reflection v1alpha")?;
    let control = FaultControlServer::new(FaultControlService::new(faults.clone()));

    // `Server::layer`, not a layer per route: only there does the deadline layer sit directly
    // inside tonic's own timeout middleware, which its ordering argument relies on.
    let router = Server::builder()
        .layer(DeadlineLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(control);

    let faulty = FaultInjectionLayer::new(faults.clone(), stop_signal);
    let data = Dataset::shared();
    Ok(match service {
        DemoService::Users => {
            router.add_service(faulty.layer(UserServiceServer::new(UserDirectory::new(data))))
        }
        DemoService::Catalog => {
            router.add_service(faulty.layer(CatalogServiceServer::new(ProductCatalog::new(data))))
        }
        DemoService::Reviews => {
            router.add_service(faulty.layer(ReviewServiceServer::new(ReviewArchive::new(data))))
        }
        DemoService::Inventory => {
            router.add_service(faulty.layer(InventoryServiceServer::new(StockLedger::new(data))))
        }
    })
}

/// Reflection that lists only what this server serves, but can describe every demo type.
fn reflection(service: DemoService) -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .with_service_name(service.grpc_service())
        .with_service_name(FaultControlServer::<FaultControlService>::NAME)
        .with_service_name(tonic_health::pb::health_server::SERVICE_NAME)
        .with_service_name(tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME)
        .with_service_name(tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME)
}

/// A running demo server. Dropping it aborts the server; [`ServiceHandle::stop`] stops it
/// gracefully.
#[derive(Debug)]
pub struct ServiceHandle {
    service: DemoService,
    local_addr: SocketAddr,
    faults: FaultHandle,
    health: HealthReporter,
    /// Set to `true` to stop; hung calls watch it too.
    stopping: watch::Sender<bool>,
    /// `None` once the server task has been awaited or aborted.
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl ServiceHandle {
    /// Which service this server runs.
    pub fn service(&self) -> DemoService {
        self.service
    }

    /// The address the server listens on (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URI clients connect to, e.g. `"http://127.0.0.1:50051"`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The server's live fault configuration and counters.
    pub fn faults(&self) -> &FaultHandle {
        &self.faults
    }

    /// Stops the server: health turns NOT_SERVING, hung calls end with UNAVAILABLE, new
    /// connections are refused, and in-flight calls get up to 5 seconds to finish before the
    /// server is aborted.
    pub async fn stop(mut self) {
        self.health
            .set_service_status(self.service.grpc_service(), ServingStatus::NotServing)
            .await;
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        self.stopping.send_replace(true);
        let Some(mut task) = self.task.take() else {
            return;
        };
        match tokio::time::timeout(STOP_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => tracing::info!(service = %self.service, "demo service stopped"),
            Ok(Ok(Err(error))) => {
                tracing::warn!(service = %self.service, %error, "demo service failed while stopping");
            }
            Ok(Err(error)) => {
                tracing::warn!(service = %self.service, %error, "demo service task failed");
            }
            Err(_) => {
                tracing::warn!(
                    service = %self.service,
                    grace = ?STOP_GRACE,
                    "demo service did not stop in time, aborting it"
                );
                task.abort();
            }
        }
    }

    /// Waits until the server ends by itself, which only a fatal transport error causes.
    /// Lets a binary exit when serving fails instead of idling with a dead server.
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let outcome = task.await;
        self.task = None;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                Err(anyhow::Error::new(error).context(format!("serving {}", self.service)))
            }
            Err(error) => {
                Err(anyhow::Error::new(error).context(format!("{} server task", self.service)))
            }
        }
    }
}

impl Drop for ServiceHandle {
    fn drop(&mut self) {
        self.stopping.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
