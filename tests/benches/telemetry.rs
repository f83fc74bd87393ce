//! What recording metrics and traces costs: the same calls through gateways with `[metrics]`
//! off, on, and on with `[tracing]` sampling 1 % and 100 % of traces (exported over OTLP/gRPC
//! to a receiver in the process), and for pass-through straight to the service, in alternating
//! rounds of one run.
//!
//! ```sh
//! cargo bench -p mosaic-tests --bench telemetry
//! TELEMETRY_ROUNDS=40 TELEMETRY_SCENARIO=pass-through cargo bench -p mosaic-tests --bench telemetry
//! ```
//!
//! `TELEMETRY_ROUNDS` sets the rounds per scenario (16 by default; more narrow the medians on a
//! noisy machine), `TELEMETRY_SCENARIO` runs only `pass-through` or `composed`.
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

/// Rounds per scenario unless `TELEMETRY_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 16;
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
        // Two gateways of each metrics setting: gateways built alike still differ by a few
        // percent in CPU per call in one process (which cores their connections' tasks land
        // on), so each setting is the mean of two, and the two "on" ones calibrate that spread.
        let on = start_gateway(&config).await?;
        let on_2 = start_gateway(&config).await?;
        let off_config = format!("{config}\n[metrics]\nenabled = false\n");
        let off = start_gateway(&off_config).await?;
        let off_2 = start_gateway(&off_config).await?;
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

        let rounds: usize = std::env::var("TELEMETRY_ROUNDS")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(DEFAULT_ROUNDS);
        let only = std::env::var("TELEMETRY_SCENARIO").ok();
        for scenario in [Scenario::PassThrough, Scenario::Composed] {
            let name = match scenario {
                Scenario::PassThrough => "pass-through",
                Scenario::Composed => "composed",
            };
            if only.as_deref().is_some_and(|only| only != name) {
                continue;
            }
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
                    name: "metrics off 2",
                    channel: channel(off_2.local_addr()),
                    rounds: Vec::new(),
                },
                Target {
                    name: "metrics on 2",
                    channel: channel(on_2.local_addr()),
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
                "{}: {rounds} rounds of {MEASURE:?} after {WARMUP:?}, targets in rotating order",
                match scenario {
                    Scenario::PassThrough => "pass-through GetUser, 32 callers",
                    Scenario::Composed =>
                        "composed GetProductPage (9 downstream calls), 16 callers",
                }
            );
            for index in 0..rounds {
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
            report(&targets, rounds);
        }
        for gateway in [on, on_2, off, off_2, sampled_1, sampled_all] {
            gateway.shutdown().await;
        }
        println!(
            "{} spans received by the OTLP receiver",
            receiver.spans().len()
        );
        Ok(())
    })
}

fn report(targets: &[Target], rounds: usize) {
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
    let per_round = |f: &dyn Fn(usize) -> f64| median((0..rounds).map(f).collect());
    if let (Some(on), Some(on_2), Some(off), Some(off_2)) = (
        by_name("metrics on"),
        by_name("metrics on 2"),
        by_name("metrics off"),
        by_name("metrics off 2"),
    ) {
        let mean = |a: &Target, b: &Target, i: usize| (a.rounds[i].1 + b.rounds[i].1) / 2.0;
        let cpu = per_round(&|i| mean(on, on_2, i) / mean(off, off_2, i));
        let throughput = per_round(&|i| {
            (on.rounds[i].0.throughput() + on_2.rounds[i].0.throughput())
                / (off.rounds[i].0.throughput() + off_2.rounds[i].0.throughput())
        });
        print!(
            "    metrics on / off, two gateways each (medians of per-round ratios): throughput \
             {throughput:.3}, CPU per call {cpu:.3} (whole process)"
        );
        if let Some(direct) = by_name("direct") {
            let share = per_round(&|i| {
                let direct = direct.rounds[i].1;
                (mean(on, on_2, i) - direct) / (mean(off, off_2, i) - direct)
            });
            print!(", {share:.3} of the gateway's own CPU per call (through it minus direct)");
        }
        println!();
    }
    for (with, without) in [
        ("metrics on 2", "metrics on"),
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
