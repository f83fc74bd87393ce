//! `custom.proto`: `Shop/GetOffer` calls `UserService/GetUser`, then asks the deployment's
//! `ShopResolvers` implementation for a step (`price`), a field (`headline`) and, per coupon
//! code, a whole message (`Coupon`), passing each the values the proto says it reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mosaic_gateway::compose;
use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserResponse, Tier, User};
use mosaic_generated_check::golden::custom::v1::shop_client::ShopClient;
use mosaic_generated_check::golden::custom::v1::{
    Coupon, CouponArgs, GetOfferRequest, Offer, ShopComposer, ShopResolvers,
};
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};

use crate::support::{Edge, Method, Stubs, Users, assert_status, request};

const CALLER: Duration = Duration::from_secs(10);

/// Pricing rules as a deployment would write them, recording what each method was given.
#[derive(Clone, Default)]
struct Pricing {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Pricing {
    fn seen(&self) -> Vec<String> {
        let mut seen = self.seen.lock().unwrap().clone();
        seen.sort();
        seen
    }
}

#[compose::async_trait]
impl ShopResolvers for Pricing {
    async fn coupon(&self, input: &CouponArgs) -> Result<Coupon, Status> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("coupon {} at {}", input.code, input.price));
        let discount_cents = match input.code.as_str() {
            "HALF" => input.price / 2,
            "TEN" => 10,
            other => return Err(Status::invalid_argument(format!("no coupon {other}"))),
        };
        Ok(Coupon {
            code: input.code.clone(),
            discount_cents,
        })
    }

    async fn offer_price(
        &self,
        input: &GetOfferRequest,
        u: &GetUserResponse,
    ) -> Result<i64, Status> {
        let user = u.user.clone().unwrap_or_default();
        self.seen
            .lock()
            .unwrap()
            .push(format!("price {} for {}", input.price_cents, user.id));
        // Pro users pay 80 %.
        Ok(if user.tier == Tier::Pro as i32 {
            input.price_cents * 8 / 10
        } else {
            input.price_cents
        })
    }

    async fn offer_headline(
        &self,
        input: &GetOfferRequest,
        u: &GetUserResponse,
    ) -> Result<String, Status> {
        let user = u.user.clone().unwrap_or_default();
        Ok(format!(
            "{}, {} codes for you",
            user.display_name,
            input.codes.len()
        ))
    }
}

fn users(tier: Tier) -> Users {
    Users {
        get_user: Method::always(GetUserResponse {
            user: Some(User {
                id: 5,
                display_name: "Kim".to_owned(),
                tier: tier as i32,
                ..Default::default()
            }),
        }),
    }
}

async fn offer(tier: Tier, codes: &[&str], pricing: &Pricing) -> Result<Offer, Status> {
    let users = users(tier);
    let stubs =
        Stubs::serve(Server::builder().add_service(UserServiceServer::new(users.clone()))).await;
    let pricing_for_edge = pricing.clone();
    let edge = Edge::start(stubs, move |downstreams| {
        ShopComposer::new(downstreams, pricing_for_edge.clone())
    })
    .await;
    let mut client: ShopClient<Channel> = ShopClient::new(edge.channel());
    let answer = client
        .get_offer(request(
            GetOfferRequest {
                user_id: 5,
                price_cents: 1000,
                codes: codes.iter().map(|c| (*c).to_owned()).collect(),
            },
            CALLER,
        ))
        .await
        .map(tonic::Response::into_inner);
    assert_eq!(
        users.get_user.messages().len(),
        1,
        "one user call per offer"
    );
    answer
}

#[tokio::test]
async fn the_implementation_computes_a_step_a_field_and_each_message() {
    let pricing = Pricing::default();
    let offer = offer(Tier::Pro, &["HALF", "TEN"], &pricing).await.unwrap();
    assert_eq!(
        offer.price_cents, 800,
        "the pro price, from the custom step"
    );
    assert_eq!(
        offer.coupons,
        vec![
            Coupon {
                code: "HALF".to_owned(),
                discount_cents: 400,
            },
            Coupon {
                code: "TEN".to_owned(),
                discount_cents: 10,
            },
        ],
        "one custom message per code, in order, each given the step's price"
    );
    assert_eq!(offer.headline, "Kim, 2 codes for you");
    assert_eq!(
        offer.best_discount_cents, 400,
        "an expression over custom values"
    );
    assert_eq!(
        pricing.seen(),
        vec![
            "coupon HALF at 800",
            "coupon TEN at 800",
            "price 1000 for 5"
        ],
        "each method ran once, with what the proto says it reads"
    );
}

#[tokio::test]
async fn a_plain_user_pays_the_full_price() {
    let pricing = Pricing::default();
    let offer = offer(Tier::Free, &[], &pricing).await.unwrap();
    assert_eq!(offer.price_cents, 1000);
    assert!(offer.coupons.is_empty());
    assert_eq!(offer.best_discount_cents, 0);
    assert_eq!(pricing.seen(), vec!["price 1000 for 5"]);
}

#[tokio::test]
async fn an_error_from_the_implementation_is_the_edge_answer() {
    let pricing = Pricing::default();
    assert_status(
        offer(Tier::Free, &["TEN", "NOPE"], &pricing).await,
        Code::InvalidArgument,
        "no coupon NOPE",
    );
}
