//! The retry and hedging rules on paused time, with scripted attempts (no network: the
//! scripted `send` ignores the channel it is given).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::time::Instant;

use super::*;
use crate::config::UpstreamConfig;
use crate::config::{BudgetPolicy, Hedging, MethodPolicy, UpstreamPolicy};

const METHOD: &str = "demo.users.v1.UserService/GetUser";

fn upstream(policy: UpstreamPolicy) -> Upstream {
    Upstream::new(&UpstreamConfig {
        name: "users".into(),
        endpoints: vec!["http://127.0.0.1:1".parse().expect("uri")],
        services: vec!["demo.users.v1.UserService".into()],
        connect_timeout: Duration::from_millis(100),
        policy,
        tls: None,
    })
}

/// A budget that never runs out, so the attempt rules are tested alone.
fn generous() -> UpstreamPolicy {
    UpstreamPolicy {
        budget: BudgetPolicy {
            ratio: 1000.0,
            min_per_second: 1000,
            ttl: Duration::from_secs(10),
        },
        ..UpstreamPolicy::default()
    }
}

fn spec(idempotent: bool) -> CallSpec {
    CallSpec {
        step: "u",
        method: METHOD,
        timeout: None,
        defaults: MethodDefaults {
            idempotent,
            ..MethodDefaults::default()
        },
        retry: None,
        shareable: false,
    }
}

/// A failure whose message says it may be retried.
fn transient(status: &Status) -> bool {
    status.message().contains("transient")
}

/// A call policy: 4 attempts on `ABORTED` that says "transient", 10 ms then 20 ms backoff.
static ABORTED_TRANSIENT: CallRetry = CallRetry {
    max_attempts: 4,
    codes: &[Code::Aborted],
    initial_backoff: Some(Duration::from_millis(10)),
    max_backoff: Some(Duration::from_millis(20)),
    multiplier: Some(2.0),
    condition: Some(transient),
};

fn edge() -> EdgeCall {
    EdgeCall::with_budget("e.Edge/Get", Duration::from_secs(10))
}

/// Runs one call whose attempts answer from `script` in turn (the last answer repeats);
/// returns the result, each attempt's `grpc-previous-rpc-attempts` and when it was sent.
async fn run(
    upstream: &Upstream,
    spec: &CallSpec,
    call: &EdgeCall,
    script: Vec<Result<u32, Status>>,
) -> (Result<u32, Status>, Vec<(Option<String>, Duration)>) {
    let start = Instant::now();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let count = Arc::new(AtomicU32::new(0));
    let result = call_with_retries(
        call,
        upstream,
        spec,
        (),
        |_channel, request: Request<()>| {
            let previous = request
                .metadata()
                .get(PREVIOUS_ATTEMPTS)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            seen.lock().unwrap().push((previous, start.elapsed()));
            let n = count.fetch_add(1, Ordering::SeqCst) as usize;
            let answer = script[n.min(script.len() - 1)].clone();
            async move { answer.map(Response::new) }
        },
    )
    .await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

#[tokio::test(start_paused = true)]
async fn unavailable_is_retried_with_growing_jittered_backoff_and_attempt_headers() {
    let upstream = upstream(generous());
    let (result, seen) = run(
        &upstream,
        &spec(false),
        &edge(),
        vec![Err(Status::unavailable("down"))],
    )
    .await;
    assert_eq!(result.unwrap_err().code(), Code::Unavailable);
    let headers: Vec<Option<&str>> = seen.iter().map(|(h, _)| h.as_deref()).collect();
    assert_eq!(
        headers,
        [None, Some("1"), Some("2")],
        "3 attempts by default"
    );
    let first_gap = seen[1].1 - seen[0].1;
    let second_gap = seen[2].1 - seen[1].1;
    assert!(
        (Duration::from_millis(20)..=Duration::from_millis(30)).contains(&first_gap),
        "25ms ± 20 %: {first_gap:?}"
    );
    assert!(
        (Duration::from_millis(40)..=Duration::from_millis(60)).contains(&second_gap),
        "50ms ± 20 %: {second_gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_success_after_a_failure_is_returned() {
    let upstream = upstream(generous());
    let (result, seen) = run(
        &upstream,
        &spec(false),
        &edge(),
        vec![Err(Status::unavailable("down")), Ok(7)],
    )
    .await;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(seen.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn other_codes_are_retried_only_for_idempotent_methods() {
    let mut policy = generous();
    policy.retry.retryable_codes = vec![Code::DeadlineExceeded];
    let upstream = upstream(policy);
    let slow = || vec![Err(Status::deadline_exceeded("slow")), Ok(1)];
    let (result, seen) = run(&upstream, &spec(false), &edge(), slow()).await;
    assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(seen.len(), 1, "not idempotent: not retried");

    let (result, seen) = run(&upstream, &spec(true), &edge(), slow()).await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(seen.len(), 2, "idempotent: retried");

    let (_, seen) = run(
        &upstream,
        &spec(true),
        &edge(),
        vec![Err(Status::not_found("no such user"))],
    )
    .await;
    assert_eq!(seen.len(), 1, "codes not listed are final");
}

#[tokio::test(start_paused = true)]
async fn gateway_toml_overrides_the_proto_defaults_per_method() {
    let mut policy = generous();
    policy.methods.insert(
        METHOD.into(),
        MethodPolicy {
            idempotent: Some(false),
            retry: Some(RetryPolicy {
                max_attempts: 5,
                ..RetryPolicy::default()
            }),
            ..MethodPolicy::default()
        },
    );
    let upstream = upstream(policy);
    let (_, seen) = run(
        &upstream,
        &spec(true),
        &edge(),
        vec![Err(Status::unavailable("down"))],
    )
    .await;
    assert_eq!(seen.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_call_policy_retries_its_codes_under_its_condition_with_its_backoff() {
    let upstream = upstream(generous());
    let spec = CallSpec {
        retry: Some(&ABORTED_TRANSIENT),
        ..spec(false)
    };
    let aborted = || Err(Status::aborted("transient conflict"));
    let (result, seen) = run(&upstream, &spec, &edge(), vec![aborted()]).await;
    assert_eq!(result.unwrap_err().code(), Code::Aborted);
    assert_eq!(seen.len(), 4, "its attempts, for a method not idempotent");
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(
        (Duration::from_millis(8)..=Duration::from_millis(12)).contains(&gaps[0]),
        "10ms ± 20 %: {gaps:?}"
    );
    for gap in &gaps[1..] {
        assert!(
            (Duration::from_millis(16)..=Duration::from_millis(24)).contains(gap),
            "capped at 20ms ± 20 %: {gaps:?}"
        );
    }

    // The condition must hold too.
    let (_, seen) = run(
        &upstream,
        &spec,
        &edge(),
        vec![Err(Status::aborted("conflict"))],
    )
    .await;
    assert_eq!(seen.len(), 1, "the condition does not hold: not retried");
    // Codes it does not list are final, UNAVAILABLE included.
    let (_, seen) = run(
        &upstream,
        &spec,
        &edge(),
        vec![Err(Status::unavailable("transient"))],
    )
    .await;
    assert_eq!(seen.len(), 1, "UNAVAILABLE is not listed");
    let (result, seen) = run(&upstream, &spec, &edge(), vec![aborted(), Ok(3)]).await;
    assert_eq!((result.unwrap(), seen.len()), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn a_call_policy_stays_within_the_budget_and_yields_to_gateway_toml() {
    // A budget with no retries at all (no ratio, no floor): the call policy adds none.
    let mut policy = generous();
    policy.budget = BudgetPolicy {
        ratio: 0.0,
        min_per_second: 0,
        ttl: Duration::from_secs(10),
    };
    let spec = CallSpec {
        retry: Some(&ABORTED_TRANSIENT),
        ..spec(false)
    };
    let (_, seen) = run(
        &upstream(policy),
        &spec,
        &edge(),
        vec![Err(Status::aborted("transient"))],
    )
    .await;
    assert_eq!(seen.len(), 1, "an empty budget refuses every retry");

    let mut policy = generous();
    policy.methods.insert(
        METHOD.into(),
        MethodPolicy {
            retry: Some(RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            }),
            ..MethodPolicy::default()
        },
    );
    let upstream = upstream(policy);
    let (_, seen) = run(
        &upstream,
        &spec,
        &edge(),
        vec![Err(Status::unavailable("down"))],
    )
    .await;
    assert_eq!(seen.len(), 2, "gateway.toml's policy for the method wins");
    let (_, seen) = run(
        &upstream,
        &spec,
        &edge(),
        vec![Err(Status::aborted("transient"))],
    )
    .await;
    assert_eq!(seen.len(), 1, "and its codes: ABORTED is not retried");
}

#[tokio::test(start_paused = true)]
async fn pushback_sets_the_delay_or_forbids_the_retry() {
    let upstream = upstream(generous());
    let mut wait = Status::unavailable("busy");
    wait.metadata_mut()
        .insert(PUSHBACK, "300".parse().expect("ascii"));
    let (_, seen) = run(&upstream, &spec(false), &edge(), vec![Err(wait), Ok(1)]).await;
    assert_eq!(seen[1].1 - seen[0].1, Duration::from_millis(300));

    for refusal in ["-1", "soon"] {
        let mut stop = Status::unavailable("go away");
        stop.metadata_mut()
            .insert(PUSHBACK, refusal.parse().expect("ascii"));
        let (_, seen) = run(&upstream, &spec(false), &edge(), vec![Err(stop), Ok(1)]).await;
        assert_eq!(seen.len(), 1, "pushback {refusal:?} means no retry");
    }
}

#[tokio::test(start_paused = true)]
async fn local_rejections_are_not_retried() {
    let upstream = upstream(generous());
    let shed = LocalError::Overloaded {
        upstream: "users".into(),
        limit: 4,
    }
    .into_status();
    let (result, seen) = run(&upstream, &spec(true), &edge(), vec![Err(shed), Ok(1)]).await;
    assert_eq!(result.unwrap_err().code(), Code::ResourceExhausted);
    assert_eq!(seen.len(), 1);

    let no_endpoint = LocalError::NoReadyEndpoint {
        upstream: "users".into(),
        open: 1,
        total: 1,
        waited: Duration::ZERO,
    }
    .into_status();
    let (result, seen) = run(
        &upstream,
        &spec(true),
        &edge(),
        vec![Err(no_endpoint), Ok(1)],
    )
    .await;
    assert_eq!(result.unwrap_err().code(), Code::Unavailable);
    assert_eq!(seen.len(), 1, "an UNAVAILABLE decided locally is final");
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_edge_deadline() {
    let upstream = upstream(generous());
    let call = EdgeCall::with_budget("e.Edge/Get", Duration::from_millis(30));
    let (_, seen) = run(
        &upstream,
        &spec(false),
        &call,
        vec![Err(Status::unavailable("down"))],
    )
    .await;
    assert!(seen.len() <= 2, "{seen:?}");
    assert!(seen.iter().all(|(_, at)| *at < Duration::from_millis(30)));
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_at_its_share_of_calls() {
    let upstream = upstream(UpstreamPolicy {
        budget: BudgetPolicy {
            ratio: 0.2,
            min_per_second: 0,
            ttl: Duration::from_secs(10),
        },
        ..UpstreamPolicy::default()
    });
    let mut attempts = 0;
    for _ in 0..100 {
        let (_, seen) = run(
            &upstream,
            &spec(false),
            &edge(),
            vec![Err(Status::unavailable("down"))],
        )
        .await;
        attempts += seen.len();
    }
    assert!(
        (100..=120).contains(&attempts),
        "100 calls may add at most 20 retries: {attempts}"
    );
    assert!(attempts > 110, "and the budget is used: {attempts}");
}

#[tokio::test(start_paused = true)]
async fn hedging_sends_a_second_attempt_after_the_delay_and_the_first_good_answer_wins() {
    let mut policy = generous();
    policy.hedge = Hedging::On(HedgePolicy {
        delay: Duration::from_millis(50),
        max_attempts: 2,
    });
    let upstream = upstream(policy);
    let start = Instant::now();
    let cancelled = Arc::new(AtomicU32::new(0));
    let count = AtomicU32::new(0);
    struct Dropped(Arc<AtomicU32>, bool);
    impl Drop for Dropped {
        fn drop(&mut self) {
            if !self.1 {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let result = call_with_retries(&edge(), &upstream, &spec(true), (), |_, _| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        let guard = Dropped(Arc::clone(&cancelled), false);
        async move {
            let mut guard = guard;
            // The first attempt hangs for a second; the hedge answers in 10ms.
            let delay = if n == 0 { 1000 } else { 10 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            guard.1 = true;
            Ok::<_, Status>(Response::new(n))
        }
    })
    .await;
    assert_eq!(result.unwrap(), 1, "the hedge won");
    assert_eq!(start.elapsed(), Duration::from_millis(60));
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(
        cancelled.load(Ordering::SeqCst),
        1,
        "the loser was cancelled"
    );

    // A method that is not idempotent is never hedged.
    let count = AtomicU32::new(0);
    let result = call_with_retries(&edge(), &upstream, &spec(false), (), |_, _| {
        count.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, Status>(Response::new(0))
        }
    })
    .await;
    assert_eq!(result.unwrap(), 0);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_fatal_answer_ends_hedging_and_retryable_ones_let_the_others_run() {
    let mut policy = generous();
    policy.hedge = Hedging::On(HedgePolicy {
        delay: Duration::from_millis(20),
        max_attempts: 3,
    });
    let upstream = upstream(policy);
    // Attempt 0 fails retryably at 30ms; attempt 1 (sent at 20ms) answers NOT_FOUND at 35ms:
    // fatal, so it is the answer even though attempt 2 (due at 40ms) might succeed.
    let count = AtomicU32::new(0);
    let result: Result<u32, Status> =
        call_with_retries(&edge(), &upstream, &spec(true), (), |_, _| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        Err(Status::unavailable("down"))
                    }
                    1 => {
                        tokio::time::sleep(Duration::from_millis(15)).await;
                        Err(Status::not_found("no such user"))
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        Ok(Response::new(n))
                    }
                }
            }
        })
        .await;
    assert_eq!(result.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "no third attempt after a fatal answer"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shed_hedge_does_not_cancel_the_attempt_still_running() {
    let mut policy = generous();
    policy.hedge = Hedging::On(HedgePolicy {
        delay: Duration::from_millis(20),
        max_attempts: 3,
    });
    let upstream = upstream(policy);
    let count = AtomicU32::new(0);
    let start = Instant::now();
    let result = call_with_retries(&edge(), &upstream, &spec(true), (), |_, _| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(Response::new(0))
            } else {
                Err(LocalError::Overloaded {
                    upstream: "users".into(),
                    limit: 1,
                }
                .into_status())
            }
        }
    })
    .await;
    assert_eq!(result.unwrap(), 0, "the first attempt's answer");
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "no more hedges after a local rejection"
    );
}

#[tokio::test(start_paused = true)]
async fn the_upstream_switch_turns_off_hedging_asked_for_by_the_proto() {
    let upstream = upstream(UpstreamPolicy {
        hedge: Hedging::Off,
        ..generous()
    });
    let mut hedged = spec(true);
    hedged.defaults.hedge_delay = Some(Duration::from_millis(10));
    let count = AtomicU32::new(0);
    let result = call_with_retries(&edge(), &upstream, &hedged, (), |_, _| {
        count.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, Status>(Response::new(1))
        }
    })
    .await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Without the switch the annotation's hedge applies.
    let upstream = self::upstream(generous());
    let count = AtomicU32::new(0);
    call_with_retries(&edge(), &upstream, &hedged, (), |_, _| {
        count.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, Status>(Response::new(1))
        }
    })
    .await
    .unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2);
}
