//! The live fault configuration of one server, shared by its fault layer, its FaultControl
//! service and the in-process [`FaultHandle`].
//!
//! Reads happen on every call and writes only when someone turns a knob, so the configuration
//! sits behind a `std::sync::RwLock` (held for a copy, never across an await) and the counters
//! are relaxed atomics: each counter is exact, while a snapshot of all three is not taken
//! atomically, which is fine for tests that read them after their calls have finished.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::config::{FaultConfig, FaultPlan};

/// Cloneable handle to a server's fault configuration and call counters.
#[derive(Clone, Debug, Default)]
pub struct FaultHandle {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    config: RwLock<FaultConfig>,
    calls_total: AtomicU64,
    calls_failed_injected: AtomicU64,
    calls_hung: AtomicU64,
    journal_on: AtomicBool,
    journal: Mutex<Vec<CallRecord>>,
}

/// The most calls a journal keeps; later calls are not recorded.
pub const JOURNAL_CAPACITY: usize = 100_000;

/// One call as the server saw it, kept while the journal is on ([`FaultHandle::start_journal`]).
///
/// Tests use it to check what a gateway sends downstream: the `grpc-timeout` each call carried,
/// and when each call ended, answered or cancelled by its caller (its stream reset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// When the call arrived.
    pub received: Instant,
    /// Its `grpc-timeout`, if it had a well-formed one.
    pub grpc_timeout: Option<Duration>,
    /// Its W3C `traceparent`, if it had a well-formed one.
    pub traceparent: Option<TraceParent>,
    /// Every request header it arrived with.
    pub headers: http::HeaderMap,
    /// When it ended.
    pub ended: Instant,
    /// `false` when the caller went away before the server answered.
    pub answered: bool,
}

/// The ids of a W3C `traceparent` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace the call belongs to.
    pub trace_id: [u8; 16],
    /// The span the caller made the call in.
    pub parent_id: [u8; 8],
}

/// Call counters of a demo service's own methods (not health, reflection or FaultControl).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultStats {
    /// Calls received.
    pub calls_total: u64,
    /// Calls answered with an injected error.
    pub calls_failed_injected: u64,
    /// Calls made to hang.
    pub calls_hung: u64,
}

impl FaultHandle {
    /// A handle starting with `config`, which must be valid.
    pub fn new(config: FaultConfig) -> Result<FaultHandle, String> {
        config.validate()?;
        Ok(FaultHandle {
            shared: Arc::new(Shared {
                config: RwLock::new(config),
                ..Shared::default()
            }),
        })
    }

    /// Replaces the configuration; an invalid one is rejected and the old one stays.
    pub fn set(&self, config: FaultConfig) -> Result<(), String> {
        config.validate()?;
        tracing::info!(faults = %config, "fault configuration changed");
        // A poisoned lock only means a writer panicked mid-assignment of a plain value;
        // the value is still a whole `FaultConfig`, so keep using it.
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The configuration in force.
    pub fn get(&self) -> FaultConfig {
        self.shared
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The call counters.
    pub fn stats(&self) -> FaultStats {
        FaultStats {
            calls_total: self.shared.calls_total.load(Ordering::Relaxed),
            calls_failed_injected: self.shared.calls_failed_injected.load(Ordering::Relaxed),
            calls_hung: self.shared.calls_hung.load(Ordering::Relaxed),
        }
    }

    /// Sets every counter to zero.
    pub fn reset_stats(&self) {
        self.shared.calls_total.store(0, Ordering::Relaxed);
        self.shared
            .calls_failed_injected
            .store(0, Ordering::Relaxed);
        self.shared.calls_hung.store(0, Ordering::Relaxed);
    }

    /// Counts a new call and draws its fate from the current configuration.
    pub(crate) fn begin_call(&self) -> FaultPlan {
        self.shared.calls_total.fetch_add(1, Ordering::Relaxed);
        let config = self.get();
        config.plan(&mut rand::rng())
    }

    pub(crate) fn record_failed(&self) {
        self.shared
            .calls_failed_injected
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_hung(&self) {
        self.shared.calls_hung.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts recording every call into a fresh journal (at most [`JOURNAL_CAPACITY`] calls).
    pub fn start_journal(&self) {
        self.shared
            .journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.shared.journal_on.store(true, Ordering::Release);
    }

    /// Stops recording and returns the calls recorded, in the order they ended.
    pub fn take_journal(&self) -> Vec<CallRecord> {
        self.shared.journal_on.store(false, Ordering::Release);
        std::mem::take(
            &mut *self
                .shared
                .journal
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    pub(crate) fn journal_on(&self) -> bool {
        self.shared.journal_on.load(Ordering::Acquire)
    }

    pub(crate) fn record_call(&self, record: CallRecord) {
        let mut journal = self
            .shared
            .journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if journal.len() < JOURNAL_CAPACITY {
            journal.push(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::faults::config::FaultAction;

    #[test]
    fn set_validates_and_keeps_the_old_config_on_error() {
        let handle = FaultHandle::default();
        let failing = FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        };
        assert_eq!(handle.set(failing.clone()), Ok(()));
        assert_eq!(handle.get(), failing);
        let bad = FaultConfig {
            error_rate: 2.0,
            ..FaultConfig::default()
        };
        assert!(handle.set(bad).is_err());
        assert_eq!(handle.get(), failing);
        assert!(
            FaultHandle::new(FaultConfig {
                error_code: Code::Ok,
                ..FaultConfig::default()
            })
            .is_err()
        );
    }

    #[test]
    fn counters_count_and_reset() {
        let handle = FaultHandle::new(FaultConfig {
            hang_rate: 1.0,
            ..FaultConfig::default()
        })
        .expect("valid");
        assert_eq!(handle.begin_call().action, FaultAction::Hang);
        handle.record_hung();
        handle.record_failed();
        let clone = handle.clone();
        assert_eq!(
            clone.stats(),
            FaultStats {
                calls_total: 1,
                calls_failed_injected: 1,
                calls_hung: 1
            }
        );
        clone.reset_stats();
        assert_eq!(handle.stats(), FaultStats::default());
    }
}
