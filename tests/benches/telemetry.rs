//! What recording metrics and traces costs: the same calls through gateways with `[metrics]`
//! off, on, and on with `[tracing]` sampling 1 % and 100 % of traces (exported over OTLP/gRPC
//! to a receiver in the process), and for pass-through straight to the service, in alternating
//! rounds of one run.
//!
//! ```sh
//! cargo bench -p mosaic-tests --bench telemetry
//! ```
//!
//! Everything runs in one process (the four demo services, both gateways, the callers), so
//! process CPU per call covers all of it. The pass-through scenario also measures the direct
//! call, which gives the gateway's own CPU per call (through a gateway minus direct) and so the
//! cost of metrics as a share of what the gateway spends, not of the whole process. Every call
//! must succeed, or the run stops.

use std::time::Duration;

use mosaic_demo_services::{DemoService, FaultConfig, ServiceHandle};
use mosaic_tests::load::{self, LoadReport, median};
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::storefront::GetProductPageRequest;
use mosaic_tests::storefront::storefront_client::StorefrontClient;
use mosaic_tests::{channel, gateway_toml, start_gateway};
use tonic::transport::Channel;

const ROUNDS: usize = 16;
const WARMUP: Duration = Duration::from_millis(300);
const MEASURE: Duration = Duration::from_millis(1500);

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// `UserService/GetUser`, passed through, 32 callers.
    PassThrough,
    /// `Storefront/GetProductPage` with 5 reviews (9 downstream calls), 16 callers.
    Composed,
}

struct Target {
    name: &'static str,
    channel: Channel,
    rounds: Vec<(LoadReport, f64)>,
}

async fn round(scenario: Scenario, channel: &Channel) -> anyhow::Result<(LoadReport, f64)> {
    let channel = channel.clone();
    let mut worker = 0i64;
    let concurrency = match scenario {
        Scenario::PassThrough => 32,
        Scenario::Composed => 16,
    };
    let load = load::run(concurrency, WARMUP, MEASURE, move || {
        worker += 1;
        let mut next = worker;
        let channel = channel.clone();
        move || {
            next += 1;
            let channel = channel.clone();
            let id = next % 64 + 1;
            async move {
                match scenario {
                    Scenario::PassThrough => UserServiceClient::new(channel)
                        .get_user(GetUserRequest { id })
                        .await
                        .is_ok(),
                    Scenario::Composed => StorefrontClient::new(channel)
                        .get_product_page(GetProductPageRequest {
                            product_id: [7, 12, 23, 41][(id % 4) as usize],
                            review_limit: 5,
                        })
                        .await
                        .is_ok(),
                }
            }
        }
    });
    let (load, cpu) = tokio::join!(load, load::cpu_during(WARMUP, MEASURE));
    anyhow::ensure!(
        load.failed == 0 && load.ok > 0,
        "{} of {} calls failed",
        load.failed,
        load.ok + load.failed
    );
    let cpu = cpu.ok_or_else(|| anyhow::anyhow!("no /proc/self/stat to read CPU time from"))?;
    let per_call = cpu.as_secs_f64() * 1e6 / load.ok as f64;
    Ok((load, per_call))
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut services: Vec<ServiceHandle> = Vec::new();
        for service in DemoService::ALL {
            services.push(
                mosaic_demo_services::start(
                    service,
                    mosaic_tests::loopback(),
                    FaultConfig::default(),
                )
                .await?,
            );
        }
        let endpoints: Vec<_> = services
            .iter()
            .map(|handle| (handle.service(), handle.endpoint()))
            .collect();
        let config = gateway_toml(&endpoints);
        let on = start_gateway(&config).await?;
        let off = start_gateway(&format!("{config}\n[metrics]\nenabled = false\n")).await?;
        let (receiver, endpoint) = mosaic_tests::otlp::Receiver::start().await;
        let traced = |sampling: f64| {
            format!(
                "{config}\n[tracing]\nendpoint = \"{endpoint}\"\nsampling = {sampling}\n\
                 export_interval = \"1s\"\n"
            )
        };
        let sampled_1 = start_gateway(&traced(0.01)).await?;
        let sampled_all = start_gateway(&traced(1.0)).await?;
        let users = services
            .iter()
            .find(|handle| handle.service() == DemoService::Users)
            .map(|handle| channel(handle.local_addr()))
            .ok_or_else(|| anyhow::anyhow!("no users service"))?;

        for scenario in [Scenario::PassThrough, Scenario::Composed] {
            let mut targets = vec![
                Target {
                    name: "metrics off",
                    channel: channel(off.local_addr()),
                    rounds: Vec::new(),
                },
                Target {
                    name: "metrics on",
                    channel: channel(on.local_addr()),
                    rounds: Vec::new(),
                },
                Target {
                    name: "traced 1%",
                    channel: channel(sampled_1.local_addr()),
                    rounds: Vec::new(),
                },
                Target {
                    name: "traced 100%",
                    channel: channel(sampled_all.local_addr()),
                    rounds: Vec::new(),
                },
            ];
            if scenario == Scenario::PassThrough {
                targets.insert(
                    0,
                    Target {
                        name: "direct",
                        channel: users.clone(),
                        rounds: Vec::new(),
                    },
                );
            }
            println!(
                "{}: {ROUNDS} rounds of {MEASURE:?} after {WARMUP:?}, targets in rotating order",
                match scenario {
                    Scenario::PassThrough => "pass-through GetUser, 32 callers",
                    Scenario::Composed =>
                        "composed GetProductPage (9 downstream calls), 16 callers",
                }
            );
            for index in 0..ROUNDS {
                for offset in 0..targets.len() {
                    let position = (index + offset) % targets.len();
                    let target = &mut targets[position];
                    let measured = round(scenario, &target.channel).await?;
                    println!(
                        "  round {:>2} {:<12} {}  CPU {:>6.1} µs/call",
                        index + 1,
                        target.name,
                        measured.0.summary(),
                        measured.1
                    );
                    target.rounds.push(measured);
                }
            }
            report(&targets);
        }
        for gateway in [on, off, sampled_1, sampled_all] {
            gateway.shutdown().await;
        }
        println!(
            "{} spans received by the OTLP receiver",
            receiver.spans().len()
        );
        Ok(())
    })
}

fn report(targets: &[Target]) {
    let by_name = |name: &str| targets.iter().find(|target| target.name == name);
    println!("  medians:");
    for target in targets {
        let throughput = median(target.rounds.iter().map(|r| r.0.throughput()).collect());
        let cpu = median(target.rounds.iter().map(|r| r.1).collect());
        println!(
            "    {:<12} {throughput:>8.0} calls/s  CPU {cpu:>6.1} µs/call",
            target.name
        );
    }
    let per_round = |f: &dyn Fn(usize) -> f64| median((0..ROUNDS).map(f).collect());
    for (with, without) in [
        ("metrics on", "metrics off"),
        ("traced 1%", "metrics on"),
        ("traced 100%", "metrics on"),
    ] {
        let (Some(with), Some(without)) = (by_name(with), by_name(without)) else {
            continue;
        };
        let throughput =
            per_round(&|i| with.rounds[i].0.throughput() / without.rounds[i].0.throughput());
        let cpu = per_round(&|i| with.rounds[i].1 / without.rounds[i].1);
        print!(
            "    {} / {} (medians of per-round ratios): throughput {throughput:.3}, CPU per call \
             {cpu:.3} (whole process)",
            with.name, without.name
        );
        if let Some(direct) = by_name("direct") {
            let share = per_round(&|i| {
                (with.rounds[i].1 - direct.rounds[i].1) / (without.rounds[i].1 - direct.rounds[i].1)
            });
            print!(", {share:.3} of the gateway's own CPU per call (through it minus direct)");
        }
        println!();
    }
}
