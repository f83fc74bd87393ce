//! What callers see when a downstream goes wrong, and how soon it is used again once right:
//! the gateway's own answer at the caller's deadline, retries of idempotent pass-through calls
//! whose endpoint died under them, and breakers that close again under fan-out traffic.
//!
//! Every test runs real demo services and a real gateway on loopback. Deadlines are sent as a
//! raw `grpc-timeout` header, never through tonic's `set_timeout`: tonic's client would end the
//! call itself at the deadline (reporting `CANCELLED`), and the status asserted must be the
//! gateway's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mosaic_demo_services::{DemoService, FaultConfig, Latency, ServiceHandle};
use mosaic_tests::chaos::KillableProxy;
use mosaic_tests::pb::inventory::v1::GetStockRequest;
use mosaic_tests::pb::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_tests::storefront::storefront_client::StorefrontClient;
use mosaic_tests::storefront::{CheckAvailabilityRequest, GetProductPageRequest};
use mosaic_tests::{channel, start_gateway, start_service};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Every demo service, with `inventory` instances of the inventory service.
struct Fleet {
    others: Vec<ServiceHandle>,
    inventory: Vec<ServiceHandle>,
}

impl Fleet {
    async fn start(inventory: usize) -> Fleet {
        let mut others = Vec::new();
        for service in [
            DemoService::Users,
            DemoService::Catalog,
            DemoService::Reviews,
        ] {
            others.push(start_service(service).await.unwrap());
        }
        let mut instances = Vec::new();
        for _ in 0..inventory {
            instances.push(start_service(DemoService::Inventory).await.unwrap());
        }
        Fleet {
            others,
            inventory: instances,
        }
    }

    fn users(&self) -> &ServiceHandle {
        &self.others[0]
    }

    /// A `gateway.toml` for the fleet, the inventory upstream on `inventory` endpoints, with
    /// `extra` appended (it may open sub-tables).
    fn config(&self, inventory: &[String], extra: &str) -> String {
        let mut text = String::from("[listener]\naddress = \"127.0.0.1:0\"\n");
        for handle in &self.others {
            let service = handle.service();
            text.push_str(&format!(
                "\n[upstreams.{}]\nendpoints = [\"{}\"]\nservices = [\"{}\"]\n",
                service.name(),
                handle.endpoint(),
                service.grpc_service()
            ));
        }
        let endpoints: Vec<String> = inventory.iter().map(|e| format!("\"{e}\"")).collect();
        text.push_str(&format!(
            "\n[upstreams.inventory]\nendpoints = [{}]\nservices = [\"demo.inventory.v1.InventoryService\"]\n\n{extra}\n",
            endpoints.join(", ")
        ));
        text
    }
}

/// A request carrying `grpc-timeout` as a plain header (see the module docs).
fn with_deadline<T>(message: T, timeout: &'static str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("grpc-timeout", timeout.parse().unwrap());
    request
}

/// One unary call with a 50 ms `grpc-timeout`; the status is the gateway's (see
/// `raw::status_within`).
async fn raw_call(addr: std::net::SocketAddr, path: &str, message: &impl prost::Message) -> Status {
    mosaic_tests::raw::status_within(addr, path, message, Duration::from_millis(50))
        .await
        .unwrap()
}

fn slow(delay: Duration) -> FaultConfig {
    FaultConfig {
        latency: Latency::Fixed(delay),
        ..FaultConfig::default()
    }
}

// === deadlines ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_callers_deadline_the_gateway_answers_deadline_exceeded_itself() {
    let _serial = mosaic_tests::serial().await;
    let fleet = Fleet::start(1).await;
    let inventory = &fleet.inventory[0];
    inventory
        .faults()
        .set(slow(Duration::from_millis(400)))
        .unwrap();
    let gateway = start_gateway(&fleet.config(&[inventory.endpoint()], ""))
        .await
        .unwrap();

    // Pass-through, unary.
    inventory.faults().start_journal();
    let started = Instant::now();
    let status = raw_call(
        gateway.local_addr(),
        "/demo.inventory.v1.InventoryService/GetStock",
        &GetStockRequest { product_id: 7 },
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "upstream `inventory` did not answer within the call's deadline of 50ms"
    );
    assert!(
        elapsed >= Duration::from_millis(48) && elapsed < Duration::from_millis(120),
        "answered at the deadline: {elapsed:?}"
    );
    // The downstream call ended at the deadline too, not after its 400 ms.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let journal = inventory.faults().take_journal();
    assert_eq!(journal.len(), 1, "{journal:?}");
    let call = &journal[0];
    assert!(
        call.ended - call.received < Duration::from_millis(150),
        "the downstream call was cancelled: {call:?}"
    );

    // Composed: CheckAvailability makes one GetStock call, with the edge's time less a margin.
    let started = Instant::now();
    let status = raw_call(
        gateway.local_addr(),
        "/demo.storefront.v1.Storefront/CheckAvailability",
        &CheckAvailabilityRequest {
            product_id: 3,
            quantity: 1000,
        },
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        elapsed >= Duration::from_millis(40) && elapsed < Duration::from_millis(120),
        "answered by the deadline: {elapsed:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_still_open_at_the_deadline_ends_with_the_gateways_deadline_exceeded() {
    let _serial = mosaic_tests::serial().await;
    let fleet = Fleet::start(1).await;
    let inventory = &fleet.inventory[0];
    let gateway = start_gateway(&fleet.config(&[inventory.endpoint()], ""))
        .await
        .unwrap();
    let mut client = InventoryServiceClient::new(channel(gateway.local_addr()));
    let (requests, receiver) = tokio::sync::mpsc::channel(4);
    requests
        .send(GetStockRequest { product_id: 7 })
        .await
        .unwrap();
    let started = Instant::now();
    let mut stream = client
        .watch_stock(with_deadline(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
            "200m",
        ))
        .await
        .expect("the head arrives at once")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("one answer")
        .expect("a message");
    assert_eq!(first.product_id, 7);
    // The caller keeps its request stream open and waits: the deadline ends the call.
    let status = stream.message().await.expect_err("ended by the deadline");
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "upstream `inventory` did not answer within the call's deadline of 200ms"
    );
    assert!(
        elapsed >= Duration::from_millis(195) && elapsed < Duration::from_millis(300),
        "{elapsed:?}"
    );
    drop(requests);
    gateway.shutdown().await;
}

// === pass-through calls on an endpoint that dies ===

/// Three inventory endpoints: the first, behind a killable proxy, never answers, so every call
/// sent to it is in flight when the proxy is killed; the others are healthy.
struct HungFirst {
    fleet: Fleet,
    proxy: KillableProxy,
}

impl HungFirst {
    async fn start() -> HungFirst {
        let fleet = Fleet::start(3).await;
        fleet.inventory[0]
            .faults()
            .set(FaultConfig {
                hang_rate: 1.0,
                ..FaultConfig::default()
            })
            .unwrap();
        let proxy = KillableProxy::start(fleet.inventory[0].local_addr())
            .await
            .unwrap();
        HungFirst { fleet, proxy }
    }

    fn endpoints(&self) -> Vec<String> {
        vec![
            self.proxy.endpoint(),
            self.fleet.inventory[1].endpoint(),
            self.fleet.inventory[2].endpoint(),
        ]
    }

    /// Sends `calls` concurrent GetStock calls, kills the hung endpoint once some of them are
    /// stuck on it, and returns the results and how many were stuck.
    async fn kill_with_calls_in_flight(
        &mut self,
        edge: Channel,
        calls: usize,
    ) -> (Vec<Result<(), Status>>, u64) {
        let mut tasks = Vec::new();
        for _ in 0..calls {
            let mut client = InventoryServiceClient::new(edge.clone());
            tasks.push(tokio::spawn(async move {
                client
                    .get_stock(with_deadline(GetStockRequest { product_id: 7 }, "5S"))
                    .await
                    .map(drop)
            }));
        }
        let hung = self.fleet.inventory[0].faults();
        let until = Instant::now() + Duration::from_secs(2);
        while hung.stats().calls_hung == 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Let every call reach an endpoint before the kill.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stuck = hung.stats().calls_hung;
        self.proxy.kill().await;
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        (results, stuck)
    }

    fn healthy_calls(&self) -> u64 {
        self.fleet.inventory[1..]
            .iter()
            .map(|handle| handle.faults().stats().calls_total)
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_pass_through_calls_in_flight_on_a_killed_endpoint_are_retried() {
    let _serial = mosaic_tests::serial().await;
    const CALLS: usize = 12;
    let mut setup = HungFirst::start().await;
    let config = setup.fleet.config(&setup.endpoints(), "");
    let gateway = start_gateway(&config).await.unwrap();
    let (results, stuck) = setup
        .kill_with_calls_in_flight(channel(gateway.local_addr()), CALLS)
        .await;
    let failed: Vec<&Status> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "no call failed: {failed:?}");
    assert!(stuck >= 1, "the killed endpoint had calls in flight");
    // Each call was answered exactly once by a healthy endpoint: the stuck ones on a retry.
    assert_eq!(setup.healthy_calls(), CALLS as u64);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_idempotent_or_large_pass_through_calls_are_not_retried() {
    let _serial = mosaic_tests::serial().await;
    const CALLS: usize = 12;
    let cases = [
        "[upstreams.inventory.methods.\"demo.inventory.v1.InventoryService/GetStock\"]\nidempotent = false\n",
        // GetStockRequest { product_id: 7 } is two bytes: over this limit, it is not copied.
        "max_replay_bytes = 1\n",
    ];
    for (case, extra) in cases.iter().enumerate() {
        let mut setup = HungFirst::start().await;
        let config = setup.fleet.config(&setup.endpoints(), extra);
        let gateway = start_gateway(&config).await.unwrap();
        let (results, stuck) = setup
            .kill_with_calls_in_flight(channel(gateway.local_addr()), CALLS)
            .await;
        let failed: Vec<&Status> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            stuck >= 1,
            "case {case}: the killed endpoint had calls in flight"
        );
        assert_eq!(
            failed.len() as u64,
            stuck,
            "case {case}: exactly the calls in flight on the killed endpoint failed: {failed:?}"
        );
        for status in failed {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(
                status.message().contains(&setup.proxy.endpoint()),
                "the message names the endpoint: {status:?}"
            );
        }
        assert_eq!(setup.healthy_calls(), CALLS as u64 - stuck);
        gateway.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_loaded_endpoints_fails_no_idempotent_call() {
    let _serial = mosaic_tests::serial().await;
    const WORKERS: usize = 16;
    let fleet = Fleet::start(3).await;
    let mut proxies = Vec::new();
    for handle in &fleet.inventory {
        handle
            .faults()
            .set(FaultConfig {
                latency: Latency::Uniform {
                    min: Duration::from_millis(20),
                    max: Duration::from_millis(40),
                },
                ..FaultConfig::default()
            })
            .unwrap();
        proxies.push(KillableProxy::start(handle.local_addr()).await.unwrap());
    }
    let endpoints: Vec<String> = proxies.iter().map(KillableProxy::endpoint).collect();
    let gateway = start_gateway(&fleet.config(&endpoints, "")).await.unwrap();
    let edge = channel(gateway.local_addr());
    let victim = fleet.inventory[0].faults();
    victim.start_journal();
    let stop = Instant::now() + Duration::from_millis(1500);
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let mut client = InventoryServiceClient::new(edge.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0_u64, Vec::new());
            while Instant::now() < stop {
                match client
                    .get_stock(with_deadline(GetStockRequest { product_id: 7 }, "2S"))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(status) => failed.push(status),
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_kill = victim.stats().calls_total;
    proxies[0].kill().await;
    let (mut ok, mut failed) = (0, Vec::new());
    for task in tasks {
        let (worker_ok, worker_failed) = task.await.unwrap();
        ok += worker_ok;
        failed.extend(worker_failed);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut = victim
        .take_journal()
        .iter()
        .filter(|call| !call.answered)
        .count();
    println!(
        "RECOVERY kill: {ok} pass-through GetStock calls over 3 endpoints, one killed after \
         {before_kill} calls with {cut} in flight: {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        before_kill >= 20,
        "the killed endpoint carried load: {before_kill}"
    );
    assert!(cut >= 1, "the killed endpoint had calls in flight: {cut}");
    assert!(ok >= 200, "{ok}");
    gateway.shutdown().await;
}

// === breakers under fan-out ===

fn page(timeout: &'static str) -> Request<GetProductPageRequest> {
    with_deadline(
        GetProductPageRequest {
            product_id: 7,
            review_limit: 5,
        },
        timeout,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_slowdown_seen_by_two_edge_calls_ejects_nothing() {
    let _serial = mosaic_tests::serial().await;
    let fleet = Fleet::start(1).await;
    let gateway = start_gateway(&fleet.config(&[fleet.inventory[0].endpoint()], ""))
        .await
        .unwrap();
    let client = StorefrontClient::new(channel(gateway.local_addr()));
    let users = fleet.users().faults();
    users.set(slow(Duration::from_millis(600))).unwrap();
    // Two pages, each fanning out to several GetUser calls: one gives up at 200 ms, so all
    // of its GetUser calls expire together; the other waits the slowdown out (the method's
    // own timeout is 800 ms).
    let (mut first, mut second) = (client.clone(), client.clone());
    let (short, long) = tokio::join!(
        first.get_product_page(page("200m")),
        second.get_product_page(page("5S")),
    );
    // Which side ends the short call first (tonic's client timer or the gateway) does not
    // matter here: what this test is about is the next call.
    short.expect_err("too slow");
    long.expect("slow but answered");
    users.set(FaultConfig::default()).unwrap();
    let before = users.stats().calls_total;
    client
        .clone()
        .get_product_page(page("1S"))
        .await
        .expect("the users upstream is still in rotation");
    assert!(users.stats().calls_total > before, "users was called");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_downstream_serves_fan_out_traffic_within_backoff_min_and_one_probe() {
    let _serial = mosaic_tests::serial().await;
    let fleet = Fleet::start(1).await;
    // A short ready_timeout, so that calls fail fast (and the test sees the breaker open) soon
    // after it opens, before its first probe comes due.
    let users_table = "services = [\"demo.users.v1.UserService\"]\n";
    let mut config = fleet.config(&[fleet.inventory[0].endpoint()], "").replacen(
        users_table,
        &format!("{users_table}ready_timeout = \"100ms\"\n"),
        1,
    );
    config.push_str("[upstreams.users.breaker]\nconsecutive_failures = 2\nbackoff_min = \"1s\"\n");
    let gateway = start_gateway(&config).await.unwrap();
    let client = StorefrontClient::new(channel(gateway.local_addr()));
    let users = fleet.users().faults();
    users.set(slow(Duration::from_millis(1200))).unwrap();

    // Steady traffic until the breaker has opened: pages fail fast, naming open breakers.
    let opened = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < opened, "the breaker never opened");
        let status = client
            .clone()
            .get_product_page(page("200m"))
            .await
            .expect_err("too slow");
        if status.message().contains("has no ready endpoint") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The downstream recovers; traffic goes on, one page every 50 ms.
    users.set(FaultConfig::default()).unwrap();
    let cleared = Instant::now();
    let mut failures = 0;
    let recovered = loop {
        let elapsed = cleared.elapsed();
        assert!(
            elapsed < Duration::from_secs(5),
            "still failing {elapsed:?} after recovery ({failures} failed pages)"
        );
        match client.clone().get_product_page(page("1S")).await {
            Ok(_) => break elapsed,
            Err(_) => failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("RECOVERY breaker: pages served again {recovered:?} after the downstream recovered");
    // The probe is due at most backoff_min (1 s) after the breaker opened; one round trip more.
    assert!(
        recovered <= Duration::from_millis(1300),
        "served again {recovered:?} after recovery"
    );
    for _ in 0..10 {
        client
            .clone()
            .get_product_page(page("1S"))
            .await
            .expect("stays in rotation");
    }
    gateway.shutdown().await;
}

// === health ===

async fn health_of(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let response = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

/// Polls `service`'s health until it is `wanted`, for at most `within`; returns how long.
async fn until_health(
    client: &mut HealthClient<Channel>,
    service: &str,
    wanted: ServingStatus,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = health_of(client, service).await;
        if status == wanted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{service} still {status:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_breakers_of_the_upstreams_a_service_needs_and_flips_on_drain() {
    let _serial = mosaic_tests::serial().await;
    const INVENTORY: &str = "demo.inventory.v1.InventoryService";
    const STOREFRONT: &str = "demo.storefront.v1.Storefront";
    const USERS: &str = "demo.users.v1.UserService";
    let fleet = Fleet::start(1).await;
    let inventory = &fleet.inventory[0];
    let breaker = "[upstreams.inventory.breaker]\nconsecutive_failures = 2\nbackoff_min = \"1s\"\n";
    let gateway = start_gateway(&fleet.config(&[inventory.endpoint()], breaker))
        .await
        .unwrap();
    let edge = channel(gateway.local_addr());
    let mut health = HealthClient::new(edge.clone());
    for service in ["", INVENTORY, STOREFRONT, USERS] {
        assert_eq!(
            health_of(&mut health, service).await,
            ServingStatus::Serving,
            "{service:?}"
        );
    }

    // The inventory service fails every call: two failures open its only endpoint's breaker.
    inventory
        .faults()
        .set(FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        })
        .unwrap();
    let mut client = InventoryServiceClient::new(edge.clone());
    for _ in 0..2 {
        client
            .get_stock(GetStockRequest { product_id: 7 })
            .await
            .expect_err("injected UNAVAILABLE");
    }
    let opened = Instant::now();
    until_health(
        &mut health,
        INVENTORY,
        ServingStatus::NotServing,
        Duration::from_millis(500),
    )
    .await;
    // The storefront calls inventory, so it cannot serve either; users is unaffected.
    assert_eq!(
        health_of(&mut health, STOREFRONT).await,
        ServingStatus::NotServing
    );
    assert_eq!(health_of(&mut health, USERS).await, ServingStatus::Serving);
    assert_eq!(health_of(&mut health, "").await, ServingStatus::Serving);

    // Recovered: once the probe is due (backoff_min), the service is reported serving again,
    // so a client that checks health first sends the call that probes.
    inventory.faults().set(FaultConfig::default()).unwrap();
    until_health(
        &mut health,
        INVENTORY,
        ServingStatus::Serving,
        Duration::from_secs(3),
    )
    .await;
    let back = opened.elapsed();
    assert!(
        back >= Duration::from_millis(900) && back < Duration::from_millis(1500),
        "serving again when the probe is due: {back:?}"
    );
    client
        .get_stock(GetStockRequest { product_id: 7 })
        .await
        .expect("the probe succeeds");
    assert_eq!(
        health_of(&mut health, STOREFRONT).await,
        ServingStatus::Serving
    );

    // Shutdown: a Watch stream sees every status go NOT_SERVING before the drain.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: INVENTORY.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().expect("the current status");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let shutdown = tokio::spawn(gateway.shutdown());
    let next = tokio::time::timeout(Duration::from_secs(2), watch.message())
        .await
        .expect("a status change before the stream ends");
    let status = next
        .ok()
        .flatten()
        .expect("NOT_SERVING, not the end of the stream")
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    // Then the stream ends, so it does not hold the drain (30 s by default) open.
    let end = tokio::time::timeout(Duration::from_secs(2), watch.message())
        .await
        .expect("the watch stream ends");
    assert!(matches!(end, Ok(None)), "{end:?}");
    tokio::time::timeout(Duration::from_secs(2), shutdown)
        .await
        .expect("drained at once")
        .unwrap();
}
