//! `conditions.proto`: `Lookup/Find` sets request fields only when their conditions hold, and
//! chooses response oneof members by conditions, failing when two hold at once.

use std::time::Duration;

use mosaic_generated_check::golden::conditions::v1::found::{Availability, Origin};
use mosaic_generated_check::golden::conditions::v1::lookup_client::LookupClient;
use mosaic_generated_check::golden::conditions::v1::{FindRequest, Found, LookupComposer};
use mosaic_generated_check::golden::shapes::v1::catalog_server::CatalogServer;
use mosaic_generated_check::golden::shapes::v1::get_item_request::Key;
use mosaic_generated_check::golden::shapes::v1::{GetItemRequest, Item, item};
use tonic::transport::Server;
use tonic::{Code, Status};

use crate::support::{Answer, Edge, Method, ShapesCatalog, Stubs, assert_status, request};

const CALLER: Duration = Duration::from_secs(10);

/// Item `n` has `n % 10` in stock; odd items come from a factory, items of 20 and more replace
/// another item; SKUs name item 42.
fn catalog() -> ShapesCatalog {
    ShapesCatalog {
        get_item: Method::new(|request: &GetItemRequest, _| {
            let id = match &request.key {
                Some(Key::Id(id)) => *id,
                Some(Key::Sku(_)) => 42,
                None => 0,
            };
            let origin = if id % 2 == 1 {
                Some(item::Origin::Factory(format!("plant {id}")))
            } else if id >= 20 {
                Some(item::Origin::Replaces(Box::new(Item {
                    id: id - 20,
                    ..Default::default()
                })))
            } else {
                None
            };
            Answer::ok(Item {
                id,
                name: format!("item {id}"),
                stock: (id % 10) as i32,
                origin,
                ..Default::default()
            })
        }),
        ..Default::default()
    }
}

async fn find(message: FindRequest) -> (Result<Found, Status>, Vec<GetItemRequest>) {
    let catalog = catalog();
    let stubs =
        Stubs::serve(Server::builder().add_service(CatalogServer::new(catalog.clone()))).await;
    let edge = Edge::start(stubs, LookupComposer::new).await;
    let mut client = LookupClient::new(edge.channel());
    let found = client
        .find(request(message, CALLER))
        .await
        .map(tonic::Response::into_inner);
    (found, catalog.get_item.messages())
}

#[tokio::test]
async fn request_fields_are_set_only_when_their_conditions_hold() {
    let (_, sent) = find(FindRequest {
        id: 13,
        sku: "ignored".to_owned(),
        pinned: true,
        ..Default::default()
    })
    .await;
    assert_eq!(sent.len(), 1, "not detailed: the guarded step did not run");
    assert_eq!(sent[0].key, Some(Key::Id(13)));
    assert_eq!(sent[0].version, Some(7));

    let (_, sent) = find(FindRequest {
        sku: "lamp".to_owned(),
        ..Default::default()
    })
    .await;
    assert_eq!(sent[0].key, Some(Key::Sku("lamp".to_owned())));
    assert_eq!(sent[0].version, None, "unset, not 0");

    let (_, sent) = find(FindRequest::default()).await;
    assert_eq!((sent[0].key.clone(), sent[0].version), (None, None));
}

#[tokio::test]
async fn response_members_are_chosen_by_their_conditions() {
    let (found, sent) = find(FindRequest {
        id: 13,
        detailed: true,
        ..Default::default()
    })
    .await;
    let ids: Vec<_> = sent.iter().map(|r| r.key.clone()).collect();
    assert_eq!(ids, [Some(Key::Id(13)), Some(Key::Id(1))]);
    let found = found.unwrap();
    assert_eq!(found.name, "item 13");
    assert_eq!(found.stock, 3);
    assert!(found.has_related, "detailed: the guarded step ran");
    assert_eq!(found.related, "item 1");
    assert_eq!(found.origin, Some(Origin::Factory("plant 13".to_owned())));
    assert_eq!(
        found.availability,
        Some(Availability::InStock("3 left".to_owned()))
    );

    let (found, _) = find(FindRequest {
        id: 20,
        ..Default::default()
    })
    .await;
    let found = found.unwrap();
    assert_eq!(found.stock, 0, "left at its default without `detailed`");
    assert!(!found.has_related);
    assert_eq!(found.related, "none");
    match &found.origin {
        Some(Origin::Replaces(item)) => assert_eq!(item.id, 0),
        other => panic!("expected the replaced item, got {other:?}"),
    }
    assert_eq!(found.availability, Some(Availability::SoldOut(true)));

    let (found, _) = find(FindRequest {
        id: 2,
        ..Default::default()
    })
    .await;
    let found = found.unwrap();
    assert_eq!(
        found.origin, None,
        "no condition holds: the oneof stays unset"
    );
    assert_eq!(
        found.availability,
        Some(Availability::InStock("2 left".to_owned()))
    );
}

#[tokio::test]
async fn two_members_whose_conditions_hold_fail_the_call() {
    // SKU "overlap" reads item 42: 2 in stock, and `reserved` holds too.
    let (found, sent) = find(FindRequest {
        sku: "overlap".to_owned(),
        ..Default::default()
    })
    .await;
    assert_eq!(sent.len(), 1);
    assert_status(
        found,
        Code::Internal,
        "the conditions of `in_stock` and `reserved`, members of oneof \
         `golden.conditions.v1.Found.availability`, both hold; a oneof holds one value",
    );
}
