//! What managed access costs per call: the same pass-through `GetUser` straight to the service
//! and through gateways with no `[auth]`, with an API key, with a bearer JWT (RS256 with the
//! verified-token cache, which a client reusing its token hits; RS256 and ES256 without it,
//! so every call checks a signature),
//! with an API key and a local rate limit, and with an API key and a limit shared through a
//! real `redis-server`, in rotating rounds of one run.
//!
//! ```sh
//! cargo bench -p mosaic-tests --bench access
//! ACCESS_ROUNDS=20 cargo bench -p mosaic-tests --bench access
//! ```
//!
//! Everything but Redis runs in one process (the demo services, the gateways, the callers), so
//! process CPU per call covers all of it; the direct target gives the gateway's own CPU per
//! call (through a gateway minus direct), and each access setting is reported as the CPU it
//! adds per call over the gateway without `[auth]`, and as a ratio of that gateway's own CPU.
//! Redis's CPU is read from its `/proc/<pid>/stat` and reported beside it. The limits are set
//! far above the offered load: every call must succeed, or the run stops.

use std::time::Duration;

use mosaic_demo_services::{DemoService, FaultConfig, ServiceHandle};
use mosaic_tests::load::{self, LoadReport, median};
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::redis::RedisServer;
use mosaic_tests::tokens;
use mosaic_tests::{channel, gateway_toml, scratch_file, start_gateway};
use tonic::transport::Channel;

const DEFAULT_ROUNDS: usize = 12;
const WARMUP: Duration = Duration::from_millis(300);
const MEASURE: Duration = Duration::from_millis(1500);
const CALLERS: usize = 32;
const KEY: &str = "mk_bench_Jw3Xq8Lr5Tz1Vy7Nb0";

struct Target {
    name: &'static str,
    channel: Channel,
    /// `(header, value)` every call carries.
    credential: Option<(&'static str, String)>,
    rounds: Vec<(LoadReport, f64, f64)>,
}

async fn round(target: &Target, redis_pid: Option<u32>) -> anyhow::Result<(LoadReport, f64, f64)> {
    let channel = target.channel.clone();
    let credential = target.credential.clone();
    let mut worker = 0i64;
    let load = load::run(CALLERS, WARMUP, MEASURE, move || {
        worker += 1;
        let mut next = worker;
        let channel = channel.clone();
        let credential = credential.clone();
        move || {
            next += 1;
            let mut request = tonic::Request::new(GetUserRequest { id: next % 64 + 1 });
            if let Some((name, value)) = &credential {
                request
                    .metadata_mut()
                    .insert(*name, value.parse().expect("ASCII credential"));
            }
            let mut client = UserServiceClient::new(channel.clone());
            async move { client.get_user(request).await.is_ok() }
        }
    });
    let redis_before = redis_pid.and_then(process_cpu_of);
    let (load, cpu) = tokio::join!(load, load::cpu_during(WARMUP, MEASURE));
    let redis_cpu = match (redis_before, redis_pid.and_then(process_cpu_of)) {
        (Some(before), Some(after)) => after.saturating_sub(before).as_secs_f64(),
        _ => 0.0,
    };
    anyhow::ensure!(
        load.failed == 0 && load.ok > 0,
        "{}: {} of {} calls failed",
        target.name,
        load.failed,
        load.ok + load.failed
    );
    let cpu = cpu.ok_or_else(|| anyhow::anyhow!("no /proc/self/stat to read CPU time from"))?;
    let per_call = cpu.as_secs_f64() * 1e6 / load.ok as f64;
    // Redis's CPU over the whole round (warm-up included) spread over the measured calls is an
    // upper bound; it is only reported.
    let redis_per_call = redis_cpu * 1e6 / load.ok as f64;
    Ok((load, per_call, redis_per_call))
}

/// User plus system CPU of process `pid`.
fn process_cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / 100.0))
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut services: Vec<ServiceHandle> = Vec::new();
        for service in DemoService::ALL {
            services.push(
                mosaic_demo_services::start(service, mosaic_tests::loopback(), FaultConfig::default())
                    .await?,
            );
        }
        let endpoints: Vec<_> = services
            .iter()
            .map(|handle| (handle.service(), handle.endpoint()))
            .collect();
        let base = gateway_toml(&endpoints);
        let redis = RedisServer::start().await?;
        let jwks = scratch_file("bench-jwks.json");
        std::fs::write(&jwks, tokens::jwks().to_string())?;
        let keys = format!(
            "\n[auth.api_keys]\nkeys = [{{ hash = \"{}\", consumer = \"bench\", plan = \"bulk\" }}]\n",
            mosaic_gateway::digest_of(KEY)
        );
        let jwt = format!(
            "\n[auth.jwt]\njwks_file = \"{}\"\nissuers = [\"{}\"]\naudiences = [\"{}\"]\n",
            jwks.display(),
            tokens::ISSUER,
            tokens::AUDIENCE
        );
        let limit = "plans.bulk = { rate = 10000000, per = \"1s\" }\n";
        let none = start_gateway(&base).await?;
        let keyed = start_gateway(&format!("{base}{keys}")).await?;
        let bearer = start_gateway(&format!("{base}{jwt}")).await?;
        let uncached = start_gateway(&format!("{base}{jwt}token_cache_size = 0\n")).await?;
        let local = start_gateway(&format!("{base}{keys}\n[rate_limits]\n{limit}")).await?;
        let shared = start_gateway(&format!(
            "{base}{keys}\n[rate_limits]\nstore = \"redis\"\nredis = {{ url = \"{}\", timeout = \"200ms\", on_error = \"refuse\" }}\n{limit}",
            redis.url()
        ))
        .await?;
        let rs256 = format!("Bearer {}", tokens::token("bench", serde_json::json!({})));
        let es256 = {
            let claims = tokens::claims("bench");
            format!(
                "Bearer {}",
                tokens::sign(&claims, tokens::EC, jsonwebtoken::Algorithm::ES256, Some("ec"))
            )
        };
        let users = services
            .iter()
            .find(|handle| handle.service() == DemoService::Users)
            .map(|handle| channel(handle.local_addr()))
            .ok_or_else(|| anyhow::anyhow!("no users service"))?;
        let target = |name, addr, credential| Target {
            name,
            channel: channel(addr),
            credential,
            rounds: Vec::new(),
        };
        let mut targets = vec![
            Target {
                name: "direct",
                channel: users,
                credential: None,
                rounds: Vec::new(),
            },
            target("no auth", none.local_addr(), None),
            target("api key", keyed.local_addr(), Some(("x-api-key", KEY.to_owned()))),
            target("jwt RS256 cached", bearer.local_addr(), Some(("authorization", rs256.clone()))),
            target("jwt RS256", uncached.local_addr(), Some(("authorization", rs256))),
            target("jwt ES256", uncached.local_addr(), Some(("authorization", es256))),
            target("key + local limit", local.local_addr(), Some(("x-api-key", KEY.to_owned()))),
            target("key + redis limit", shared.local_addr(), Some(("x-api-key", KEY.to_owned()))),
        ];
        let rounds: usize = std::env::var("ACCESS_ROUNDS")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(DEFAULT_ROUNDS);
        let redis_pid = redis.pid();
        println!(
            "pass-through GetUser, {CALLERS} callers: {rounds} rounds of {MEASURE:?} after {WARMUP:?}, targets in rotating order"
        );
        for index in 0..rounds {
            for offset in 0..targets.len() {
                let position = (index + offset) % targets.len();
                let target = &targets[position];
                let pid = (target.name == "key + redis limit").then_some(redis_pid).flatten();
                let measured = round(target, pid).await?;
                println!(
                    "  round {:>2} {:<18} {}  CPU {:>6.1} µs/call",
                    index + 1,
                    target.name,
                    measured.0.summary(),
                    measured.1
                );
                targets[position].rounds.push(measured);
            }
        }
        report(&targets, rounds);
        for gateway in [none, keyed, bearer, uncached, local, shared] {
            gateway.shutdown().await;
        }
        Ok(())
    })
}

fn report(targets: &[Target], rounds: usize) {
    let find = |name: &str| targets.iter().find(|t| t.name == name).expect("target");
    let direct = find("direct");
    let none = find("no auth");
    println!("\nmedians over {rounds} rounds:");
    for target in targets {
        let throughput = median(target.rounds.iter().map(|r| r.0.throughput()).collect());
        let cpu = median(target.rounds.iter().map(|r| r.1).collect());
        let p50 = median(
            target
                .rounds
                .iter()
                .map(|r| r.0.quantile(0.5).as_secs_f64() * 1e6)
                .collect(),
        );
        print!(
            "  {:<18} {throughput:>8.0} calls/s  p50 {p50:>6.0} µs  CPU {cpu:>6.1} µs/call",
            target.name
        );
        if target.name == "key + redis limit" {
            let redis = median(target.rounds.iter().map(|r| r.2).collect());
            print!("  (+ redis-server {redis:.1} µs/call)");
        }
        println!();
    }
    println!("\nper round, against the gateway without [auth] (medians of per-round figures):");
    for target in targets
        .iter()
        .filter(|t| t.name != "direct" && t.name != "no auth")
    {
        let added: Vec<f64> = (0..rounds)
            .map(|i| target.rounds[i].1 - none.rounds[i].1)
            .collect();
        let own: Vec<f64> = (0..rounds)
            .map(|i| {
                let gateway_own = none.rounds[i].1 - direct.rounds[i].1;
                (target.rounds[i].1 - direct.rounds[i].1) / gateway_own
            })
            .collect();
        let throughput: Vec<f64> = (0..rounds)
            .map(|i| target.rounds[i].0.throughput() / none.rounds[i].0.throughput())
            .collect();
        println!(
            "  {:<18} adds {:>5.1} µs CPU per call; gateway's own CPU per call {:.3}x; throughput {:.3}x",
            target.name,
            median(added),
            median(own),
            median(throughput)
        );
    }
}
