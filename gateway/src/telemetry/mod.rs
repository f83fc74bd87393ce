//! What the gateway tells its operators: metrics (`metrics.rs`), the gateway's own share of each
//! edge call (`own_time.rs`), traces (`trace.rs`), and the process-wide logging set-up for
//! binaries built on it.

pub(crate) mod metrics;
pub(crate) mod own_time;
pub(crate) mod trace;

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (default `info`).
/// Calling it twice is harmless: the second call leaves the first subscriber in place.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `future` carrying the current edge call's telemetry (its own-time record and its trace
/// context) along, for work spawned on another task on the call's behalf.
pub(crate) fn propagate<F: std::future::Future>(
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    own_time::OwnTime::propagate(trace::Scope::propagate(future))
}
