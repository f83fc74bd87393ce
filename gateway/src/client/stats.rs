//! What each upstream counts for the metrics endpoint: plain atomics bumped where the event
//! happens (a retry sent, a budget refusal), read only when `/metrics` is scraped
//! (`server/collector.rs`), so they cost a call nothing but a relaxed increment.

use std::sync::atomic::{AtomicU64, Ordering};

/// Events of one upstream's typed and pass-through calls.
#[derive(Debug, Default)]
pub(crate) struct UpstreamStats {
    /// Retries sent (typed calls, and pass-through calls replayed after a reset).
    pub(crate) retries: AtomicU64,
    /// Hedged attempts sent beyond each call's first.
    pub(crate) hedges: AtomicU64,
    /// Calls answered by a hedged attempt rather than the first.
    pub(crate) hedges_won: AtomicU64,
    /// Attempts still running when another answered, cancelled.
    pub(crate) hedges_cancelled: AtomicU64,
    /// Retries or hedges the budget refused.
    pub(crate) budget_exhausted: AtomicU64,
}

impl UpstreamStats {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
