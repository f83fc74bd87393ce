//! `enums.proto`: `Accounts/GetAccount` reads one `UserService/GetUser` call and maps the
//! user's `demo.users.v1.Tier` into the edge's `Plan` (by name, and by alias for the paid
//! tiers) and `Billing` (by name, with a default for every other value), and compares it with
//! enum values named in expressions.

use std::time::Duration;

use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserRequest, GetUserResponse, Tier, User};
use mosaic_generated_check::golden::enums::v1::accounts_client::AccountsClient;
use mosaic_generated_check::golden::enums::v1::{
    Account, AccountsComposer, Billing, GetAccountRequest, Plan,
};
use tonic::Code;
use tonic::transport::{Channel, Server};

use crate::support::{Answer, Edge, Method, Stubs, Users, request};

/// The caller's own timeout: far beyond anything these calls take, so a failure is the
/// gateway's answer.
const CALLER: Duration = Duration::from_secs(10);

/// A `tier` no version of `demo.users.v1.Tier` declares, which proto3 lets a downstream send.
const UNDECLARED: i32 = 42;

/// Answers user `id` with tier `id - 100`: the test picks the tier through the user id.
fn users() -> Users {
    Users {
        get_user: Method::new(|request: &GetUserRequest, _| {
            Answer::ok(GetUserResponse {
                user: Some(User {
                    id: request.id,
                    display_name: format!("user {}", request.id),
                    tier: (request.id - 100) as i32,
                    ..Default::default()
                }),
            })
        }),
    }
}

/// The user id whose tier is `tier`.
fn user_with(tier: i32) -> i64 {
    100 + i64::from(tier)
}

async fn start(users: &Users) -> (Edge, AccountsClient<Channel>) {
    let stubs =
        Stubs::serve(Server::builder().add_service(UserServiceServer::new(users.clone()))).await;
    let edge = Edge::start(stubs, AccountsComposer::new).await;
    let client = AccountsClient::new(edge.channel());
    (edge, client)
}

#[tokio::test]
async fn each_tier_maps_to_its_plan_billing_and_flags() {
    let users = users();
    let (_edge, mut client) = start(&users).await;

    // (tier, plan, billing, enterprise, paid, fallback)
    let cases = [
        (
            Tier::Unspecified,
            Plan::Unspecified,
            Billing::Unspecified,
            false,
            false,
            Plan::Free,
        ),
        (
            Tier::Free,
            Plan::Free,
            Billing::Free,
            false,
            false,
            Plan::Paid,
        ),
        (
            Tier::Pro,
            Plan::Paid,
            Billing::Other,
            false,
            true,
            Plan::Paid,
        ),
        (
            Tier::Enterprise,
            Plan::Paid,
            Billing::Other,
            true,
            true,
            Plan::Paid,
        ),
    ];
    for (tier, plan, billing, enterprise, paid, fallback) in cases {
        let user_id = user_with(tier as i32);
        let account = client
            .get_account(request(GetAccountRequest { user_id }, CALLER))
            .await
            .unwrap_or_else(|status| panic!("{tier:?}: {status:?}"))
            .into_inner();
        assert_eq!(
            account,
            Account {
                plan: plan as i32,
                billing: billing as i32,
                enterprise,
                paid,
                fallback: fallback as i32,
                // `[TIER_FREE, u.user.tier]`, each converted into a `Plan`.
                history: vec![Plan::Free as i32, plan as i32],
            },
            "{tier:?}"
        );
    }

    let asked: Vec<i64> = users.get_user.messages().iter().map(|r| r.id).collect();
    assert_eq!(asked, [100, 101, 102, 103], "one user call per account");
}

#[tokio::test]
async fn an_undeclared_tier_without_a_plan_fails_the_call_naming_both_enums() {
    let users = users();
    let (_edge, mut client) = start(&users).await;

    // `billing` would be `BILLING_OTHER` (its default value), but `plan` has no default: the
    // whole call fails, so no `Account` carries that `billing`.
    let status = client
        .get_account(request(
            GetAccountRequest {
                user_id: user_with(UNDECLARED),
            },
            CALLER,
        ))
        .await
        .expect_err("an undeclared tier has no plan");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    let message = status.message();
    for name in ["demo.users.v1.Tier", "golden.enums.v1.Plan"] {
        assert!(message.contains(name), "{name} in {message:?}");
    }
    assert!(
        message.contains(&UNDECLARED.to_string()),
        "the value in {message:?}"
    );
    assert_eq!(
        users.get_user.messages(),
        [GetUserRequest {
            id: user_with(UNDECLARED)
        }]
    );
}

#[tokio::test]
async fn a_missing_user_reads_as_the_unspecified_tier() {
    let users = Users {
        get_user: Method::always(GetUserResponse { user: None }),
    };
    let (_edge, mut client) = start(&users).await;

    let account = client
        .get_account(request(GetAccountRequest { user_id: 5 }, CALLER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        account,
        Account {
            plan: Plan::Unspecified as i32,
            billing: Billing::Unspecified as i32,
            enterprise: false,
            paid: false,
            fallback: Plan::Free as i32,
            history: vec![Plan::Free as i32, Plan::Unspecified as i32],
        }
    );
    assert_eq!(users.get_user.messages(), [GetUserRequest { id: 5 }]);
}
