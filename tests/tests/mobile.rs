//! The mobile shop edge API (`proto/demo/mobile/v1/mobile.proto`) against the real demo
//! services: an enum converted by alias, a message alias, a custom resolver, a list macro and
//! string functions, a guarded step tested with `has()`, a oneof chosen by conditions, an
//! ignored failure with the partial signal, a fallback, and metadata sent to the services
//! (constants, computed values, and edge headers forwarded, from gRPC and HTTP callers).

use mosaic_demo::demo::catalog::v1::catalog_service_client::CatalogServiceClient;
use mosaic_demo::demo::catalog::v1::{Category, GetProductRequest, Product};
use mosaic_demo::demo::inventory::v1::GetStockRequest;
use mosaic_demo::demo::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_demo::demo::reviews::v1::{ListReviewsRequest, ListReviewsResponse};
use mosaic_demo::demo::users::v1::{GetUserResponse, User};
use mosaic_demo_services::{DemoService, FaultConfig};
use mosaic_tests::Stack;
use mosaic_tests::curl::curl;
use mosaic_tests::mobile::mobile_shop_client::MobileShopClient;
use mosaic_tests::mobile::product_card::Availability;
use mosaic_tests::mobile::{GetProductCardRequest, ProductCard, Shelf};
use mosaic_tests::raw::frame;
use mosaic_tests::recorder::Recorder;
use prost::Message as _;

fn card_request(product_id: i64, viewer_id: i64) -> GetProductCardRequest {
    GetProductCardRequest {
        product_id,
        viewer_id,
    }
}

async fn card(stack: &Stack, request: GetProductCardRequest) -> tonic::Response<ProductCard> {
    MobileShopClient::new(stack.via_gateway())
        .get_product_card(request)
        .await
        .unwrap()
}

async fn product(stack: &Stack, id: i64) -> Product {
    CatalogServiceClient::new(stack.direct(DemoService::Catalog))
        .get_product(GetProductRequest { id })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
}

/// The reviews the card reads, asked of the reviews service directly.
async fn reviews_of(stack: &Stack, id: i64) -> ListReviewsResponse {
    ReviewServiceClient::new(stack.direct(DemoService::Reviews))
        .list_reviews(ListReviewsRequest {
            product_id: id,
            limit: 20,
        })
        .await
        .unwrap()
        .into_inner()
}

fn shelf_of(category: i32) -> Shelf {
    match Category::try_from(category).unwrap() {
        Category::Unspecified => Shelf::Unspecified,
        Category::Books => Shelf::Books,
        Category::Electronics => Shelf::Tech,
        Category::Sports | Category::Toys => Shelf::Leisure,
        Category::Home | Category::Apparel => Shelf::Other,
    }
}

#[tokio::test]
async fn the_card_matches_the_downstream_services() {
    let stack = Stack::start().await.unwrap();
    let mut shelves = std::collections::BTreeSet::new();
    for id in 1..=12 {
        let response = card(&stack, card_request(id, 3)).await;
        assert!(
            response.metadata().get("mosaic-partial").is_none(),
            "nothing failed, so the card is whole"
        );
        let card = response.into_inner();
        let product = product(&stack, id).await;
        assert_eq!((card.id, card.title.as_str()), (id, product.title.as_str()));

        // The enum alias: categories map onto shelves by name, aliases and the default.
        assert_eq!(card.shelf(), shelf_of(product.category), "product {id}");
        shelves.insert(card.shelf);

        // The message alias, and the price label the custom resolver computes.
        let money = product.price.clone().unwrap();
        let price = card.price.clone().unwrap();
        assert_eq!(
            (price.currency_code.as_str(), price.units, price.nanos),
            (money.currency_code.as_str(), money.units, money.nanos)
        );
        assert_eq!(card.price_label, mosaic_demo::price_label(&money));
        assert!(card.price_label.contains(&money.units.to_string()));

        // Macros and string functions.
        let reviews = reviews_of(&stack, id).await;
        let good: Vec<&str> = reviews
            .reviews
            .iter()
            .filter(|r| r.rating >= 4)
            .map(|r| r.title.as_str())
            .collect();
        assert_eq!(card.highlights, good, "product {id}");
        assert_eq!(card.rating, reviews.average_rating);
        let mut tags: Vec<String> = product
            .tags
            .iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        tags.sort();
        assert_eq!(card.tags, tags);

        // The oneof chosen by the stock.
        let stock = InventoryServiceClient::new(stack.direct(DemoService::Inventory))
            .get_stock(GetStockRequest { product_id: id })
            .await
            .unwrap()
            .into_inner();
        let expected = if stock.available > 0 {
            Availability::InStock(stock.available)
        } else {
            Availability::SoldOut(true)
        };
        assert_eq!(card.availability, Some(expected), "product {id}");
        assert!(!card.partial);

        // Timestamps and durations: the count's time formatted, and the age of the listing.
        let counted = stock.updated_at.unwrap();
        assert_eq!(card.stock_counted, counted_text(&counted), "product {id}");
        let listed = product.created_at.unwrap();
        let nanos = |t: &prost_types::Timestamp| {
            i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
        };
        let days = (nanos(&counted) - nanos(&listed)) / (86_400 * 1_000_000_000);
        assert_eq!(i128::from(card.listed_days), days, "product {id}");
        assert!(card.listed_days > 0, "listed before the count");
    }
    assert!(
        shelves.len() >= 3,
        "the products span several shelves: {shelves:?}"
    );
}

/// `Tue 01 Dec 09:30`, in UTC, as the card writes the time of the count.
fn counted_text(at: &prost_types::Timestamp) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(at.seconds).unwrap();
    format!(
        "{} {:02} {} {:02}:{:02}",
        &at.weekday().to_string()[..3],
        at.day(),
        &at.month().to_string()[..3],
        at.hour(),
        at.minute()
    )
}

#[tokio::test]
async fn the_viewer_is_looked_up_only_when_signed_in() {
    let stack = Stack::start().await.unwrap();
    let users = stack.service(DemoService::Users);
    let before = users.faults().stats().calls_total;
    let guest = card(&stack, card_request(5, 0)).await.into_inner();
    assert_eq!(guest.greeting, "Welcome");
    assert_eq!(
        users.faults().stats().calls_total,
        before,
        "no user call for a guest"
    );

    let signed_in = card(&stack, card_request(5, 3)).await.into_inner();
    let user = mosaic_demo::demo::users::v1::user_service_client::UserServiceClient::new(
        stack.direct(DemoService::Users),
    )
    .get_user(mosaic_demo::demo::users::v1::GetUserRequest { id: 3 })
    .await
    .unwrap()
    .into_inner()
    .user
    .unwrap();
    assert_eq!(
        signed_in.greeting,
        format!("Welcome back, {}", user.display_name)
    );
}

#[tokio::test]
async fn failed_reviews_leave_a_partial_card_and_say_so() {
    let stack = Stack::start().await.unwrap();
    stack
        .service(DemoService::Reviews)
        .faults()
        .set(FaultConfig {
            error_rate: 1.0,
            error_code: tonic::Code::Internal,
            ..Default::default()
        })
        .unwrap();
    let response = card(&stack, card_request(7, 0)).await;
    assert_eq!(
        response
            .metadata()
            .get("mosaic-partial")
            .map(|v| v.to_str().unwrap()),
        Some("rs"),
        "the ignored step is named"
    );
    let card = response.into_inner();
    assert!(card.partial);
    assert!(card.highlights.is_empty());
    assert_eq!(card.rating, 0.0);
    assert_eq!(
        card.title,
        product(&stack, 7).await.title,
        "the rest is whole"
    );
}

#[tokio::test]
async fn an_unavailable_inventory_falls_back_to_unknown_stock() {
    let stack = Stack::start().await.unwrap();
    stack
        .service(DemoService::Inventory)
        .faults()
        .set(FaultConfig {
            error_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let response = card(&stack, card_request(7, 0)).await;
    assert!(
        response.metadata().get("mosaic-partial").is_none(),
        "a fallback is an answer, not a gap"
    );
    let card = response.into_inner();
    assert_eq!(card.availability, Some(Availability::StockUnknown(true)));
    assert!(!card.partial);

    // Another failure is not the fallback's: it fails the card.
    stack
        .service(DemoService::Inventory)
        .faults()
        .set(FaultConfig {
            error_rate: 1.0,
            error_code: tonic::Code::PermissionDenied,
            ..Default::default()
        })
        .unwrap();
    let status = MobileShopClient::new(stack.via_gateway())
        .get_product_card(card_request(7, 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().starts_with("step `stock`"),
        "{}",
        status.message()
    );
}

/// A stack whose users service is a recorder answering every call with one user, so that
/// what the gateway sends the viewer look-up can be read back.
async fn stack_recording_users() -> (Stack, Recorder) {
    let user = GetUserResponse {
        user: Some(User {
            id: 3,
            display_name: "Recorded".to_owned(),
            ..Default::default()
        }),
    };
    let recorder = Recorder::start(frame(&[user.encode_to_vec()]))
        .await
        .unwrap();
    let users = recorder.endpoint();
    let stack = Stack::start_with(|toml| {
        let marker = "[upstreams.users]\nendpoints = [\"";
        let start = toml.find(marker).expect("a users upstream") + marker.len();
        let end = start + toml[start..].find('"').expect("its endpoint");
        format!("{}{users}{}", &toml[..start], &toml[end..])
    })
    .await
    .unwrap();
    (stack, recorder)
}

#[tokio::test]
async fn calls_carry_their_metadata_and_the_forwarded_edge_headers() {
    let (stack, recorder) = stack_recording_users().await;
    let mut request = tonic::Request::new(card_request(9, 3));
    request
        .metadata_mut()
        .insert("accept-language", "fr-CH".parse().unwrap());
    request
        .metadata_mut()
        .insert("x-secret", "stays at the edge".parse().unwrap());
    let card = MobileShopClient::new(stack.via_gateway())
        .get_product_card(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.greeting, "Welcome back, Recorded");

    let received = recorder.take();
    assert_eq!(received.len(), 1, "one viewer look-up");
    let headers = &received[0].headers;
    assert_eq!(received[0].path, "/demo.users.v1.UserService/GetUser");
    assert_eq!(headers["x-client"], "mobile");
    assert_eq!(headers["x-product-id"], "9");
    assert_eq!(headers["x-locale"], "fr-CH");
    assert!(
        headers.get("accept-language").is_none(),
        "forwarded under its new name only"
    );
    assert!(
        headers.get("x-secret").is_none(),
        "only the headers the rules name leave"
    );
    assert!(
        headers.get("grpc-timeout").is_some(),
        "the deadline still goes along"
    );
}

#[tokio::test]
async fn http_callers_headers_are_forwarded_too() {
    let (stack, recorder) = stack_recording_users().await;
    let url = format!(
        "http://{}/v1/mobile/products/9?viewer_id=3",
        stack.gateway_addr()
    );
    let response = curl(&["-H", "Accept-Language: de-CH", &url]).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["greeting"], "Welcome back, Recorded");
    assert_eq!(body["id"], "9", "int64 is a JSON string");
    let received = recorder.take();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].headers["x-locale"], "de-CH");
}

#[tokio::test]
async fn the_highlight_rating_comes_from_the_deployment() {
    let stack = Stack::start_with(|toml| format!("{toml}\n[env]\nhighlight_rating = 5\n"))
        .await
        .unwrap();
    let mut strict_differs = false;
    for id in 1..=6 {
        let card = card(&stack, card_request(id, 0)).await.into_inner();
        let reviews = reviews_of(&stack, id).await;
        let five: Vec<&str> = reviews
            .reviews
            .iter()
            .filter(|r| r.rating >= 5)
            .map(|r| r.title.as_str())
            .collect();
        assert_eq!(card.highlights, five, "product {id}");
        strict_differs |= reviews.reviews.iter().any(|r| r.rating == 4);
    }
    assert!(
        strict_differs,
        "some review rates 4, so the default of 4 would have highlighted more"
    );

    // The service's validation of the value fails the start, naming it.
    let refused = Stack::start_with(|toml| format!("{toml}\n[env]\nhighlight_rating = 9\n"))
        .await
        .err()
        .expect("the gateway does not start");
    let shown = format!("{refused:#}");
    assert!(
        shown.contains("demo.mobile.v1.MobileShop")
            && shown.contains("highlight_rating is a rating from 1 to 5, not 9"),
        "{shown}"
    );
}
