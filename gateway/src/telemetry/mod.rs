//! What the gateway tells its operators: metrics (`metrics.rs`), the gateway's own share of each
//! edge call (`own_time.rs`), traces (`trace.rs`), and the process-wide logging set-up for
//! binaries built on it.

pub(crate) mod metrics;
pub(crate) mod own_time;
pub(crate) mod trace;

use tracing_subscriber::EnvFilter;

/// `[logging]`: what the process logs, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggingConfig {
    /// A `tracing` filter (`info`, `warn,mosaic_gateway=debug`); `RUST_LOG`, when set, wins.
    pub filter: String,
    /// One line of text per event, or one JSON object.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Whether `filter` is a valid `tracing` filter; the error says what is wrong.
pub fn check_filter(filter: &str) -> Result<(), String> {
    EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (default `info`),
/// as text. Calling it twice is harmless: the second call leaves the first subscriber in place.
pub fn init() {
    init_with(&LoggingConfig::default());
}

/// Like [`init`], with the filter (unless `RUST_LOG` is set) and format of `config`.
pub fn init_with(config: &LoggingConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs `future` carrying the current edge call's telemetry (its own-time record and its trace
/// context) and its call context (forwarded metadata, the caller) along, for work spawned on another task on the call's behalf.
pub(crate) fn propagate<F: std::future::Future>(
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    own_time::OwnTime::propagate(trace::Scope::propagate(crate::grpc::context::propagate(
        future,
    )))
}
