//! A differential test of the gateway's proto3 JSON: the same messages rendered by the gateway
//! (fetched over HTTP/JSON) and by Python's `google.protobuf.json_format` (the bytes fetched
//! over gRPC), under the default options and under proto names + defaults + enum numbers.
//! Needs the `protobuf` PyPI package; `.ci/run` installs it and runs this.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mosaic_demo::demo::catalog::v1::catalog_service_client::CatalogServiceClient;
use mosaic_demo::demo::catalog::v1::{GetProductRequest, ListProductsRequest};
use mosaic_demo::demo::inventory::v1::GetStockRequest;
use mosaic_demo::demo::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_demo::demo::reviews::v1::ListReviewsRequest;
use mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_demo::demo::users::v1::GetUserRequest;
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo_services::DemoService;
use mosaic_tests::curl::curl;
use mosaic_tests::storefront::storefront_client::StorefrontClient;
use mosaic_tests::storefront::{GetProductPageRequest, GetUserProfileRequest};
use mosaic_tests::{Stack, scratch_file};
use prost::Message;
use serde_json::{Value, json};

/// One message: where the gateway serves it as JSON, its type, its bytes over gRPC.
struct Case {
    path: String,
    type_name: &'static str,
    bytes: Vec<u8>,
}

async fn cases(stack: &Stack) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut catalog = CatalogServiceClient::new(stack.direct(DemoService::Catalog));
    for id in [1, 7, 123, 500] {
        let product = catalog
            .get_product(GetProductRequest { id })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        cases.push(Case {
            path: format!("/v1/products/{id}"),
            type_name: "demo.catalog.v1.Product",
            bytes: product.encode_to_vec(),
        });
    }
    let list = catalog
        .list_products(ListProductsRequest {
            page_size: 7,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    cases.push(Case {
        path: "/v1/products?pageSize=7".into(),
        type_name: "demo.catalog.v1.ListProductsResponse",
        bytes: list.encode_to_vec(),
    });
    let mut users = UserServiceClient::new(stack.direct(DemoService::Users));
    for id in [1, 42, 999] {
        let user = users
            .get_user(GetUserRequest { id })
            .await
            .unwrap()
            .into_inner();
        cases.push(Case {
            path: format!("/v1/users/{id}"),
            type_name: "demo.users.v1.GetUserResponse",
            bytes: user.encode_to_vec(),
        });
    }
    let reviews = ReviewServiceClient::new(stack.direct(DemoService::Reviews))
        .list_reviews(ListReviewsRequest {
            product_id: 9,
            limit: 5,
        })
        .await
        .unwrap()
        .into_inner();
    cases.push(Case {
        path: "/v1/products/9/reviews?limit=5".into(),
        type_name: "demo.reviews.v1.ListReviewsResponse",
        bytes: reviews.encode_to_vec(),
    });
    let stock = InventoryServiceClient::new(stack.direct(DemoService::Inventory))
        .get_stock(GetStockRequest { product_id: 11 })
        .await
        .unwrap()
        .into_inner();
    cases.push(Case {
        path: "/v1/products/11/stock".into(),
        type_name: "demo.inventory.v1.Stock",
        bytes: stock.encode_to_vec(),
    });
    let mut storefront = StorefrontClient::new(stack.via_gateway());
    let page = storefront
        .get_product_page(GetProductPageRequest {
            product_id: 7,
            review_limit: 4,
        })
        .await
        .unwrap()
        .into_inner();
    cases.push(Case {
        path: "/v1/products/7/page?reviewLimit=4".into(),
        type_name: "demo.storefront.v1.ProductPage",
        bytes: page.encode_to_vec(),
    });
    let profile = storefront
        .get_user_profile(GetUserProfileRequest {
            user_id: 17,
            review_limit: 3,
        })
        .await
        .unwrap()
        .into_inner();
    cases.push(Case {
        path: "/v1/users/17/profile?reviewLimit=3".into(),
        type_name: "demo.storefront.v1.UserProfile",
        bytes: profile.encode_to_vec(),
    });
    cases
}

/// Numbers compared as numbers (`4` and `4.0` are the same value in JSON).
fn normalize(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, normalize(v))).collect())
        }
        other => other,
    }
}

fn oracle(cases: &[Case], options: Value) -> Vec<Value> {
    let descriptors = scratch_file("demo-descriptors.binpb");
    std::fs::write(&descriptors, mosaic_demo::FILE_DESCRIPTOR_SET).unwrap();
    let messages: Vec<Value> = cases
        .iter()
        .map(|case| json!({"type": case.type_name, "bytes": STANDARD.encode(&case.bytes)}))
        .collect();
    let request = json!({
        "descriptor_set": descriptors.display().to_string(),
        "options": options,
        "messages": messages,
    });
    let mut child = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/json_format_oracle.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(&serde_json::to_vec(&request).unwrap())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    std::fs::remove_file(&descriptors).ok();
    assert!(
        output.status.success(),
        "the oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn compare(http: &str, options: Value) {
    let stack = Stack::start_with(|config| config + http).await.unwrap();
    let cases = cases(&stack).await;
    let expected = oracle(&cases, options);
    assert_eq!(expected.len(), cases.len());
    for (case, expected) in cases.iter().zip(expected) {
        let answer = curl(&[&format!("http://{}{}", stack.gateway_addr(), case.path)]).await;
        assert_eq!(answer.status, 200, "{}", case.path);
        assert_eq!(
            normalize(answer.json()),
            normalize(expected),
            "{} ({})",
            case.path,
            case.type_name
        );
    }
}

#[tokio::test]
#[ignore = "needs the protobuf PyPI package (installed by .ci/run)"]
async fn default_json_matches_python_json_format() {
    compare(
        "",
        json!({"proto_names": false, "emit_defaults": false, "enum_numbers": false}),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the protobuf PyPI package (installed by .ci/run)"]
async fn configured_json_matches_python_json_format() {
    compare(
        "\n[http]\nfield_names = \"proto\"\nemit_defaults = true\nenum_numbers = true\n",
        json!({"proto_names": true, "emit_defaults": true, "enum_numbers": true}),
    )
    .await;
}
