//! Mosaic's runtime: the gateway server, routing, upstream calls with their resilience
//! stack (balancing, breakers, limits, deadlines, retries), and HTTP/JSON transcoding.
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
//! # Layers
//!
//! The modules form a one-way stack; each imports only from those below it:
//!
//! ```text
//! server       listener, router, response bodies, health, admin, the builder   (server/)
//! compose      the runtime of generated handlers: steps, map, expressions       (compose/)
//! client       upstreams, typed calls with retries and hedging, pass-through    (client/)
//! config       gateway.toml, validated into typed values                        (config.rs)
//! access       authentication, per-method policy, rate limits                   (access/)
//! transcode    HTTP/JSON (google.api.http) to gRPC and back                      (transcode/)
//! resilience   the per-upstream stack: limit, deadline, balancer, breakers      (resilience/)
//! telemetry    metric families and handles, message sizes; logging set-up       (telemetry/)
//! grpc         grpc-timeout and deadlines, header names, local errors → status  (grpc/)
//! ```
//!
//! See `ARCHITECTURE.md` at the repository root for the code map and the invariants.

mod access;
mod client;
pub mod compose;
pub mod config;
mod grpc;
mod resilience;
mod server;
pub mod telemetry;
mod transcode;

pub use access::{Caller, PeerIdentity, Scheme, digest_of};
pub use config::{ConfigError, GatewayConfig};
pub use grpc::status::LocalError;
pub use server::{Gateway, GatewayBuilder, GatewayError, GatewayHandle, shutdown_signal};
