//! `shapes.proto`: `Shapes/GetShape` looks an item up by id (`by_id`) and by sku (an unnamed
//! autobind step whose item fills the same-named fields), touches it (an unnamed step kept for
//! its effect, answering `google.protobuf.Empty`), builds two nested messages both named `Part`,
//! and binds proto3 `optional`s, well-known wrappers and a response oneof.

use mosaic_generated_check::golden::shapes::v1::catalog_server::CatalogServer;
use mosaic_generated_check::golden::shapes::v1::get_item_request::Key;
use mosaic_generated_check::golden::shapes::v1::shape::Source;
use mosaic_generated_check::golden::shapes::v1::shapes_client::ShapesClient;
use mosaic_generated_check::golden::shapes::v1::{
    GetItemRequest, GetShapeRequest, Item, Shape, ShapesComposer, TouchRequest, item, other, outer,
};
use prost_types::Timestamp;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};

use crate::support::{Answer, Edge, Method, ShapesCatalog, Stubs, assert_status};

async fn start(catalog: &ShapesCatalog) -> (Edge, ShapesClient<Channel>) {
    let router = Server::builder().add_service(CatalogServer::new(catalog.clone()));
    let edge = Edge::start(Stubs::serve(router).await, ShapesComposer::new).await;
    let client = ShapesClient::new(edge.channel());
    (edge, client)
}

/// A catalog answering `GetItem` by id with `by_id` and by sku with `by_sku`, and `Touch`
/// with `Empty`.
fn catalog(by_id: Item, by_sku: Item) -> ShapesCatalog {
    ShapesCatalog {
        get_item: Method::new(move |request: &GetItemRequest, _| match &request.key {
            Some(Key::Id(_)) => Answer::ok(by_id.clone()),
            Some(Key::Sku(_)) => Answer::ok(by_sku.clone()),
            None => Answer::err(Status::invalid_argument("no key")),
        }),
        touch: Method::always(()),
    }
}

/// The item by id: every field differs from [`by_sku`]'s, so the answer shows which step each
/// field came from.
fn by_id() -> Item {
    Item {
        id: 7,
        name: "Lamp".into(),
        stock: 3,
        price_cents: Some(1250),
        note: Some("by id".into()),
        updated: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 1,
        }),
        origin: Some(item::Origin::Factory("Turin".into())),
    }
}

/// The item by sku, whose fields the unnamed autobind step copies.
fn by_sku() -> Item {
    Item {
        id: 4242,
        name: "Lamp (sku)".into(),
        stock: 9,
        price_cents: Some(990),
        note: Some("by sku".into()),
        updated: Some(Timestamp {
            seconds: 1_800_000_000,
            nanos: 500,
        }),
        origin: Some(item::Origin::Factory("not read".into())),
    }
}

/// An item whose wrappers, timestamp and oneof are all unset, and whose plain fields are zero.
fn bare(id: i64) -> Item {
    Item {
        id,
        ..Default::default()
    }
}

fn shape_request(label: Option<&str>) -> GetShapeRequest {
    GetShapeRequest {
        id: 7,
        sku: "LMP-1".into(),
        label: label.map(Into::into),
    }
}

/// The two `GetItem` requests every call makes, by id first (they run concurrently, so they
/// arrive in either order).
fn get_items(catalog: &ShapesCatalog) -> Vec<GetItemRequest> {
    let mut requests = catalog.get_item.messages();
    requests.sort_by_key(|request| matches!(request.key, Some(Key::Sku(_))));
    requests
}

fn expected_get_items() -> [GetItemRequest; 2] {
    [
        GetItemRequest {
            key: Some(Key::Id(7)),
            version: None,
        },
        GetItemRequest {
            key: Some(Key::Sku("LMP-1".into())),
            version: Some(2),
        },
    ]
}

/// Calls `GetShape` once with `request` against `catalog`, and checks the downstream requests
/// every successful call makes.
async fn get_shape(catalog: &ShapesCatalog, request: GetShapeRequest) -> Shape {
    let (_edge, mut client) = start(catalog).await;
    let shape = client.get_shape(request).await.unwrap().into_inner();
    assert_eq!(get_items(catalog), expected_get_items());
    assert_eq!(catalog.touch.messages(), [TouchRequest { id: 7 }]);
    shape
}

#[tokio::test]
async fn get_shape_fills_fields_from_the_autobind_step_and_the_named_steps() {
    let catalog = catalog(by_id(), by_sku());
    let shape = get_shape(&catalog, shape_request(Some("front"))).await;
    assert_eq!(
        shape,
        Shape {
            // From the unnamed autobind step (the item by sku).
            id: 4242,
            name: "Lamp (sku)".into(),
            stock: Some(9),
            price_cents: Some(990),
            note: Some("by sku".into()),
            updated: Some(Timestamp {
                seconds: 1_800_000_000,
                nanos: 500,
            }),
            // Bound explicitly.
            label: Some("front".into()),
            doubled: Some(2500),
            missing: None,
            priced: true,
            outer: Some(outer::Part {
                text: "Lamp".into(),
            }),
            other: Some(other::Part { count: 3 }),
            source: Some(Source::Factory("Turin".into())),
        }
    );
}

#[tokio::test]
async fn unset_wrappers_and_optionals_stay_unset() {
    let catalog = catalog(bare(7), bare(4242));
    let shape = get_shape(&catalog, shape_request(None)).await;
    assert_eq!(
        shape,
        Shape {
            id: 4242,
            name: String::new(),
            // `Item.stock` is a plain int32: it converts into the optional int64 as present.
            stock: Some(0),
            price_cents: None,
            note: None,
            updated: None,
            label: None,
            // What the generated code does today: `by_id.price_cents * 2` with the wrapper
            // unset (null in CEL) multiplies its default, 0, and sets the field, instead of
            // failing (CEL has no `null * int`) or leaving it unset.
            doubled: Some(0),
            missing: None,
            priced: false,
            outer: Some(outer::Part {
                text: String::new(),
            }),
            other: Some(other::Part { count: 0 }),
            // The by-id item's oneof is unset: `by_id.factory` reads the default, "".
            source: Some(Source::Factory(String::new())),
        }
    );
}

#[tokio::test]
async fn wrappers_set_to_defaults_keep_their_presence() {
    let zero = Item {
        price_cents: Some(0),
        note: Some(String::new()),
        updated: Some(Timestamp::default()),
        ..bare(7)
    };
    let catalog = catalog(zero.clone(), Item { id: 4242, ..zero });
    let shape = get_shape(&catalog, shape_request(Some(""))).await;
    assert_eq!(
        shape,
        Shape {
            id: 4242,
            name: String::new(),
            stock: Some(0),
            price_cents: Some(0),
            note: Some(String::new()),
            updated: Some(Timestamp::default()),
            label: Some(String::new()),
            doubled: Some(0),
            missing: None,
            priced: true,
            outer: Some(outer::Part {
                text: String::new(),
            }),
            other: Some(other::Part { count: 0 }),
            source: Some(Source::Factory(String::new())),
        }
    );
}

#[tokio::test]
async fn a_replacing_origin_reads_as_an_empty_factory() {
    let replacing = Item {
        origin: Some(item::Origin::Replaces(Box::new(Item {
            id: 6,
            name: "Old Lamp".into(),
            origin: Some(item::Origin::Factory("Milan".into())),
            ..Default::default()
        }))),
        ..by_id()
    };
    let catalog = catalog(replacing, by_sku());
    let shape = get_shape(&catalog, shape_request(Some("front"))).await;
    // `source` is bound only through `factory = by_id.factory`: with the by-id item's oneof
    // holding `replaces`, the member reads as its default and the response oneof is still set,
    // to `factory: ""` (`replaced_id` has no binding).
    assert_eq!(shape.source, Some(Source::Factory(String::new())));
    assert_eq!(
        (shape.priced, shape.doubled, shape.outer, shape.other),
        (
            true,
            Some(2500),
            Some(outer::Part {
                text: "Lamp".into()
            }),
            Some(other::Part { count: 3 })
        )
    );
}

#[tokio::test]
async fn a_failing_touch_fails_the_call_with_its_code() {
    let catalog = ShapesCatalog {
        touch: Method::failing(Status::failed_precondition("item 7 is frozen")),
        ..catalog(by_id(), by_sku())
    };
    let (_edge, mut client) = start(&catalog).await;

    // The unnamed step is named by its index among the message's steps.
    assert_status(
        client.get_shape(shape_request(Some("front"))).await,
        Code::FailedPrecondition,
        "call to golden.shapes.v1.Catalog/Touch failed: item 7 is frozen",
    );
    assert_eq!(catalog.touch.messages(), [TouchRequest { id: 7 }]);
}

#[tokio::test]
async fn a_failing_autobind_lookup_fails_the_call_with_its_code() {
    let by_id = by_id();
    let catalog = ShapesCatalog {
        get_item: Method::new(move |request: &GetItemRequest, _| match &request.key {
            Some(Key::Sku(sku)) => Answer::err(Status::not_found(format!("no sku {sku}"))),
            _ => Answer::ok(by_id.clone()),
        }),
        ..catalog(bare(0), bare(0))
    };
    let (_edge, mut client) = start(&catalog).await;

    assert_status(
        client.get_shape(shape_request(None)).await,
        Code::NotFound,
        "call to golden.shapes.v1.Catalog/GetItem failed: no sku LMP-1",
    );
    assert!(
        catalog.get_item.messages().contains(&GetItemRequest {
            key: Some(Key::Sku("LMP-1".into())),
            version: Some(2),
        }),
        "{:?}",
        catalog.get_item.messages()
    );
}
