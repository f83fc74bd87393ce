//! Endpoint discovery: static addresses, and host names re-resolved on an interval.
//!
//! An endpoint written as an IP address is one endpoint. One written as a host name
//! (`http://users.internal:50051`) becomes one endpoint per address the name resolves to, and
//! the name is resolved again every `dns_refresh`, so scaling a headless service up or down
//! changes the balancer's endpoints without a restart. Endpoints that stay keep their
//! connections, latency estimate and breaker. A failed lookup keeps the addresses from the last
//! good one: a DNS hiccup must not empty an upstream.
//!
//! Until the first lookup finishes, a host-name endpoint connects by name (resolved at each
//! connect), so the first calls never wait for discovery.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::uri::Authority;

use super::balance::Balancer;
use super::endpoint::{Endpoint, EndpointAddr};

/// What to resolve, and whether the refresh task is running.
#[derive(Debug)]
pub(crate) struct Discovery {
    targets: Vec<Target>,
    refresh: Duration,
    /// Set once the refresh task runs, or from the start when every endpoint is an IP address.
    started: AtomicBool,
}

#[derive(Debug)]
struct Target {
    authority: Authority,
    host: String,
    port: u16,
    /// Set for IP literals, which are never looked up.
    fixed: bool,
}

// === impl Discovery ===

impl Discovery {
    /// Discovery for the configured endpoint authorities; also returns the initial addresses.
    pub(crate) fn new(authorities: &[Authority], refresh: Duration) -> (Self, Vec<EndpointAddr>) {
        let mut targets = Vec::with_capacity(authorities.len());
        let mut initial = Vec::with_capacity(authorities.len());
        for authority in authorities {
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let port = authority.port_u16().unwrap_or(80);
            let fixed = host.parse::<IpAddr>().is_ok();
            initial.push(EndpointAddr {
                connect: format!("{}:{port}", authority.host()),
                authority: authority.clone(),
            });
            targets.push(Target {
                authority: authority.clone(),
                host: host.to_owned(),
                port,
                fixed,
            });
        }
        let nothing_to_resolve = targets.iter().all(|t| t.fixed);
        let discovery = Self {
            targets,
            refresh,
            started: AtomicBool::new(nothing_to_resolve),
        };
        (discovery, initial)
    }

    /// Whether the refresh task still has to be started (a cheap check for every call).
    pub(crate) fn pending(&self) -> bool {
        !self.started.load(Ordering::Acquire)
    }

    /// Starts the refresh task the first time it is called from a runtime, if any endpoint is
    /// a host name. The task ends when the balancer is dropped.
    pub(crate) fn start_once(
        self: &Arc<Self>,
        balancer: &Arc<Balancer>,
        make: Arc<dyn Fn(&EndpointAddr) -> Endpoint + Send + Sync>,
    ) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let discovery = Arc::clone(self);
        let balancer = Arc::downgrade(balancer);
        tokio::spawn(async move { discovery.run(balancer, make).await });
    }

    async fn run(
        self: Arc<Self>,
        balancer: Weak<Balancer>,
        make: Arc<dyn Fn(&EndpointAddr) -> Endpoint + Send + Sync>,
    ) {
        // Until a lookup succeeds, a name keeps its by-name endpoint.
        let mut last: Vec<Vec<EndpointAddr>> = self
            .targets
            .iter()
            .map(|target| vec![target.by_name()])
            .collect();
        loop {
            for (target, previous) in self.targets.iter().zip(&mut last) {
                if let Some(resolved) = target.resolve().await {
                    *previous = resolved;
                }
            }
            let Some(balancer) = balancer.upgrade() else {
                return;
            };
            let addrs: Vec<EndpointAddr> = last.iter().flatten().cloned().collect();
            if !addrs.is_empty() {
                balancer.update_endpoints(&addrs, |addr| make(addr));
            }
            drop(balancer);
            tokio::time::sleep(self.refresh).await;
        }
    }
}

// === impl Target ===

impl Target {
    /// The endpoint that connects by name (resolved at each connect).
    fn by_name(&self) -> EndpointAddr {
        EndpointAddr {
            connect: format!("{}:{}", self.authority.host(), self.port),
            authority: self.authority.clone(),
        }
    }

    /// The target's addresses; `None` when a lookup failed or found nothing.
    async fn resolve(&self) -> Option<Vec<EndpointAddr>> {
        if self.fixed {
            return Some(vec![self.by_name()]);
        }
        match tokio::net::lookup_host((self.host.as_str(), self.port)).await {
            Ok(addrs) => {
                let mut addrs: Vec<EndpointAddr> = addrs
                    .map(|addr| EndpointAddr {
                        connect: addr.to_string(),
                        authority: self.authority.clone(),
                    })
                    .collect();
                addrs.sort_by(|a, b| a.connect.cmp(&b.connect));
                addrs.dedup();
                (!addrs.is_empty()).then_some(addrs)
            }
            Err(error) => {
                tracing::warn!(host = %self.host, %error, "endpoint lookup failed; keeping the last addresses");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::resilience::breaker::BreakerPolicy;
    use crate::resilience::policy::UpstreamPolicy;

    type MakeEndpoint = Arc<dyn Fn(&EndpointAddr) -> Endpoint + Send + Sync>;

    fn make() -> MakeEndpoint {
        Arc::new(|addr: &EndpointAddr| {
            Endpoint::new(
                addr.clone(),
                1,
                Duration::from_millis(100),
                &BreakerPolicy::default(),
            )
        })
    }

    fn connects(balancer: &Balancer) -> Vec<String> {
        balancer
            .endpoints()
            .iter()
            .map(|endpoint| endpoint.addr().connect.clone())
            .collect()
    }

    fn addr(connect: &str, authority: &str) -> EndpointAddr {
        EndpointAddr {
            connect: connect.to_owned(),
            authority: authority.parse().expect("authority"),
        }
    }

    /// Replaces the balancer's endpoints behind discovery's back, as if the name's addresses
    /// had changed since the last lookup: `127.0.0.2` in place of what `localhost` resolves to,
    /// beside the endpoint for `127.0.0.1:50053`, which stays (and must keep its state).
    fn go_stale(balancer: &Balancer, make: &MakeEndpoint) -> Arc<Endpoint> {
        let kept = balancer
            .endpoints()
            .iter()
            .find(|endpoint| endpoint.addr().connect == "127.0.0.1:50053")
            .cloned()
            .expect("localhost resolved to 127.0.0.1");
        balancer.update_endpoints(
            &[
                addr("127.0.0.2:50053", "localhost:50053"),
                kept.addr().clone(),
                addr("127.0.0.1:50054", "127.0.0.1:50054"),
            ],
            |addr| make(addr),
        );
        kept
    }

    /// Whether the balancer holds what a lookup of `localhost` gives (and not the stale set).
    fn resolved(balancer: &Balancer) -> bool {
        let connects = connects(balancer);
        connects.iter().any(|c| c == "127.0.0.1:50053")
            && connects.iter().any(|c| c == "127.0.0.1:50054")
            && !connects
                .iter()
                .any(|c| c == "127.0.0.2:50053" || c == "localhost:50053")
    }

    // Paused time: lookups run on the blocking pool, and paused time does not auto-advance
    // while one runs, so a refresh always completes at the virtual instant it started.
    #[tokio::test(start_paused = true)]
    async fn a_host_name_is_resolved_again_every_refresh_and_the_endpoints_follow() {
        const REFRESH: Duration = Duration::from_secs(30);
        const TICK: Duration = Duration::from_millis(1);
        let authorities: Vec<Authority> = ["localhost:50053", "127.0.0.1:50054"]
            .iter()
            .map(|a| a.parse().expect("authority"))
            .collect();
        let (discovery, initial) = Discovery::new(&authorities, REFRESH);
        let discovery = Arc::new(discovery);
        let make = make();
        let balancer = Arc::new(Balancer::new(
            "users".into(),
            Arc::new(UpstreamPolicy::default()),
            initial.iter().map(|addr| make(addr)).collect(),
        ));
        // Until the first lookup, the name is one endpoint that connects by name.
        assert_eq!(connects(&balancer), ["localhost:50053", "127.0.0.1:50054"]);
        assert!(discovery.pending());

        let began = Instant::now();
        discovery.start_once(&balancer, Arc::clone(&make));
        assert!(!discovery.pending());
        discovery.start_once(&balancer, Arc::clone(&make));
        assert_eq!(Arc::strong_count(&discovery), 2, "one refresh task");
        tokio::time::sleep(TICK).await;
        assert!(resolved(&balancer), "{:?}", connects(&balancer));
        for endpoint in balancer.endpoints().iter() {
            let expected = if endpoint.addr().connect.ends_with(":50053") {
                "localhost:50053"
            } else {
                "127.0.0.1:50054"
            };
            assert_eq!(endpoint.addr().authority.as_str(), expected);
        }

        // Each refresh, and not before: the name is looked up again and the endpoint set
        // replaced by its addresses; endpoints present before and after are kept as they are.
        for refresh in 1..=3u32 {
            let kept = go_stale(&balancer, &make);
            assert!(!resolved(&balancer));
            tokio::time::sleep_until(began + REFRESH * refresh - TICK).await;
            assert!(
                !resolved(&balancer),
                "refresh {refresh}: looked up again before the interval: {:?}",
                connects(&balancer)
            );
            tokio::time::sleep_until(began + REFRESH * refresh + TICK).await;
            assert!(
                resolved(&balancer),
                "refresh {refresh}: not looked up again at the interval: {:?}",
                connects(&balancer)
            );
            let now_kept = balancer
                .endpoints()
                .iter()
                .find(|endpoint| endpoint.addr().connect == "127.0.0.1:50053")
                .cloned()
                .expect("resolved");
            assert!(
                Arc::ptr_eq(&kept, &now_kept),
                "an endpoint that stays keeps its connections, load and breaker"
            );
        }

        // The task ends at its next wake-up once the balancer is gone.
        drop(balancer);
        tokio::time::sleep_until(began + REFRESH * 4 + TICK).await;
        assert_eq!(Arc::strong_count(&discovery), 1, "the refresh task ended");
    }

    #[test]
    fn ip_literals_are_fixed_and_names_are_looked_up() {
        let authorities: Vec<Authority> = ["127.0.0.1:50051", "[::1]:50052", "localhost:50053"]
            .iter()
            .map(|a| a.parse().expect("authority"))
            .collect();
        let (discovery, initial) = Discovery::new(&authorities, Duration::from_secs(30));
        let fixed: Vec<bool> = discovery.targets.iter().map(|t| t.fixed).collect();
        assert_eq!(fixed, [true, true, false]);
        let connect: Vec<&str> = initial.iter().map(|a| a.connect.as_str()).collect();
        assert_eq!(
            connect,
            ["127.0.0.1:50051", "[::1]:50052", "localhost:50053"]
        );
    }

    #[tokio::test]
    async fn a_name_resolves_to_one_endpoint_per_address() {
        let authorities = ["localhost:50053".parse().expect("authority")];
        let (discovery, _) = Discovery::new(&authorities, Duration::from_secs(30));
        let resolved = discovery.targets[0]
            .resolve()
            .await
            .expect("localhost resolves");
        assert!(
            resolved.iter().all(|a| a.connect.ends_with(":50053")
                && a.authority.as_str() == "localhost:50053"),
            "{resolved:?}"
        );
        assert!(
            resolved.iter().any(|a| a.connect == "127.0.0.1:50053"),
            "{resolved:?}"
        );
    }
}
