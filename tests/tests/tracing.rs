//! Traces end to end: a real OTLP/gRPC receiver (the OpenTelemetry collector's `TraceService`,
//! served by tonic from `opentelemetry-proto`) gets the span tree of a composed call under the
//! caller's trace, and the downstream demo services see a `traceparent` naming the attempt
//! span that called them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mosaic_demo_services::{DemoService, ServiceHandle};
use mosaic_tests::otlp::Receiver;
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::storefront::GetProductPageRequest;
use mosaic_tests::storefront::storefront_client::StorefrontClient;
use mosaic_tests::{channel, gateway_toml, start_gateway, start_service};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{Span, status};

fn string_attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(text) => Some(text.as_str()),
                _ => None,
            },
        )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn services() -> Vec<ServiceHandle> {
    let mut handles = Vec::new();
    for service in DemoService::ALL {
        handles.push(start_service(service).await.unwrap());
    }
    handles
}

fn config(handles: &[ServiceHandle], tracing: &str) -> String {
    let endpoints: Vec<_> = handles
        .iter()
        .map(|handle| (handle.service(), handle.endpoint()))
        .collect();
    format!("{}\n{tracing}\n", gateway_toml(&endpoints))
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn traced<T>(message: T, sampled: bool) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let flags = if sampled { "01" } else { "00" };
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-{CALLER_SPAN}-{flags}").parse().unwrap(),
    );
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_call_exports_its_span_tree_under_the_callers_trace() {
    let (receiver, endpoint) = Receiver::start().await;
    let handles = services().await;
    for handle in &handles {
        handle.faults().start_journal();
    }
    let tracing = format!(
        "[tracing]\nendpoint = \"{endpoint}\"\nsampling = 0.0\nservice_name = \"edge-test\"\n\
         export_interval = \"100ms\"\nresource = {{ \"deployment.environment\" = \"test\" }}\n"
    );
    let gateway = start_gateway(&config(&handles, &tracing)).await.unwrap();
    let page = StorefrontClient::new(channel(gateway.local_addr()))
        .get_product_page(traced(
            GetProductPageRequest {
                product_id: 7,
                review_limit: 2,
            },
            true,
        ))
        .await
        .unwrap()
        .into_inner();
    // Sampling is 0 for traces started here: a call without a sampled parent exports nothing.
    let mut users = UserServiceClient::new(channel(gateway.local_addr()));
    users.get_user(GetUserRequest { id: 1 }).await.unwrap();
    // A pass-through call in the caller's trace.
    users
        .get_user(traced(GetUserRequest { id: 2 }, true))
        .await
        .unwrap();
    // Shutting down exports what is queued.
    gateway.shutdown().await;

    let spans = receiver.spans();
    assert!(
        receiver.services().iter().all(|s| s == "edge-test"),
        "service.name from the configuration"
    );
    let trace = hex(&spans[0].trace_id);
    assert!(
        spans.iter().all(|span| hex(&span.trace_id) == TRACE),
        "every span is in the caller's trace, none from the unsampled call: {trace}"
    );
    let server: Vec<&Span> = spans
        .iter()
        .filter(|span| span.kind == SpanKind::Server as i32)
        .collect();
    let names: Vec<&str> = server.iter().map(|span| span.name.as_str()).collect();
    assert_eq!(names.len(), 2, "a server span per sampled call: {names:?}");
    let passed = *server
        .iter()
        .find(|span| span.name == "demo.users.v1.UserService/GetUser")
        .unwrap();
    let server = *server
        .iter()
        .find(|span| span.name == "demo.storefront.v1.Storefront/GetProductPage")
        .unwrap();
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(string_attribute(server, "rpc.status_code"), Some("OK"));

    // Steps under the server span: p, stock, rs, and one author per review card.
    let steps: Vec<&Span> = spans
        .iter()
        .filter(|span| span.kind == SpanKind::Internal as i32)
        .collect();
    for step in &steps {
        assert_eq!(step.parent_span_id, server.span_id, "{}", step.name);
    }
    let mut names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = vec!["p", "rs", "stock"];
    expected.extend(std::iter::repeat_n("author", page.reviews.len()));
    expected.sort_unstable();
    assert_eq!(names, expected);

    // One client span per attempt, each under its step, and the downstream saw it as parent.
    let (passed_clients, clients): (Vec<&Span>, Vec<&Span>) = spans
        .iter()
        .filter(|span| span.kind == SpanKind::Client as i32)
        .partition(|span| span.parent_span_id == passed.span_id);
    assert_eq!(passed_clients.len(), 1, "the pass-through call's attempt");
    assert_eq!(hex(&passed.parent_span_id), CALLER_SPAN);
    assert_eq!(clients.len(), steps.len(), "no retries were needed");
    for client in &clients {
        assert!(
            steps
                .iter()
                .any(|step| step.span_id == client.parent_span_id),
            "{} hangs under a step",
            client.name
        );
        assert_eq!(
            client.status.as_ref().map(|s| s.code),
            Some(status::StatusCode::Unset as i32)
        );
    }
    let mut seen_by_downstreams = Vec::new();
    let mut untraced = 0;
    for handle in &handles {
        for call in handle.faults().take_journal() {
            match call.traceparent {
                Some(parent) => {
                    assert_eq!(hex(&parent.trace_id), TRACE, "only the caller's trace");
                    seen_by_downstreams.push(hex(&parent.parent_id));
                }
                None => untraced += 1,
            }
        }
    }
    assert_eq!(
        untraced, 1,
        "the call not sampled (no parent, sampling 0) started no trace downstream"
    );
    assert_eq!(seen_by_downstreams.len(), clients.len() + 1);
    for parent in &seen_by_downstreams {
        assert!(
            clients
                .iter()
                .chain(&passed_clients)
                .any(|client| &hex(&client.span_id) == parent),
            "the downstream's parent is an attempt span"
        );
    }
    println!(
        "TRACE: {} spans exported: {} steps, {} attempts, pass-through included",
        spans.len(),
        steps.len(),
        clients.len() + passed_clients.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tracing_the_callers_trace_context_reaches_every_downstream() {
    let handles = services().await;
    for handle in &handles {
        handle.faults().start_journal();
    }
    let gateway = start_gateway(&config(&handles, "")).await.unwrap();
    StorefrontClient::new(channel(gateway.local_addr()))
        .get_product_page(traced(
            GetProductPageRequest {
                product_id: 7,
                review_limit: 2,
            },
            true,
        ))
        .await
        .unwrap();
    UserServiceClient::new(channel(gateway.local_addr()))
        .get_user(traced(GetUserRequest { id: 1 }, false))
        .await
        .unwrap();
    let mut calls = 0;
    for handle in &handles {
        for call in handle.faults().take_journal() {
            let parent = call.traceparent.expect("traceparent passed on");
            assert_eq!(hex(&parent.trace_id), TRACE);
            assert_eq!(hex(&parent.parent_id), CALLER_SPAN, "unchanged");
            calls += 1;
        }
    }
    assert!(
        calls >= 5,
        "the page's calls and the pass-through one: {calls}"
    );
    gateway.shutdown().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_decisions_are_span_events() {
    let (receiver, endpoint) = Receiver::start().await;
    let handles = services().await;
    let inventory = handles
        .iter()
        .find(|handle| handle.service() == DemoService::Inventory)
        .unwrap();
    inventory
        .faults()
        .set(mosaic_demo_services::FaultConfig {
            error_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let tracing = format!(
        "[tracing]\nendpoint = \"{endpoint}\"\nsampling = 1.0\nexport_interval = \"100ms\"\n\n\
         [upstreams.inventory.breaker]\nconsecutive_failures = 1\nbackoff_min = \"60s\"\n"
    );
    let gateway = start_gateway(&config(&handles, &tracing)).await.unwrap();
    let mut client =
        mosaic_tests::pb::inventory::v1::inventory_service_client::InventoryServiceClient::new(
            channel(gateway.local_addr()),
        );
    for _ in 0..2 {
        let request = mosaic_tests::pb::inventory::v1::GetStockRequest { product_id: 7 };
        let status = client.get_stock(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    }
    gateway.shutdown().await;

    let spans = receiver.spans();
    let with_event = |name: &str| {
        spans
            .iter()
            .filter(|span| span.events.iter().any(|event| event.name == name))
            .collect::<Vec<_>>()
    };
    // The first call's attempt failed and opened the breaker: an event of that attempt.
    let opened = with_event("mosaic.breaker_opened");
    assert_eq!(opened.len(), 1, "{spans:#?}");
    assert_eq!(opened[0].kind, SpanKind::Client as i32);
    // The second found no ready endpoint: an event of its server span, and no attempt.
    let unready = with_event("mosaic.no_ready_endpoint");
    assert_eq!(unready.len(), 1, "{spans:#?}");
    assert_eq!(unready[0].kind, SpanKind::Server as i32);
    assert_eq!(
        spans
            .iter()
            .filter(|span| span.kind == SpanKind::Client as i32)
            .count(),
        1,
        "only the first call reached the endpoint"
    );
}
