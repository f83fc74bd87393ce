//! Fault injection: make a demo service slow, failing or unresponsive, on demand.
//!
//! Why this exists: the gateway's resilience features (deadline propagation, retries, hedging,
//! circuit breaking, partial responses) are only believable when tested against downstreams
//! that really misbehave over a real connection. Mocks in the gateway's own tests cover the
//! logic; these knobs cover the wiring, and let the demo show the features working.
//!
//! The pieces, one idea each:
//! - [`config`]: what to inject ([`FaultConfig`]), validation, and the per-call random draw;
//! - [`latency`]: latency distributions ([`Latency`]), their text forms and sampling;
//! - [`codes`]: status codes by name, for `--error-code`;
//! - [`handle`]: the live, shared configuration plus call counters ([`FaultHandle`]);
//! - [`layer`]: the tower middleware that applies the configuration to each call of a
//!   service's own routes (never to health, reflection or fault control, which must keep
//!   answering while the service misbehaves);
//! - [`control`]: the `demo.faults.v1.FaultControl` gRPC service and proto conversions, so
//!   knobs can be turned from another process.

mod codes;
mod config;
mod control;
mod handle;
mod latency;
mod layer;

pub use codes::{UnknownErrorCode, error_code_name, parse_error_code};
pub use config::FaultConfig;
pub(crate) use control::FaultControlService;
pub use handle::{CallRecord, FaultHandle, FaultStats, JOURNAL_CAPACITY, TraceParent};
pub use latency::{Latency, MAX_LATENCY, ParseLatencyError};
pub(crate) use layer::FaultInjectionLayer;
