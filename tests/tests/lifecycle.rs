//! The listener's life: HTTP/1.1 beside HTTP/2 on one port with the README's answers to traffic
//! that is not gRPC, admin readiness, a graceful shutdown that waits for in-flight calls, and a
//! drain timeout that cuts the calls still running when it passes.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mosaic_demo_services::{DemoService, FaultConfig, FaultHandle, Latency};
use mosaic_tests::Stack;
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::raw;
use prost::Message;
use tokio::time::Instant;
use tonic::Code;

/// A plain HTTP answer: status, `content-type` and body text.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

impl Answer {
    /// The HTTP edge's answer to a request no binding matches: a `google.rpc.Status` body.
    fn no_route(method: &str, path: &str) -> Self {
        Self {
            status: 404,
            content_type: Some("application/json".into()),
            body: format!(
                "{{\"code\":5,\"message\":\"no route for {method} {path}\",\"details\":[]}}"
            ),
        }
    }

    /// A `text/plain` answer, as the gateway gives to traffic that is not gRPC.
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: Some("text/plain; charset=utf-8".into()),
            body: body.into(),
        }
    }
}

/// One request over a fresh connection speaking `version` (HTTP/1.1, or HTTP/2 with prior
/// knowledge, as gRPC clients connect).
async fn http_call(
    addr: SocketAddr,
    version: Version,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let request = request.body(Full::new(body)).unwrap();
    let response = if version == Version::HTTP_2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    };
    assert_eq!(
        response.version(),
        version,
        "answered in the caller's HTTP version"
    );
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn http1_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let answer = http_call(
        addr,
        Version::HTTP_11,
        Method::GET,
        path,
        None,
        Bytes::new(),
    )
    .await;
    (answer.status, answer.body)
}

/// Waits until the downstream has received `calls` calls in all (so a call is in flight).
async fn received(faults: &FaultHandle, calls: u64) {
    let waiting = Instant::now();
    while faults.stats().calls_total < calls {
        assert!(
            waiting.elapsed() < Duration::from_secs(5),
            "the call never reached the downstream"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const GET_USER: &str = "/demo.users.v1.UserService/GetUser";
const NEEDS_HTTP2: &str = "gRPC requires HTTP/2; connect with HTTP/2 (h2c prior knowledge)\n";
const NOT_GRPC_POST: &str =
    "this listener serves gRPC: send `content-type: application/grpc` over HTTP/2\n";
const NOT_GRPC_OTHER: &str = "no HTTP route here: this listener serves gRPC over HTTP/2\n";

#[tokio::test]
async fn traffic_that_is_not_grpc_gets_the_readme_answers_over_http1_and_http2() {
    let stack = Stack::start().await.unwrap();
    // The same gateway without its HTTP/JSON edge.
    let grpc_only = Stack::start_with(|config| config + "\n[http]\nenabled = false\n")
        .await
        .unwrap();
    let addr = stack.gateway_addr();
    let grpc_body = raw::frame(&[GetUserRequest { id: 1 }.encode_to_vec()]);

    // gRPC over HTTP/1.1: 505, never routed.
    for content_type in ["application/grpc", "application/grpc+proto"] {
        let answer = http_call(
            addr,
            Version::HTTP_11,
            Method::POST,
            GET_USER,
            Some(content_type),
            grpc_body.clone(),
        )
        .await;
        assert_eq!(answer, Answer::text(505, NEEDS_HTTP2), "{content_type}");
    }
    assert_eq!(
        stack
            .service(DemoService::Users)
            .faults()
            .stats()
            .calls_total,
        0,
        "no HTTP/1.1 call reached the upstream"
    );

    for version in [Version::HTTP_11, Version::HTTP_2] {
        let json = Bytes::from_static(b"{\"id\": 1}");
        // A gRPC wire format this listener does not speak (gRPC-Web with the JSON codec): 415,
        // with or without the HTTP edge.
        for gateway in [&stack, &grpc_only] {
            let answer = http_call(
                gateway.gateway_addr(),
                version,
                Method::POST,
                GET_USER,
                Some("application/grpc-web+json"),
                json.clone(),
            )
            .await;
            assert_eq!(
                answer,
                Answer::text(415, NOT_GRPC_POST),
                "{version:?} grpc-web"
            );
        }
        for content_type in [Some("application/json"), None] {
            // With the HTTP edge, a path no binding matches: 404 with a Status body.
            let answer = http_call(
                addr,
                version,
                Method::POST,
                GET_USER,
                content_type,
                json.clone(),
            )
            .await;
            assert_eq!(
                answer,
                Answer::no_route("POST", GET_USER),
                "{version:?} POST {content_type:?}"
            );
            // Without it, a POST that is not gRPC: 415.
            let answer = http_call(
                grpc_only.gateway_addr(),
                version,
                Method::POST,
                GET_USER,
                content_type,
                json.clone(),
            )
            .await;
            assert_eq!(answer, Answer::text(415, NOT_GRPC_POST), "{version:?} POST");
        }
        // Anything else: 404.
        for path in ["/", GET_USER, "/ready"] {
            let answer = http_call(addr, version, Method::GET, path, None, Bytes::new()).await;
            assert_eq!(
                answer,
                Answer::no_route("GET", path),
                "{version:?} GET {path}"
            );
            let answer = http_call(
                grpc_only.gateway_addr(),
                version,
                Method::GET,
                path,
                None,
                Bytes::new(),
            )
            .await;
            assert_eq!(
                answer,
                Answer::text(404, NOT_GRPC_OTHER),
                "{version:?} GET {path}"
            );
        }
        let answer = http_call(
            addr,
            version,
            Method::PUT,
            GET_USER,
            Some("text/plain"),
            Bytes::from_static(b"x"),
        )
        .await;
        assert_eq!(answer, Answer::no_route("PUT", GET_USER), "{version:?} PUT");
    }

    // The same port serves gRPC over HTTP/2.
    let response = raw::call(addr, GET_USER, grpc_body, &[]).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.trailers.unwrap()["grpc-status"], "0");
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls_and_flips_readiness() {
    const LATENCY: Duration = Duration::from_millis(600);
    let mut stack = Stack::start().await.unwrap();
    let admin = stack.admin_addr();
    assert_eq!(http1_get(admin, "/ready").await, (200, "ready\n".into()));
    assert_eq!(http1_get(admin, "/healthz").await.0, 200);

    let faults = stack.service(DemoService::Users).faults().clone();
    let mut client = UserServiceClient::new(stack.via_gateway());
    // Connect first so the in-flight call is on an accepted connection.
    client.get_user(GetUserRequest { id: 1 }).await.unwrap();
    faults
        .set(FaultConfig {
            latency: Latency::Fixed(LATENCY),
            ..Default::default()
        })
        .unwrap();
    faults.start_journal();

    let in_flight = tokio::spawn(async move { client.get_user(GetUserRequest { id: 2 }).await });
    received(&faults, 2).await;
    let gateway_addr = stack.gateway_addr();
    let shutdown = tokio::spawn(async move {
        stack.shutdown_gateway().await;
        (Instant::now(), stack)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While draining, the admin listener tells load balancers to stop sending calls.
    assert_eq!(http1_get(admin, "/ready").await, (503, "draining\n".into()));
    let (shutdown_returned, _stack) = shutdown.await.unwrap();

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight call completes");
    assert_eq!(response.into_inner().user.unwrap().id, 2);
    let journal = faults.take_journal();
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert!(journal[0].answered, "{journal:?}");
    // The downstream answered `LATENCY` after the call arrived, well after shutdown began;
    // shutdown may return only once that answer has gone out to the caller.
    let answered = journal[0].ended;
    assert!(
        shutdown_returned >= answered,
        "shutdown returned {:?} before the downstream answered the in-flight call",
        answered - shutdown_returned
    );
    // And the drain ends with the last call, not at the drain timeout (5 s here).
    assert!(
        shutdown_returned - answered < Duration::from_secs(1),
        "shutdown returned {:?} after the last call ended",
        shutdown_returned - answered
    );
    // After the drain nothing listens any more.
    assert!(tokio::net::TcpStream::connect(gateway_addr).await.is_err());
}

#[tokio::test]
async fn the_drain_timeout_cuts_the_calls_still_running() {
    const DRAIN: Duration = Duration::from_millis(200);
    let mut stack = Stack::start_with(|config| {
        assert!(config.contains("drain_timeout = \"5s\""), "{config}");
        config.replace("drain_timeout = \"5s\"", "drain_timeout = \"200ms\"")
    })
    .await
    .unwrap();
    let faults = stack.service(DemoService::Users).faults().clone();
    let mut client = UserServiceClient::new(stack.via_gateway());
    client.get_user(GetUserRequest { id: 1 }).await.unwrap();
    faults
        .set(FaultConfig {
            latency: Latency::Fixed(Duration::from_secs(5)),
            ..Default::default()
        })
        .unwrap();

    // No client deadline: whatever ends this call, it is not tonic's own timer.
    let in_flight = tokio::spawn(async move {
        let result = client.get_user(GetUserRequest { id: 2 }).await;
        (result, Instant::now())
    });
    received(&faults, 2).await;
    let started = Instant::now();
    stack.shutdown_gateway().await;
    let took = started.elapsed();
    assert!(
        took >= DRAIN,
        "shutdown returned after {took:?}, before the drain timeout of {DRAIN:?}"
    );
    assert!(
        took < DRAIN + Duration::from_millis(300),
        "shutdown took {took:?} with a drain timeout of {DRAIN:?}"
    );
    let (result, ended) = tokio::time::timeout(Duration::from_secs(1), in_flight)
        .await
        .expect("the in-flight call was cut when the drain timeout passed, not left running")
        .unwrap();
    let status = result.expect_err("a call cut at the drain timeout cannot succeed");
    assert!(
        ended - started < DRAIN + Duration::from_millis(500),
        "the call ended {:?} after shutdown began",
        ended - started
    );
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ),
        "{status:?}"
    );
}
