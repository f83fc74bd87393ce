//! What `grpc.health.v1.Health` reports, and why.
//!
//! Health answers "should a client send this service calls now?". The gateway knows the answer
//! better than a constant: it holds every upstream's breakers. So, while serving:
//!
//! - a **pass-through service** is `SERVING` while its upstream would take a call: some
//!   endpoint's breaker is closed, or one's probe is due (so a client that checks health before
//!   calling still sends the call that probes, and the service comes back); `NOT_SERVING` while
//!   every endpoint is ejected and no probe is due yet, or the upstream has no endpoints;
//! - a **composed service** is `SERVING` while every upstream it calls would take a call, by the
//!   same rule, since a call to it needs them all;
//! - the gateway's own services (health, reflection, services hosted without a composer) and
//!   the overall status (`""`) are `SERVING`.
//!
//! Statuses are re-read every [`INTERVAL`]; a change is published at once to `Watch` streams.
//! On shutdown every status becomes `NOT_SERVING` before the drain starts, so load balancers
//! stop sending new calls, and `Watch` streams end after delivering it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::snapshot::{Snapshot, Watched};

/// How often the statuses are re-read.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);

impl Watched {
    fn status(&self) -> ServingStatus {
        if self
            .upstreams
            .iter()
            .all(|upstream| upstream.balancer().has_ready_endpoint())
        {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    }
}

/// Publishes every service's status now, then whenever it changes, until dropped. The
/// services are those of the snapshot in force: after a reload, services no longer routed are
/// cleared (`Check` answers `NOT_FOUND` for them) and new ones are published.
pub(super) async fn watch(health: HealthReporter, current: Arc<ArcSwap<Snapshot>>) {
    health.set_service_status("", ServingStatus::Serving).await;
    let mut last: HashMap<String, ServingStatus> = HashMap::new();
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let snapshot = current.load_full();
        for watched in &snapshot.watched {
            let status = watched.status();
            let previous = last.insert(watched.service.clone(), status);
            if previous != Some(status) {
                if previous.is_some() {
                    tracing::info!(service = %watched.service, ?status, "health changed");
                }
                health.set_service_status(&watched.service, status).await;
            }
        }
        let gone: Vec<String> = last
            .keys()
            .filter(|service| !snapshot.watched.iter().any(|w| &w.service == *service))
            .cloned()
            .collect();
        for service in gone {
            last.remove(&service);
            health.clone().clear_service_status(&service).await;
        }
        drop(snapshot);
        ticks.tick().await;
    }
}

/// Reports every service `NOT_SERVING` (shutdown), and ends the `Watch` streams once they have
/// that status to deliver: a watcher's stream is a call in flight, and an endless one would
/// hold every drain to its timeout. `Check` still answers `NOT_SERVING` during the drain.
pub(super) async fn not_serving(health: &HealthReporter, services: &[String]) {
    let mut health = health.clone();
    let all = std::iter::once("").chain(services.iter().map(String::as_str));
    for service in all.clone() {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    for service in all {
        // A watcher still receives the unseen NOT_SERVING before its stream ends.
        health.clear_service_status(service).await;
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
}
