//! Third-party clients from npm against the gateway: connect-web's gRPC-Web and Connect
//! transports (JSON, binary, and GET) in Node, and `buf curl` over gRPC, gRPC-Web and Connect,
//! discovering the schema through reflection on each protocol. Answers are compared with the
//! same calls made straight to the demo services over gRPC.
//!
//! Needs `npm ci --prefix tests/web`; `.ci/run` does it and runs these.

use mosaic_demo::demo::reviews::v1::StreamReviewsRequest;
use mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_demo::demo::users::v1::GetUserRequest;
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo_services::DemoService;
use mosaic_tests::{Stack, scratch_file};
use serde_json::{Value, json};

const WEB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web");

async fn streamed_ids(stack: &Stack, product_id: i64) -> Vec<String> {
    let mut stream = ReviewServiceClient::new(stack.direct(DemoService::Reviews))
        .stream_reviews(StreamReviewsRequest { product_id })
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    while let Some(review) = stream.message().await.unwrap() {
        ids.push(review.id.to_string());
    }
    ids
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .current_dir(WEB)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run {program} ({error}): run `npm ci --prefix tests/web`")
        })
}

#[tokio::test]
#[ignore = "needs `npm ci --prefix tests/web` (run by .ci/run)"]
async fn connect_web_transports_call_every_kind_of_route() {
    let stack = Stack::start().await.unwrap();
    let user = UserServiceClient::new(stack.direct(DemoService::Users))
        .get_user(GetUserRequest { id: 5 })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let ids = streamed_ids(&stack, 3).await;
    let descriptors = scratch_file("web-descriptors.binpb");
    std::fs::write(&descriptors, mosaic_demo::FILE_DESCRIPTOR_SET).unwrap();
    let base = format!("http://{}", stack.gateway_addr());
    let output = tokio::task::spawn_blocking({
        let descriptors = descriptors.display().to_string();
        move || run("node", &["clients.mjs", &base, &descriptors])
    })
    .await
    .unwrap();
    std::fs::remove_file(&descriptors).ok();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_slice(&output.stdout).unwrap();
    for transport in ["grpc-web", "connect-json", "connect-proto", "connect-get"] {
        let result = &results[transport];
        assert_eq!(
            result["user"],
            json!({"id": "5", "displayName": user.display_name}),
            "{transport}"
        );
        let expected: Vec<String> = if transport == "connect-get" {
            Vec::new()
        } else {
            ids.clone()
        };
        assert_eq!(result["streamed"], json!(expected), "{transport}");
        assert_eq!(
            result["page"],
            json!({"productId": "7", "reviews": 2}),
            "{transport}"
        );
        assert_eq!(
            result["error"],
            json!({"code": 5, "message": "user 999999 not found"}),
            "{transport}: NOT_FOUND as the client reads it"
        );
    }
}

#[tokio::test]
#[ignore = "needs `npm ci --prefix tests/web` (run by .ci/run)"]
async fn buf_curl_over_all_three_protocols_through_reflection() {
    let stack = Stack::start().await.unwrap();
    let base = format!("http://{}", stack.gateway_addr());
    for protocol in ["grpc", "grpcweb", "connect"] {
        let user_url = format!("{base}/demo.users.v1.UserService/GetUser");
        let page_url = format!("{base}/demo.storefront.v1.Storefront/GetProductPage");
        let missing_url = user_url.clone();
        let (user, page, missing) = tokio::task::spawn_blocking(move || {
            let call = |url: &str, body: &str| {
                run(
                    "node_modules/.bin/buf",
                    &[
                        "curl",
                        "--protocol",
                        protocol,
                        "--http2-prior-knowledge",
                        "-d",
                        body,
                        url,
                    ],
                )
            };
            (
                call(&user_url, r#"{"id": 5}"#),
                call(&page_url, r#"{"productId": 7, "reviewLimit": 2}"#),
                call(&missing_url, r#"{"id": 999999}"#),
            )
        })
        .await
        .unwrap();
        assert!(
            user.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&user.stderr)
        );
        let user: Value = serde_json::from_slice(&user.stdout).unwrap();
        assert_eq!(user["user"]["id"], json!("5"), "{protocol}");
        assert!(
            page.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&page.stderr)
        );
        let page: Value = serde_json::from_slice(&page.stdout).unwrap();
        assert_eq!(
            page["reviews"].as_array().map(Vec::len),
            Some(2),
            "{protocol}"
        );
        assert!(
            !missing.status.success(),
            "{protocol}: NOT_FOUND must fail the command"
        );
        let report = String::from_utf8_lossy(&missing.stderr).into_owned()
            + &String::from_utf8_lossy(&missing.stdout);
        assert!(
            report.contains("not_found")
                || report.contains("NotFound")
                || report.contains("not found"),
            "{protocol}: {report}"
        );
    }
}
