//! `times.proto`: `Members/GetMember` compares, adds, subtracts, builds, reads and formats
//! timestamps and durations from a downstream's `created_at` and the request's.

use std::time::Duration;

use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserResponse, User};
use mosaic_generated_check::golden::times::v1::members_client::MembersClient;
use mosaic_generated_check::golden::times::v1::{GetMemberRequest, Member, MembersComposer};
use tonic::transport::Server;

use crate::support::{Edge, Method, Stubs, Users, request};

const CALLER: Duration = Duration::from_secs(10);

/// 2024-02-29T13:45:30.5Z, a Thursday.
fn joined() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_709_214_330,
        nanos: 500_000_000,
    }
}

async fn member(at: prost_types::Timestamp, trial: Option<prost_types::Duration>) -> Member {
    let users = Users {
        get_user: Method::always(GetUserResponse {
            user: Some(User {
                id: 7,
                created_at: Some(joined()),
                ..Default::default()
            }),
        }),
    };
    let stubs = Stubs::serve(Server::builder().add_service(UserServiceServer::new(users))).await;
    let edge = Edge::start(stubs, MembersComposer::new).await;
    let mut client = MembersClient::new(edge.channel());
    client
        .get_member(request(
            GetMemberRequest {
                user_id: 7,
                at: Some(at),
                trial,
            },
            CALLER,
        ))
        .await
        .unwrap()
        .into_inner()
}

fn after(seconds: i64, nanos: i32) -> prost_types::Timestamp {
    let joined = joined();
    let total = i128::from(joined.seconds) * 1_000_000_000
        + i128::from(joined.nanos)
        + i128::from(seconds) * 1_000_000_000
        + i128::from(nanos);
    prost_types::Timestamp {
        seconds: total.div_euclid(1_000_000_000) as i64,
        nanos: total.rem_euclid(1_000_000_000) as i32,
    }
}

#[tokio::test]
async fn a_member_ten_days_in() {
    // Ten days, one hour and 0.75 s after joining: the nanos carry over a second.
    let member = member(after(10 * 86_400 + 3_600, 750_000_000), None).await;
    assert!(member.early, "joined before 2025");
    assert!(member.in_trial, "the default trial is 30 days");
    assert_eq!(
        member.membership,
        Some(prost_types::Duration {
            seconds: 867_600,
            nanos: 750_000_000
        })
    );
    assert_eq!(member.membership_text, "867600.75s");
    assert_eq!(member.days, 10);
    assert_eq!(member.trial_ends, Some(after(30 * 86_400, 0)));
    assert_eq!(member.joined, "29 Feb 2024");
    assert_eq!(member.joined_at, "2024-02-29T13:45:30.5Z");
    assert_eq!((member.joined_year, member.joined_month), (2024, 2));
    assert_eq!(member.joined_unix, 1_709_214_330);
    assert!(!member.same_day);
}

#[tokio::test]
async fn the_trial_and_the_day_follow_the_request() {
    let hour = prost_types::Duration {
        seconds: 3_600,
        nanos: 0,
    };
    let member = member(after(3_601, 0), Some(hour)).await;
    assert!(
        !member.in_trial,
        "an hour and a second exceed an hour's trial"
    );
    assert!(
        member.same_day,
        "joined at 13:45, looked at at 14:45 the same day"
    );
    assert_eq!(member.days, 0);
    let member = member_at_the_trials_end().await;
    assert!(
        !member.in_trial,
        "the trial ends exactly at 30 days: `<` is strict"
    );
}

async fn member_at_the_trials_end() -> Member {
    member(after(30 * 86_400, 0), None).await
}
