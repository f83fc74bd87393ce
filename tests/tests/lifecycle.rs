//! The listener's life: HTTP/1.1 beside HTTP/2 on one port, admin readiness, and a graceful
//! shutdown that lets in-flight calls finish.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use mosaic_demo_services::{DemoService, FaultConfig, Latency};
use mosaic_tests::Stack;
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;

async fn http1_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://{addr}{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn http1_requests_get_a_clear_answer_on_the_same_port() {
    let stack = Stack::start().await.unwrap();
    let (status, text) = http1_get(stack.gateway_addr(), "/").await;
    assert_eq!(status, 404);
    assert!(text.contains("serves gRPC"), "{text}");
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls_and_flips_readiness() {
    let mut stack = Stack::start().await.unwrap();
    let admin = stack.admin_addr();
    assert_eq!(http1_get(admin, "/ready").await, (200, "ready\n".into()));
    assert_eq!(http1_get(admin, "/healthz").await.0, 200);

    stack
        .service(DemoService::Users)
        .faults()
        .set(FaultConfig {
            latency: Latency::Fixed(Duration::from_millis(400)),
            ..Default::default()
        })
        .unwrap();
    let mut client = UserServiceClient::new(stack.via_gateway());
    // Connect first so the in-flight call is on an accepted connection.
    client.get_user(GetUserRequest { id: 1 }).await.unwrap();

    let in_flight = tokio::spawn(async move { client.get_user(GetUserRequest { id: 2 }).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let gateway_addr = stack.gateway_addr();
    let shutdown = tokio::spawn(async move {
        stack.shutdown_gateway().await;
        stack
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While draining, the admin listener tells load balancers to stop sending calls.
    assert_eq!(http1_get(admin, "/ready").await, (503, "draining\n".into()));
    let _stack = shutdown.await.unwrap();

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight call completes");
    assert_eq!(response.into_inner().user.unwrap().id, 2);
    // After the drain nothing listens any more.
    assert!(tokio::net::TcpStream::connect(gateway_addr).await.is_err());
}
