//! Discovery through the gateway: reflection (v1 and v1alpha) and health cover everything the
//! gateway serves, pass-through services included.

use mosaic_tests::Stack;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1;
use tonic_reflection::pb::v1alpha;

const EXPECTED_SERVICES: [&str; 9] = [
    "demo.catalog.v1.CatalogService",
    "demo.inventory.v1.InventoryService",
    "demo.mobile.v1.MobileShop",
    "demo.reviews.v1.ReviewService",
    "demo.storefront.v1.Storefront",
    "demo.users.v1.UserService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

#[tokio::test]
async fn reflection_v1_lists_and_describes_pass_through_services() {
    use v1::server_reflection_client::ServerReflectionClient;
    use v1::server_reflection_request::MessageRequest;
    use v1::server_reflection_response::MessageResponse;

    let stack = Stack::start().await.unwrap();
    let mut client = ServerReflectionClient::new(stack.via_gateway());
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("demo.users.v1.UserService".into()),
    ]
    .map(|message_request| v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message_request),
    });
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();

    let listed = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("expected a service list, got {listed:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, EXPECTED_SERVICES);

    let described = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = described.message_response else {
        panic!("expected file descriptors, got {described:?}");
    };
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            <prost_types::FileDescriptorProto as prost::Message>::decode(bytes.as_slice())
                .unwrap()
                .name()
                .to_owned()
        })
        .collect();
    assert!(
        names.iter().any(|n| n == "demo/users/v1/users.proto"),
        "{names:?}"
    );
}

#[tokio::test]
async fn reflection_v1alpha_answers_like_v1() {
    use v1alpha::server_reflection_client::ServerReflectionClient;
    use v1alpha::server_reflection_request::MessageRequest;
    use v1alpha::server_reflection_response::MessageResponse;

    let stack = Stack::start().await.unwrap();
    let mut client = ServerReflectionClient::new(stack.via_gateway());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let listed = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("expected a service list, got {listed:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, EXPECTED_SERVICES);
}

#[tokio::test]
async fn health_reports_every_routed_service() {
    let stack = Stack::start().await.unwrap();
    let mut client = HealthClient::new(stack.via_gateway());
    for service in [
        "",
        "demo.users.v1.UserService",
        "demo.inventory.v1.InventoryService",
    ] {
        let response = client
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = client
        .check(HealthCheckRequest {
            service: "demo.nothing.v1.Nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}
