//! `metadata.proto`: `Cards/GetCard` sends constants, computed text and bytes, and forwarded
//! edge request headers as metadata of its downstream calls, and refuses a value that is not
//! header text with `INVALID_ARGUMENT` before calling anything; a field reads the users call's
//! captured response metadata.

use std::time::Duration;

use mosaic_generated_check::demo::catalog::v1::catalog_service_server::CatalogServiceServer;
use mosaic_generated_check::demo::catalog::v1::{GetProductResponse, Product};
use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserResponse, User};
use mosaic_generated_check::golden::metadata::v1::cards_client::CardsClient;
use mosaic_generated_check::golden::metadata::v1::{CardsComposer, GetCardRequest};
use tonic::Code;
use tonic::metadata::MetadataMap;
use tonic::transport::Server;

use crate::support::{Answer, Catalog, Edge, Method, Stubs, Users, assert_status, request};

const CALLER: Duration = Duration::from_secs(10);

struct Served {
    users: Users,
    catalog: Catalog,
    edge: Edge,
}

fn ada() -> GetUserResponse {
    GetUserResponse {
        user: Some(User {
            id: 7,
            display_name: "Ada".to_owned(),
            ..Default::default()
        }),
    }
}

async fn serve() -> Served {
    serve_users(Users {
        get_user: Method::always(ada()),
    })
    .await
}

async fn serve_users(users: Users) -> Served {
    let catalog = Catalog {
        get_product: Method::always(GetProductResponse {
            product: Some(Product {
                id: 501,
                title: "Lamp".to_owned(),
                ..Default::default()
            }),
        }),
    };
    let stubs = Stubs::serve(
        Server::builder()
            .add_service(UserServiceServer::new(users.clone()))
            .add_service(CatalogServiceServer::new(catalog.clone())),
    )
    .await;
    let edge = Edge::start(stubs, CardsComposer::new).await;
    Served {
        users,
        catalog,
        edge,
    }
}

fn texts(metadata: &MetadataMap, name: &str) -> Vec<String> {
    metadata
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn calls_carry_constants_computed_values_and_forwarded_headers() {
    let served = serve().await;
    let mut client = CardsClient::new(served.edge.channel());
    let mut call = request(
        GetCardRequest {
            user_id: 7,
            product_id: 501,
            channel: "ios".to_owned(),
            session: vec![0, 159, 255],
        },
        CALLER,
    );
    let headers = call.metadata_mut();
    headers.insert("accept-language", "de-CH".parse().unwrap());
    headers.append("x-tag", "a".parse().unwrap());
    headers.append("x-tag", "b".parse().unwrap());
    headers.insert("x-private", "not forwarded".parse().unwrap());
    let card = client.get_card(call).await.unwrap().into_inner();
    assert_eq!((card.viewer.as_str(), card.title.as_str()), ("Ada", "Lamp"));
    assert_eq!(card.cache, "none", "the users service sent no cache header");

    let users = served.users.get_user.received();
    assert_eq!(users.len(), 1);
    let sent = &users[0].metadata;
    assert_eq!(texts(sent, "x-request-source"), ["cards"]);
    assert_eq!(texts(sent, "x-channel"), ["ios"]);
    assert_eq!(
        sent.get_bin("x-session-bin").unwrap().to_bytes().unwrap(),
        &[0, 159, 255][..]
    );
    assert_eq!(texts(sent, "x-locale"), ["de-CH"]);
    assert_eq!(texts(sent, "x-tag"), ["a", "b"]);
    for absent in ["x-private", "accept-language", "x-viewer"] {
        assert!(sent.get(absent).is_none(), "{absent} is not sent to users");
    }
    assert!(users[0].timeout.is_some(), "the deadline still goes along");

    let products = served.catalog.get_product.received();
    assert_eq!(products.len(), 1);
    let sent = &products[0].metadata;
    assert_eq!(texts(sent, "x-viewer"), ["Ada"], "read from the first call");
    assert_eq!(texts(sent, "x-locale"), ["de-CH"]);
    for absent in ["x-request-source", "x-channel", "x-tag", "x-private"] {
        assert!(
            sent.get(absent).is_none(),
            "{absent} is not sent to catalog"
        );
    }
}

#[tokio::test]
async fn absent_headers_are_not_forwarded_and_defaults_apply() {
    let served = serve().await;
    let mut client = CardsClient::new(served.edge.channel());
    let call = request(
        GetCardRequest {
            user_id: 7,
            product_id: 501,
            ..Default::default()
        },
        CALLER,
    );
    client.get_card(call).await.unwrap();
    let sent = &served.users.get_user.received()[0].metadata;
    assert_eq!(texts(sent, "x-channel"), ["web"]);
    assert!(sent.get("x-locale").is_none());
    assert!(sent.get("x-tag").is_none());
    assert_eq!(
        sent.get_bin("x-session-bin").unwrap().to_bytes().unwrap(),
        &b""[..]
    );
}

#[tokio::test]
async fn a_value_that_is_not_header_text_is_invalid_argument_and_calls_nothing() {
    let served = serve().await;
    let mut client = CardsClient::new(served.edge.channel());
    let call = request(
        GetCardRequest {
            user_id: 7,
            product_id: 501,
            channel: "ios\r\nx-injected: 1".to_owned(),
            ..Default::default()
        },
        CALLER,
    );
    assert_status(
        client.get_card(call).await,
        Code::InvalidArgument,
        "step `u` cannot send metadata `x-channel`: its value holds characters a header value \
         cannot (only visible ASCII, spaces and tabs)",
    );
    assert!(served.users.get_user.received().is_empty());
    assert!(served.catalog.get_product.received().is_empty());
}

#[tokio::test]
async fn a_field_reads_the_calls_response_metadata() {
    let served = serve_users(Users {
        get_user: Method::new(|_, _| {
            Answer::ok(ada())
                .header("x-cache", "hit")
                .header("x-cache", "stale")
        }),
    })
    .await;
    let mut client = CardsClient::new(served.edge.channel());
    let card = client
        .get_card(request(
            GetCardRequest {
                user_id: 7,
                product_id: 501,
                ..Default::default()
            },
            CALLER,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.cache, "hit, stale", "both values, in order");
}
