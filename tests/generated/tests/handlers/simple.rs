//! `simple.proto`: `Profiles/GetProfile` reads one `UserService/GetUser` call (200 ms timeout)
//! and the request, within the method's 500 ms.

use std::time::{Duration, Instant};

use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserRequest, GetUserResponse, User};
use mosaic_generated_check::golden::simple::v1::profiles_client::ProfilesClient;
use mosaic_generated_check::golden::simple::v1::{GetProfileRequest, Profile, ProfilesComposer};
use tonic::transport::Server;
use tonic::{Code, Status};

use crate::support::{Answer, Edge, Method, Stubs, Users, assert_status, request};

async fn start(users: &Users) -> (Edge, ProfilesClient<tonic::transport::Channel>) {
    let stubs =
        Stubs::serve(Server::builder().add_service(UserServiceServer::new(users.clone()))).await;
    let edge = Edge::start(stubs, ProfilesComposer::new).await;
    let client = ProfilesClient::new(edge.channel());
    (edge, client)
}

fn ada() -> User {
    User {
        id: 7,
        display_name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        bio: Some(String::new()),
        interests: vec!["maths".into(), "engines".into(), "poetry".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn get_profile_binds_the_user_and_the_request() {
    let users = Users {
        get_user: Method::always(GetUserResponse { user: Some(ada()) }),
    };
    let (_edge, mut client) = start(&users).await;

    let profile = client
        .get_profile(GetProfileRequest { user_id: 7 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        profile,
        Profile {
            id: 7,
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            // `has()` is presence: an empty bio that is set counts.
            has_bio: true,
            interest_count: 3,
        }
    );

    let received = users.get_user.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].message, GetUserRequest { id: 7 });
    assert_eq!(received[0].previous_attempts, None);
    // The step's own 200 ms, not the method's 500 ms nor the 30 s default.
    let timeout = received[0].timeout.expect("a grpc-timeout");
    assert!(
        timeout <= Duration::from_millis(200) && timeout > Duration::from_millis(150),
        "{timeout:?}"
    );
}

#[tokio::test]
async fn get_profile_of_a_user_without_bio_interests_or_record() {
    let users = Users {
        get_user: Method::new(|request: &GetUserRequest, _| {
            let user = (request.id == 8).then(|| User {
                id: 8,
                display_name: "Bob".into(),
                email: "bob@example.com".into(),
                bio: None,
                interests: Vec::new(),
                ..Default::default()
            });
            Answer::ok(GetUserResponse { user })
        }),
    };
    let (_edge, mut client) = start(&users).await;

    let profile = client
        .get_profile(GetProfileRequest { user_id: 8 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        profile,
        Profile {
            id: 8,
            name: "Bob".into(),
            email: "bob@example.com".into(),
            has_bio: false,
            interest_count: 0,
        }
    );

    // No `user` in the response: its fields read as their defaults, `id` still comes from the
    // request.
    let profile = client
        .get_profile(GetProfileRequest { user_id: 9 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        profile,
        Profile {
            id: 9,
            ..Default::default()
        }
    );
    assert_eq!(
        users.get_user.messages(),
        [GetUserRequest { id: 8 }, GetUserRequest { id: 9 }]
    );
}

#[tokio::test]
async fn a_downstream_error_keeps_its_code_and_names_the_step() {
    let users = Users {
        get_user: Method::failing(Status::not_found("user 5 not found")),
    };
    let (_edge, mut client) = start(&users).await;

    assert_status(
        client.get_profile(GetProfileRequest { user_id: 5 }).await,
        Code::NotFound,
        "step `u` (demo.users.v1.UserService/GetUser) failed: user 5 not found",
    );
    assert_eq!(users.get_user.messages(), [GetUserRequest { id: 5 }]);
}

#[tokio::test]
async fn a_slow_user_ends_at_the_steps_timeout_with_deadline_exceeded() {
    let users = Users {
        get_user: Method::new(|_, _| {
            Answer::ok(GetUserResponse { user: Some(ada()) }).after(Duration::from_secs(5))
        }),
    };
    let (_edge, mut client) = start(&users).await;

    let started = Instant::now();
    let result = client
        .get_profile(request(
            GetProfileRequest { user_id: 7 },
            Duration::from_secs(10),
        ))
        .await;
    let elapsed = started.elapsed();
    assert_status(
        result,
        Code::DeadlineExceeded,
        "step `u` (demo.users.v1.UserService/GetUser) failed: upstream `stubs` did not \
         answer within the call's deadline of 200ms",
    );
    // The step's 200 ms, well before the method's 500 ms.
    assert!(
        elapsed >= Duration::from_millis(190) && elapsed < Duration::from_millis(480),
        "{elapsed:?}"
    );
}
