//! `literals.proto`: message and map literals, values that may be null, and the string and
//! list library, computed over a stubbed user.

use std::collections::BTreeMap;
use std::time::Duration;

use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserResponse, Tier, User};
use mosaic_generated_check::golden::literals::v1::lits_client::LitsClient;
use mosaic_generated_check::golden::literals::v1::{
    GetRequest, Inner, LitsComposer, Out, inner, out,
};
use tonic::transport::Server;

use crate::support::{Edge, Method, Stubs, Users, request};

const CALLER: Duration = Duration::from_secs(10);

async fn get(flag: bool, name: &str) -> Out {
    let users = Users {
        get_user: Method::always(GetUserResponse {
            user: Some(User {
                id: 9,
                display_name: name.to_owned(),
                interests: vec!["tea".to_owned(), "chess".to_owned()],
                ..Default::default()
            }),
        }),
    };
    let stubs = Stubs::serve(Server::builder().add_service(UserServiceServer::new(users))).await;
    let edge = Edge::start(stubs, LitsComposer::new).await;
    let mut client = LitsClient::new(edge.channel());
    let message = GetRequest {
        user_id: 9,
        flag,
        note: None,
    };
    client
        .get(request(message, CALLER))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn literals_build_messages_and_maps() {
    let out = get(true, "Ada").await;
    let expected = Inner {
        a: "x".to_owned(),
        b: 2,
        cs: vec![1, 2],
        m: BTreeMap::from([("k".to_owned(), 3)]),
        o: Some(4),
        next: Some(Box::new(Inner {
            a: "y".to_owned(),
            ..Default::default()
        })),
        tier: Tier::Pro as i32,
        k: Some(inner::K::Ks("Ada".to_owned())),
    };
    assert_eq!(out.i.as_ref(), Some(&expected));
    assert_eq!(out.maybe.as_ref(), Some(&expected));
    assert_eq!(
        out.m,
        BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), 9)])
    );
    assert_eq!(out.w, Some(5));
    assert_eq!(out.parts, ["a", "b"]);
}

#[tokio::test]
async fn null_leaves_fields_unset_and_or_value_supplies_a_default() {
    let set = get(true, "Ada").await;
    assert_eq!(
        (set.c.as_deref(), set.sw.as_deref(), set.v, set.pick),
        (Some("x"), Some("y"), 9, Some(out::Pick::Pi(1)))
    );
    let unset = get(false, "Ada").await;
    assert_eq!(
        (unset.c.as_deref(), unset.sw.as_deref(), unset.v, unset.pick),
        (None, None, 0, None)
    );
    assert_eq!(unset.o, None);
    assert_eq!(unset.n, None);
    assert_eq!(unset.maybe, None);
    assert_eq!(
        unset.i.and_then(|i| i.o),
        None,
        "the literal's `o` is null too"
    );
}

#[tokio::test]
async fn the_string_and_list_library() {
    let out = get(false, "Ada").await;
    assert_eq!(out.low, "ada/chess,tea");
    assert!(out.ok);
    let out = get(false, "ada lovelace").await;
    assert_eq!(out.low, "ada lovelace/chess,tea");
    assert!(!out.ok, "the pattern is anchored: one capitalized word");
}
