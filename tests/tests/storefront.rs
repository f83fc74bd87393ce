//! The generated storefront edge API against the real demo services: every method's result is
//! checked against what the downstream services return when called directly.

use std::time::Duration;

use mosaic_demo::demo::catalog::v1::GetProductRequest;
use mosaic_demo::demo::catalog::v1::catalog_service_client::CatalogServiceClient;
use mosaic_demo::demo::inventory::v1::GetStockRequest;
use mosaic_demo::demo::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_demo::demo::reviews::v1::{ListReviewsByAuthorRequest, ListReviewsRequest};
use mosaic_demo::demo::users::v1::GetUserRequest;
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo_services::{DemoService, FaultConfig, Latency};
use mosaic_tests::Stack;
use mosaic_tests::storefront::storefront_client::StorefrontClient;
use mosaic_tests::storefront::{
    CheckAvailabilityRequest, GetProductPageRequest, GetUserProfileRequest,
};
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;

fn latency(ms: u64) -> FaultConfig {
    FaultConfig {
        latency: Latency::Fixed(Duration::from_millis(ms)),
        ..Default::default()
    }
}

async fn storefront(stack: &Stack) -> StorefrontClient<Channel> {
    StorefrontClient::new(stack.via_gateway())
}

#[tokio::test]
async fn product_page_matches_the_downstream_services() {
    let stack = Stack::start().await.unwrap();
    let page = storefront(&stack)
        .await
        .get_product_page(GetProductPageRequest {
            product_id: 7,
            review_limit: 4,
        })
        .await
        .unwrap()
        .into_inner();

    let product = CatalogServiceClient::new(stack.direct(DemoService::Catalog))
        .get_product(GetProductRequest { id: 7 })
        .await
        .unwrap()
        .into_inner()
        .product;
    assert_eq!(page.product, product);
    let stock = InventoryServiceClient::new(stack.direct(DemoService::Inventory))
        .get_stock(GetStockRequest { product_id: 7 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.available, stock.available);
    assert_eq!(page.in_stock, stock.available > 0);

    let reviews = ReviewServiceClient::new(stack.direct(DemoService::Reviews))
        .list_reviews(ListReviewsRequest {
            product_id: 7,
            limit: 4,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!reviews.reviews.is_empty(), "product 7 has reviews");
    assert_eq!(page.reviews.len(), reviews.reviews.len());
    let rating = page.rating.unwrap();
    assert_eq!(rating.average, reviews.average_rating);
    assert_eq!(rating.count, reviews.total_count);

    let mut users = UserServiceClient::new(stack.direct(DemoService::Users));
    for (card, review) in page.reviews.iter().zip(&reviews.reviews) {
        let author = users
            .get_user(GetUserRequest {
                id: review.author_id,
            })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(card.review_id, review.id);
        assert_eq!(card.author_name, author.display_name);
        assert_eq!(card.rating, review.rating);
        assert_eq!(card.title, review.title);
        assert_eq!(card.body, review.body);
    }
}

#[tokio::test]
async fn user_profile_matches_the_downstream_services() {
    let stack = Stack::start().await.unwrap();
    let profile = storefront(&stack)
        .await
        .get_user_profile(GetUserProfileRequest {
            user_id: 17,
            review_limit: 3,
        })
        .await
        .unwrap()
        .into_inner();

    let user = UserServiceClient::new(stack.direct(DemoService::Users))
        .get_user(GetUserRequest { id: 17 })
        .await
        .unwrap()
        .into_inner()
        .user;
    assert_eq!(profile.user, user);
    let reviews = ReviewServiceClient::new(stack.direct(DemoService::Reviews))
        .list_reviews_by_author(ListReviewsByAuthorRequest {
            author_id: 17,
            limit: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.review_count, reviews.total_count);
    assert_eq!(profile.recent_reviews.len(), reviews.reviews.len());
    let mut catalog = CatalogServiceClient::new(stack.direct(DemoService::Catalog));
    for (item, review) in profile.recent_reviews.iter().zip(&reviews.reviews) {
        let product = catalog
            .get_product(GetProductRequest {
                id: review.product_id,
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        assert_eq!(item.review_id, review.id);
        assert_eq!(item.product_id, review.product_id);
        assert_eq!(item.product_title, product.title);
        assert_eq!(item.rating, review.rating);
    }
}

#[tokio::test]
async fn availability_validates_and_guards_the_product_call() {
    let stack = Stack::start().await.unwrap();
    let mut client = storefront(&stack).await;

    let invalid = client
        .check_availability(CheckAvailabilityRequest {
            product_id: 3,
            quantity: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(invalid.message(), "quantity must be positive");
    let too_many = client
        .check_availability(CheckAvailabilityRequest {
            product_id: 3,
            quantity: 5000,
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::OutOfRange);
    // Rejected requests make no downstream call at all.
    assert_eq!(
        stack
            .service(DemoService::Inventory)
            .faults()
            .stats()
            .calls_total,
        0
    );

    let stock = InventoryServiceClient::new(stack.direct(DemoService::Inventory))
        .get_stock(GetStockRequest { product_id: 3 })
        .await
        .unwrap()
        .into_inner();
    let product = CatalogServiceClient::new(stack.direct(DemoService::Catalog))
        .get_product(GetProductRequest { id: 3 })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert!(stock.available >= 1, "product 3 is in stock");
    let catalog = stack.service(DemoService::Catalog).faults();
    catalog.reset_stats();

    let yes = client
        .check_availability(CheckAvailabilityRequest {
            product_id: 3,
            quantity: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(yes.available);
    assert_eq!(yes.in_stock, stock.available);
    assert_eq!(yes.title, product.title);
    assert_eq!(yes.total_units, product.price.unwrap().units);
    assert_eq!(catalog.stats().calls_total, 1);

    // More than in stock (but within the limit): the guard skips the product call.
    let quantity = i32::try_from(stock.available + 1).unwrap();
    // The demo data keeps this within the 1000-item limit; if it ever does not, fail loudly
    // rather than skip the guard check.
    assert!(
        quantity <= 1000,
        "product 3 has {} in stock",
        stock.available
    );
    let no = client
        .check_availability(CheckAvailabilityRequest {
            product_id: 3,
            quantity,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!no.available);
    assert_eq!(no.title, "");
    assert_eq!(no.total_units, 0);
    assert_eq!(
        catalog.stats().calls_total,
        1,
        "the guarded call did not run"
    );
}

#[tokio::test]
async fn a_downstream_error_fails_the_call_naming_the_step_and_method() {
    let stack = Stack::start().await.unwrap();
    stack
        .service(DemoService::Inventory)
        .faults()
        .set(FaultConfig {
            error_rate: 1.0,
            error_code: Code::Unavailable,
            ..Default::default()
        })
        .unwrap();
    let status = storefront(&stack)
        .await
        .get_product_page(GetProductPageRequest {
            product_id: 7,
            review_limit: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "step `stock` (demo.inventory.v1.InventoryService/GetStock) failed: injected fault: unavailable"
    );

    let missing = storefront(&stack)
        .await
        .get_user_profile(GetUserProfileRequest {
            user_id: 99_999,
            review_limit: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("99999"), "{}", missing.message());
}

#[tokio::test]
async fn a_slow_downstream_hits_the_method_deadline() {
    let stack = Stack::start().await.unwrap();
    stack
        .service(DemoService::Inventory)
        .faults()
        .set(latency(3_000))
        .unwrap();
    let started = Instant::now();
    let status = storefront(&stack)
        .await
        .get_product_page(GetProductPageRequest {
            product_id: 7,
            review_limit: 2,
        })
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // The method's timeout is 800ms; the call ends then, not when the downstream answers.
    assert!(elapsed >= Duration::from_millis(780), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2_000), "{elapsed:?}");

    // A caller's shorter deadline wins over the method's, and the gateway answers at it.
    let started = Instant::now();
    let status = mosaic_tests::raw::status_within(
        stack.gateway_addr(),
        "/demo.storefront.v1.Storefront/GetProductPage",
        &GetProductPageRequest {
            product_id: 7,
            review_limit: 2,
        },
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        elapsed >= Duration::from_millis(190) && elapsed < Duration::from_millis(400),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn the_graph_finishes_in_its_critical_path_not_the_sum_of_levels() {
    // p (catalog) takes 400ms; rs (reviews) 20ms then one GetUser (users, 400ms) per review.
    // Level by level: max(400, 20) + 400 = 800ms. Critical path: 20 + 400 = 420ms.
    let stack = Stack::start().await.unwrap();
    stack
        .service(DemoService::Catalog)
        .faults()
        .set(latency(400))
        .unwrap();
    stack
        .service(DemoService::Reviews)
        .faults()
        .set(latency(20))
        .unwrap();
    stack
        .service(DemoService::Users)
        .faults()
        .set(latency(400))
        .unwrap();
    let mut client = storefront(&stack).await;
    // Warm the connections so connection set-up is not measured.
    let _ = client
        .get_product_page(GetProductPageRequest {
            product_id: 7,
            review_limit: 1,
        })
        .await;

    let started = Instant::now();
    let page = client
        .get_product_page(GetProductPageRequest {
            product_id: 7,
            review_limit: 3,
        })
        .await
        .unwrap()
        .into_inner();
    let elapsed = started.elapsed();
    assert_eq!(page.reviews.len(), 3);
    assert!(elapsed >= Duration::from_millis(420), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(650),
        "took {elapsed:?}: the level-by-level time would be 800ms"
    );
}

#[tokio::test]
async fn reviews_by_the_same_author_share_one_user_call() {
    let stack = Stack::start().await.unwrap();
    let users = stack.service(DemoService::Users).faults();
    let mut reviews = ReviewServiceClient::new(stack.direct(DemoService::Reviews));
    let mut client = storefront(&stack).await;
    let mut shared_some = false;
    for product_id in 1..=40 {
        let listed = reviews
            .list_reviews(ListReviewsRequest {
                product_id,
                limit: 20,
            })
            .await
            .unwrap()
            .into_inner();
        let mut authors: Vec<i64> = listed.reviews.iter().map(|r| r.author_id).collect();
        authors.sort_unstable();
        authors.dedup();
        users.reset_stats();
        let page = client
            .get_product_page(GetProductPageRequest {
                product_id,
                review_limit: 20,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.reviews.len(), listed.reviews.len());
        assert_eq!(
            users.stats().calls_total,
            authors.len() as u64,
            "product {product_id}: one GetUser per distinct author of its {} reviews",
            listed.reviews.len()
        );
        shared_some |= authors.len() < listed.reviews.len();
    }
    assert!(
        shared_some,
        "some product has several reviews by one author, so sharing saved calls"
    );
}
