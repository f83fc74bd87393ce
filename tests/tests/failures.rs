//! Failures the gateway decides itself: each gives the stated status with a message that says
//! what is wrong, and nothing panics.

use std::time::Duration;

use mosaic_demo_services::{DemoService, FaultConfig, Latency};
use mosaic_gateway::GatewayConfig;
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::{Stack, channel, gateway_toml, start_gateway, start_passthrough_gateway};
use tokio::time::Instant;
use tonic::Code;

#[tokio::test]
async fn an_unknown_service_is_unimplemented_and_named() {
    let stack = Stack::start().await.unwrap();
    let mut client = tonic::client::Grpc::new(stack.via_gateway());
    client.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<GetUserRequest, GetUserRequest>::default();
    let status = client
        .unary(
            tonic::Request::new(GetUserRequest { id: 1 }),
            "/demo.nothing.v1.Nowhere/Get".parse().unwrap(),
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(
        status.message(),
        "unknown service `demo.nothing.v1.Nowhere`: this gateway does not serve or route it"
    );
}

#[tokio::test]
async fn a_dead_upstream_is_unavailable_and_named() {
    let mut stack = Stack::start().await.unwrap();
    let mut client = UserServiceClient::new(stack.via_gateway());
    client.get_user(GetUserRequest { id: 1 }).await.unwrap();

    let addr = stack.service(DemoService::Users).local_addr();
    stack.stop_service(DemoService::Users).await;
    let status = client.get_user(GetUserRequest { id: 1 }).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .starts_with(&format!("upstream `users` is unreachable at http://{addr}")),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_restarted_upstream_on_the_same_port_is_reconnected() {
    // Short breaker backoffs and ready wait, so the second outage (which opens the breaker)
    // ends quickly and says so.
    let mut stack = Stack::start_with(|config| {
        let routed = "services = [\"demo.users.v1.UserService\"]\n";
        assert!(config.contains(routed), "{config}");
        config.replace(routed, &format!("{routed}ready_timeout = \"100ms\"\n"))
            + "\n[upstreams.users.breaker]\nbackoff_min = \"300ms\"\nbackoff_max = \"300ms\"\n"
    })
    .await
    .unwrap();
    let mut client = UserServiceClient::new(stack.via_gateway());
    let addr = stack.service(DemoService::Users).local_addr();
    for id in [1, 2] {
        client.get_user(GetUserRequest { id }).await.unwrap();
    }
    let unreachable = format!("upstream `users` is unreachable at http://{addr}");

    // A short outage (fewer failures than the breaker's threshold of five): the first call
    // after the restart succeeds, on a new connection to the new process.
    stack.stop_service(DemoService::Users).await;
    for _ in 0..2 {
        let status = client.get_user(GetUserRequest { id: 1 }).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().starts_with(&unreachable), "{status:?}");
    }
    stack
        .restart_service(DemoService::Users, addr)
        .await
        .unwrap();
    for id in 1..=20 {
        let response = client
            .get_user(GetUserRequest { id })
            .await
            .unwrap_or_else(|status| panic!("call {id} after the restart: {status:?}"));
        assert_eq!(response.into_inner().user.unwrap().id, id);
    }
    assert_eq!(
        stack
            .service(DemoService::Users)
            .faults()
            .stats()
            .calls_total,
        20,
        "every call after the restart reached the new process"
    );

    // A longer outage opens the breaker; after the restart its next probe finds the new
    // process and calls flow again.
    stack.stop_service(DemoService::Users).await;
    let mut opened = false;
    for _ in 0..10 {
        let status = client.get_user(GetUserRequest { id: 1 }).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        if status.message().contains("has no ready endpoint") {
            opened = true;
            break;
        }
        assert!(status.message().starts_with(&unreachable), "{status:?}");
    }
    assert!(opened, "the breaker opened during the outage");
    stack
        .restart_service(DemoService::Users, addr)
        .await
        .unwrap();
    let restarted = Instant::now();
    loop {
        match client.get_user(GetUserRequest { id: 3 }).await {
            Ok(response) => {
                assert_eq!(response.into_inner().user.unwrap().id, 3);
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(
                    restarted.elapsed() < Duration::from_secs(3),
                    "no call succeeded within 3 s of the restart (breaker backoff 300 ms): \
                     {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    for id in 1..=20 {
        client.get_user(GetUserRequest { id }).await.unwrap();
    }
    stack.shutdown_gateway().await;
}

#[tokio::test]
async fn an_upstream_that_never_started_is_unavailable() {
    // Reserve a port, then free it: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = gateway_toml(&[(DemoService::Users, format!("http://127.0.0.1:{port}"))]);
    let gateway = start_passthrough_gateway(&config).await.unwrap();
    let mut client = UserServiceClient::new(channel(gateway.local_addr()));
    let status = client.get_user(GetUserRequest { id: 1 }).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("upstream `users`"),
        "{}",
        status.message()
    );
    assert!(
        status.message().to_lowercase().contains("refused"),
        "{}",
        status.message()
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_bad_gateway_toml_names_each_key_and_serves_nothing() {
    let text = r#"
        [listener]
        address = "127.0.0.1:99999"

        [upstreams.users]
        endpoints = ["grpc://127.0.0.1:50051"]
        services = ["demo.users.v1.UserService"]
        retries = 3
    "#;
    let err = GatewayConfig::from_toml_str(text, "bad.toml").unwrap_err();
    // Unknown keys are caught while parsing, before any other check.
    assert!(err.to_string().contains("unknown field `retries`"), "{err}");

    let text = text.replace("retries = 3", "");
    let err = GatewayConfig::from_toml_str(&text, "bad.toml").unwrap_err();
    let keys: Vec<_> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["listener.address", "upstreams.users.endpoints[0]"]);
    assert!(
        err.to_string()
            .contains("`127.0.0.1:99999` is not a socket address")
    );
    assert!(err.to_string().contains("needs the `http://` scheme"));
}

#[tokio::test]
async fn a_fault_knob_changed_at_run_time_takes_effect_through_the_gateway() {
    let stack = Stack::start().await.unwrap();
    let mut client = UserServiceClient::new(stack.via_gateway());
    let faults = stack.service(DemoService::Users).faults();
    client.get_user(GetUserRequest { id: 1 }).await.unwrap();

    faults
        .set(FaultConfig {
            error_rate: 1.0,
            error_code: Code::ResourceExhausted,
            ..Default::default()
        })
        .unwrap();
    for _ in 0..5 {
        let status = client.get_user(GetUserRequest { id: 1 }).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("injected"),
            "{}",
            status.message()
        );
    }

    // Hanging calls: the gateway ends them at the caller's deadline, with its own answer.
    faults
        .set(FaultConfig {
            hang_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let started = tokio::time::Instant::now();
    let status = mosaic_tests::raw::status_within(
        stack.gateway_addr(),
        "/demo.users.v1.UserService/GetUser",
        &GetUserRequest { id: 1 },
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "upstream `users` did not answer within the call's deadline of 200ms"
    );
    assert!(
        elapsed >= Duration::from_millis(195) && elapsed < Duration::from_millis(400),
        "{elapsed:?}"
    );

    faults
        .set(FaultConfig {
            latency: Latency::Fixed(Duration::from_millis(1)),
            ..Default::default()
        })
        .unwrap();
    client.get_user(GetUserRequest { id: 1 }).await.unwrap();
    let stats = faults.stats();
    assert_eq!(stats.calls_failed_injected, 5);
    assert_eq!(stats.calls_hung, 1);
}

/// An upstream that answers a stream with one message and then breaks the HTTP/2 stream.
async fn start_breaking_upstream() -> std::net::SocketAddr {
    use bytes::Bytes;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use mosaic_tests::pb::inventory::v1::Stock;
    use prost::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(|_request| async {
                let first = mosaic_tests::raw::frame(&[Stock {
                    product_id: 1,
                    available: 5,
                    ..Default::default()
                }
                .encode_to_vec()]);
                let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
                    Ok(Frame::data(first)),
                    Err(std::io::Error::other("upstream crashed")),
                ];
                // Space the frames out so the head and first message reach the caller before
                // the stream breaks.
                let frames =
                    futures_util::StreamExt::then(tokio_stream::iter(frames), |frame| async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        frame
                    });
                let body = StreamBody::new(frames);
                let response = http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(body)
                    .unwrap();
                Ok::<_, std::convert::Infallible>(response)
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

#[tokio::test]
async fn a_stream_broken_midway_ends_with_unavailable_naming_the_upstream() {
    use mosaic_tests::pb::inventory::v1::GetStockRequest;
    use mosaic_tests::pb::inventory::v1::inventory_service_client::InventoryServiceClient;

    let upstream = start_breaking_upstream().await;
    let config = gateway_toml(&[(DemoService::Inventory, format!("http://{upstream}"))]);
    let gateway = start_passthrough_gateway(&config).await.unwrap();
    let mut client = InventoryServiceClient::new(channel(gateway.local_addr()));
    let mut stream = client
        .watch_stock(tokio_stream::iter([GetStockRequest { product_id: 1 }]))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.available, 5);
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("upstream `inventory` broke off the response stream"),
        "{}",
        status.message()
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_composed_service_without_its_upstreams_refuses_to_start() {
    // The storefront calls all four demo services; route only three.
    let config = gateway_toml(&[
        (DemoService::Catalog, "http://127.0.0.1:1".into()),
        (DemoService::Reviews, "http://127.0.0.1:1".into()),
        (DemoService::Inventory, "http://127.0.0.1:1".into()),
    ]);
    let err = start_gateway(&config).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the composed services call `demo.users.v1.UserService`, but no upstream in gateway.toml \
         serves it; add it to the `services` of the upstream that runs it"
    );
}
