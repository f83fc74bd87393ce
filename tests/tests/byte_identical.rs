//! Responses through the gateway are byte-identical to direct responses: status, headers,
//! body bytes (gRPC framing included) and trailers, for successes and for errors.

use mosaic_demo_services::DemoService;
use mosaic_tests::Stack;
use mosaic_tests::pb::catalog::v1::ListProductsRequest;
use mosaic_tests::pb::reviews::v1::StreamReviewsRequest;
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::raw::{self, RawResponse};
use prost::Message;

async fn both(stack: &Stack, service: DemoService, path: &str, body: bytes::Bytes) -> RawResponse {
    let direct = raw::call(stack.service(service).local_addr(), path, body.clone(), &[])
        .await
        .unwrap();
    let via = raw::call(stack.gateway_addr(), path, body, &[])
        .await
        .unwrap();
    assert_eq!(direct, via, "{path}: the gateway changed the response");
    direct
}

#[tokio::test]
async fn unary_success_is_byte_identical() {
    let stack = Stack::start().await.unwrap();
    let body = raw::frame(&[GetUserRequest { id: 77 }.encode_to_vec()]);
    let response = both(
        &stack,
        DemoService::Users,
        "/demo.users.v1.UserService/GetUser",
        body,
    )
    .await;
    assert_eq!(response.status, 200);
    assert!(response.body.len() > 5, "one framed message");
    assert_eq!(response.trailers.unwrap()["grpc-status"], "0");
}

#[tokio::test]
async fn errors_are_byte_identical_including_trailers_only_replies() {
    let stack = Stack::start().await.unwrap();
    let body = raw::frame(&[GetUserRequest { id: 5555 }.encode_to_vec()]);
    let response = both(
        &stack,
        DemoService::Users,
        "/demo.users.v1.UserService/GetUser",
        body,
    )
    .await;
    // tonic answers errors trailers-only: the status travels in the headers.
    assert_eq!(response.headers["grpc-status"], "5");
    assert!(response.trailers.is_none());

    // A malformed message (invalid protobuf) is rejected by the service, not the gateway.
    let garbage = raw::frame(&[vec![0xff, 0xff, 0xff]]);
    let response = both(
        &stack,
        DemoService::Users,
        "/demo.users.v1.UserService/GetUser",
        garbage,
    )
    .await;
    assert_eq!(response.headers["grpc-status"], "13");

    // An unknown method on a routed service is the service's own UNIMPLEMENTED.
    let response = both(
        &stack,
        DemoService::Users,
        "/demo.users.v1.UserService/DeleteEverything",
        raw::frame(&[vec![]]),
    )
    .await;
    assert_eq!(response.headers["grpc-status"], "12");
}

#[tokio::test]
async fn streams_and_large_responses_are_byte_identical() {
    let stack = Stack::start().await.unwrap();
    let body = raw::frame(&[StreamReviewsRequest { product_id: 1 }.encode_to_vec()]);
    let response = both(
        &stack,
        DemoService::Reviews,
        "/demo.reviews.v1.ReviewService/StreamReviews",
        body,
    )
    .await;
    assert!(response.body.len() > 100);

    // A 100-product page is tens of kilobytes: several HTTP/2 DATA frames and flow-control
    // windows on each hop.
    let body = raw::frame(&[ListProductsRequest {
        page_size: 100,
        ..Default::default()
    }
    .encode_to_vec()]);
    let response = both(
        &stack,
        DemoService::Catalog,
        "/demo.catalog.v1.CatalogService/ListProducts",
        body,
    )
    .await;
    assert!(
        response.body.len() > 16 * 1024,
        "{} bytes",
        response.body.len()
    );
}

#[tokio::test]
async fn request_metadata_reaches_the_upstream_unchanged() {
    // The demo services echo nothing, so check the reverse direction through a request that
    // depends on metadata: a client deadline shorter than an injected delay must fail the same
    // way on both paths, which needs `grpc-timeout` to arrive intact.
    let stack = Stack::start().await.unwrap();
    stack
        .service(DemoService::Users)
        .faults()
        .set(mosaic_demo_services::FaultConfig {
            latency: mosaic_demo_services::Latency::Fixed(std::time::Duration::from_millis(300)),
            ..Default::default()
        })
        .unwrap();
    let body = raw::frame(&[GetUserRequest { id: 1 }.encode_to_vec()]);
    let headers = [("grpc-timeout", "50m")];
    let path = "/demo.users.v1.UserService/GetUser";
    let direct = raw::call(
        stack.service(DemoService::Users).local_addr(),
        path,
        body.clone(),
        &headers,
    )
    .await
    .unwrap();
    let via = raw::call(stack.gateway_addr(), path, body, &headers)
        .await
        .unwrap();
    assert_eq!(direct, via);
    // tonic's server answers an expired deadline with CANCELLED ("Timeout expired").
    assert_eq!(direct.headers["grpc-status"], "1", "{direct:?}");
}
