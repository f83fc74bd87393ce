//! Pass-through overhead: the same unary call made straight to a demo service and through the
//! gateway, measured in the same run, alternating rounds so machine noise hits both alike.
//!
//! ```sh
//! cargo bench -p mosaic-tests --bench passthrough
//! ```
//!
//! Prints, per round and as medians over rounds: throughput and p50/p99 for both paths, the
//! throughput ratio (gateway / direct) and the added p50 latency.

use std::time::Duration;

use mosaic_demo_services::DemoService;
use mosaic_tests::Stack;
use mosaic_tests::load::{self, LoadReport, median};
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use tonic::transport::Channel;

const ROUNDS: usize = 5;
const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(3);

async fn measure(channel: Channel, concurrency: usize) -> LoadReport {
    load::run(concurrency, WARMUP, MEASURE, || {
        let client = UserServiceClient::new(channel.clone());
        move || {
            let mut client = client.clone();
            async move { client.get_user(GetUserRequest { id: 42 }).await.is_ok() }
        }
    })
    .await
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stack = Stack::start().await?;
        for concurrency in [1, 32] {
            println!("GetUser, {concurrency} concurrent callers, {ROUNDS} rounds of {MEASURE:?}");
            let (mut ratios, mut added_p50, mut direct_p50, mut via_p50) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for round in 1..=ROUNDS {
                let direct = measure(stack.direct(DemoService::Users), concurrency).await;
                let via = measure(stack.via_gateway(), concurrency).await;
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
