//! gRPC-Web on the edge port, over HTTP/1.1 and h2c, with curl sending hand-framed requests:
//! binary and base64 text, unary (pass-through and composed), server streaming, health, and
//! errors, each answer compared with the same call made over gRPC.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_demo::demo::reviews::v1::{Review, StreamReviewsRequest};
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo::demo::users::v1::{GetUserRequest, GetUserResponse};
use mosaic_demo_services::DemoService;
use mosaic_tests::curl::{CurlResponse, post_bytes};
use mosaic_tests::storefront::{GetProductPageRequest, ProductPage};
use mosaic_tests::{Stack, raw};
use prost::Message;

/// A gRPC-Web response body split up: the messages, then the trailers frame's lines.
fn frames(body: &[u8]) -> (Vec<Vec<u8>>, Vec<(String, String)>) {
    let mut messages = Vec::new();
    let mut trailers = Vec::new();
    let mut rest = body;
    while rest.len() >= 5 {
        let flag = rest[0];
        let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let payload = &rest[5..5 + length];
        if flag & 0x80 != 0 {
            for line in String::from_utf8_lossy(payload).split("\r\n") {
                if let Some((name, value)) = line.split_once(": ") {
                    trailers.push((name.to_owned(), value.to_owned()));
                }
            }
        } else {
            messages.push(payload.to_vec());
        }
        rest = &rest[5 + length..];
    }
    assert!(rest.is_empty(), "bytes after the last frame");
    (messages, trailers)
}

/// Calls `path` with `messages` over gRPC-Web (text when `text`), HTTP/1.1 or h2c.
async fn call(stack: &Stack, path: &str, message: Vec<u8>, text: bool, h2: bool) -> CurlResponse {
    let framed = raw::frame(&[message]);
    let (content_type, body) = if text {
        (
            "application/grpc-web-text",
            STANDARD.encode(&framed).into_bytes(),
        )
    } else {
        ("application/grpc-web+proto", framed.to_vec())
    };
    let url = format!("http://{}{path}", stack.gateway_addr());
    let answer = post_bytes(&url, content_type, &["x-grpc-web: 1"], &body, h2).await;
    if text && answer.status == 200 {
        let decoded = decode_chunks(&answer.body);
        return CurlResponse {
            body: decoded,
            ..answer
        };
    }
    answer
}

/// Base64 text that may be several padded chunks.
fn decode_chunks(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for quad in text.chunks(4) {
        out.extend(STANDARD.decode(quad).unwrap());
    }
    out
}

#[tokio::test]
async fn unary_calls_in_both_encodings_over_both_versions() {
    let stack = Stack::start().await.unwrap();
    let direct = UserServiceClient::new(stack.direct(DemoService::Users))
        .get_user(GetUserRequest { id: 5 })
        .await
        .unwrap()
        .into_inner();
    for text in [false, true] {
        for h2 in [false, true] {
            let request = GetUserRequest { id: 5 }.encode_to_vec();
            let answer = call(
                &stack,
                "/demo.users.v1.UserService/GetUser",
                request,
                text,
                h2,
            )
            .await;
            assert_eq!(answer.status, 200, "text {text} h2 {h2}: {}", answer.text());
            let expected_type = if text {
                "application/grpc-web-text+proto"
            } else {
                "application/grpc-web+proto"
            };
            assert_eq!(answer.header("content-type"), Some(expected_type));
            let (messages, trailers) = frames(&answer.body);
            assert_eq!(messages.len(), 1);
            assert_eq!(GetUserResponse::decode(&messages[0][..]).unwrap(), direct);
            assert!(
                trailers.contains(&("grpc-status".to_owned(), "0".to_owned())),
                "{trailers:?}"
            );
        }
    }
}

#[tokio::test]
async fn composed_calls_and_server_streams() {
    let stack = Stack::start().await.unwrap();
    let request = GetProductPageRequest {
        product_id: 4,
        review_limit: 2,
    }
    .encode_to_vec();
    let answer = call(
        &stack,
        "/demo.storefront.v1.Storefront/GetProductPage",
        request,
        false,
        false,
    )
    .await;
    let (messages, trailers) = frames(&answer.body);
    let page = ProductPage::decode(&messages[0][..]).unwrap();
    assert_eq!(page.product.unwrap().id, 4);
    assert_eq!(page.reviews.len(), 2);
    assert!(trailers.iter().any(|(n, v)| n == "grpc-status" && v == "0"));

    let mut direct = ReviewServiceClient::new(stack.direct(DemoService::Reviews))
        .stream_reviews(StreamReviewsRequest { product_id: 4 })
        .await
        .unwrap()
        .into_inner();
    let mut expected = Vec::new();
    while let Some(review) = direct.message().await.unwrap() {
        expected.push(review);
    }
    let request = StreamReviewsRequest { product_id: 4 }.encode_to_vec();
    let answer = call(
        &stack,
        "/demo.reviews.v1.ReviewService/StreamReviews",
        request,
        true,
        true,
    )
    .await;
    let (messages, trailers) = frames(&answer.body);
    let reviews: Vec<Review> = messages
        .iter()
        .map(|m| Review::decode(&m[..]).unwrap())
        .collect();
    assert_eq!(reviews, expected);
    assert!(trailers.iter().any(|(n, v)| n == "grpc-status" && v == "0"));
}

#[tokio::test]
async fn errors_and_health() {
    let stack = Stack::start().await.unwrap();
    let request = GetUserRequest { id: 999_999 }.encode_to_vec();
    for h2 in [false, true] {
        let answer = call(
            &stack,
            "/demo.users.v1.UserService/GetUser",
            request.clone(),
            false,
            h2,
        )
        .await;
        assert_eq!(answer.status, 200);
        // Trailers-only: the status in the headers, no frames.
        let (messages, trailers) = frames(&answer.body);
        let status = answer.header("grpc-status").map(str::to_owned).or_else(|| {
            trailers
                .iter()
                .find(|(n, _)| n == "grpc-status")
                .map(|(_, v)| v.clone())
        });
        assert_eq!(status.as_deref(), Some("5"), "{:?}", answer.headers);
        assert!(messages.is_empty());
    }
    let check = tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    }
    .encode_to_vec();
    let answer = call(&stack, "/grpc.health.v1.Health/Check", check, true, false).await;
    let (messages, _) = frames(&answer.body);
    let health = tonic_health::pb::HealthCheckResponse::decode(&messages[0][..]).unwrap();
    assert_eq!(health.status, 1, "SERVING");
}
