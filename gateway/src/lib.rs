//! Mosaic's runtime: the gateway server, routing, upstream calls with their resilience
//! stack (balancing, breakers, limits, deadlines, retries), and (later) transcoding and security.
//!
//! A gateway is assembled from a validated [`GatewayConfig`] with [`Gateway::builder`], given the
//! in-process services and descriptor sets it serves, bound, and served:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mosaic_gateway::{Gateway, GatewayConfig};
//!
//! let config = GatewayConfig::from_file("gateway.toml")?;
//! let gateway = Gateway::builder(config).bind().await?;
//! gateway.serve().await; // until SIGINT or SIGTERM, then drains
//! # Ok(())
//! # }
//! ```
//!
//! See `ARCHITECTURE.md` at the repository root for the code map and the invariants.

mod admin;
mod body;
pub mod compose;
pub mod config;
mod listener;
mod replay;
pub mod resilience;
mod router;
mod server;
pub mod status;
pub mod telemetry;
mod upstream;

pub use body::GatewayBody;
pub use config::{ConfigError, GatewayConfig};
pub use router::{LocalService, Route, Router};
pub use server::{Gateway, GatewayBuilder, GatewayError, GatewayHandle, shutdown_signal};
pub use status::LocalError;
pub use upstream::{Upstream, UpstreamService};
