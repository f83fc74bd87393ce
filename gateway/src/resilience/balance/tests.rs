//! The balancer on paused time: picking, ejection, waiting, probes and their life cycle.

use http::HeaderMap;

use super::call::{CallGuard, outcome_of};
use super::*;
use crate::resilience::breaker::BreakerPolicy;
use crate::resilience::endpoint::EndpointAddr;

fn balancer(endpoints: usize, policy: UpstreamPolicy) -> Arc<Balancer> {
    let endpoints = (0..endpoints)
        .map(|i| {
            let authority: http::uri::Authority =
                format!("127.0.0.1:{}", 1 + i).parse().expect("authority");
            Endpoint::new(
                EndpointAddr {
                    connect: authority.to_string(),
                    authority,
                },
                1,
                Duration::from_millis(100),
                &policy.breaker,
            )
        })
        .collect();
    Arc::new(Balancer::new("users".into(), Arc::new(policy), endpoints))
}

fn policy() -> UpstreamPolicy {
    UpstreamPolicy {
        ready_timeout: Duration::from_millis(200),
        breaker: BreakerPolicy {
            consecutive_failures: 2,
            failure_rate: None,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(4),
        },
        ..UpstreamPolicy::default()
    }
}

fn port(endpoint: &Endpoint) -> u16 {
    endpoint.addr().authority.port_u16().unwrap_or_default()
}

fn fail(balancer: &Balancer, index: usize, times: usize) {
    let endpoint = Arc::clone(&balancer.endpoints()[index]);
    for _ in 0..times {
        let ticket = endpoint.health().breaker.acquire(Instant::now());
        if let Some(ticket) = ticket {
            balancer.record(&endpoint, ticket, Outcome::Failure);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn two_choices_take_the_cheaper_endpoint() {
    let balancer = balancer(2, policy());
    let now = Instant::now();
    let endpoints = balancer.endpoints();
    endpoints[0]
        .health()
        .ewma
        .observe(Duration::from_millis(100), now);
    endpoints[1]
        .health()
        .ewma
        .observe(Duration::from_millis(1), now);
    for _ in 0..50 {
        let (endpoint, _) = balancer.pick(now, &[]).expect("ready");
        assert_eq!(port(&endpoint), 2, "the fast endpoint");
    }
    // Enough calls outstanding make the fast one the more expensive.
    endpoints[1].in_flight.store(200, Ordering::Relaxed);
    let (endpoint, _) = balancer.pick(now, &[]).expect("ready");
    assert_eq!(port(&endpoint), 1);
}

#[tokio::test(start_paused = true)]
async fn a_new_endpoint_competes_on_outstanding_calls_until_measured() {
    let balancer = balancer(2, policy());
    let now = Instant::now();
    let endpoints = balancer.endpoints();
    // A fast, measured endpoint and a new one still at the 30 ms starting guess.
    endpoints[0]
        .health()
        .ewma
        .observe(Duration::from_micros(200), now);
    endpoints[0].in_flight.store(3, Ordering::Relaxed);
    let (endpoint, _) = balancer.pick(now, &[]).expect("ready");
    assert_eq!(port(&endpoint), 2, "not starved by its guess");
    endpoints[0].in_flight.store(0, Ordering::Relaxed);
    endpoints[1].in_flight.store(1, Ordering::Relaxed);
    let (endpoint, _) = balancer.pick(now, &[]).expect("ready");
    assert_eq!(port(&endpoint), 1, "nor flooded");
}

#[tokio::test(start_paused = true)]
async fn open_endpoints_are_skipped_and_ejection_is_capped() {
    let balancer = balancer(3, policy());
    fail(&balancer, 0, 2);
    assert!(balancer.endpoints()[0].open.load(Ordering::Relaxed));
    // One of three may be ejected: the second bad endpoint stays in rotation.
    fail(&balancer, 1, 5);
    assert!(!balancer.endpoints()[1].open.load(Ordering::Relaxed));
    assert_eq!(balancer.ejected.load(Ordering::Relaxed), 1);
    for _ in 0..100 {
        let (endpoint, _) = balancer.pick(Instant::now(), &[]).expect("ready");
        assert_ne!(port(&endpoint), 1, "the open endpoint is never picked");
    }
    assert!(balancer.has_ready_endpoint());
}

#[tokio::test(start_paused = true)]
async fn with_every_endpoint_open_calls_wait_boundedly_then_fail_fast() {
    let balancer = balancer(1, policy());
    fail(&balancer, 0, 2);
    assert!(!balancer.has_ready_endpoint());

    let start = Instant::now();
    let error = balancer.ready(None, &[]).await.expect_err("nothing ready");
    assert_eq!(start.elapsed(), Duration::from_millis(200), "ready_timeout");
    assert_eq!(error.code(), tonic::Code::Unavailable);
    assert_eq!(
        error.to_string(),
        "upstream `users` has no ready endpoint (1 of 1 ejected by circuit breakers; waited 200ms)"
    );

    // The upstream has now been unready for a whole ready_timeout: no more waiting.
    let again = Instant::now();
    balancer.ready(None, &[]).await.expect_err("still nothing");
    assert_eq!(again.elapsed(), Duration::ZERO, "fail fast");

    // The probe comes due at 1 s; one caller gets it, the others keep failing fast.
    tokio::time::advance(Duration::from_millis(800)).await;
    assert!(balancer.has_ready_endpoint());
    let (_, ticket) = balancer.ready(None, &[]).await.expect("the probe");
    assert_eq!(ticket, Ticket::Probe);
    balancer
        .ready(None, &[])
        .await
        .expect_err("one probe at a time");
}

#[tokio::test(start_paused = true)]
async fn waiting_never_outlasts_the_call_deadline_and_a_probe_due_ends_the_wait() {
    let first = balancer(1, policy());
    fail(&first, 0, 2);
    let start = Instant::now();
    let deadline = start + Duration::from_millis(50);
    let error = first
        .ready(
            Some(Deadline {
                at: deadline,
                timeout: Duration::from_millis(50),
            }),
            &[],
        )
        .await
        .expect_err("nothing ready");
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(
        error.code(),
        tonic::Code::DeadlineExceeded,
        "the deadline, not the wait, ran out: {error}"
    );

    // A fresh upstream whose probe is due in 100 ms: a waiting call gets it then.
    let policy = UpstreamPolicy {
        ready_timeout: Duration::from_secs(5),
        ..policy()
    };
    let balancer = balancer(1, policy);
    fail(&balancer, 0, 2);
    tokio::time::advance(Duration::from_millis(900)).await;
    let start = Instant::now();
    let (_, ticket) = balancer.ready(None, &[]).await.expect("the probe");
    assert_eq!(ticket, Ticket::Probe);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_closes_the_breaker_and_returns_the_slot() {
    let balancer = balancer(1, policy());
    fail(&balancer, 0, 2);
    tokio::time::advance(Duration::from_secs(1)).await;
    let (endpoint, ticket) = balancer.ready(None, &[]).await.expect("the probe");
    balancer.record(&endpoint, ticket, Outcome::Success);
    assert!(!endpoint.open.load(Ordering::Relaxed));
    assert_eq!(balancer.ejected.load(Ordering::Relaxed), 0);
    let (_, ticket) = balancer.ready(None, &[]).await.expect("closed");
    assert_eq!(ticket, Ticket::Regular);
}

#[tokio::test(start_paused = true)]
async fn endpoints_already_tried_are_not_picked_again() {
    let balancer = balancer(3, policy());
    let endpoints = balancer.endpoints();
    let tried = [Arc::clone(&endpoints[0]), Arc::clone(&endpoints[2])];
    for _ in 0..20 {
        let (endpoint, _) = balancer.pick(Instant::now(), &tried).expect("ready");
        assert_eq!(port(&endpoint), 2);
    }
    let all: Vec<_> = endpoints.iter().cloned().collect();
    let error = balancer.ready(None, &all).await.expect_err("all tried");
    assert_eq!(error.code(), tonic::Code::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_at_its_deadline_counts_as_a_failure_and_an_early_drop_does_not() {
    let balancer = balancer(1, policy());
    let endpoint = Arc::clone(&balancer.endpoints()[0]);
    let guard = |deadline: Instant| {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        CallGuard {
            balancer: Arc::clone(&balancer),
            endpoint: Arc::clone(&endpoint),
            ticket: Ticket::Regular,
            deadline: Some(deadline),
            origin: None,
            finished: false,
            sent: None,
            code: None,
            waiting: None,
            span: None,
        }
    };
    // Cancelled by its caller long before the deadline: says nothing about the endpoint.
    for _ in 0..3 {
        drop(guard(Instant::now() + Duration::from_secs(1)));
    }
    assert!(!endpoint.open.load(Ordering::Relaxed));
    // Dropped at the deadline twice: a hung endpoint, ejected.
    for _ in 0..2 {
        drop(guard(Instant::now()));
    }
    assert!(endpoint.open.load(Ordering::Relaxed));
    assert_eq!(endpoint.in_flight.load(Ordering::Relaxed), 0);
    assert!(
        endpoint.health().ewma.estimate_ns(Instant::now()) >= 1e9,
        "the failure penalty steers picks away"
    );
}

/// An open single-endpoint upstream whose probe is due now.
async fn probe_due() -> Arc<Balancer> {
    let balancer = balancer(1, policy());
    fail(&balancer, 0, 2);
    // Unready for a whole ready_timeout: calls fail fast from here on.
    balancer.ready(None, &[]).await.expect_err("nothing ready");
    tokio::time::advance(Duration::from_millis(800)).await;
    balancer
}

fn guard_for(balancer: &Arc<Balancer>, ticket: Ticket, deadline: Instant) -> CallGuard {
    let endpoint = Arc::clone(&balancer.endpoints()[0]);
    endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
    CallGuard {
        balancer: Arc::clone(balancer),
        endpoint,
        ticket,
        deadline: Some(deadline),
        origin: None,
        finished: false,
        sent: None,
        code: None,
        waiting: None,
        span: None,
    }
}

#[tokio::test(start_paused = true)]
async fn calls_wait_for_a_probe_in_flight_and_proceed_when_it_succeeds() {
    let balancer = probe_due().await;
    let (endpoint, ticket) = balancer.ready(None, &[]).await.expect("the probe");
    assert_eq!(ticket, Ticket::Probe);
    // The upstream has had no ready endpoint for longer than ready_timeout, yet a sibling
    // call arriving while the probe is out waits for it instead of failing fast.
    let start = Instant::now();
    let sibling = tokio::spawn({
        let balancer = Arc::clone(&balancer);
        async move {
            let picked = balancer.ready(None, &[]).await;
            (picked.map(|(_, ticket)| ticket), start.elapsed())
        }
    });
    tokio::time::advance(Duration::from_millis(30)).await;
    assert!(!sibling.is_finished(), "waits for the probe's outcome");
    balancer.record(&endpoint, ticket, Outcome::Success);
    let (picked, waited) = sibling.await.expect("task");
    assert_eq!(picked.expect("closed"), Ticket::Regular);
    assert_eq!(
        waited,
        Duration::from_millis(30),
        "woken by the probe's success"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_lets_waiting_calls_fail_at_once() {
    let balancer = probe_due().await;
    let (endpoint, ticket) = balancer.ready(None, &[]).await.expect("the probe");
    let start = Instant::now();
    let sibling = tokio::spawn({
        let balancer = Arc::clone(&balancer);
        async move {
            let picked = balancer.ready(None, &[]).await;
            (picked.map(|(_, ticket)| ticket), start.elapsed())
        }
    });
    tokio::time::advance(Duration::from_millis(30)).await;
    balancer.record(&endpoint, ticket, Outcome::Failure);
    let (picked, waited) = sibling.await.expect("task");
    let error = picked.expect_err("reopened");
    assert_eq!(error.code(), tonic::Code::Unavailable);
    assert_eq!(
        waited,
        Duration::from_millis(30),
        "no wait past the failed probe"
    );
    // The failed probe doubled the backoff: the next one is due 2 s later.
    assert_eq!(
        endpoint.health().breaker.readiness(Instant::now()),
        super::super::breaker::Readiness::NotReady {
            until: Some(Instant::now() + Duration::from_secs(2))
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_cancelled_early_goes_to_a_waiting_call_at_once() {
    let balancer = probe_due().await;
    let (_, ticket) = balancer.ready(None, &[]).await.expect("the probe");
    let probe = guard_for(&balancer, ticket, Instant::now() + Duration::from_secs(5));
    let sibling = tokio::spawn({
        let balancer = Arc::clone(&balancer);
        async move { balancer.ready(None, &[]).await.map(|(_, ticket)| ticket) }
    });
    tokio::time::advance(Duration::from_millis(5)).await;
    assert!(!sibling.is_finished());
    // The probe's edge call failed for another reason and dropped it before any answer.
    drop(probe);
    let ticket = sibling.await.expect("task").expect("the probe, handed on");
    assert_eq!(ticket, Ticket::Probe);
    assert!(balancer.endpoints()[0].open.load(Ordering::Relaxed));
}

#[tokio::test(start_paused = true)]
async fn a_probe_claimed_after_its_deadline_passed_is_handed_back_unsent() {
    let balancer = probe_due().await;
    let mut request = Request::new(RequestBody::empty());
    request.extensions_mut().insert(Deadline {
        at: Instant::now(),
        timeout: Duration::from_millis(50),
    });
    let error = Arc::clone(&balancer)
        .send(request)
        .await
        .expect_err("no time left");
    assert_eq!(error.code(), tonic::Code::DeadlineExceeded);
    // Neither lost (stuck probing) nor counted as a failed probe: still due, at once.
    let (_, ticket) = balancer.ready(None, &[]).await.expect("probe still due");
    assert_eq!(ticket, Ticket::Probe);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_expires_counts_and_backs_off() {
    let balancer = probe_due().await;
    let (endpoint, ticket) = balancer.ready(None, &[]).await.expect("the probe");
    drop(guard_for(&balancer, ticket, Instant::now()));
    assert_eq!(
        endpoint.health().breaker.readiness(Instant::now()),
        super::super::breaker::Readiness::NotReady {
            until: Some(Instant::now() + Duration::from_secs(2))
        }
    );
}

#[tokio::test(start_paused = true)]
async fn the_calls_of_one_edge_call_that_expire_together_count_once() {
    let balancer = balancer(1, policy());
    let endpoint = Arc::clone(&balancer.endpoints()[0]);
    let expire = |origin: u64| {
        let mut guard = guard_for(&balancer, Ticket::Regular, Instant::now());
        guard.origin = Some(EdgeCallId(origin));
        drop(guard);
    };
    // One edge call's fan-out of twenty calls all expire: one failure (threshold 2).
    for _ in 0..20 {
        expire(7);
    }
    assert!(
        !endpoint.open.load(Ordering::Relaxed),
        "one edge call, one failure"
    );
    // A second edge call expiring makes two in a row: the endpoint is slow, ejected.
    expire(8);
    assert!(endpoint.open.load(Ordering::Relaxed));
    assert_eq!(endpoint.in_flight.load(Ordering::Relaxed), 0);
}

#[test]
fn grpc_status_is_classified_by_what_it_says_about_the_endpoint() {
    let headers = |code: &str| {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", code.parse().expect("ascii"));
        map
    };
    for code in ["14", "13", "2", "15"] {
        assert_eq!(outcome_of(&headers(code)), Some(Outcome::Failure), "{code}");
    }
    for code in ["0", "5", "3", "4", "8"] {
        assert_eq!(outcome_of(&headers(code)), Some(Outcome::Success), "{code}");
    }
    assert_eq!(outcome_of(&HeaderMap::new()), None);
}
