//! Rate limits shared through Redis: two gateway replicas and one real `redis-server`. The
//! admitted rate over both stays within the configured limit, counted by the demo service
//! itself; with Redis killed mid-run, each replica does what its configuration says (its own
//! bucket, or a refusal) and no call hangs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mosaic_demo::demo::inventory::v1::GetStockRequest;
use mosaic_demo::demo::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_demo_services::DemoService;
use mosaic_gateway::GatewayHandle;
use mosaic_tests::redis::RedisServer;
use mosaic_tests::{Stack, channel, serial, start_gateway};
use tokio::time::Instant;
use tonic::{Code, Request};

const KEY: &str = "mk_live_shared_Rb8Kq0Zt2Ws6";
/// Calls a second admitted over both replicas.
const RATE: u32 = 100;
const BURST: u32 = 10;

fn tables(redis: &str, on_error: &str) -> String {
    format!(
        r#"
[auth.api_keys]
keys = [{{ hash = "{}", consumer = "shared", plan = "metered" }}]

[rate_limits]
store = "redis"
redis = {{ url = "{redis}", timeout = "50ms", on_error = "{on_error}" }}
plans.metered = {{ rate = {RATE}, per = "1s", burst = {BURST} }}
"#,
        mosaic_gateway::digest_of(KEY)
    )
}

/// The demo stack behind one gateway, and a second replica with the same configuration.
async fn replicas(redis: &str, on_error: &str) -> (Stack, GatewayHandle) {
    let mut config = String::new();
    let stack = Stack::start_with(|text| {
        config = text + &tables(redis, on_error);
        config.clone()
    })
    .await
    .unwrap();
    let second = start_gateway(&config).await.unwrap();
    (stack, second)
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    limited: AtomicU64,
    other: AtomicU64,
    /// The slowest answer, in microseconds.
    slowest_us: AtomicU64,
}

/// Calls through `gateways` from 4 tasks each, as fast as they answer, for `length`.
async fn hammer(gateways: &[std::net::SocketAddr], length: Duration) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let until = Instant::now() + length;
    let mut tasks = Vec::new();
    for addr in gateways {
        for _ in 0..4 {
            let mut client = InventoryServiceClient::new(channel(*addr));
            let tally = Arc::clone(&tally);
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let mut request = Request::new(GetStockRequest { product_id: 7 });
                    request
                        .metadata_mut()
                        .insert("x-api-key", KEY.parse().unwrap());
                    let started = Instant::now();
                    let answer = client.get_stock(request).await;
                    tally
                        .slowest_us
                        .fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    match answer {
                        Ok(_) => &tally.ok,
                        Err(status) if status.code() == Code::ResourceExhausted => &tally.limited,
                        Err(_) => &tally.other,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    tally
}

#[tokio::test]
async fn two_replicas_share_one_limit_and_fall_back_when_redis_dies() {
    let _serial = serial().await;
    let mut redis = RedisServer::start().await.unwrap();
    let (stack, second) = replicas(&redis.url(), "local").await;
    let gateways = [stack.gateway_addr(), second.local_addr()];
    let inventory = || {
        stack
            .service(DemoService::Inventory)
            .faults()
            .stats()
            .calls_total
    };

    let before = inventory();
    let started = Instant::now();
    let tally = hammer(&gateways, Duration::from_secs(3)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = inventory() - before;
    assert_eq!(
        tally.ok.load(Ordering::Relaxed),
        admitted,
        "every admitted call reached the service"
    );
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);
    let limited = tally.limited.load(Ordering::Relaxed);
    assert!(
        limited > admitted,
        "the load was well over the limit: {limited} shed, {admitted} admitted"
    );
    let expected = f64::from(RATE) * elapsed + f64::from(BURST);
    let ratio = admitted as f64 / expected;
    println!(
        "SHARED admitted {admitted} over {elapsed:.2}s by two replicas (limit {RATE}/s + burst {BURST}: {expected:.0}); ratio {ratio:.3}; {limited} shed"
    );
    assert!(
        (0.95..=1.05).contains(&ratio),
        "admitted {admitted}, expected {expected:.0} ±5 %"
    );

    // Redis dies: each replica falls back to its own bucket, so the two admit about twice the
    // limit between them, and every call still answers promptly.
    redis.kill().await;
    let before = inventory();
    let started = Instant::now();
    let tally = hammer(&gateways, Duration::from_secs(2)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = inventory() - before;
    assert_eq!(
        tally.other.load(Ordering::Relaxed),
        0,
        "fallback admits or sheds, nothing else"
    );
    let local = 2.0 * (f64::from(RATE) * elapsed + f64::from(BURST));
    println!(
        "FALLBACK admitted {admitted} over {elapsed:.2}s with Redis down (two local buckets: {local:.0}); slowest answer {} µs",
        tally.slowest_us.load(Ordering::Relaxed)
    );
    assert!(admitted as f64 <= local * 1.05, "{admitted} > {local:.0}");
    assert!(
        admitted as f64 >= local * 0.5,
        "the local buckets admit: {admitted}"
    );
    assert!(
        tally.slowest_us.load(Ordering::Relaxed) < 1_000_000,
        "no call waits on the dead server"
    );
    second.shutdown().await;
}

#[tokio::test]
async fn refuse_means_unavailable_while_redis_is_down() {
    let _serial = serial().await;
    let mut redis = RedisServer::start().await.unwrap();
    let (stack, second) = replicas(&redis.url(), "refuse").await;
    let mut client = InventoryServiceClient::new(stack.via_gateway());
    let call = |client: &mut InventoryServiceClient<tonic::transport::Channel>| {
        let mut request = Request::new(GetStockRequest { product_id: 7 });
        request
            .metadata_mut()
            .insert("x-api-key", KEY.parse().unwrap());
        let mut client = client.clone();
        async move { client.get_stock(request).await }
    };
    call(&mut client).await.unwrap();
    redis.kill().await;
    let before = stack
        .service(DemoService::Inventory)
        .faults()
        .stats()
        .calls_total;
    for _ in 0..5 {
        let started = Instant::now();
        let status = call(&mut client).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status
                .message()
                .starts_with("rate limits cannot be checked ("),
            "{}",
            status.message()
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(
        stack
            .service(DemoService::Inventory)
            .faults()
            .stats()
            .calls_total,
        before,
        "refused calls reach nothing"
    );
    second.shutdown().await;
}
