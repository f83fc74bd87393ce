//! Pass-through overhead: the same unary call made straight to a demo service and through the
//! gateway, measured in the same run, alternating rounds so machine noise hits both alike.
//!
//! ```sh
//! cargo bench -p mosaic-tests --bench passthrough
//! ```
//!
//! Prints, per round and as medians over rounds: throughput and p50/p99 for both paths, the
//! throughput ratio (gateway / direct) and the added p50 latency.
//!
//! Every answer is checked against the direct answer for the same user, fetched before the
//! runs; a call that fails or answers anything else counts as failed, and the benchmark stops
//! with an error naming the first such call: a fast gateway that answers wrong measures nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mosaic_demo_services::DemoService;
use mosaic_tests::Stack;
use mosaic_tests::load::{self, LoadReport, median};
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::pb::users::v1::{GetUserRequest, GetUserResponse};
use tonic::transport::Channel;

const ROUNDS: usize = 5;
const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(3);
/// Users asked for in turn (ids 1..=USERS), so answers differ from call to call.
const USERS: i64 = 64;

/// The direct answers, indexed by `id - 1`, and the first wrong or failed call seen.
struct Expected {
    answers: Vec<GetUserResponse>,
    first_failure: Mutex<Option<String>>,
}

impl Expected {
    async fn fetch(channel: Channel) -> anyhow::Result<Self> {
        let mut client = UserServiceClient::new(channel);
        let mut answers = Vec::new();
        for id in 1..=USERS {
            answers.push(client.get_user(GetUserRequest { id }).await?.into_inner());
        }
        Ok(Self {
            answers,
            first_failure: Mutex::new(None),
        })
    }

    fn fail(&self, what: String) {
        let mut first = self.first_failure.lock().expect("failure slot");
        first.get_or_insert(what);
    }
}

async fn measure(channel: Channel, concurrency: usize, expected: &Arc<Expected>) -> LoadReport {
    let next = Arc::new(AtomicUsize::new(0));
    load::run(concurrency, WARMUP, MEASURE, || {
        let client = UserServiceClient::new(channel.clone());
        let expected = Arc::clone(expected);
        let next = Arc::clone(&next);
        move || {
            let mut client = client.clone();
            let expected = Arc::clone(&expected);
            let index = next.fetch_add(1, Ordering::Relaxed) % expected.answers.len();
            async move {
                let id = index as i64 + 1;
                match client.get_user(GetUserRequest { id }).await {
                    Ok(response) if response.get_ref() == &expected.answers[index] => true,
                    Ok(response) => {
                        expected.fail(format!(
                            "GetUser {id} answered {:?}, the service itself {:?}",
                            response.get_ref(),
                            expected.answers[index]
                        ));
                        false
                    }
                    Err(status) => {
                        expected.fail(format!("GetUser {id} failed: {status:?}"));
                        false
                    }
                }
            }
        }
    })
    .await
}

/// Fails the benchmark if any call of the run failed or answered wrong.
fn check(path: &str, report: &LoadReport, expected: &Expected) -> anyhow::Result<()> {
    let first = expected.first_failure.lock().expect("failure slot").take();
    if report.failed > 0 || first.is_some() || report.ok == 0 {
        anyhow::bail!(
            "{path}: {} of {} calls failed or answered wrong; first: {}",
            report.failed,
            report.ok + report.failed,
            first
                .as_deref()
                .unwrap_or("none recorded (no call succeeded)")
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stack = Stack::start().await?;
        let expected = Arc::new(Expected::fetch(stack.direct(DemoService::Users)).await?);
        for concurrency in [1, 32] {
            println!("GetUser, {concurrency} concurrent callers, {ROUNDS} rounds of {MEASURE:?}");
            let (mut ratios, mut added_p50, mut direct_p50, mut via_p50) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for round in 1..=ROUNDS {
                let direct = measure(stack.direct(DemoService::Users), concurrency, &expected).await;
                check("direct", &direct, &expected)?;
                let via = measure(stack.via_gateway(), concurrency, &expected).await;
                check("gateway", &via, &expected)?;
                println!("  round {round} direct  {}", direct.summary());
                println!("  round {round} gateway {}", via.summary());
                ratios.push(via.throughput() / direct.throughput());
                let (d, v) = (
                    direct.quantile(0.5).as_secs_f64() * 1e6,
                    via.quantile(0.5).as_secs_f64() * 1e6,
                );
                direct_p50.push(d);
                via_p50.push(v);
                added_p50.push(v - d);
            }
            println!(
                "  median: throughput ratio gateway/direct {:.3}; p50 direct {:.1} µs, gateway {:.1} µs, added {:.1} µs",
                median(ratios),
                median(direct_p50),
                median(via_p50),
                median(added_p50)
            );
        }
        anyhow::Ok(())
    })
}
