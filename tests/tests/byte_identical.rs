//! Responses through the gateway are byte-identical to direct responses: status, headers,
//! body bytes (gRPC framing included) and trailers, for successes and for errors; and requests
//! reach the upstream with their metadata unchanged and their deadline intact.

use std::time::Duration;

use mosaic_demo_services::DemoService;
use mosaic_tests::pb::catalog::v1::ListProductsRequest;
use mosaic_tests::pb::reviews::v1::StreamReviewsRequest;
use mosaic_tests::pb::users::v1::{GetUserRequest, GetUserResponse, User};
use mosaic_tests::raw::{self, RawResponse};
use mosaic_tests::recorder::Recorder;
use mosaic_tests::{Stack, gateway_toml, start_passthrough_gateway};
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
    // An upstream that records what arrives: the headers and body as received.
    let reply = raw::frame(&[GetUserResponse {
        user: Some(User {
            id: 1,
            ..Default::default()
        }),
    }
    .encode_to_vec()]);
    let upstream = Recorder::start(reply.clone()).await.unwrap();
    let config = gateway_toml(&[(DemoService::Users, upstream.endpoint())]);
    let gateway = start_passthrough_gateway(&config).await.unwrap();

    let caller_timeout = Duration::from_millis(800);
    // Custom metadata of every kind: ASCII, a key with two values (order matters), a binary
    // (`-bin`, base64) value, and credentials.
    let custom = [
        ("x-request-id", "req-42"),
        ("x-tenant", "alpha"),
        ("x-tenant", "beta"),
        ("trace-context-bin", "AAECAwQFBgc"),
        ("authorization", "Bearer t0k3n"),
    ];
    let mut headers = vec![("grpc-timeout", "800m")];
    headers.extend(custom);
    let body = raw::frame(&[GetUserRequest { id: 1 }.encode_to_vec()]);
    let path = "/demo.users.v1.UserService/GetUser";
    // A first call opens the gateway's connection to the upstream, so the call measured below
    // spends no time connecting inside the gateway (which would rightly be taken off its
    // deadline).
    raw::call(gateway.local_addr(), path, body.clone(), &[])
        .await
        .unwrap();
    upstream.take();
    let response = raw::call(gateway.local_addr(), path, body.clone(), &headers)
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, reply, "the upstream's answer came back");
    assert_eq!(response.trailers.unwrap()["grpc-status"], "0");

    let received = upstream.take();
    assert_eq!(received.len(), 1, "one call, sent once: {received:?}");
    let received = &received[0];
    assert_eq!(received.path, path);
    assert_eq!(
        received.body, body,
        "the request message arrived byte for byte"
    );
    // Every custom key arrives with exactly the values sent, in order; nothing added.
    for (name, _) in custom {
        let sent: Vec<&str> = custom
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .collect();
        let arrived: Vec<&str> = received
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(arrived, sent, "metadata `{name}`");
    }
    let mut names: Vec<&str> = received.headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "authorization",
            "content-length",
            "content-type",
            "grpc-timeout",
            "te",
            "trace-context-bin",
            "x-request-id",
            "x-tenant",
        ],
        "the upstream got the caller's headers, no more, no fewer"
    );
    assert_eq!(received.headers["content-type"], "application/grpc");
    assert_eq!(received.headers["te"], "trailers");
    // (hyper's client sends the length of a body it holds whole.)
    assert_eq!(received.headers["content-length"], body.len().to_string());
    // The deadline: never more than the caller gave, and not much less (only the time the
    // call spent inside the gateway, microseconds here, may be taken off).
    let value = received.headers["grpc-timeout"].to_str().unwrap();
    let forwarded = parse_grpc_timeout(value);
    assert!(
        forwarded <= caller_timeout,
        "the upstream got {value} ({forwarded:?}), more than the caller's {caller_timeout:?}"
    );
    assert!(
        forwarded >= caller_timeout - Duration::from_millis(50),
        "the upstream got {value} ({forwarded:?}), much less than the caller's {caller_timeout:?}"
    );
    gateway.shutdown().await;
}

/// Parses a well-formed `grpc-timeout` value (digits and a unit).
fn parse_grpc_timeout(value: &str) -> Duration {
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().unwrap();
    match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => panic!("not a grpc-timeout: {value:?}"),
    }
}
