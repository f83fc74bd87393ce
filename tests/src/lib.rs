//! The whole-system test harness: real demo services and a real gateway on loopback.
//!
//! [`Stack::start`] starts the four demo services on ephemeral ports, writes a `gateway.toml`
//! routing to them, starts the gateway on another ephemeral port and hands out typed tonic
//! clients for both paths: through the gateway and straight to a service. Tests compare the two.
//! [`raw`] sends hand-framed gRPC requests over a bare HTTP/2 connection, for byte-level checks;
//! [`recorder`] is an upstream that records every request it receives, headers included.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use mosaic_demo::demo::storefront::v1::StorefrontComposer;
use mosaic_demo_services::{DemoService, FaultConfig, ServiceHandle};
use mosaic_gateway::{Gateway, GatewayConfig, GatewayHandle};
use tonic::transport::{Channel, Endpoint};

/// The generated mobile shop edge API.
pub use mosaic_demo::demo::mobile::v1 as mobile;
/// The generated storefront edge API (types, client, composer).
pub use mosaic_demo::demo::storefront::v1 as storefront;
pub use mosaic_demo_services::pb;

pub mod chaos;
pub mod curl;
pub mod load;
pub mod otlp;
pub mod raw;
pub mod recorder;
pub mod redis;
pub mod scrape;
pub mod tokens;

/// The demo services and a gateway routing to them.
pub struct Stack {
    services: HashMap<DemoService, ServiceHandle>,
    gateway: Option<GatewayHandle>,
}

impl Stack {
    /// Starts all four demo services (no faults) and a gateway in front of them.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|config| config).await
    }

    /// Like [`Stack::start`], with the generated `gateway.toml` passed through `edit` first
    /// (to shorten the drain timeout, or append policy tables such as
    /// `[upstreams.users.breaker]`).
    pub async fn start_with(edit: impl FnOnce(String) -> String) -> anyhow::Result<Self> {
        let mut services = HashMap::new();
        for service in DemoService::ALL {
            let handle = start_service(service).await?;
            services.insert(service, handle);
        }
        let endpoints: Vec<(DemoService, String)> = services
            .iter()
            .map(|(service, handle)| (*service, handle.endpoint()))
            .collect();
        let gateway = start_gateway(&edit(gateway_toml(&endpoints))).await?;
        Ok(Self {
            services,
            gateway: Some(gateway),
        })
    }

    /// The handle of one demo service (its address, its fault knobs).
    pub fn service(&self, service: DemoService) -> &ServiceHandle {
        &self.services[&service]
    }

    /// Stops one demo service, leaving the gateway routing to a dead address.
    pub async fn stop_service(&mut self, service: DemoService) {
        if let Some(handle) = self.services.remove(&service) {
            handle.stop().await;
        }
    }

    /// Starts `service` again on the address it had before [`Stack::stop_service`], as a
    /// restarted process would: a new server, fresh fault knobs and counters, the same port.
    pub async fn restart_service(
        &mut self,
        service: DemoService,
        addr: SocketAddr,
    ) -> anyhow::Result<()> {
        let handle = mosaic_demo_services::start(service, addr, FaultConfig::default())
            .await
            .with_context(|| format!("restarting the {} service on {addr}", service.name()))?;
        self.services.insert(service, handle);
        Ok(())
    }

    /// The gateway's edge address.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.gateway
            .as_ref()
            .map(GatewayHandle::local_addr)
            .expect("gateway running")
    }

    /// The gateway's admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.gateway
            .as_ref()
            .and_then(GatewayHandle::admin_addr)
            .expect("admin listener configured")
    }

    /// A channel to the gateway.
    pub fn via_gateway(&self) -> Channel {
        channel(self.gateway_addr())
    }

    /// A channel straight to one demo service.
    pub fn direct(&self, service: DemoService) -> Channel {
        channel(self.service(service).local_addr())
    }

    /// Shuts the gateway down gracefully and waits for it to drain.
    pub async fn shutdown_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await;
        }
    }
}

/// Starts one demo service on an ephemeral loopback port.
pub async fn start_service(service: DemoService) -> anyhow::Result<ServiceHandle> {
    mosaic_demo_services::start(service, loopback(), FaultConfig::default())
        .await
        .with_context(|| format!("starting the {} service", service.name()))
}

/// Starts a gateway from configuration text, as the demo app does: the generated storefront
/// and mobile shop edge APIs beside pass-through routes, with the demo descriptors registered.
pub async fn start_gateway(config: &str) -> anyhow::Result<GatewayHandle> {
    let config = GatewayConfig::from_toml_str(config, "test gateway.toml")?;
    serve_storefront(Gateway::builder(config)).await
}

/// Like [`start_gateway`], from a file the gateway reloads on `POST /reload`.
pub async fn start_reloadable_gateway(path: &std::path::Path) -> anyhow::Result<GatewayHandle> {
    let config = GatewayConfig::from_file(path)?;
    serve_storefront(Gateway::builder(config).reload_from(path)).await
}

async fn serve_storefront(
    builder: mosaic_gateway::GatewayBuilder,
) -> anyhow::Result<GatewayHandle> {
    let storefront = StorefrontComposer::new(builder.downstreams());
    let mobile = mosaic_demo::mobile_shop(builder.downstreams(), &builder.deployment())?;
    let gateway = builder
        .composer(storefront)
        .composer(mobile)
        .descriptor_set("demo protos", mosaic_demo::FILE_DESCRIPTOR_SET)?
        .bind()
        .await?;
    Ok(gateway.spawn())
}

/// A path under the system's temporary directory that no other test or run uses.
pub fn scratch_file(name: &str) -> std::path::PathBuf {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!("mosaic-{name}-{}-{unique}", std::process::id()))
}

/// Starts a pass-through-only gateway (no composed services) from configuration text.
pub async fn start_passthrough_gateway(config: &str) -> anyhow::Result<GatewayHandle> {
    let config = GatewayConfig::from_toml_str(config, "test gateway.toml")?;
    let gateway = Gateway::builder(config)
        .descriptor_set("demo protos", mosaic_demo::FILE_DESCRIPTOR_SET)?
        .bind()
        .await?;
    Ok(gateway.spawn())
}

/// A `gateway.toml` on ephemeral ports routing each demo service to its endpoint.
pub fn gateway_toml(endpoints: &[(DemoService, String)]) -> String {
    let mut text = String::from(
        "[listener]\naddress = \"127.0.0.1:0\"\ndrain_timeout = \"5s\"\n\n[admin]\naddress = \"127.0.0.1:0\"\n",
    );
    for (service, endpoint) in endpoints {
        text.push_str(&format!(
            "\n[upstreams.{}]\nendpoints = [\"{endpoint}\"]\nservices = [\"{}\"]\n",
            service.name(),
            service.grpc_service()
        ));
    }
    text
}

/// A lazily connecting tonic channel to `addr`.
pub fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid loopback URL")
        .connect_lazy()
}

/// `127.0.0.1:0`.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Serialises the tests of one test binary that measure time or load: cargo runs a binary's
/// tests in parallel, and on a small machine they would skew each other's timings. Hold the
/// guard for the whole test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}
