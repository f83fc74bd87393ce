//! `switch.proto`: `Badges/GetBadge` picks values by `switch` steps over the user's tier and
//! interests, and picks between two users (a message-typed switch) by the request.

use std::time::Duration;

use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserRequest, GetUserResponse, Tier, User};
use mosaic_generated_check::golden::switch::v1::badges_client::BadgesClient;
use mosaic_generated_check::golden::switch::v1::{Badge, BadgesComposer, GetBadgeRequest};
use tonic::transport::Server;

use crate::support::{Answer, Edge, Method, Stubs, Users, request};

const CALLER: Duration = Duration::from_secs(10);

/// User 1 is the owner; user `n` has tier `n / 10` and `n % 10` interests.
fn users() -> Users {
    Users {
        get_user: Method::new(|request: &GetUserRequest, _| {
            let id = request.id;
            Answer::ok(GetUserResponse {
                user: Some(User {
                    id,
                    display_name: if id == 1 {
                        "Owner".to_owned()
                    } else {
                        format!("user {id}")
                    },
                    tier: (id / 10) as i32,
                    interests: (0..id % 10).map(|i| format!("topic {i}")).collect(),
                    ..Default::default()
                }),
            })
        }),
    }
}

async fn badge(user_id: i64, compact: bool) -> Badge {
    let users = users();
    let stubs =
        Stubs::serve(Server::builder().add_service(UserServiceServer::new(users.clone()))).await;
    let edge = Edge::start(stubs, BadgesComposer::new).await;
    let mut client = BadgesClient::new(edge.channel());
    let badge = client
        .get_badge(request(GetBadgeRequest { user_id, compact }, CALLER))
        .await
        .unwrap()
        .into_inner();
    let mut asked: Vec<i64> = users.get_user.messages().iter().map(|r| r.id).collect();
    asked.sort_unstable();
    assert_eq!(asked, vec![1, user_id], "the user and the owner, once each");
    badge
}

#[tokio::test]
async fn the_first_case_that_holds_gives_the_value() {
    let enterprise = Tier::Enterprise as i64 * 10;
    let pro = Tier::Pro as i64 * 10;
    let free = Tier::Free as i64 * 10;
    // (user, compact, label, rank, name)
    let cases = [
        (enterprise + 5, false, "Enterprise", 3, "user 35"),
        (pro + 2, false, "Professional", 2, "user 22"),
        (pro + 2, true, "Pro", 2, "Owner"),
        (free + 1, false, "Member", 1, "user 11"),
        (free, true, "Member", 0, "Owner"),
    ];
    for (user, compact, label, rank, name) in cases {
        let badge = badge(user, compact).await;
        assert_eq!(
            (badge.label.as_str(), badge.rank, badge.name.as_str()),
            (label, rank, name),
            "user {user}, compact {compact}"
        );
    }
}
