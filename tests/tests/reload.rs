//! Hot reload under load: the gateway re-reads its `gateway.toml` while pass-through and
//! composed calls keep coming, and not one of them fails; a bad file changes nothing and says
//! why; an unchanged upstream keeps its stack (its breakers), a removed endpoint gets no more
//! calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mosaic_demo_services::{DemoService, ServiceHandle};
use mosaic_tests::curl::curl;
use mosaic_tests::pb::inventory::v1::GetStockRequest;
use mosaic_tests::pb::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::scrape::{self, Scrape};
use mosaic_tests::storefront::GetProductPageRequest;
use mosaic_tests::storefront::storefront_client::StorefrontClient;
use mosaic_tests::{channel, scratch_file, start_reloadable_gateway, start_service};
use serde_json::Value;
use tonic::transport::Channel;

struct Fleet {
    users: ServiceHandle,
    catalog: ServiceHandle,
    reviews: ServiceHandle,
    inventory: [ServiceHandle; 2],
    /// A port nothing listens on: the users upstream's second endpoint, whose breaker opens
    /// at the first call and must stay open across reloads that keep the upstream.
    dead: String,
}

impl Fleet {
    async fn start() -> Fleet {
        let dead = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", socket.local_addr().unwrap())
        };
        Fleet {
            users: start_service(DemoService::Users).await.unwrap(),
            catalog: start_service(DemoService::Catalog).await.unwrap(),
            reviews: start_service(DemoService::Reviews).await.unwrap(),
            inventory: [
                start_service(DemoService::Inventory).await.unwrap(),
                start_service(DemoService::Inventory).await.unwrap(),
            ],
            dead,
        }
    }

    /// The configuration: inventory on the first `inventory` endpoints, the catalog upstream
    /// with `catalog_limit` concurrent calls.
    fn config(&self, inventory: usize, catalog_limit: u32) -> String {
        let inventory: Vec<String> = self.inventory[..inventory]
            .iter()
            .map(|handle| format!("\"{}\"", handle.endpoint()))
            .collect();
        format!(
            r#"[listener]
address = "127.0.0.1:0"
drain_timeout = "5s"

[admin]
address = "127.0.0.1:0"

[upstreams.users]
endpoints = ["{users}", "{dead}"]
services = ["demo.users.v1.UserService"]
connect_timeout = "200ms"

[upstreams.users.breaker]
consecutive_failures = 1
backoff_min = "60s"
backoff_max = "60s"

[upstreams.catalog]
endpoints = ["{catalog}"]
services = ["demo.catalog.v1.CatalogService"]
max_concurrent = {catalog_limit}

[upstreams.reviews]
endpoints = ["{reviews}"]
services = ["demo.reviews.v1.ReviewService"]

[upstreams.inventory]
endpoints = [{inventory}]
services = ["demo.inventory.v1.InventoryService"]
"#,
            users = self.users.endpoint(),
            dead = self.dead,
            catalog = self.catalog.endpoint(),
            reviews = self.reviews.endpoint(),
            inventory = inventory.join(", "),
        )
    }
}

fn upstream<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|upstream| upstream["name"] == name)
        .unwrap()
}

async fn upstreams(admin: std::net::SocketAddr) -> Value {
    let (status, _, body) = scrape::get(admin, "/upstreams").await.unwrap();
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

async fn reload(admin: std::net::SocketAddr) -> (u16, Value) {
    let (status, content_type, body) = scrape::post(admin, "/reload").await.unwrap();
    assert_eq!(content_type, "application/json");
    (status, serde_json::from_str(&body).unwrap())
}

/// Calls in a loop until `stop`, counting successes and failures (and keeping the first).
fn keep_calling<F, Fut>(
    stop: &Arc<AtomicBool>,
    failures: &Arc<std::sync::Mutex<Vec<String>>>,
    done: &Arc<AtomicU64>,
    call: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send,
{
    let (stop, failures, done) = (stop.clone(), failures.clone(), done.clone());
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            match call().await {
                Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                Err(status) => {
                    failures.lock().unwrap().push(format!("{status:?}"));
                    0
                }
            };
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_call_and_keep_unchanged_upstreams() {
    let fleet = Fleet::start().await;
    let path = scratch_file("gateway.toml");
    std::fs::write(&path, fleet.config(2, 1024)).unwrap();
    let gateway = start_reloadable_gateway(&path).await.unwrap();
    let admin = gateway.admin_addr().unwrap();
    let edge: Channel = channel(gateway.local_addr());

    // The dead users endpoint is ejected by the first call that tries it.
    let mut users = UserServiceClient::new(edge.clone());
    for id in 1..=20 {
        users.get_user(GetUserRequest { id }).await.unwrap();
    }
    let before = upstreams(admin).await;
    let users_before = upstream(&before, "users");
    assert_eq!(users_before["stack_generation"], 1);
    let dead_endpoint = users_before["endpoints"][1].clone();
    assert_eq!(dead_endpoint["breaker"], "open", "{users_before}");
    assert_eq!(dead_endpoint["ejections"], 1);

    // Load: pass-through (users, inventory) and composed pages, all the time.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..2 {
        let client = InventoryServiceClient::new(edge.clone());
        load.push(keep_calling(&stop, &failures, &done, move || {
            let mut client = client.clone();
            async move {
                client.get_stock(GetStockRequest { product_id: 7 }).await?;
                Ok(())
            }
        }));
    }
    let client = UserServiceClient::new(edge.clone());
    load.push(keep_calling(&stop, &failures, &done, move || {
        let mut client = client.clone();
        async move {
            client.get_user(GetUserRequest { id: 3 }).await?;
            Ok(())
        }
    }));
    let client = StorefrontClient::new(edge.clone());
    load.push(keep_calling(&stop, &failures, &done, move || {
        let mut client = client.clone();
        async move {
            client
                .get_product_page(GetProductPageRequest {
                    product_id: 12,
                    review_limit: 3,
                })
                .await?;
            Ok(())
        }
    }));

    // Twenty reloads: an inventory endpoint removed and added back, the catalog's policy
    // changed every third time, and an invalid file in the middle.
    let mut applied = 0;
    for round in 0..20u32 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        if round == 10 {
            std::fs::write(
                &path,
                fleet
                    .config(2, 1024)
                    .replace("max_concurrent = 1024", "max_concurrent = \"lots\""),
            )
            .unwrap();
            let (status, answer) = reload(admin).await;
            assert_eq!(status, 422, "{answer}");
            assert_eq!(answer["applied"], false);
            assert_eq!(
                answer["problems"][0]["key"], "",
                "a type error is the file's: {answer}"
            );
            assert!(
                answer["problems"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("max_concurrent"),
                "{answer}"
            );
        }
        let inventory = if round % 2 == 0 { 1 } else { 2 };
        let catalog_limit = if round % 3 == 0 { 512 } else { 1024 };
        std::fs::write(&path, fleet.config(inventory, catalog_limit)).unwrap();
        let (status, answer) = reload(admin).await;
        assert_eq!(status, 200, "round {round}: {answer}");
        assert_eq!(answer["applied"], true);
        applied += 1;
        assert_eq!(answer["generation"], 1 + applied);
        let kept = answer["upstreams"]["kept"].as_array().unwrap();
        assert!(kept.contains(&Value::from("users")), "{answer}");
        assert!(kept.contains(&Value::from("reviews")), "{answer}");
        assert!(
            answer["upstreams"]["replaced"]
                .as_array()
                .unwrap()
                .contains(&Value::from("inventory")),
            "{answer}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    let calls = done.load(Ordering::Relaxed);
    println!(
        "RELOAD: {applied} reloads applied and 1 rejected under load; {calls} calls, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(calls > 200, "the load ran throughout: {calls} calls");
    assert!(
        fleet.inventory[1].faults().stats().calls_total > 0,
        "the second inventory endpoint took calls while configured"
    );

    // The users upstream never changed: the same stack, its dead endpoint still ejected, no
    // new ejection counted.
    let after = upstreams(admin).await;
    assert_eq!(after["generation"], 21);
    let users_after = upstream(&after, "users");
    assert_eq!(users_after["stack_generation"], 1, "{users_after}");
    assert_eq!(users_after["endpoints"][1]["breaker"], "open");
    assert_eq!(users_after["endpoints"][1]["ejections"], 1);
    assert_eq!(upstream(&after, "inventory")["stack_generation"], 21);

    let scrape = Scrape::fetch(admin).await.unwrap();
    assert_eq!(
        scrape.sum("mosaic_config_reloads_total", &[("result", "applied")]),
        20.0
    );
    assert_eq!(
        scrape.sum("mosaic_config_reloads_total", &[("result", "rejected")]),
        1.0
    );
    assert_eq!(scrape.sum("mosaic_config_generation", &[]), 21.0);

    // A removed endpoint gets no more calls.
    std::fs::write(&path, fleet.config(1, 1024)).unwrap();
    assert_eq!(reload(admin).await.0, 200);
    let removed = fleet.inventory[1].faults();
    removed.reset_stats();
    let mut inventory = InventoryServiceClient::new(edge.clone());
    for _ in 0..50 {
        inventory
            .get_stock(GetStockRequest { product_id: 7 })
            .await
            .unwrap();
    }
    assert_eq!(
        removed.stats().calls_total,
        0,
        "the removed endpoint took calls"
    );

    // The configuration in force is what /config shows.
    let (_, _, config) = scrape::get(admin, "/config").await.unwrap();
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["generation"], 22);
    assert_eq!(
        config["upstreams"]["inventory"]["endpoints"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(config["upstreams"]["users"]["breaker"]["backoff_min"], "1m");
    assert_eq!(config["upstreams"]["users"]["retry"]["max_attempts"], 3);
    gateway.shutdown().await;
    std::fs::remove_file(&path).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_needs_a_restart_or_breaks_a_composer_changes_nothing() {
    let fleet = Fleet::start().await;
    let path = scratch_file("gateway-refused.toml");
    let good = fleet.config(1, 1024);
    std::fs::write(&path, &good).unwrap();
    let gateway = start_reloadable_gateway(&path).await.unwrap();
    let admin = gateway.admin_addr().unwrap();

    std::fs::write(
        &path,
        good.replacen("address = \"127.0.0.1:0\"", "address = \"127.0.0.1:1\"", 1),
    )
    .unwrap();
    let (status, answer) = reload(admin).await;
    assert_eq!(status, 422);
    assert_eq!(
        answer["error"],
        "[listener] cannot change without a restart; the running configuration is kept"
    );

    // The storefront calls the reviews service: a file without it does not fit.
    let start = good.find("[upstreams.reviews]").unwrap();
    let end = good.find("[upstreams.inventory]").unwrap();
    std::fs::write(&path, format!("{}{}", &good[..start], &good[end..])).unwrap();
    let (status, answer) = reload(admin).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("demo.reviews.v1.ReviewService"),
        "{answer}"
    );

    // Nothing changed: still generation 1, still serving pages.
    let (_, _, routes) = scrape::get(admin, "/routes").await.unwrap();
    let routes: Value = serde_json::from_str(&routes).unwrap();
    assert_eq!(routes["generation"], 1);
    StorefrontClient::new(channel(gateway.local_addr()))
        .get_product_page(GetProductPageRequest {
            product_id: 7,
            review_limit: 2,
        })
        .await
        .unwrap();
    gateway.shutdown().await;
    std::fs::remove_file(&path).ok();
}

#[tokio::test]
async fn http_rules_and_json_options_change_with_a_reload() {
    let fleet = Fleet::start().await;
    let path = scratch_file("gateway-http.toml");
    let base = fleet.config(1, 1024);
    std::fs::write(&path, &base).unwrap();
    let gateway = start_reloadable_gateway(&path).await.unwrap();
    let admin = gateway.admin_addr().unwrap();
    let edge = gateway.local_addr();
    let health = format!("http://{edge}/v1/health");
    assert_eq!(curl(&[&health]).await.status, 404, "no such route yet");
    let product = format!("http://{edge}/v1/products/7");
    assert!(curl(&[&product]).await.json().get("sellerId").is_some());

    let rules = "\n[http]\nfield_names = \"proto\"\n\n[[http.rules]]\nselector = \"grpc.health.v1.Health.Check\"\nget = \"/v1/health\"\n";
    std::fs::write(&path, format!("{base}{rules}")).unwrap();
    let (status, answer) = reload(admin).await;
    assert_eq!(status, 200, "{answer}");
    let served = curl(&[&health]).await;
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(served.json(), serde_json::json!({"status": "SERVING"}));
    let body = curl(&[&product]).await.json();
    assert!(
        body.get("seller_id").is_some(),
        "proto names after the reload: {body}"
    );

    // A rule that names no served method is refused, and the routes in force stay.
    std::fs::write(
        &path,
        format!("{base}{rules}\n[[http.rules]]\nselector = \"no.Such.Method\"\nget = \"/x\"\n"),
    )
    .unwrap();
    let (status, answer) = reload(admin).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("no.Such.Method"),
        "{answer}"
    );
    assert_eq!(curl(&[&health]).await.status, 200);
}
