//! Real servers on `127.0.0.1:0` with real tonic clients: the wiring the unit tests beside each
//! service cannot see (routing, the fault layer's placement, streaming, health, reflection).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as HealthStatus;
use tonic_health::pb::health_client::HealthClient;

use super::*;
use crate::faults::{FaultStats, Latency};
use crate::pb::catalog::v1::GetProductRequest;
use crate::pb::catalog::v1::catalog_service_client::CatalogServiceClient;
use crate::pb::faults::v1 as faults_pb;
use crate::pb::faults::v1::fault_control_client::FaultControlClient;
use crate::pb::inventory::v1::GetStockRequest;
use crate::pb::inventory::v1::inventory_service_client::InventoryServiceClient;
use crate::pb::reviews::v1::StreamReviewsRequest;
use crate::pb::reviews::v1::review_service_client::ReviewServiceClient;
use crate::pb::users::v1::GetUserRequest;
use crate::pb::users::v1::user_service_client::UserServiceClient;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn serve(service: DemoService, faults: FaultConfig) -> ServiceHandle {
    start(service, any_port(), faults)
        .await
        .expect("server starts")
}

async fn connect(server: &ServiceHandle) -> Channel {
    Channel::from_shared(server.endpoint())
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connects")
}

fn get_user(id: i64) -> GetUserRequest {
    GetUserRequest { id }
}

/// A transport for the generated clients over one bare HTTP/2 connection. Unlike tonic's
/// `Channel`, it does not act on `grpc-timeout`, so any status it returns is the server's.
#[derive(Clone)]
struct BareHttp2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

impl tower::Service<http::Request<tonic::body::Body>> for BareHttp2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

async fn connect_bare(server: &ServiceHandle) -> (BareHttp2, http::Uri) {
    let stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let origin = server.endpoint().parse().expect("valid origin");
    (BareHttp2(sender), origin)
}

/// `message` with a `grpc-timeout` header set by hand. Not `Request::set_timeout`: that only
/// writes the same header, but tonic's `Channel` would also time the call out by itself.
fn with_grpc_timeout<T>(message: T, timeout: &'static str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("grpc-timeout", MetadataValue::from_static(timeout));
    request
}

/// Asserts that `status` is the server's DEADLINE_EXCEEDED for `method` after 50 ms, answered
/// in about that time.
fn assert_deadline_exceeded(status: &tonic::Status, method: &str, elapsed: Duration) {
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        format!("deadline of 50ms exceeded while serving {method}")
    );
    assert!(
        (Duration::from_millis(40)..Duration::from_millis(300)).contains(&elapsed),
        "answered after {elapsed:?}"
    );
}

#[tokio::test]
async fn users_round_trip_with_faults_changed_at_run_time() {
    let server = serve(DemoService::Users, FaultConfig::default()).await;
    assert!(server.endpoint().starts_with("http://127.0.0.1:"));
    let channel = connect(&server).await;
    let mut users = UserServiceClient::new(channel.clone());

    let user = users
        .get_user(get_user(1))
        .await
        .expect("user 1")
        .into_inner()
        .user;
    assert_eq!(user.as_ref(), Dataset::shared().user(1));
    let missing = users.get_user(get_user(4242)).await.expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(missing.message(), "user 4242 not found");

    server
        .faults()
        .set(FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        })
        .expect("valid");
    for _ in 0..5 {
        let status = users.get_user(get_user(1)).await.expect_err("injected");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "injected fault: unavailable");
    }

    // Health and fault control stay outside the fault layer, and are not counted.
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "demo.users.v1.UserService"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health answers")
            .into_inner();
        assert_eq!(response.status, HealthStatus::Serving as i32, "{service:?}");
    }
    let mut control = FaultControlClient::new(channel.clone());
    let state = control
        .get_faults(faults_pb::GetFaultsRequest {})
        .await
        .expect("fault control answers")
        .into_inner();
    assert_eq!(
        FaultStats::from(&state),
        FaultStats {
            calls_total: 7,
            calls_failed_injected: 5,
            calls_hung: 0
        }
    );
    assert_eq!(state.config.map(|c| c.error_rate), Some(1.0));

    // Back to normal over gRPC.
    control
        .set_faults(faults_pb::SetFaultsRequest { config: None })
        .await
        .expect("reset faults");
    assert!(users.get_user(get_user(2)).await.is_ok());
    let state = control
        .reset_stats(faults_pb::ResetStatsRequest {})
        .await
        .expect("reset stats")
        .into_inner();
    assert_eq!(FaultStats::from(&state), FaultStats::default());
    assert_eq!(server.faults().stats(), FaultStats::default());

    server.stop().await;
}

#[tokio::test]
async fn fault_control_rejects_bad_values_over_the_wire() {
    let server = serve(DemoService::Catalog, FaultConfig::default()).await;
    let mut control = FaultControlClient::new(connect(&server).await);
    let status = control
        .set_faults(faults_pb::SetFaultsRequest {
            config: Some(faults_pb::FaultConfig {
                error_rate: 0.5,
                error_code: 42,
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown code");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "config.error_code 42 is not a known ErrorCode"
    );
    assert_eq!(server.faults().get(), FaultConfig::default());
}

#[tokio::test]
async fn latency_is_applied_to_real_calls() {
    let server = serve(
        DemoService::Inventory,
        FaultConfig {
            latency: Latency::Fixed(Duration::from_millis(100)),
            ..FaultConfig::default()
        },
    )
    .await;
    let mut inventory = InventoryServiceClient::new(connect(&server).await);
    let started = Instant::now();
    inventory
        .get_stock(GetStockRequest { product_id: 1 })
        .await
        .expect("stock");
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn hung_calls_end_at_the_client_deadline() {
    let server = serve(
        DemoService::Catalog,
        FaultConfig {
            hang_rate: 1.0,
            ..FaultConfig::default()
        },
    )
    .await;
    let mut catalog = CatalogServiceClient::new(connect(&server).await);

    // Deadline sent as grpc-timeout.
    let mut request = Request::new(GetProductRequest { id: 1 });
    request.set_timeout(Duration::from_millis(150));
    let started = Instant::now();
    let status = catalog.get_product(request).await.expect_err("hung");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // Client-side give-up: the call is cancelled by dropping it.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(150),
        catalog.get_product(GetProductRequest { id: 2 }),
    )
    .await;
    assert!(gave_up.is_err());
    assert_eq!(server.faults().stats().calls_hung, 2);
}

#[tokio::test]
async fn slow_calls_answer_deadline_exceeded_from_the_server_at_the_deadline() {
    let server = serve(
        DemoService::Users,
        FaultConfig {
            latency: Latency::Fixed(Duration::from_millis(400)),
            ..FaultConfig::default()
        },
    )
    .await;
    server.faults().start_journal();
    let (transport, origin) = connect_bare(&server).await;
    let mut users = UserServiceClient::with_origin(transport, origin);

    let started = Instant::now();
    let status = users
        .get_user(with_grpc_timeout(get_user(1), "50m"))
        .await
        .expect_err("past its deadline");
    assert_deadline_exceeded(
        &status,
        "demo.users.v1.UserService/GetUser",
        started.elapsed(),
    );

    // The call did reach the service, and its handler was dropped at the deadline rather
    // than left to finish the injected latency.
    assert_eq!(server.faults().stats().calls_total, 1);
    let journal = server.faults().take_journal();
    let [call] = journal.as_slice() else {
        panic!("one call expected, got {journal:?}");
    };
    assert_eq!(call.grpc_timeout, Some(Duration::from_millis(50)));
    assert!(!call.answered, "{call:?}");
    let served = call.ended - call.received;
    assert!(
        (Duration::from_millis(40)..Duration::from_millis(300)).contains(&served),
        "{served:?}"
    );

    // Within its deadline the same method answers as usual.
    server.faults().set(FaultConfig::default()).expect("valid");
    let user = users
        .get_user(with_grpc_timeout(get_user(1), "5S"))
        .await
        .expect("in time")
        .into_inner()
        .user;
    assert_eq!(user.as_ref(), Dataset::shared().user(1));
}

#[tokio::test]
async fn hung_calls_and_open_streams_end_at_the_deadline_too() {
    let catalog = serve(
        DemoService::Catalog,
        FaultConfig {
            hang_rate: 1.0,
            ..FaultConfig::default()
        },
    )
    .await;
    let (transport, origin) = connect_bare(&catalog).await;
    let mut products = CatalogServiceClient::with_origin(transport.clone(), origin.clone());
    let started = Instant::now();
    let status = products
        .get_product(with_grpc_timeout(GetProductRequest { id: 1 }, "50m"))
        .await
        .expect_err("hung");
    assert_deadline_exceeded(
        &status,
        "demo.catalog.v1.CatalogService/GetProduct",
        started.elapsed(),
    );
    assert_eq!(catalog.faults().stats().calls_hung, 1);

    // Health is outside the fault layer but not outside the deadline: a watch ends at it,
    // after its first answer.
    let mut health = HealthClient::with_origin(transport, origin);
    let started = Instant::now();
    let mut watch = health
        .watch(with_grpc_timeout(
            HealthCheckRequest {
                service: String::new(),
            },
            "50m",
        ))
        .await
        .expect("watch starts")
        .into_inner();
    let first = watch.message().await.expect("first answer").expect("one");
    assert_eq!(first.status, HealthStatus::Serving as i32);
    let ended = watch.message().await.expect_err("ends at the deadline");
    assert_deadline_exceeded(&ended, "grpc.health.v1.Health/Watch", started.elapsed());

    // A demo service's stream, open on both sides, ends at the deadline after its headers.
    let inventory = serve(DemoService::Inventory, FaultConfig::default()).await;
    let (transport, origin) = connect_bare(&inventory).await;
    let mut stock = InventoryServiceClient::with_origin(transport, origin);
    let started = Instant::now();
    let never_done = futures_util::stream::iter([GetStockRequest { product_id: 1 }])
        .chain(futures_util::stream::pending());
    let mut replies = stock
        .watch_stock(with_grpc_timeout(never_done, "50m"))
        .await
        .expect("watch starts")
        .into_inner();
    let reply = replies.message().await.expect("a reply").expect("one");
    assert_eq!(reply.product_id, 1);
    let ended = replies.message().await.expect_err("ends at the deadline");
    assert_deadline_exceeded(
        &ended,
        "demo.inventory.v1.InventoryService/WatchStock",
        started.elapsed(),
    );
}

#[tokio::test]
async fn stop_is_bounded_even_with_hung_calls_in_flight() {
    let server = serve(
        DemoService::Users,
        FaultConfig {
            hang_rate: 1.0,
            ..FaultConfig::default()
        },
    )
    .await;
    let mut users = UserServiceClient::new(connect(&server).await);
    let pending = tokio::spawn(async move { users.get_user(get_user(1)).await });
    while server.faults().stats().calls_hung == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < STOP_GRACE);
    let status = pending.await.expect("task").expect_err("no answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn dropping_the_handle_closes_the_port() {
    let server = serve(DemoService::Reviews, FaultConfig::default()).await;
    let addr = server.local_addr();
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(_) => break,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(_) => panic!("{addr} still accepts connections after drop"),
        }
    }
}

#[tokio::test]
async fn start_reports_bad_input() {
    let invalid = start(
        DemoService::Users,
        any_port(),
        FaultConfig {
            hang_rate: 2.0,
            ..FaultConfig::default()
        },
    )
    .await
    .expect_err("invalid faults");
    assert!(invalid.to_string().contains("hang_rate"), "{invalid}");

    let taken = serve(DemoService::Users, FaultConfig::default()).await;
    let clash = start(
        DemoService::Users,
        taken.local_addr(),
        FaultConfig::default(),
    )
    .await
    .expect_err("port in use");
    assert!(clash.to_string().contains("cannot bind"), "{clash:#}");
}

#[tokio::test]
async fn server_streaming_carries_every_review() {
    let server = serve(DemoService::Reviews, FaultConfig::default()).await;
    let mut reviews = ReviewServiceClient::new(connect(&server).await);
    let data = Dataset::shared();
    let busiest = data
        .products()
        .iter()
        .map(|p| (data.reviews_of_product(p.id).map_or(0, |r| r.len()), p.id))
        .max()
        .expect("products");
    let stream = reviews
        .stream_reviews(StreamReviewsRequest {
            product_id: busiest.1,
        })
        .await
        .expect("stream starts")
        .into_inner();
    let received: Vec<_> = stream.collect().await;
    assert_eq!(received.len(), busiest.0);
    assert!(received.iter().all(Result::is_ok));

    let missing = reviews
        .stream_reviews(StreamReviewsRequest { product_id: 501 })
        .await
        .expect_err("unknown product");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn client_and_bidi_streaming_work() {
    let server = serve(DemoService::Inventory, FaultConfig::default()).await;
    let mut inventory = InventoryServiceClient::new(connect(&server).await);
    let data = Dataset::shared();
    let ids = [1, 2, 3];
    let requests = ids.map(|product_id| GetStockRequest { product_id });

    let sum = inventory
        .sum_stock(futures_util::stream::iter(requests))
        .await
        .expect("sum")
        .into_inner();
    let expected: i64 = ids
        .iter()
        .filter_map(|&id| data.stock(id))
        .map(|s| s.available)
        .sum();
    assert_eq!(sum.products, 3);
    assert_eq!(sum.total_available, expected);

    let unknown = inventory
        .sum_stock(futures_util::stream::iter([GetStockRequest {
            product_id: 9_999,
        }]))
        .await
        .expect_err("unknown product");
    assert_eq!(unknown.code(), Code::NotFound);

    let watch_ids = [4, 5, 9_999, 6];
    let mut replies = inventory
        .watch_stock(futures_util::stream::iter(
            watch_ids.map(|product_id| GetStockRequest { product_id }),
        ))
        .await
        .expect("watch starts")
        .into_inner();
    for id in [4, 5] {
        let stock = replies.message().await.expect("reply").expect("not ended");
        assert_eq!(stock.product_id, id);
    }
    let ended = replies
        .message()
        .await
        .expect_err("unknown id ends the stream");
    assert_eq!(ended.code(), Code::NotFound);
    assert_eq!(ended.message(), "product 9999 not found");
}

#[tokio::test]
async fn reflection_lists_what_this_server_serves() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = serve(DemoService::Inventory, FaultConfig::default()).await;
    let mut reflection = ServerReflectionClient::new(connect(&server).await);
    let request = |message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let mut responses = reflection
        .server_reflection_info(futures_util::stream::iter([
            request(MessageRequest::ListServices(String::new())),
            request(MessageRequest::FileContainingSymbol(
                "demo.inventory.v1.Stock".to_owned(),
            )),
        ]))
        .await
        .expect("reflection answers")
        .into_inner();

    let listed = responses.message().await.expect("ok").expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("unexpected {listed:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"demo.inventory.v1.InventoryService"),
        "{names:?}"
    );
    assert!(names.contains(&"demo.faults.v1.FaultControl"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    assert!(!names.contains(&"demo.users.v1.UserService"), "{names:?}");

    let file = responses.message().await.expect("ok").expect("a response");
    let Some(MessageResponse::FileDescriptorResponse(files)) = file.message_response else {
        panic!("unexpected {file:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[test]
fn descriptor_set_holds_every_demo_file_and_its_imports() {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).expect("decodes");
    let names: Vec<&str> = set.file.iter().filter_map(|f| f.name.as_deref()).collect();
    for expected in [
        "demo/users/v1/users.proto",
        "demo/catalog/v1/catalog.proto",
        "demo/reviews/v1/reviews.proto",
        "demo/inventory/v1/inventory.proto",
        "demo/faults/v1/faults.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/duration.proto",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
