//! The Connect protocol on the edge port, with curl: unary calls in JSON and protobuf (POST and
//! GET), a server stream in envelopes, and errors in Connect's JSON, each checked against the
//! same call made over gRPC.

use mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient;
use mosaic_demo::demo::reviews::v1::{Review, StreamReviewsRequest};
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo::demo::users::v1::{GetUserRequest, GetUserResponse};
use mosaic_demo_services::DemoService;
use mosaic_tests::Stack;
use mosaic_tests::curl::{CurlResponse, curl, post_bytes};
use prost::Message;
use serde_json::json;

async fn post(
    stack: &Stack,
    path: &str,
    content_type: &str,
    body: &[u8],
    h2: bool,
) -> CurlResponse {
    let url = format!("http://{}{path}", stack.gateway_addr());
    post_bytes(
        &url,
        content_type,
        &["connect-protocol-version: 1"],
        body,
        h2,
    )
    .await
}

/// Envelopes: `(flags, payload)` each.
fn envelopes(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        out.push((body[0], body[5..5 + length].to_vec()));
        body = &body[5 + length..];
    }
    assert!(body.is_empty());
    out
}

fn envelope(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend((message.len() as u32).to_be_bytes());
    out.extend(message);
    out
}

#[tokio::test]
async fn unary_calls_in_json_and_protobuf() {
    let stack = Stack::start().await.unwrap();
    let direct = UserServiceClient::new(stack.direct(DemoService::Users))
        .get_user(GetUserRequest { id: 6 })
        .await
        .unwrap()
        .into_inner();
    for h2 in [false, true] {
        let answer = post(
            &stack,
            "/demo.users.v1.UserService/GetUser",
            "application/json",
            b"{\"id\": \"6\"}",
            h2,
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body = answer.json();
        assert_eq!(body["user"]["id"], json!("6"));
        assert_eq!(
            body["user"]["displayName"],
            json!(direct.user.as_ref().unwrap().display_name)
        );

        let request = GetUserRequest { id: 6 }.encode_to_vec();
        let answer = post(
            &stack,
            "/demo.users.v1.UserService/GetUser",
            "application/proto",
            &request,
            h2,
        )
        .await;
        assert_eq!(answer.header("content-type"), Some("application/proto"));
        assert_eq!(GetUserResponse::decode(&answer.body[..]).unwrap(), direct);
    }
    // GET, for methods without side effects: the message in the query.
    let url = format!(
        "http://{}/demo.users.v1.UserService/GetUser?connect=v1&encoding=json&message=%7B%22id%22%3A6%7D",
        stack.gateway_addr()
    );
    let answer = curl(&[&url]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["user"]["id"], json!("6"));
}

#[tokio::test]
async fn errors_are_connect_json_with_the_http_status() {
    let stack = Stack::start().await.unwrap();
    let answer = post(
        &stack,
        "/demo.users.v1.UserService/GetUser",
        "application/json",
        b"{\"id\": 999999}",
        true,
    )
    .await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.json(),
        json!({"code": "not_found", "message": "user 999999 not found"})
    );
    let answer = post(
        &stack,
        "/demo.users.v1.UserService/GetUser",
        "application/json",
        b"{\"id\": ",
        false,
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["code"], json!("invalid_argument"));
    let answer = post(&stack, "/no.Such/Method", "application/proto", b"", false).await;
    assert_eq!(answer.status, 501, "{}", answer.text());
    assert_eq!(answer.json()["code"], json!("unimplemented"));
}

#[tokio::test]
async fn server_streams_in_envelopes_end_with_an_end_of_stream_message() {
    let stack = Stack::start().await.unwrap();
    let mut direct = ReviewServiceClient::new(stack.direct(DemoService::Reviews))
        .stream_reviews(StreamReviewsRequest { product_id: 5 })
        .await
        .unwrap()
        .into_inner();
    let mut expected = Vec::new();
    while let Some(review) = direct.message().await.unwrap() {
        expected.push(review);
    }
    let request = envelope(&StreamReviewsRequest { product_id: 5 }.encode_to_vec());
    let answer = post(
        &stack,
        "/demo.reviews.v1.ReviewService/StreamReviews",
        "application/connect+proto",
        &request,
        true,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/connect+proto")
    );
    let mut frames = envelopes(&answer.body);
    let (flags, end) = frames.pop().unwrap();
    assert_eq!(flags, 0x02);
    let end: serde_json::Value = serde_json::from_slice(&end).unwrap();
    assert!(end.get("error").is_none(), "{end}");
    let reviews: Vec<Review> = frames
        .iter()
        .map(|(flags, data)| {
            assert_eq!(*flags, 0);
            Review::decode(&data[..]).unwrap()
        })
        .collect();
    assert_eq!(reviews, expected);

    // JSON envelopes, and an error, which a stream reports in its end message with 200.
    let request = envelope(b"{\"productId\": \"999999\"}");
    let answer = post(
        &stack,
        "/demo.reviews.v1.ReviewService/StreamReviews",
        "application/connect+json",
        &request,
        false,
    )
    .await;
    assert_eq!(answer.status, 200);
    let frames = envelopes(&answer.body);
    assert_eq!(frames.len(), 1);
    let end: serde_json::Value = serde_json::from_slice(&frames[0].1).unwrap();
    assert_eq!(end["error"]["code"], json!("not_found"), "{end}");
}
