//! `aliases.proto`: `People/GetProfile` makes one `Directory/GetPerson` call and converts the
//! downstream `Person`, `Member` and `Address` into their edge aliases `Profile`, `Badge` and
//! `Place`, field by field.

use std::collections::BTreeMap;
use std::time::Duration;

use mosaic_generated_check::golden::aliases::v1::directory_server::DirectoryServer;
use mosaic_generated_check::golden::aliases::v1::people_client::PeopleClient;
use mosaic_generated_check::golden::aliases::v1::{
    Address, Badge, GetPersonRequest, GetPersonResponse, Member, PeopleComposer, Person, Place,
    Position, Profile, ProfilePage, Role, person, profile,
};
use tonic::Code;
use tonic::transport::{Channel, Server};

use crate::support::{Answer, Directory, Edge, Method, Stubs, assert_status, request};

const CALLER: Duration = Duration::from_secs(10);

fn address(city: &str, street: &str) -> Address {
    Address {
        city: city.to_owned(),
        street_line: street.to_owned(),
    }
}

fn place(city: &str, street: &str) -> Place {
    Place {
        city: city.to_owned(),
        street: street.to_owned(),
    }
}

/// A person with every field set, reporting to `manager`.
fn full_person(manager: Option<Person>) -> Person {
    Person {
        id: 7,
        full_name: "Ann Lee".to_owned(),
        age: 41,
        role: Role::Manager as i32,
        home: Some(address("Oslo", "Storgata 1")),
        offices: BTreeMap::from([
            ("hq".to_owned(), address("Bergen", "Bryggen 2")),
            ("lab".to_owned(), address("Trondheim", "Elgeseter 3")),
        ]),
        tags: vec!["ops".to_owned(), "oncall".to_owned()],
        nickname: Some("annie".to_owned()),
        title: Some("Director".to_owned()),
        contact: Some(person::Contact::Email("ann@example.com".to_owned())),
        manager: manager.map(Box::new),
        score: 0.5,
    }
}

/// A person with only the plain fields set.
fn bare_person(id: i64, contact: Option<person::Contact>) -> Person {
    Person {
        id,
        full_name: format!("person {id}"),
        role: Role::Staff as i32,
        contact,
        ..Default::default()
    }
}

async fn start(directory: &Directory) -> (Edge, PeopleClient<Channel>) {
    let stubs =
        Stubs::serve(Server::builder().add_service(DirectoryServer::new(directory.clone()))).await;
    let edge = Edge::start(stubs, PeopleComposer::new).await;
    let client = PeopleClient::new(edge.channel());
    (edge, client)
}

async fn profile_page(answer: GetPersonResponse) -> Result<ProfilePage, tonic::Status> {
    let directory = Directory {
        get_person: Method::new(move |_, _| Answer::ok(answer.clone())),
    };
    let (_edge, mut client) = start(&directory).await;
    let page = client
        .get_profile(request(GetPersonRequest { id: 7 }, CALLER))
        .await
        .map(tonic::Response::into_inner);
    let calls = directory.get_person.messages();
    assert_eq!(calls, vec![GetPersonRequest { id: 7 }], "one call per page");
    page
}

#[tokio::test]
async fn every_field_converts_nested_widened_renamed_and_computed() {
    let boss = bare_person(1, None);
    let colleague = bare_person(8, Some(person::Contact::Phone("555".to_owned())));
    let page = profile_page(GetPersonResponse {
        person: Some(full_person(Some(boss))),
        colleagues: vec![colleague],
        member: Some(Member {
            id: 9,
            full_name: "Bo".to_owned(),
        }),
    })
    .await
    .unwrap();

    let expected_boss = Profile {
        id: 1,
        full_name: "person 1".to_owned(),
        role: Position::Staff as i32,
        greeting: "Hello, person 1".to_owned(),
        ..Default::default()
    };
    let expected = Profile {
        id: 7,
        full_name: "Ann Lee".to_owned(),
        age: 41,
        role: Position::Manager as i32,
        home: Some(place("Oslo", "Storgata 1")),
        offices: BTreeMap::from([
            ("hq".to_owned(), place("Bergen", "Bryggen 2")),
            ("lab".to_owned(), place("Trondheim", "Elgeseter 3")),
        ]),
        tags: vec!["ops".to_owned(), "oncall".to_owned()],
        nickname: Some("annie".to_owned()),
        title: Some("Director".to_owned()),
        contact: Some(profile::Contact::Email("ann@example.com".to_owned())),
        manager: Some(Box::new(expected_boss)),
        score: 0.5,
        greeting: "Hello, Ann Lee".to_owned(),
    };
    assert_eq!(page.profile, Some(expected));
    // A member the edge oneof has no counterpart for leaves it unset.
    assert_eq!(
        page.colleagues,
        vec![Profile {
            id: 8,
            full_name: "person 8".to_owned(),
            role: Position::Staff as i32,
            greeting: "Hello, person 8".to_owned(),
            ..Default::default()
        }]
    );
    // One edge type from two sources, each by its own rule.
    assert_eq!(
        page.badge,
        Some(Badge {
            id: 9,
            label: "Bo #9".to_owned(),
        })
    );
    assert_eq!(
        page.own_badge,
        Some(Badge {
            id: 7,
            label: "Ann Lee #7".to_owned(),
        })
    );
    assert_eq!(page.first_office, Some(place("Oslo", "Storgata 1")));
}

#[tokio::test]
async fn unset_stays_unset_and_a_message_member_converts() {
    let post = person::Contact::Post(address("Oslo", "Postboks 5"));
    let page = profile_page(GetPersonResponse {
        person: Some(bare_person(3, Some(post))),
        colleagues: Vec::new(),
        member: None,
    })
    .await
    .unwrap();
    let profile = page.profile.unwrap();
    assert_eq!(profile.home, None);
    assert_eq!(profile.nickname, None);
    assert_eq!(profile.title, None);
    assert_eq!(profile.manager, None);
    assert_eq!(
        profile.contact,
        Some(profile::Contact::Post(place("Oslo", "Postboks 5")))
    );
    assert_eq!(page.badge, None, "no member, no badge");
    assert_eq!(page.first_office, None, "an unset home is no office");
    assert!(page.colleagues.is_empty());
}

#[tokio::test]
async fn no_person_leaves_the_profile_unset() {
    let page = profile_page(GetPersonResponse::default()).await.unwrap();
    assert_eq!(page.profile, None);
    assert_eq!(page.own_badge, None);
}

#[tokio::test]
async fn a_role_without_counterpart_fails_the_call_naming_both_enums() {
    let mut manager = bare_person(1, None);
    manager.role = 42;
    let result = profile_page(GetPersonResponse {
        person: Some(full_person(Some(manager))),
        ..Default::default()
    })
    .await;
    assert_status(
        result,
        Code::Internal,
        "value 42 of `golden.aliases.v1.Role` has no counterpart in `golden.aliases.v1.Position`",
    );
}
