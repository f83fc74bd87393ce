//! What `/metrics` and the admin endpoints report, checked against the calls a test made and
//! against the demo services' own call counters. The scrape is parsed by a Prometheus text
//! parser (`prometheus-parse`), so a malformed exposition fails here as it would in Prometheus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mosaic_demo_services::{DemoService, FaultConfig};
use mosaic_tests::pb::inventory::v1::GetStockRequest;
use mosaic_tests::pb::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::scrape::{self, Scrape};
use mosaic_tests::storefront::storefront_client::StorefrontClient;
use mosaic_tests::storefront::{CheckAvailabilityRequest, GetProductPageRequest};
use mosaic_tests::{Stack, scratch_file};
use prost::Message;
use tonic::Code;

const GET_USER: &str = "demo.users.v1.UserService/GetUser";

fn failing() -> FaultConfig {
    FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_and_upstream_calls_are_counted_by_method_and_status() {
    let stack = Stack::start().await.unwrap();
    let users = stack.service(DemoService::Users).faults();
    users.reset_stats();

    // Pass-through: seven found, three not found; message sizes summed as the client saw them.
    let mut client = UserServiceClient::new(stack.via_gateway());
    let (mut request_bytes, mut response_bytes) = (0, 0);
    for id in 1..=7 {
        let request = GetUserRequest { id };
        request_bytes += request.encoded_len();
        let response = client.get_user(request).await.unwrap().into_inner();
        response_bytes += response.encoded_len();
    }
    for id in [100_001, 100_002, 100_003] {
        let request = GetUserRequest { id };
        request_bytes += request.encoded_len();
        let status = client.get_user(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    // A method no descriptor names: the upstream answers UNIMPLEMENTED.
    let unknown = mosaic_tests::raw::call(
        stack.gateway_addr(),
        "/demo.users.v1.UserService/NoSuchMethod",
        mosaic_tests::raw::frame(&[Vec::new()]),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        unknown.headers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"12"[..])
    );
    // Composed: every review card makes one typed GetUser call.
    let mut storefront = StorefrontClient::new(stack.via_gateway());
    let mut cards = 0;
    for product_id in [7, 12] {
        let page = storefront
            .get_product_page(GetProductPageRequest {
                product_id,
                review_limit: 3,
            })
            .await
            .unwrap()
            .into_inner();
        cards += page.reviews.len();
    }
    assert!(cards > 0, "the pages have reviews");

    let scrape = Scrape::fetch(stack.admin_addr()).await.unwrap();
    let edge = |status| {
        scrape.sum(
            "rpc_server_call_duration_seconds_count",
            &[
                ("rpc_system_name", "grpc"),
                ("rpc_method", GET_USER),
                ("protocol", "grpc"),
                ("rpc_status_code", status),
            ],
        )
    };
    assert_eq!(edge("OK"), 7.0, "{}", scrape.text);
    assert_eq!(edge("NOT_FOUND"), 3.0);
    assert_eq!(
        scrape.series(
            "rpc_server_call_duration_seconds_count",
            &[("rpc_method", GET_USER)]
        ),
        2,
        "one series per status seen, no more"
    );
    assert_eq!(
        scrape.sum(
            "rpc_server_call_duration_seconds_count",
            &[
                ("rpc_method", "_OTHER"),
                ("rpc_status_code", "UNIMPLEMENTED")
            ],
        ),
        1.0,
        "a method without a descriptor is counted as _OTHER"
    );
    assert_eq!(
        scrape.sum(
            "rpc_server_call_duration_seconds_count",
            &[
                ("rpc_method", "demo.storefront.v1.Storefront/GetProductPage"),
                ("rpc_status_code", "OK")
            ],
        ),
        2.0
    );
    // Message sizes: one observation per message, the payload bytes the client encoded.
    let method = [("rpc_method", GET_USER)];
    assert_eq!(
        scrape.sum("rpc_server_request_size_bytes_count", &method),
        10.0
    );
    assert_eq!(
        scrape.sum("rpc_server_request_size_bytes_sum", &method),
        request_bytes as f64
    );
    assert_eq!(
        scrape.sum("rpc_server_response_size_bytes_count", &method),
        7.0
    );
    assert_eq!(
        scrape.sum("rpc_server_response_size_bytes_sum", &method),
        response_bytes as f64
    );
    assert_eq!(scrape.sum("mosaic_server_active_calls", &method), 0.0);

    // The client side agrees with what the users service received: every GetUser call, the
    // pass-through ones and the composed pages' typed ones, once each, and the unknown method.
    let received = users.stats().calls_total;
    assert_eq!(received, 11 + cards as u64, "{:?}", users.stats());
    let client_calls = |status| {
        scrape.sum(
            "rpc_client_call_duration_seconds_count",
            &[
                ("upstream", "users"),
                ("rpc_method", GET_USER),
                ("rpc_status_code", status),
            ],
        )
    };
    assert_eq!(client_calls("OK"), (7 + cards) as f64);
    assert_eq!(client_calls("NOT_FOUND"), 3.0);
    assert_eq!(
        scrape.sum(
            "rpc_client_call_duration_seconds_count",
            &[("upstream", "users"), ("rpc_method", "_OTHER")],
        ),
        1.0
    );
    assert_eq!(
        scrape.sum(
            "mosaic_client_attempt_duration_seconds_count",
            &[("upstream", "users")]
        ),
        received as f64,
        "one attempt per call received (no retries were needed)"
    );
    assert_eq!(
        scrape.sum("mosaic_client_retries_total", &[("upstream", "users")]),
        0.0
    );
    assert_eq!(
        scrape.sum("mosaic_endpoint_breaker_open", &[("upstream", "users")]),
        0.0
    );
    assert_eq!(
        scrape.sum(
            "mosaic_upstream_concurrency_limit",
            &[("upstream", "users")]
        ),
        1024.0
    );

    // The other admin answers: the routes and a page that links them.
    let (status, content_type, routes) = scrape::get(stack.admin_addr(), "/routes").await.unwrap();
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let routes: serde_json::Value = serde_json::from_str(&routes).unwrap();
    assert_eq!(
        routes["grpc_services"]["demo.users.v1.UserService"],
        "upstream `users`"
    );
    assert_eq!(
        routes["grpc_services"]["demo.storefront.v1.Storefront"],
        "a service hosted in the gateway"
    );
    let (status, _, index) = scrape::get(stack.admin_addr(), "/").await.unwrap();
    assert_eq!(status, 200);
    for path in ["/metrics", "/upstreams", "/routes", "/healthz", "/ready"] {
        assert!(index.contains(&format!("href=\"{path}\"")), "{index}");
    }
}

/// Twenty composed calls whose one downstream call always fails with UNAVAILABLE, under a
/// retry budget given by `budget`; returns the scrape and what the inventory service received.
async fn failing_availability_calls(budget: &str) -> (Scrape, u64) {
    let budget = budget.to_owned();
    let stack = Stack::start_with(move |config| {
        format!(
            "{config}\n[upstreams.inventory.breaker]\nconsecutive_failures = 0\n\
             [upstreams.inventory.budget]\n{budget}\n"
        )
    })
    .await
    .unwrap();
    let inventory = stack.service(DemoService::Inventory).faults();
    inventory.set(failing()).unwrap();
    inventory.reset_stats();
    let mut storefront = StorefrontClient::new(stack.via_gateway());
    for _ in 0..20 {
        let status = storefront
            .check_availability(CheckAvailabilityRequest {
                product_id: 3,
                quantity: 1000,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    let scrape = Scrape::fetch(stack.admin_addr()).await.unwrap();
    (scrape, inventory.stats().calls_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_budget_refusals_are_counted() {
    let inventory = [("upstream", "inventory")];
    let unavailable = [
        ("upstream", "inventory"),
        ("rpc_status_code", "UNAVAILABLE"),
    ];
    // A budget that always has a token: every call makes its three attempts.
    let (scrape, received) =
        failing_availability_calls("percent = 1000\nmin_per_second = 1000").await;
    assert_eq!(received, 60, "three attempts per call");
    assert_eq!(
        scrape.sum("mosaic_client_retries_total", &inventory),
        40.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.sum("mosaic_client_retry_budget_exhausted_total", &inventory),
        0.0
    );
    assert_eq!(
        scrape.sum("mosaic_client_attempt_duration_seconds_count", &unavailable),
        60.0
    );
    assert_eq!(
        scrape.sum("rpc_client_call_duration_seconds_count", &unavailable),
        20.0,
        "a call with its retries is one client call"
    );
    assert_eq!(
        scrape.sum(
            "rpc_server_call_duration_seconds_count",
            &[
                (
                    "rpc_method",
                    "demo.storefront.v1.Storefront/CheckAvailability"
                ),
                ("rpc_status_code", "UNAVAILABLE")
            ],
        ),
        20.0
    );

    // An empty budget: each call's first retry is refused.
    let (scrape, received) = failing_availability_calls("percent = 0\nmin_per_second = 0").await;
    assert_eq!(received, 20, "no retries");
    assert_eq!(scrape.sum("mosaic_client_retries_total", &inventory), 0.0);
    assert_eq!(
        scrape.sum("mosaic_client_retry_budget_exhausted_total", &inventory),
        20.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_state_and_transitions_are_exported() {
    let stack = Stack::start_with(|config| {
        let config = config.replace(
            "services = [\"demo.inventory.v1.InventoryService\"]\n",
            "services = [\"demo.inventory.v1.InventoryService\"]\nready_timeout = \"20ms\"\n",
        );
        format!(
            "{config}\n[upstreams.inventory.breaker]\nconsecutive_failures = 3\n\
             backoff_min = \"2s\"\nbackoff_max = \"4s\"\n"
        )
    })
    .await
    .unwrap();
    let inventory = stack.service(DemoService::Inventory).faults();
    inventory.set(failing()).unwrap();
    inventory.reset_stats();
    let mut client = InventoryServiceClient::new(stack.via_gateway());

    // Pass-through calls are not retried on an answered UNAVAILABLE: three failures open it.
    let mut unready = 0;
    for _ in 0..5 {
        let status = client
            .get_stock(GetStockRequest { product_id: 7 })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        if status.message().contains("has no ready endpoint") {
            unready += 1;
        }
    }
    assert_eq!(unready, 2, "open after three failures");
    assert_eq!(inventory.stats().calls_failed_injected, 3);

    let endpoint = [("upstream", "inventory")];
    let scrape = Scrape::fetch(stack.admin_addr()).await.unwrap();
    assert_eq!(
        scrape.sum("mosaic_endpoint_breaker_open", &endpoint),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.sum("mosaic_endpoint_ejections_total", &endpoint),
        1.0
    );
    assert_eq!(
        scrape.sum("mosaic_endpoint_breaker_closes_total", &endpoint),
        0.0
    );
    assert_eq!(
        scrape.sum("mosaic_upstream_unready_calls_total", &endpoint),
        f64::from(unready)
    );
    assert_eq!(
        scrape.sum(
            "mosaic_client_attempt_duration_seconds_count",
            &[
                ("upstream", "inventory"),
                ("rpc_status_code", "UNAVAILABLE")
            ],
        ),
        3.0,
        "calls failed by the gateway itself are not attempts"
    );
    let (_, _, upstreams) = scrape::get(stack.admin_addr(), "/upstreams").await.unwrap();
    let upstreams: serde_json::Value = serde_json::from_str(&upstreams).unwrap();
    let inventory_state = upstreams["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "inventory")
        .unwrap()
        .clone();
    assert_eq!(inventory_state["ready"], false, "{inventory_state}");
    assert_eq!(inventory_state["endpoints"][0]["breaker"], "open");
    assert_eq!(inventory_state["endpoints"][0]["ejections"], 1);

    // Recovery: after the backoff (long enough that the open state is read above even on a
    // loaded machine) a probe succeeds and closes the breaker.
    inventory.set(FaultConfig::default()).unwrap();
    let recovering = tokio::time::Instant::now();
    while client
        .get_stock(GetStockRequest { product_id: 7 })
        .await
        .is_err()
    {
        assert!(
            recovering.elapsed() < Duration::from_secs(8),
            "never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let scrape = Scrape::fetch(stack.admin_addr()).await.unwrap();
    assert_eq!(scrape.sum("mosaic_endpoint_breaker_open", &endpoint), 0.0);
    assert_eq!(
        scrape.sum("mosaic_endpoint_breaker_closes_total", &endpoint),
        1.0
    );
    assert_eq!(
        scrape.sum("mosaic_endpoint_ejections_total", &endpoint),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_and_the_gateways_own_share_are_measured() {
    let _serial = mosaic_tests::serial().await;
    let stack = Stack::start().await.unwrap();
    const LATENCY: Duration = Duration::from_millis(20);
    for service in DemoService::ALL {
        stack
            .service(service)
            .faults()
            .set(FaultConfig {
                latency: mosaic_demo_services::Latency::Fixed(LATENCY),
                ..FaultConfig::default()
            })
            .unwrap();
    }
    const PAGES: u32 = 5;
    let mut storefront = StorefrontClient::new(stack.via_gateway());
    let mut cards = 0;
    for product_id in 1..=PAGES {
        let page = storefront
            .get_product_page(GetProductPageRequest {
                product_id: i64::from(product_id) + 6,
                review_limit: 2,
            })
            .await
            .unwrap()
            .into_inner();
        cards += page.reviews.len();
    }
    let mut users = UserServiceClient::new(stack.via_gateway());
    for id in 1..=PAGES {
        users
            .get_user(GetUserRequest { id: i64::from(id) })
            .await
            .unwrap();
    }

    let scrape = Scrape::fetch(stack.admin_addr()).await.unwrap();
    let page = "demo.storefront.v1.Storefront/GetProductPage";
    let step = |name| {
        scrape.sum(
            "mosaic_compose_step_duration_seconds_count",
            &[
                ("rpc_method", page),
                ("step", name),
                ("rpc_status_code", "OK"),
            ],
        )
    };
    for name in ["p", "stock", "rs"] {
        assert_eq!(step(name), f64::from(PAGES), "step {name}: {}", scrape.text);
    }
    assert_eq!(step("author"), cards as f64, "one per review card");
    // Each step waited at least the service's latency.
    let step_seconds = scrape.sum(
        "mosaic_compose_step_duration_seconds_sum",
        &[("rpc_method", page), ("step", "p")],
    );
    assert!(step_seconds >= f64::from(PAGES) * LATENCY.as_secs_f64());

    // The own share: a page waits for two levels of 20 ms calls, a pass-through call for one;
    // what is left is the gateway's, well under one service latency per call in any build.
    for (method, levels) in [(page, 2.0), (GET_USER, 1.0)] {
        let labels = [("rpc_method", method)];
        let calls = scrape.sum("mosaic_server_own_duration_seconds_count", &labels);
        assert_eq!(calls, f64::from(PAGES), "{method}");
        let own = scrape.sum("mosaic_server_own_duration_seconds_sum", &labels) / calls;
        let total = scrape.sum("rpc_server_call_duration_seconds_sum", &labels) / calls;
        println!(
            "OWN {method}: {:.3} ms of {:.3} ms per call are the gateway's",
            own * 1e3,
            total * 1e3
        );
        assert!(own > 0.0, "{method}: the gateway takes some time");
        assert!(
            total - own >= levels * LATENCY.as_secs_f64(),
            "{method}: the waiting subtracted covers the downstream latency ({own} of {total})"
        );
        assert!(
            own < LATENCY.as_secs_f64(),
            "{method}: own {own} s of {total} s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let stack = Stack::start_with(|config| format!("{config}\n[metrics]\nenabled = false\n"))
        .await
        .unwrap();
    UserServiceClient::new(stack.via_gateway())
        .get_user(GetUserRequest { id: 1 })
        .await
        .unwrap();
    let scrape = Scrape::fetch(stack.admin_addr()).await.unwrap();
    assert_eq!(
        scrape.series("rpc_server_call_duration_seconds_count", &[]),
        0,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.series("mosaic_endpoint_breaker_open", &[]), 0);
}

fn lines_of(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_one_line_per_call() {
    let path = scratch_file("access.log");
    let log_path = path.display().to_string();
    let mut stack =
        Stack::start_with(move |config| format!("{config}\n[access_log]\npath = \"{log_path}\"\n"))
            .await
            .unwrap();
    let mut users = UserServiceClient::new(stack.via_gateway());
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut traced = tonic::Request::new(GetUserRequest { id: 5 });
    traced.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    let found = users.get_user(traced).await.unwrap().into_inner();
    let missing = users
        .get_user(GetUserRequest { id: 100_001 })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let page = StorefrontClient::new(stack.via_gateway())
        .get_product_page(GetProductPageRequest {
            product_id: 7,
            review_limit: 3,
        })
        .await
        .unwrap()
        .into_inner();
    // Shutting down writes the last lines.
    let users_endpoint = stack.service(DemoService::Users).endpoint();
    stack.shutdown_gateway().await;

    let lines = lines_of(&path);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let get_user = "/demo.users.v1.UserService/GetUser";
    let first = &lines[0];
    assert_eq!(first["method"], get_user);
    assert_eq!(first["status"], "OK");
    assert_eq!(first["protocol"], "grpc");
    assert_eq!(first["upstream"], "users");
    assert_eq!(first["endpoint"], users_endpoint.as_str());
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["trace_id"], trace);
    let request_bytes = 5 + GetUserRequest { id: 5 }.encoded_len() as u64;
    assert_eq!(first["request_bytes"], request_bytes);
    assert_eq!(first["response_bytes"], 5 + found.encoded_len() as u64);
    assert!(first["duration_us"].as_u64().unwrap() > 0);
    assert!(
        first["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{first}"
    );
    let time = first["time"].as_str().unwrap();
    assert!(
        humantime_like(time),
        "RFC 3339 with microseconds, UTC: {time}"
    );
    assert_eq!(lines[1]["status"], "NOT_FOUND");
    assert_eq!(lines[1]["trace_id"], serde_json::Value::Null);
    let composed = &lines[2];
    assert_eq!(
        composed["method"],
        "/demo.storefront.v1.Storefront/GetProductPage"
    );
    assert_eq!(composed["status"], "OK");
    assert_eq!(composed["upstream"], serde_json::Value::Null);
    // GetProduct, GetStock and ListReviews, then one GetUser per review card.
    assert_eq!(composed["attempts"], 3 + page.reviews.len() as u64);
    std::fs::remove_file(&path).ok();
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn humantime_like(time: &str) -> bool {
    let bytes = time.as_bytes();
    bytes.len() == 27
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[19] == b'.'
        && bytes[26] == b'Z'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_fields_are_selectable() {
    let path = scratch_file("access-fields.log");
    let log_path = path.display().to_string();
    let mut stack = Stack::start_with(move |config| {
        format!(
            "{config}\n[access_log]\npath = \"{log_path}\"\nfields = [\"status\", \"method\"]\n"
        )
    })
    .await
    .unwrap();
    UserServiceClient::new(stack.via_gateway())
        .get_user(GetUserRequest { id: 1 })
        .await
        .unwrap();
    stack.shutdown_gateway().await;
    // Exactly the fields asked for, in the order asked for.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"status\":\"OK\",\"method\":\"/demo.users.v1.UserService/GetUser\"}\n"
    );
    std::fs::remove_file(&path).ok();
}
