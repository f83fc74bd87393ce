//! `fanout.proto`: `Reviews/GetReviewPage` validates `limit`, lists reviews, builds a card per
//! review (each with its own `UserService/GetUser` call), maps the titles, and fetches the
//! product only when asked.

use std::time::Duration;

use mosaic_generated_check::demo::catalog::v1::catalog_service_server::CatalogServiceServer;
use mosaic_generated_check::demo::catalog::v1::{GetProductRequest, GetProductResponse, Product};
use mosaic_generated_check::demo::reviews::v1::review_service_server::ReviewServiceServer;
use mosaic_generated_check::demo::reviews::v1::{ListReviewsRequest, ListReviewsResponse, Review};
use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserRequest, GetUserResponse, User};
use mosaic_generated_check::golden::fanout::v1::reviews_client::ReviewsClient;
use mosaic_generated_check::golden::fanout::v1::{
    GetReviewPageRequest, ReviewCard, ReviewPage, ReviewsComposer,
};
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};

use crate::support::{Answer, Catalog, Edge, Method, Reviews, Stubs, Users, assert_status};

struct Downstream {
    users: Users,
    catalog: Catalog,
    reviews: Reviews,
}

impl Downstream {
    /// Two reviews of product 42 by users 10 and 11; the lamp; and the two authors, the first
    /// answering last, so that the cards' order cannot come from the answers' order.
    fn new() -> Self {
        Self {
            reviews: Reviews {
                list_reviews: Method::always(ListReviewsResponse {
                    reviews: vec![
                        review(1, 10, 5, "Great", "Loved it"),
                        review(2, 11, 2, "Meh", "Broke"),
                    ],
                    average_rating: 3.5,
                    total_count: 2,
                }),
            },
            users: Users {
                get_user: Method::new(|request: &GetUserRequest, _| {
                    let (name, delay) = match request.id {
                        10 => ("Ann", Duration::from_millis(150)),
                        11 => ("Bob", Duration::ZERO),
                        _ => return Answer::err(Status::not_found("no such user")),
                    };
                    Answer::ok(GetUserResponse {
                        user: Some(User {
                            id: request.id,
                            display_name: name.into(),
                            ..Default::default()
                        }),
                    })
                    .after(delay)
                }),
            },
            catalog: Catalog {
                get_product: Method::always(GetProductResponse {
                    product: Some(Product {
                        id: 42,
                        title: "Lamp".into(),
                        ..Default::default()
                    }),
                }),
            },
        }
    }

    async fn start(&self) -> (Edge, ReviewsClient<Channel>) {
        self.start_with("").await
    }

    /// Like `start`, with `extra` appended to the gateway's configuration.
    async fn start_with(&self, extra: &str) -> (Edge, ReviewsClient<Channel>) {
        let router = Server::builder()
            .add_service(UserServiceServer::new(self.users.clone()))
            .add_service(CatalogServiceServer::new(self.catalog.clone()))
            .add_service(ReviewServiceServer::new(self.reviews.clone()));
        let edge = Edge::configured(Stubs::serve(router).await, extra, |downstreams, _| {
            ReviewsComposer::new(downstreams)
        })
        .await
        .unwrap();
        let client = ReviewsClient::new(edge.channel());
        (edge, client)
    }

    /// Five reviews by users 10 and 11, three of them by 10.
    fn shared_authors() -> Self {
        Self {
            reviews: Reviews {
                list_reviews: Method::always(ListReviewsResponse {
                    reviews: vec![
                        review(1, 10, 5, "Great", "Loved it"),
                        review(2, 11, 2, "Meh", "Broke"),
                        review(3, 10, 4, "Good", "Again"),
                        review(4, 10, 3, "Fine", "Third"),
                        review(5, 11, 1, "Bad", "Twice"),
                    ],
                    average_rating: 3.0,
                    total_count: 5,
                }),
            },
            ..Self::new()
        }
    }

    /// The ids of the users asked for, sorted (the cards' calls run concurrently).
    fn users_asked(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .users
            .get_user
            .messages()
            .iter()
            .map(|r| r.id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

fn review(id: i64, author_id: i64, rating: i32, title: &str, body: &str) -> Review {
    Review {
        id,
        product_id: 42,
        author_id,
        rating,
        title: title.into(),
        body: body.into(),
        ..Default::default()
    }
}

fn cards() -> Vec<ReviewCard> {
    vec![
        ReviewCard {
            author_name: "Ann".into(),
            rating: 5,
            text: "Great: Loved it".into(),
        },
        ReviewCard {
            author_name: "Bob".into(),
            rating: 2,
            text: "Meh: Broke".into(),
        },
    ]
}

#[tokio::test]
async fn get_review_page_with_the_product() {
    let downstream = Downstream::new();
    let (_edge, mut client) = downstream.start().await;

    let page = client
        .get_review_page(GetReviewPageRequest {
            product_id: 42,
            limit: 10,
            with_product: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page,
        ReviewPage {
            // In the reviews' order, though Ann's user answered last.
            reviews: cards(),
            product_title: "Lamp".into(),
            titles: vec!["Great".into(), "Meh".into()],
            average_rating: 3.5,
        }
    );

    assert_eq!(
        downstream.reviews.list_reviews.messages(),
        [ListReviewsRequest {
            product_id: 42,
            limit: 10,
        }],
        "one listing, with the request's product and limit"
    );
    assert_eq!(downstream.users_asked(), [10, 11], "one user call per card");
    assert_eq!(
        downstream.catalog.get_product.messages(),
        [GetProductRequest { id: 42 }]
    );
}

#[tokio::test]
async fn cards_by_the_same_author_share_one_user_call() {
    let downstream = Downstream::shared_authors();
    let (_edge, mut client) = downstream.start().await;
    let page = client
        .get_review_page(GetReviewPageRequest {
            product_id: 42,
            limit: 10,
            with_product: false,
        })
        .await
        .unwrap()
        .into_inner();
    let authors: Vec<&str> = page
        .reviews
        .iter()
        .map(|c| c.author_name.as_str())
        .collect();
    assert_eq!(
        authors,
        ["Ann", "Bob", "Ann", "Ann", "Bob"],
        "each card its author"
    );
    assert_eq!(
        downstream.users_asked(),
        [10, 11],
        "GetUser is NO_SIDE_EFFECTS: one call per distinct author"
    );
}

#[tokio::test]
async fn a_method_gateway_toml_calls_not_idempotent_is_never_shared() {
    let downstream = Downstream::shared_authors();
    let (_edge, mut client) = downstream
        .start_with(
            "[upstreams.stubs.methods.\"demo.users.v1.UserService/GetUser\"]\nidempotent = false\n",
        )
        .await;
    client
        .get_review_page(GetReviewPageRequest {
            product_id: 42,
            limit: 10,
            with_product: false,
        })
        .await
        .unwrap();
    assert_eq!(
        downstream.users_asked(),
        [10, 10, 10, 11, 11],
        "one call per card"
    );
}

#[tokio::test]
async fn get_review_page_without_the_product_skips_the_guarded_call() {
    let downstream = Downstream::new();
    let (_edge, mut client) = downstream.start().await;

    let page = client
        .get_review_page(GetReviewPageRequest {
            product_id: 42,
            // The largest limit the validation lets through.
            limit: 50,
            with_product: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page,
        ReviewPage {
            reviews: cards(),
            // The guarded step did not run: its fields read as defaults.
            product_title: String::new(),
            titles: vec!["Great".into(), "Meh".into()],
            average_rating: 3.5,
        }
    );
    assert_eq!(
        downstream.reviews.list_reviews.messages(),
        [ListReviewsRequest {
            product_id: 42,
            limit: 50,
        }]
    );
    assert!(downstream.catalog.get_product.messages().is_empty());
}

#[tokio::test]
async fn no_reviews_make_an_empty_page_without_user_calls() {
    let downstream = Downstream {
        reviews: Reviews {
            list_reviews: Method::always(ListReviewsResponse::default()),
        },
        ..Downstream::new()
    };
    let (_edge, mut client) = downstream.start().await;

    let page = client
        .get_review_page(GetReviewPageRequest {
            product_id: 43,
            limit: 0,
            with_product: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page, ReviewPage::default());
    assert_eq!(
        downstream.reviews.list_reviews.messages(),
        [ListReviewsRequest {
            product_id: 43,
            limit: 0,
        }]
    );
    assert!(downstream.users_asked().is_empty());
}

#[tokio::test]
async fn a_limit_out_of_range_is_rejected_before_any_call() {
    let downstream = Downstream::new();
    let (_edge, mut client) = downstream.start().await;

    for (limit, message) in [
        (51, "limit must be between 0 and 50, got 51"),
        (-1, "limit must be between 0 and 50, got -1"),
    ] {
        assert_status(
            client
                .get_review_page(GetReviewPageRequest {
                    product_id: 42,
                    limit,
                    with_product: true,
                })
                .await,
            Code::OutOfRange,
            message,
        );
    }
    assert!(downstream.reviews.list_reviews.messages().is_empty());
    assert!(downstream.catalog.get_product.messages().is_empty());
    assert!(downstream.users_asked().is_empty());
}

#[tokio::test]
async fn a_failing_card_fails_the_page_with_its_code() {
    let downstream = Downstream {
        reviews: Reviews {
            list_reviews: Method::always(ListReviewsResponse {
                reviews: vec![
                    review(1, 10, 5, "Great", "Loved it"),
                    review(3, 99, 1, "?", "?"),
                ],
                average_rating: 3.0,
                total_count: 2,
            }),
        },
        ..Downstream::new()
    };
    let (_edge, mut client) = downstream.start().await;

    assert_status(
        client
            .get_review_page(GetReviewPageRequest {
                product_id: 42,
                limit: 10,
                with_product: false,
            })
            .await,
        Code::NotFound,
        "step `author` (demo.users.v1.UserService/GetUser) failed: no such user",
    );
    assert!(
        downstream.users_asked().contains(&99),
        "{:?}",
        downstream.users_asked()
    );
}

#[tokio::test]
async fn a_failing_listing_fails_the_page_with_its_code() {
    let downstream = Downstream {
        reviews: Reviews {
            list_reviews: Method::failing(Status::permission_denied("reviews are private")),
        },
        ..Downstream::new()
    };
    let (_edge, mut client) = downstream.start().await;

    assert_status(
        client
            .get_review_page(GetReviewPageRequest {
                product_id: 42,
                limit: 10,
                with_product: false,
            })
            .await,
        Code::PermissionDenied,
        "step `rs` (demo.reviews.v1.ReviewService/ListReviews) failed: reviews are private",
    );
    assert!(downstream.users_asked().is_empty());
}
