//! The gateway's own share of an edge call: its whole time less the time during which at
//! least one attempt was out at a downstream endpoint.
//!
//! No peer reports this, and it answers "what does the gateway cost" from production traffic:
//! routing, decoding and encoding, composing, waiting for a CPU, and the gateway's own waits
//! (retry backoff, waiting for a breaker's probe) are the gateway's; the intervals where an
//! attempt was in flight (from the request handed to an endpoint to the end of its response)
//! are the downstreams'. Concurrent attempts overlap, so it is their union that is subtracted:
//! a page that fans out to twenty calls at once waits on them once, not twenty times.
//!
//! The edge call's [`OwnTime`] travels as a task-local, so the layers that start attempts find
//! it without being handed it: the composed handler's futures run in the edge call's task, and
//! the steps it spawns carry it over ([`OwnTime::propagate`]). An attempt holds a [`Waiting`]
//! guard from the moment it is sent until its response ends or is dropped.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static CURRENT: Arc<OwnTime>;
}

/// One edge call's waiting on downstreams.
#[derive(Debug)]
pub(crate) struct OwnTime {
    started: Instant,
    state: Mutex<Waits>,
}

#[derive(Debug)]
struct Waits {
    /// Attempts out right now.
    out: u32,
    /// Since when at least one has been out (meaningful while `out > 0`).
    since: Instant,
    /// Time with at least one attempt out, up to `since`.
    waited: Duration,
    /// Attempts sent in all.
    sent: u32,
}

/// Held by an attempt while it is out at an endpoint.
#[derive(Debug)]
pub(crate) struct Waiting(Arc<OwnTime>);

impl OwnTime {
    /// Starts timing an edge call now.
    pub(crate) fn start() -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            started: now,
            state: Mutex::new(Waits {
                out: 0,
                since: now,
                waited: Duration::ZERO,
                sent: 0,
            }),
        })
    }

    /// Runs `future` as part of the edge call `own`.
    pub(crate) fn scope<F: Future>(own: Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(own, future)
    }

    /// `future`, carrying the current edge call along when it is spawned on another task.
    pub(crate) fn propagate<F: Future>(future: F) -> impl Future<Output = F::Output> {
        let own = CURRENT.try_with(Arc::clone).ok();
        async move {
            match own {
                Some(own) => CURRENT.scope(own, future).await,
                None => future.await,
            }
        }
    }

    /// Marks an attempt as out, if it belongs to an edge call being timed.
    pub(crate) fn attempt_sent() -> Option<Waiting> {
        let own = CURRENT.try_with(Arc::clone).ok()?;
        {
            let mut waits = own.lock();
            if waits.out == 0 {
                waits.since = Instant::now();
            }
            waits.out += 1;
            waits.sent += 1;
        }
        Some(Waiting(own))
    }

    /// The call's time so far not spent waiting on a downstream.
    pub(crate) fn own(&self) -> Duration {
        let now = Instant::now();
        let waits = self.lock();
        let waited = if waits.out > 0 {
            waits.waited + (now - waits.since)
        } else {
            waits.waited
        };
        (now - self.started).saturating_sub(waited)
    }

    /// Attempts sent to downstream endpoints for the call so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.lock().sent
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waits> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waits = self.0.lock();
        waits.out = waits.out.saturating_sub(1);
        if waits.out == 0 {
            let since = waits.since;
            waits.waited += Instant::now() - since;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn overlapping_attempts_are_waited_on_once_and_gaps_are_the_gateways() {
        let own = OwnTime::start();
        let timed = OwnTime::scope(Arc::clone(&own), async {
            tokio::time::sleep(Duration::from_millis(3)).await; // the gateway's: 3 ms
            let first = OwnTime::attempt_sent().expect("inside an edge call");
            tokio::time::sleep(Duration::from_millis(10)).await;
            // A second attempt, spawned like a shared step, overlapping the first by 5 ms.
            let second = tokio::spawn(OwnTime::propagate(async {
                let waiting = OwnTime::attempt_sent();
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(waiting);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(first);
            second.await.expect("the step ran");
            tokio::time::sleep(Duration::from_millis(2)).await; // the gateway's: 2 ms
        });
        timed.await;
        // 35 ms in all; from 3 ms to 33 ms at least one attempt was out.
        assert_eq!(own.own(), Duration::from_millis(5));
        assert_eq!(own.attempts(), 2);
        assert!(OwnTime::attempt_sent().is_none(), "outside any edge call");
    }
}
