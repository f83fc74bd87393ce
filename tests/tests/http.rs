//! The HTTP/JSON edge over real sockets, with curl as the client (HTTP/1.1 and h2c): every
//! route kind of the demo's `google.api.http` bindings and of `[[http.rules]]`, each error
//! status, and both framings of a server stream. Answers are checked against the demo
//! services called directly over gRPC.

use mosaic_demo::demo::catalog::v1::GetProductRequest;
use mosaic_demo::demo::catalog::v1::catalog_service_client::CatalogServiceClient;
use mosaic_demo::demo::inventory::v1::GetStockRequest;
use mosaic_demo::demo::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_demo::demo::reviews::v1::StreamReviewsRequest;
use mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_demo_services::DemoService;
use mosaic_tests::curl::{CurlResponse, curl, curl_until_timeout};
use mosaic_tests::{Stack, scrape};
use serde_json::json;

/// `[[http.rules]]` for the health service, whose proto has no annotation.
const HEALTH_RULES: &str = r#"
[[http.rules]]
selector = "grpc.health.v1.Health.Check"
get = "/v1/health/{service}"
additional_bindings = [{ get = "/v1/health" }]

[[http.rules]]
selector = "grpc.health.v1.Health.Watch"
get = "/v1/health:watch"
"#;

async fn stack() -> Stack {
    Stack::start_with(|config| config + HEALTH_RULES)
        .await
        .unwrap()
}

fn url(stack: &Stack, path: &str) -> String {
    format!("http://{}{path}", stack.gateway_addr())
}

/// The same request over HTTP/1.1 and over h2c; both answers, checked to agree.
async fn both(stack: &Stack, args: &[&str], path: &str) -> CurlResponse {
    let target = url(stack, path);
    let mut h1: Vec<&str> = vec!["--http1.1"];
    h1.extend_from_slice(args);
    h1.push(&target);
    let mut h2: Vec<&str> = vec!["--http2-prior-knowledge"];
    h2.extend_from_slice(args);
    h2.push(&target);
    let one = curl(&h1).await;
    let two = curl(&h2).await;
    assert_eq!(one.version, "1.1");
    assert_eq!(two.version, "2");
    assert_eq!(
        one.status,
        two.status,
        "{path}: {} / {}",
        one.text(),
        two.text()
    );
    assert_eq!(one.header("content-type"), two.header("content-type"));
    two
}

#[tokio::test]
async fn pass_through_get_with_response_body_matches_the_service() {
    let stack = stack().await;
    let product = CatalogServiceClient::new(stack.direct(DemoService::Catalog))
        .get_product(GetProductRequest { id: 7 })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let answer = both(&stack, &[], "/v1/products/7").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    // `response_body: "product"`: the product itself, not `{"product": ...}`.
    assert_eq!(body["id"], json!("7"), "int64 as a string: {body}");
    assert_eq!(body["title"], json!(product.title));
    assert_eq!(body["sellerId"], json!(product.seller_id.to_string()));
    assert!(body["category"].as_str().unwrap().starts_with("CATEGORY_"));
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn composed_page_takes_query_parameters_by_either_name() {
    let stack = stack().await;
    for query in ["reviewLimit=3", "review_limit=3"] {
        let answer = both(&stack, &[], &format!("/v1/products/7/page?{query}")).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let body = answer.json();
        assert_eq!(body["product"]["id"], json!("7"));
        assert_eq!(body["reviews"].as_array().unwrap().len(), 3, "{body}");
    }
}

#[tokio::test]
async fn bodies_bind_whole_messages_and_path_values_win() {
    let stack = stack().await;
    let json = ["-H", "content-type: application/json"];
    let batch = both(
        &stack,
        &[&json[..], &["-d", r#"{"ids": [3, "4"]}"#]].concat(),
        "/v1/users:batchGet",
    )
    .await;
    assert_eq!(batch.status, 200, "{}", batch.text());
    let users = batch.json();
    let ids: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["3", "4"]);

    // The additional binding `POST /v1/products/{product_id}:checkAvailability`, body `*`:
    // the path's product id wins over the body's.
    let by_post = both(
        &stack,
        &[
            &json[..],
            &["-d", r#"{"productId": "999999", "quantity": 2}"#],
        ]
        .concat(),
        "/v1/products/7:checkAvailability",
    )
    .await;
    let by_get = both(&stack, &[], "/v1/products/7/availability?quantity=2").await;
    assert_eq!(by_post.status, 200, "{}", by_post.text());
    assert_eq!(by_post.json(), by_get.json());
}

#[tokio::test]
async fn client_streams_read_ndjson_and_json_arrays() {
    let stack = stack().await;
    let mut inventory = InventoryServiceClient::new(stack.direct(DemoService::Inventory));
    let mut expected = 0;
    for product_id in [1, 2, 5] {
        expected += inventory
            .get_stock(GetStockRequest { product_id })
            .await
            .unwrap()
            .into_inner()
            .available;
    }
    let ndjson = "{\"productId\": 1}\n\n{\"product_id\": \"2\"}\n{\"productId\": 5}\n";
    let array = r#"[{"productId": 1}, {"productId": 2}, {"productId": 5}]"#;
    for (content_type, body) in [
        ("application/x-ndjson", ndjson),
        ("application/json", array),
    ] {
        let header = format!("content-type: {content_type}");
        let answer = both(
            &stack,
            &["-H", &header, "--data-binary", body],
            "/v1/stock:sum",
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(
            answer.json(),
            json!({"products": "3", "totalAvailable": expected.to_string()})
        );
    }
}

#[tokio::test]
async fn server_streams_as_ndjson_and_sse() {
    let stack = stack().await;
    let expected: Vec<String> = {
        let mut stream = ReviewServiceClient::new(stack.direct(DemoService::Reviews))
            .stream_reviews(StreamReviewsRequest { product_id: 3 })
            .await
            .unwrap()
            .into_inner();
        let mut ids = Vec::new();
        while let Some(review) = stream.message().await.unwrap() {
            ids.push(review.id.to_string());
        }
        ids
    };
    assert!(expected.len() > 1);

    let ndjson = both(&stack, &[], "/v1/products/3/reviews:stream").await;
    assert_eq!(ndjson.status, 200);
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let ids: Vec<String> = ndjson
        .text()
        .lines()
        .map(|line| {
            let review: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(review.get("result").is_none(), "no envelope: {line}");
            review["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids, expected);

    let sse = both(
        &stack,
        &["-H", "accept: text/event-stream"],
        "/v1/products/3/reviews:stream",
    )
    .await;
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    let text = sse.text();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), expected.len());
    for (event, id) in events.iter().zip(&expected) {
        let data = event.strip_prefix("data: ").expect("a data line");
        let review: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(review["id"].as_str(), Some(id.as_str()));
    }

    // An error before the first message: the real status and a Status body.
    let unknown = both(&stack, &[], "/v1/products/999999/reviews:stream").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], json!(5));
}

#[tokio::test]
async fn config_rules_route_the_health_service() {
    let stack = stack().await;
    let all = both(&stack, &[], "/v1/health").await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(all.json(), json!({"status": "SERVING"}));
    let one = both(&stack, &[], "/v1/health/demo.catalog.v1.CatalogService").await;
    assert_eq!(one.json(), json!({"status": "SERVING"}));
    let unknown = both(&stack, &[], "/v1/health/no.Such").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    // A stream that stays open: its first line arrives, then curl stops waiting.
    let watch = curl_until_timeout(&[
        "--http2-prior-knowledge",
        "--max-time",
        "1",
        &url(&stack, "/v1/health:watch"),
    ])
    .await;
    assert_eq!(watch.status, 200);
    assert_eq!(watch.text(), "{\"status\":\"SERVING\"}\n");

    // The admin listener lists every binding and where it comes from.
    let (status, _, routes) = scrape::get(stack.admin_addr(), "/routes").await.unwrap();
    assert_eq!(status, 200);
    let routes: serde_json::Value = serde_json::from_str(&routes).unwrap();
    let http = routes["http_routes"].as_array().unwrap();
    let find = |path: &str| http.iter().find(|r| r["path"] == json!(path)).cloned();
    assert_eq!(
        find("/v1/health"),
        Some(
            json!({"method": "GET", "path": "/v1/health", "grpc": "grpc.health.v1.Health/Check", "origin": "gateway.toml"})
        )
    );
    assert_eq!(
        find("/v1/products/{product_id}/page"),
        Some(
            json!({"method": "GET", "path": "/v1/products/{product_id}/page", "grpc": "demo.storefront.v1.Storefront/GetProductPage", "origin": "annotation"})
        )
    );
    assert_eq!(http.len(), 19, "{http:?}");
}

#[tokio::test]
async fn every_refusal_has_its_status_and_says_why() {
    let stack = stack().await;
    let json = "content-type: application/json";
    let cases: Vec<(Vec<&str>, &str, u16, &str)> = vec![
        (
            vec![],
            "/v1/nothing/here",
            404,
            "no route for GET /v1/nothing/here",
        ),
        (
            vec!["-X", "DELETE"],
            "/v1/products/7",
            405,
            "this path takes GET",
        ),
        (
            vec![],
            "/v1/products/seven",
            400,
            "`id` must be a 64-bit integer, not `seven`",
        ),
        (
            vec![],
            "/v1/products?bogus=1",
            400,
            "`bogus` names no field",
        ),
        (
            vec![],
            "/v1/products?pageSize=x",
            400,
            "`pageSize` must be a 32-bit integer",
        ),
        (
            vec![],
            "/v1/products/7/page?review_limit=1&review_limit=2",
            400,
            "given twice",
        ),
        (
            vec![],
            "/v1/products/%zz",
            400,
            "malformed percent-encoding",
        ),
        (
            vec!["-d", "ids=1"],
            "/v1/users:batchGet",
            415,
            "`application/x-www-form-urlencoded` is not taken",
        ),
        (
            vec!["-H", json, "-d", "{\"ids\": [1], \"x\": 2}"],
            "/v1/users:batchGet",
            400,
            "unrecognized field name 'x'",
        ),
        (
            vec!["-H", json, "-d", "{\"ids\": "],
            "/v1/users:batchGet",
            400,
            "is not a valid `demo.users.v1.BatchGetUsersRequest`",
        ),
        (
            vec!["-H", json, "-d", "{}"],
            "/v1/users:batchGet?ids=1",
            400,
            "reads every field from the body",
        ),
        (
            vec!["-H", json, "-d", "{}"],
            "/v1/stock:watch",
            501,
            "streams both ways",
        ),
        (
            vec![],
            "/v1/products/999999",
            404,
            "product 999999 not found",
        ),
        (
            vec!["-H", "grpc-timeout: 1n"],
            "/v1/products/7/page",
            504,
            "deadline of 1ns",
        ),
    ];
    for (args, path, status, says) in cases {
        let answer = both(&stack, &args, path).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        let body = answer.json();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{path}: `{message}` lacks `{says}`");
        assert!(
            body["code"].as_i64().is_some_and(|code| code > 0),
            "{path}: {body}"
        );
        if status == 405 {
            assert_eq!(answer.header("allow"), Some("GET"));
        }
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let stack = Stack::start_with(|config| config + "\n[http]\nmax_request_bytes = 64\n")
        .await
        .unwrap();
    let big = format!("{{\"ids\": [{}]}}", vec!["1"; 40].join(","));
    let small = "{\"ids\": [1]}";
    let json = ["-H", "content-type: application/json", "-H", "expect:"];
    let refused = both(
        &stack,
        &[&json[..], &["-d", &big]].concat(),
        "/v1/users:batchGet",
    )
    .await;
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("limit of 64 bytes")
    );
    let taken = both(
        &stack,
        &[&json[..], &["-d", small]].concat(),
        "/v1/users:batchGet",
    )
    .await;
    assert_eq!(taken.status, 200, "{}", taken.text());
}

#[tokio::test]
async fn cors_preflights_are_answered_here_and_responses_expose_metadata() {
    let cors = "\n[http.cors]\nallow_origins = [\"https://shop.test\"]\nexpose_headers = [\"x-trace\"]\nmax_age = \"2m\"\n";
    let stack = Stack::start_with(|config| config + cors).await.unwrap();
    let calls_before = stack
        .service(DemoService::Users)
        .faults()
        .stats()
        .calls_total;
    for path in ["/v1/users/3", "/demo.users.v1.UserService/GetUser"] {
        let preflight = both(
            &stack,
            &[
                "-X",
                "OPTIONS",
                "-H",
                "origin: https://shop.test",
                "-H",
                "access-control-request-method: POST",
                "-H",
                "access-control-request-headers: content-type,x-grpc-web",
            ],
            path,
        )
        .await;
        assert_eq!(preflight.status, 204, "{path}: {}", preflight.text());
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some("https://shop.test")
        );
        assert_eq!(preflight.header("access-control-max-age"), Some("120"));
        let allowed = preflight.header("access-control-allow-headers").unwrap();
        assert!(allowed.contains("x-grpc-web") && allowed.contains("content-type"));
        let refused = both(
            &stack,
            &[
                "-X",
                "OPTIONS",
                "-H",
                "origin: https://evil.test",
                "-H",
                "access-control-request-method: GET",
            ],
            path,
        )
        .await;
        assert_eq!(refused.status, 403);
        assert!(refused.header("access-control-allow-origin").is_none());
    }
    assert_eq!(
        stack
            .service(DemoService::Users)
            .faults()
            .stats()
            .calls_total,
        calls_before,
        "no preflight reached the upstream"
    );

    let answer = both(&stack, &["-H", "origin: https://shop.test"], "/v1/users/3").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://shop.test")
    );
    let exposed = answer.header("access-control-expose-headers").unwrap();
    for name in ["grpc-status", "grpc-message", "x-trace"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let foreign = both(&stack, &["-H", "origin: https://evil.test"], "/v1/users/3").await;
    assert!(foreign.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn request_headers_reach_the_upstream_as_metadata_with_the_deadline() {
    let stack = stack().await;
    let faults = stack.service(DemoService::Catalog).faults().clone();
    faults.start_journal();
    let traceparent = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let answer = both(
        &stack,
        &[
            "-H",
            traceparent,
            "-H",
            "grpc-timeout: 3S",
            "-H",
            "connection: keep-alive",
        ],
        "/v1/products/7",
    )
    .await;
    assert_eq!(answer.status, 200);
    let journal = faults.take_journal();
    assert_eq!(journal.len(), 2, "one call per HTTP version");
    for call in journal {
        let parent = call.traceparent.expect("traceparent passed as metadata");
        assert_eq!(parent.trace_id[..2], [0x0a, 0xf7]);
        let timeout = call.grpc_timeout.expect("the caller's deadline passed on");
        assert!(
            timeout <= std::time::Duration::from_secs(3)
                && timeout > std::time::Duration::from_secs(2),
            "{timeout:?}"
        );
    }
}

#[tokio::test]
async fn the_gateways_own_refusals_have_their_http_status() {
    // One call at a time to the catalog, each taking 300 ms: concurrent callers are shed.
    let stack = Stack::start_with(|config| {
        config.replace(
            "[upstreams.catalog]\n",
            "[upstreams.catalog]\nmax_concurrent = 1\n",
        )
    })
    .await
    .unwrap();
    stack
        .service(DemoService::Catalog)
        .faults()
        .set(mosaic_demo_services::FaultConfig {
            latency: mosaic_demo_services::Latency::Fixed(std::time::Duration::from_millis(300)),
            ..Default::default()
        })
        .unwrap();
    let target = url(&stack, "/v1/products/7");
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move { curl(&[&target]).await })
        })
        .collect();
    let mut shed = 0;
    let mut served = 0;
    for call in calls {
        let answer = call.await.unwrap();
        match answer.status {
            200 => served += 1,
            429 => {
                let body = answer.json();
                assert_eq!(body["code"], json!(8), "RESOURCE_EXHAUSTED: {body}");
                assert!(
                    body["message"].as_str().unwrap().contains("call shed"),
                    "{body}"
                );
                shed += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text()),
        }
    }
    assert!(served >= 1 && shed >= 1, "served {served}, shed {shed}");
    assert_eq!(served + shed, 4);
}

#[tokio::test]
async fn each_protocol_is_recorded_under_its_own_label() {
    let stack = stack().await;
    let json = both(&stack, &[], "/v1/users/4").await;
    assert_eq!(json.status, 200);
    let connect = curl(&[
        "-H",
        "connect-protocol-version: 1",
        "-H",
        "content-type: application/json",
        "-d",
        "{\"id\": 4}",
        &url(&stack, "/demo.users.v1.UserService/GetUser"),
    ])
    .await;
    assert_eq!(connect.status, 200);
    let grpc = mosaic_tests::pb::users::v1::user_service_client::UserServiceClient::new(
        stack.via_gateway(),
    )
    .get_user(mosaic_tests::pb::users::v1::GetUserRequest { id: 4 })
    .await;
    assert!(grpc.is_ok());
    let scrape = mosaic_tests::scrape::Scrape::fetch(stack.admin_addr())
        .await
        .unwrap();
    let calls = |protocol: &str| {
        scrape.sum(
            "rpc_server_call_duration_seconds_count",
            &[
                ("rpc_method", "demo.users.v1.UserService/GetUser"),
                ("protocol", protocol),
                ("rpc_status_code", "OK"),
            ],
        )
    };
    assert_eq!(calls("http"), 2.0, "HTTP/1.1 and h2c");
    assert_eq!(calls("connect"), 1.0);
    assert_eq!(calls("grpc"), 1.0);
    assert_eq!(calls("grpc-web"), 0.0);
    // The pass-through's client side counts every one of them.
    let client = scrape.sum(
        "rpc_client_call_duration_seconds_count",
        &[
            ("upstream", "users"),
            ("rpc_method", "demo.users.v1.UserService/GetUser"),
        ],
    );
    assert_eq!(client, 4.0);
}
