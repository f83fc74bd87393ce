//! Hot reload: `SIGHUP` or the admin listener's `POST /reload` reads `gateway.toml` again and,
//! if the whole file is valid, swaps in what it describes without dropping a call.
//!
//! The new file is validated in full and assembled into a snapshot (`snapshot.rs`) before
//! anything changes; a file with any problem changes nothing, and every problem is reported
//! (in the log, in the `/reload` answer, and as `mosaic_config_reloads_total{result="rejected"}`).
//! Upstreams whose sections did not change keep their stacks; changed ones get new stacks while
//! calls in flight finish on the old; endpoints dropped from the file are drained that way.
//!
//! Some settings belong to sockets and tasks made once at start, and a reload refuses to change
//! them rather than half-apply them: `[listener]`, `[admin]`, `[metrics]`, `[access_log]`,
//! `[tracing]` and `[logging]` (restart the gateway to change those). Reloads are serialized; a reload that arrives while
//! another runs waits for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use serde_json::json;

use super::snapshot::{Base, Snapshot, UpstreamChanges};
use crate::config::{ConfigError, GatewayConfig};

/// Re-reads one configuration file into the gateway it belongs to.
pub(crate) struct Reloader {
    path: Option<PathBuf>,
    base: Base,
    current: Arc<ArcSwap<Snapshot>>,
    running: tokio::sync::Mutex<()>,
    pub(crate) applied: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    /// The gateway was not given a file to reload from.
    #[error("this gateway was started without a configuration file to reload from")]
    NoFile,
    /// The file is missing, unreadable or invalid.
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    /// The file changes settings that need a restart.
    #[error(
        "{} cannot change without a restart; the running configuration is kept",
        .0.join(", ")
    )]
    NeedsRestart(Vec<&'static str>),
    /// The file is valid on its own but does not fit what the gateway hosts.
    #[error("{0}")]
    DoesNotFit(#[from] super::error::GatewayError),
}

/// What an applied reload did.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Applied {
    pub(crate) generation: u64,
    pub(crate) upstreams: UpstreamChanges,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .field("generation", &self.current.load().generation)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    pub(super) fn new(path: Option<PathBuf>, base: Base, current: Arc<ArcSwap<Snapshot>>) -> Self {
        Self {
            path,
            base,
            current,
            running: tokio::sync::Mutex::new(()),
            applied: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// What the gateway serves now.
    pub(crate) fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The cell the snapshot in force is published in, for the parts that read it per call.
    pub(crate) fn published(&self) -> &Arc<ArcSwap<Snapshot>> {
        &self.current
    }

    /// Reads the file again and applies it, or changes nothing and says why.
    pub(crate) async fn reload(&self) -> Result<Applied, ReloadError> {
        let _running = self.running.lock().await;
        let result = self.try_reload().await;
        match &result {
            Ok(applied) => {
                self.applied.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    generation = applied.generation,
                    kept = ?applied.upstreams.kept,
                    replaced = ?applied.upstreams.replaced,
                    added = ?applied.upstreams.added,
                    removed = ?applied.upstreams.removed,
                    "configuration reloaded"
                );
            }
            Err(error) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::error!("configuration reload rejected: {error}");
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<Applied, ReloadError> {
        let path = self.path.as_ref().ok_or(ReloadError::NoFile)?;
        let config = GatewayConfig::from_file(path)?;
        let current = self.current.load_full();
        let running = &current.config;
        let fixed: Vec<&'static str> = [
            ("[listener]", config.listener == running.listener),
            ("[admin]", config.admin == running.admin),
            ("[metrics]", config.metrics == running.metrics),
            ("[access_log]", config.access_log == running.access_log),
            ("[tracing]", config.tracing == running.tracing),
            ("[logging]", config.logging == running.logging),
        ]
        .into_iter()
        .filter_map(|(table, unchanged)| (!unchanged).then_some(table))
        .collect();
        if !fixed.is_empty() {
            return Err(ReloadError::NeedsRestart(fixed));
        }
        let generation = current.generation + 1;
        // Unchanged access settings keep their state (rate-limit buckets, fetched keys).
        let access = match &config.access {
            None => None,
            Some(access) if config.access == running.access => current.router.access().cloned(),
            Some(access) => Some(
                crate::access::Access::new(access)
                    .await
                    .map_err(|reason| super::error::GatewayError::Access { reason })?,
            ),
        };
        let (snapshot, upstreams) =
            self.base
                .assemble(config, generation, &current.upstreams, access)?;
        self.base.publish(&self.current, snapshot);
        Ok(Applied {
            generation,
            upstreams,
        })
    }
}

impl ReloadError {
    /// The `/reload` answer's body.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Invalid(error) if !error.problems().is_empty() => json!({
                "applied": false,
                "error": format!("{} is not valid", error.origin()),
                "problems": error
                    .problems()
                    .iter()
                    .map(|problem| json!({ "key": problem.key, "message": problem.message }))
                    .collect::<Vec<_>>(),
            }),
            other => json!({ "applied": false, "error": other.to_string() }),
        }
    }
}
