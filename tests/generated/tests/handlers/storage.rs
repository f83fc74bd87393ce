//! `storage.proto`: `Edge/Compose` sends narrowed numbers, a proto3 `optional` and a list to
//! `Down/Get`, and copies back narrow numbers, a map, a mapped list, a recursive message and an
//! optional string with its presence.

use std::collections::BTreeMap;

use mosaic_generated_check::golden::storage::v1::down_server::DownServer;
use mosaic_generated_check::golden::storage::v1::edge_client::EdgeClient;
use mosaic_generated_check::golden::storage::v1::{
    ComposeRequest, EdgeComposer, GetRequest, Node, Out, Thing,
};
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};

use crate::support::{Down, Edge, Method, Stubs, assert_status};

async fn start(down: &Down) -> (Edge, EdgeClient<Channel>) {
    let router = Server::builder().add_service(DownServer::new(down.clone()));
    let edge = Edge::start(Stubs::serve(router).await, EdgeComposer::new).await;
    let client = EdgeClient::new(edge.channel());
    (edge, client)
}

fn thing() -> Thing {
    Thing {
        small: 41,
        counts: BTreeMap::from([("a".into(), 1), ("b".into(), -2)]),
        values: vec![1, -3, 5],
        ratio: 0.25,
        node: Some(node()),
        note: Some("hi".into()),
    }
}

fn node() -> Node {
    Node {
        next: Some(Box::new(Node { next: None, v: 9 })),
        v: 8,
    }
}

#[tokio::test]
async fn compose_converts_every_kind_of_value_both_ways() {
    let down = Down {
        get: Method::always(thing()),
    };
    let (_edge, mut client) = start(&down).await;

    let out = client
        .compose(ComposeRequest { id: 7 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        out,
        Out {
            small: 42,
            counts: BTreeMap::from([("a".into(), 1), ("b".into(), -2)]),
            values: vec![2, -6, 10],
            ratio: 0.25,
            node: Some(node()),
            note: Some("hi".into()),
            next_v: 9,
        }
    );
    assert_eq!(
        down.get.messages(),
        [GetRequest {
            id: 7,
            maybe: Some(8),
            ids: vec![1, 2, 7],
        }]
    );
}

#[tokio::test]
async fn absent_and_empty_values_keep_their_presence() {
    let down = Down {
        get: Method::new(|request: &GetRequest, _| {
            crate::support::Answer::ok(if request.id == 1 {
                // Nothing set.
                Thing::default()
            } else {
                // An empty note that is set, and a node without `next`.
                Thing {
                    note: Some(String::new()),
                    node: Some(Node { next: None, v: 3 }),
                    ..Thing::default()
                }
            })
        }),
    };
    let (_edge, mut client) = start(&down).await;

    let out = client
        .compose(ComposeRequest { id: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        out,
        Out {
            small: 1,
            node: None,
            note: Some("none".into()),
            next_v: 0,
            ..Out::default()
        }
    );

    let out = client
        .compose(ComposeRequest { id: 2 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        out,
        Out {
            small: 1,
            node: Some(Node { next: None, v: 3 }),
            note: Some(String::new()),
            next_v: 0,
            ..Out::default()
        }
    );
}

#[tokio::test]
async fn values_that_do_not_fit_the_request_fail_before_the_call() {
    let down = Down {
        get: Method::always(thing()),
    };
    let (_edge, mut client) = start(&down).await;

    // `id` is an int32 downstream.
    assert_status(
        client.compose(ComposeRequest { id: 1 << 40 }).await,
        Code::OutOfRange,
        "value out of range for field `golden.storage.v1.GetRequest.id`",
    );
    // `$.id + 1` fits an int64 but not the int32 `maybe`.
    assert_status(
        client
            .compose(ComposeRequest {
                id: i64::from(i32::MAX),
            })
            .await,
        Code::OutOfRange,
        "value out of range for field `golden.storage.v1.GetRequest.maybe`",
    );
    assert!(down.get.messages().is_empty(), "{:?}", down.get.messages());
}

#[tokio::test]
async fn values_that_do_not_fit_the_response_fail_the_call() {
    let down = Down {
        get: Method::new(|request: &GetRequest, _| {
            crate::support::Answer::ok(match request.id {
                // `t.small + 1` overflows the int32 `small`.
                1 => Thing {
                    small: i32::MAX,
                    ..thing()
                },
                // `v * 2` overflows the int32 `values`.
                _ => Thing {
                    values: vec![1, i32::MAX],
                    ..thing()
                },
            })
        }),
    };
    let (_edge, mut client) = start(&down).await;

    assert_status(
        client.compose(ComposeRequest { id: 1 }).await,
        Code::OutOfRange,
        "value out of range for field `golden.storage.v1.Out.small`",
    );
    assert_status(
        client.compose(ComposeRequest { id: 2 }).await,
        Code::OutOfRange,
        "value out of range for field `golden.storage.v1.Out.values`",
    );
}

#[tokio::test]
async fn a_downstream_error_keeps_its_code() {
    let down = Down {
        get: Method::failing(Status::failed_precondition("thing 7 is locked")),
    };
    let (_edge, mut client) = start(&down).await;

    assert_status(
        client.compose(ComposeRequest { id: 7 }).await,
        Code::FailedPrecondition,
        "step `t` (golden.storage.v1.Down/Get) failed: thing 7 is locked",
    );
    // Not idempotent, and the failure is not `UNAVAILABLE`: sent once.
    assert_eq!(down.get.received().len(), 1);
}
