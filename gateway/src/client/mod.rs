//! Calls to upstreams: each upstream's stack, the typed calls of composed handlers (with their
//! retries and hedging), and pass-through forwarding (with its replay of idempotent calls).
//!
//! This layer sits on `resilience` (the per-upstream stack) and `grpc`; `compose` and the
//! server sit on it. Typed and pass-through calls to one upstream go through the same
//! [`Upstream`], so they share its limit, its breakers and its retry budget.
//!
//! - `upstream.rs`: [`Upstream`], built once per `[upstreams.NAME]`, and pass-through forwarding.
//! - `replay.rs`: which pass-through methods may be retried after a reset, and the request copy.
//! - `edge.rs`: [`EdgeCall`], a composed call's deadline and the slice each downstream call gets.
//! - `downstreams.rs`: [`Downstreams`], upstreams by gRPC service name, and [`DownstreamChannel`],
//!   the transport generated tonic clients run on.
//! - `retry.rs`: retries (gRFC A6) and hedging of typed calls within the upstream's budget.
//! - `stats.rs`: what each upstream counts for `/metrics`.
//! - `tls.rs`: TLS to an `https://` upstream, its certificate files read once per stack.

mod downstreams;
mod edge;
mod replay;
mod retry;
mod stats;
mod tls;
mod upstream;

// Re-exported to generated code by the `compose` facade.
pub(crate) use downstreams::DownstreamMap;
pub use downstreams::{DownstreamChannel, Downstreams};
pub use edge::{CallsSaved, DEFAULT_EDGE_TIMEOUT, DOWNSTREAM_MARGIN, EdgeCall, PARTIAL_HEADER};
pub use retry::{CallRetry, CallSpec, MethodDefaults};

pub(crate) use retry::{call_with_retries, idempotent};
pub(crate) use upstream::Upstream;
