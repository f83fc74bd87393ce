//! Pass-through routing: every demo method called through the gateway gives what calling the
//! service directly gives: same messages, same errors, same streams.

use std::fmt::Debug;
use std::time::Duration;

use mosaic_demo_services::DemoService;
use mosaic_tests::Stack;
use mosaic_tests::pb::catalog::v1::catalog_service_client::CatalogServiceClient;
use mosaic_tests::pb::catalog::v1::{
    BatchGetProductsRequest, Category, GetProductRequest, ListProductsRequest,
};
use mosaic_tests::pb::inventory::v1::GetStockRequest;
use mosaic_tests::pb::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_tests::pb::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_tests::pb::reviews::v1::{
    ListReviewsByAuthorRequest, ListReviewsRequest, StreamReviewsRequest,
};
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::pb::users::v1::{BatchGetUsersRequest, GetUserRequest};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Response, Status};

/// Asserts that a call answered the same through the gateway as directly, and returns the
/// direct result for further checks.
fn assert_same<T: PartialEq + Debug>(
    what: &str,
    direct: Result<Response<T>, Status>,
    via: Result<Response<T>, Status>,
) -> Result<T, Status> {
    match (direct, via) {
        (Ok(direct), Ok(via)) => {
            let (mut direct_meta, direct, _) = direct.into_parts();
            let (mut via_meta, via, _) = via.into_parts();
            assert_eq!(direct, via, "{what}: messages differ");
            direct_meta.remove("date");
            via_meta.remove("date");
            assert_eq!(
                direct_meta.into_headers(),
                via_meta.into_headers(),
                "{what}: response headers differ"
            );
            Ok(direct)
        }
        (Err(direct), Err(via)) => {
            assert_eq!(direct.code(), via.code(), "{what}: codes differ");
            assert_eq!(direct.message(), via.message(), "{what}: messages differ");
            assert_eq!(direct.details(), via.details(), "{what}: details differ");
            Err(direct)
        }
        (direct, via) => panic!("{what}: direct gave {direct:?}, the gateway gave {via:?}"),
    }
}

#[tokio::test]
async fn every_users_method_matches_the_direct_call() {
    let stack = Stack::start().await.unwrap();
    let mut direct = UserServiceClient::new(stack.direct(DemoService::Users));
    let mut via = UserServiceClient::new(stack.via_gateway());

    for id in [1, 42, 1000] {
        let request = GetUserRequest { id };
        let user = assert_same(
            "GetUser",
            direct.get_user(request).await,
            via.get_user(request).await,
        )
        .unwrap();
        assert_eq!(user.user.unwrap().id, id);
    }
    let request = BatchGetUsersRequest {
        ids: vec![5, 3, 999],
    };
    let batch = assert_same(
        "BatchGetUsers",
        direct.batch_get_users(request.clone()).await,
        via.batch_get_users(request).await,
    )
    .unwrap();
    assert_eq!(
        batch.users.iter().map(|u| u.id).collect::<Vec<_>>(),
        [5, 3, 999]
    );

    let missing = assert_same(
        "GetUser unknown",
        direct.get_user(GetUserRequest { id: 4242 }).await,
        via.get_user(GetUserRequest { id: 4242 }).await,
    )
    .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("4242"), "{}", missing.message());

    let bad = assert_same(
        "GetUser bad id",
        direct.get_user(GetUserRequest { id: -3 }).await,
        via.get_user(GetUserRequest { id: -3 }).await,
    )
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let empty = assert_same(
        "BatchGetUsers empty",
        direct
            .batch_get_users(BatchGetUsersRequest { ids: vec![] })
            .await,
        via.batch_get_users(BatchGetUsersRequest { ids: vec![] })
            .await,
    )
    .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn every_catalog_method_matches_the_direct_call() {
    let stack = Stack::start().await.unwrap();
    let mut direct = CatalogServiceClient::new(stack.direct(DemoService::Catalog));
    let mut via = CatalogServiceClient::new(stack.via_gateway());

    let product = assert_same(
        "GetProduct",
        direct.get_product(GetProductRequest { id: 7 }).await,
        via.get_product(GetProductRequest { id: 7 }).await,
    )
    .unwrap();
    assert_eq!(product.product.unwrap().id, 7);

    let request = BatchGetProductsRequest { ids: vec![1, 500] };
    assert_same(
        "BatchGetProducts",
        direct.batch_get_products(request.clone()).await,
        via.batch_get_products(request).await,
    )
    .unwrap();

    // Walk every page through both paths.
    let mut token = String::new();
    let mut seen = 0;
    loop {
        let request = ListProductsRequest {
            page_size: 100,
            page_token: token.clone(),
            category: Category::Unspecified as i32,
        };
        let page = assert_same(
            "ListProducts",
            direct.list_products(request.clone()).await,
            via.list_products(request).await,
        )
        .unwrap();
        seen += page.products.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, 500);

    let bad = assert_same(
        "ListProducts bad token",
        direct
            .list_products(ListProductsRequest {
                page_token: "not a token".into(),
                ..Default::default()
            })
            .await,
        via.list_products(ListProductsRequest {
            page_token: "not a token".into(),
            ..Default::default()
        })
        .await,
    )
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let missing = assert_same(
        "GetProduct unknown",
        direct.get_product(GetProductRequest { id: 501 }).await,
        via.get_product(GetProductRequest { id: 501 }).await,
    )
    .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn every_reviews_method_matches_the_direct_call() {
    let stack = Stack::start().await.unwrap();
    let mut direct = ReviewServiceClient::new(stack.direct(DemoService::Reviews));
    let mut via = ReviewServiceClient::new(stack.via_gateway());

    let request = ListReviewsRequest {
        product_id: 9,
        limit: 5,
    };
    let reviews = assert_same(
        "ListReviews",
        direct.list_reviews(request).await,
        via.list_reviews(request).await,
    )
    .unwrap();
    assert!(reviews.reviews.len() <= 5);

    let request = ListReviewsByAuthorRequest {
        author_id: 17,
        limit: 0,
    };
    assert_same(
        "ListReviewsByAuthor",
        direct.list_reviews_by_author(request).await,
        via.list_reviews_by_author(request).await,
    )
    .unwrap();

    let bad = ListReviewsRequest {
        product_id: 9,
        limit: -1,
    };
    let err = assert_same(
        "ListReviews bad limit",
        direct.list_reviews(bad).await,
        via.list_reviews(bad).await,
    )
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn server_streaming_passes_through_message_by_message() {
    let stack = Stack::start().await.unwrap();
    let mut direct = ReviewServiceClient::new(stack.direct(DemoService::Reviews));
    let mut via = ReviewServiceClient::new(stack.via_gateway());

    let collect = |response: Result<Response<tonic::Streaming<_>>, Status>| async move {
        let mut stream = response.unwrap().into_inner();
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item.unwrap());
        }
        items
    };
    let request = StreamReviewsRequest { product_id: 3 };
    let direct_items = collect(direct.stream_reviews(request).await).await;
    let via_items = collect(via.stream_reviews(request).await).await;
    assert!(!direct_items.is_empty(), "product 3 has reviews");
    assert_eq!(direct_items, via_items);

    // An error status at the start of a stream also passes through.
    let missing = StreamReviewsRequest { product_id: 9999 };
    let direct_err = match direct.stream_reviews(missing).await {
        Ok(response) => response.into_inner().next().await.unwrap().unwrap_err(),
        Err(status) => status,
    };
    let via_err = match via.stream_reviews(missing).await {
        Ok(response) => response.into_inner().next().await.unwrap().unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(direct_err.code(), Code::NotFound);
    assert_eq!(
        (direct_err.code(), direct_err.message()),
        (via_err.code(), via_err.message())
    );
}

#[tokio::test]
async fn client_and_bidi_streaming_pass_through() {
    let stack = Stack::start().await.unwrap();
    let mut direct = InventoryServiceClient::new(stack.direct(DemoService::Inventory));
    let mut via = InventoryServiceClient::new(stack.via_gateway());

    let single = GetStockRequest { product_id: 11 };
    assert_same(
        "GetStock",
        direct.get_stock(single).await,
        via.get_stock(single).await,
    )
    .unwrap();

    let requests = || tokio_stream::iter((1..=50).map(|product_id| GetStockRequest { product_id }));
    let sum = assert_same(
        "SumStock",
        direct.sum_stock(requests()).await,
        via.sum_stock(requests()).await,
    )
    .unwrap();
    assert_eq!(sum.products, 50);

    let watch = |response: Result<Response<tonic::Streaming<_>>, Status>| async move {
        let mut stream = response.unwrap().into_inner();
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item.map_err(|s| (s.code(), s.message().to_owned())));
        }
        items
    };
    let direct_items = watch(direct.watch_stock(requests()).await).await;
    let via_items = watch(via.watch_stock(requests()).await).await;
    assert_eq!(direct_items.len(), 50);
    assert_eq!(direct_items, via_items);

    // A bad id midway ends both streams the same way.
    let with_bad =
        || tokio_stream::iter([1, 2, 100_000, 3].map(|product_id| GetStockRequest { product_id }));
    let direct_items = watch(direct.watch_stock(with_bad()).await).await;
    let via_items = watch(via.watch_stock(with_bad()).await).await;
    assert_eq!(direct_items, via_items);
    assert!(
        matches!(direct_items.last(), Some(Err((Code::NotFound, _)))),
        "{direct_items:?}"
    );
}

#[tokio::test]
async fn bidi_streaming_is_forwarded_message_by_message() {
    // Ping-pong: each request is sent only after the reply to the one before arrived. A proxy
    // that buffered either direction (until the request stream ends, or until the response
    // stream does) would leave the first round waiting forever.
    const ROUND: Duration = Duration::from_secs(2);
    let stack = Stack::start().await.unwrap();
    let mut direct = InventoryServiceClient::new(stack.direct(DemoService::Inventory));
    let mut via = InventoryServiceClient::new(stack.via_gateway());

    let (requests, outbound) = tokio::sync::mpsc::channel(1);
    let mut replies = tokio::time::timeout(ROUND, via.watch_stock(ReceiverStream::new(outbound)))
        .await
        .expect("the response head arrives before any message is sent")
        .unwrap()
        .into_inner();
    for (round, product_id) in [7, 1, 500, 42, 7, 250].into_iter().enumerate() {
        requests.send(GetStockRequest { product_id }).await.unwrap();
        let reply = tokio::time::timeout(ROUND, replies.message())
            .await
            .unwrap_or_else(|_| {
                panic!("round {round}: no reply within {ROUND:?}; the gateway held a message back")
            })
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: the stream ended early"));
        let expected = direct
            .get_stock(GetStockRequest { product_id })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply, expected, "round {round}");
    }
    // Closing the request side ends the reply stream cleanly, also through the gateway.
    drop(requests);
    let end = tokio::time::timeout(ROUND, replies.message())
        .await
        .expect("the stream ends once the caller's side is closed")
        .unwrap();
    assert_eq!(end, None);
}
