//! Messages that are not valid protobuf, sent through the real gateway: whose fault each is
//! decides the code.
//!
//! - A malformed *request* to a composed method is the caller's mistake: the gateway's edge
//!   server answers `INVALID_ARGUMENT` itself, without calling any downstream service.
//! - A malformed request to a pass-through method is not decoded by the gateway at all: the
//!   service gets it byte for byte, and its answer comes back unchanged.
//! - A malformed *response* from a downstream service to a composed method is the downstream's
//!   fault, so the edge call stays `INTERNAL`.

use bytes::Bytes;
use mosaic_demo_services::DemoService;
use mosaic_tests::pb::catalog::v1::GetProductRequest;
use mosaic_tests::raw::{self, RawResponse};
use mosaic_tests::recorder::Recorder;
use mosaic_tests::storefront::GetProductPageRequest;
use mosaic_tests::storefront::storefront_client::StorefrontClient;
use mosaic_tests::{Stack, gateway_toml, start_gateway, start_passthrough_gateway, start_service};
use prost::Message;
use tonic::Code;

/// Bodies that are not valid protobuf for any of the requests below, each framed as one gRPC
/// message, with what is wrong with them.
fn malformed() -> Vec<(&'static str, Bytes)> {
    [
        // Field 1, varint, whose continuation bit promises a byte that never comes.
        ("a truncated varint", vec![0x08, 0x80]),
        // Field 1 with wire type 7, which does not exist.
        ("an invalid wire type", vec![0x0f, 0x01]),
        // Field 1 as a length-delimited value five bytes long, in a three-byte message.
        ("a length past the end", vec![0x0a, 0x05, 0x01]),
        // The bytes the pass-through test in `byte_identical.rs` sends.
        ("a varint of 0xff bytes", vec![0xff, 0xff, 0xff]),
    ]
    .into_iter()
    .map(|(what, bytes)| (what, raw::frame(&[bytes])))
    .collect()
}

/// The status a raw response carries, in its trailers or (trailers-only) its headers.
fn status_of(response: &RawResponse) -> tonic::Status {
    let map = response.trailers.as_ref().unwrap_or(&response.headers);
    tonic::Status::from_header_map(map).unwrap_or_else(|| panic!("no grpc-status in {response:?}"))
}

fn calls(stack: &Stack, service: DemoService) -> u64 {
    stack.service(service).faults().stats().calls_total
}

#[tokio::test]
async fn a_malformed_request_to_a_composed_method_is_invalid_argument() {
    let stack = Stack::start().await.unwrap();

    for path in [
        "/demo.storefront.v1.Storefront/GetProductPage",
        "/demo.storefront.v1.Storefront/GetUserProfile",
        "/demo.storefront.v1.Storefront/CheckAvailability",
    ] {
        for (what, body) in malformed() {
            let response = raw::call(stack.gateway_addr(), path, body, &[])
                .await
                .unwrap();
            assert_eq!(response.status, 200, "{path}, {what}: {response:?}");
            let status = status_of(&response);
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{path}, {what}: {status:?}"
            );
            assert!(
                status
                    .message()
                    .starts_with("the request message could not be decoded: "),
                "{path}, {what}: {status:?}"
            );
        }
    }
    // Answered by the gateway: no composition ran, no downstream was called.
    for service in DemoService::ALL {
        assert_eq!(calls(&stack, service), 0, "{}", service.name());
    }

    // The same method still composes a well-formed request.
    let body = raw::frame(&[GetProductPageRequest {
        product_id: 1,
        review_limit: 2,
    }
    .encode_to_vec()]);
    let response = raw::call(
        stack.gateway_addr(),
        "/demo.storefront.v1.Storefront/GetProductPage",
        body,
        &[],
    )
    .await
    .unwrap();
    assert_eq!(status_of(&response).code(), Code::Ok, "{response:?}");
}

#[tokio::test]
async fn a_malformed_request_to_a_pass_through_method_gets_the_services_answer() {
    let stack = Stack::start().await.unwrap();
    let path = "/demo.users.v1.UserService/GetUser";

    for (what, body) in malformed() {
        let direct = raw::call(
            stack.service(DemoService::Users).local_addr(),
            path,
            body.clone(),
            &[],
        )
        .await
        .unwrap();
        let via = raw::call(stack.gateway_addr(), path, body, &[])
            .await
            .unwrap();
        assert_eq!(
            via, direct,
            "{what}: the gateway changed the service's answer"
        );
        // The demo service is a plain tonic server, which says `INTERNAL`.
        assert_eq!(status_of(&via).code(), Code::Internal, "{what}: {via:?}");
    }
    // Each went through the gateway to the service, and each straight there.
    let sent = malformed().len() as u64;
    assert_eq!(calls(&stack, DemoService::Users), 2 * sent);

    // And what the service receives is the caller's bytes, not something the gateway decoded
    // and encoded again.
    let upstream = Recorder::start(raw::frame(&[Vec::new()])).await.unwrap();
    let config = gateway_toml(&[(DemoService::Users, upstream.endpoint())]);
    let gateway = start_passthrough_gateway(&config).await.unwrap();
    for (what, body) in malformed() {
        let response = raw::call(gateway.local_addr(), path, body.clone(), &[])
            .await
            .unwrap();
        assert_eq!(
            status_of(&response).code(),
            Code::Ok,
            "{what}: {response:?}"
        );
        let received = upstream.take();
        assert_eq!(received.len(), 1, "{what}: {received:?}");
        assert_eq!(received[0].body, body, "{what}: forwarded byte for byte");
    }
}

#[tokio::test]
async fn a_malformed_response_from_a_downstream_stays_internal() {
    // The catalog answers `GetProduct` with bytes that are no `GetProductResponse`; the other
    // services are the real ones.
    let catalog = Recorder::start(raw::frame(&[vec![0x0a, 0x05, 0x01]]))
        .await
        .unwrap();
    let mut services = Vec::new();
    let mut endpoints = vec![(DemoService::Catalog, catalog.endpoint())];
    for service in DemoService::ALL {
        if service != DemoService::Catalog {
            let handle = start_service(service).await.unwrap();
            endpoints.push((service, handle.endpoint()));
            services.push(handle);
        }
    }
    let gateway = start_gateway(&gateway_toml(&endpoints)).await.unwrap();

    let status = StorefrontClient::new(mosaic_tests::channel(gateway.local_addr()))
        .get_product_page(GetProductPageRequest {
            product_id: 1,
            review_limit: 2,
        })
        .await
        .expect_err("the product does not decode");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("step `p` (demo.catalog.v1.CatalogService/GetProduct) failed: "),
        "{status:?}"
    );
    assert!(
        !status
            .message()
            .contains("the request message could not be decoded"),
        "{status:?}"
    );
    // The request the composition sent was well-formed; the catalog got it.
    let received = catalog.take();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(
        received[0].path,
        "/demo.catalog.v1.CatalogService/GetProduct"
    );
    let sent = GetProductRequest::decode(&received[0].body[5..]).unwrap();
    assert_eq!(sent, GetProductRequest { id: 1 });
}
