//! `errors.proto`: `Pages/GetPage` validates `product_id`, then calls `UserService/GetUser`
//! (`seller`: NOT_FOUND ignored), `CatalogService/GetProduct` (`p`: UNAVAILABLE falls back to
//! `backup`, product 1; NOT_FOUND answers its own status and details) and
//! `InventoryService/GetStock` (`stock`: PERMISSION_DENIED fails as is, anything else is
//! ignored). Ignored steps make the page partial: `partial()` and the response metadata
//! `mosaic-partial` say which.

use std::collections::HashMap;
use std::time::Duration;

use mosaic_generated_check::demo::catalog::v1::catalog_service_server::CatalogServiceServer;
use mosaic_generated_check::demo::catalog::v1::{GetProductRequest, GetProductResponse, Product};
use mosaic_generated_check::demo::inventory::v1::inventory_service_server::InventoryServiceServer;
use mosaic_generated_check::demo::inventory::v1::{GetStockRequest, Stock};
use mosaic_generated_check::demo::users::v1::user_service_server::UserServiceServer;
use mosaic_generated_check::demo::users::v1::{GetUserRequest, GetUserResponse, User};
use mosaic_generated_check::golden::errors::v1::pages_client::PagesClient;
use mosaic_generated_check::golden::errors::v1::{GetPageRequest, Page, PagesComposer};
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_types::{ErrorDetail, StatusExt};

use crate::support::{Answer, Catalog, Edge, Inventory, Method, Stubs, Users, request};

/// The caller's own timeout: far beyond anything these calls take, so a failure is the
/// gateway's answer, never tonic's client giving up.
const CALLER: Duration = Duration::from_secs(10);
/// The product a page is asked for.
const PRODUCT: i64 = 42;
/// Its seller.
const SELLER: i64 = 7;
/// The product `backup` fetches.
const BACKUP: i64 = 1;
/// How long a failing stub waits before answering, when the test needs the other steps'
/// requests to have arrived before the failure ends the edge call (which cancels them).
const LATE: Duration = Duration::from_millis(200);

const MOSAIC_PARTIAL: &str = "mosaic-partial";

/// How one stub answers: with its value, or with a status (possibly late).
#[derive(Clone)]
enum Reply {
    Value,
    Fail(Status),
    FailLate(Status),
}

impl Reply {
    fn answer<R>(&self, value: impl FnOnce() -> R) -> Answer<R> {
        match self {
            Reply::Value => Answer::ok(value()),
            Reply::Fail(status) => Answer::err(status.clone()),
            Reply::FailLate(status) => Answer::err(status.clone()).after(LATE),
        }
    }
}

/// What a failed call's details decode to, comparable as a whole (tonic-types' own structs
/// have no `PartialEq`).
#[derive(Debug, PartialEq)]
enum Detail {
    ResourceInfo {
        resource_type: String,
        resource_name: String,
        owner: String,
        description: String,
    },
    ErrorInfo {
        reason: String,
        domain: String,
        metadata: HashMap<String, String>,
    },
    /// `(field, description)` per violation.
    BadRequest(Vec<(String, String)>),
    /// Any other detail, as debug text.
    Other(String),
}

/// The `google.rpc` details `status` carries, in order, decoded with `StatusExt`.
fn details(status: &Status) -> Vec<Detail> {
    status
        .get_error_details_vec()
        .into_iter()
        .map(|detail| match detail {
            ErrorDetail::ResourceInfo(info) => Detail::ResourceInfo {
                resource_type: info.resource_type,
                resource_name: info.resource_name,
                owner: info.owner,
                description: info.description,
            },
            ErrorDetail::ErrorInfo(info) => Detail::ErrorInfo {
                reason: info.reason,
                domain: info.domain,
                metadata: info.metadata,
            },
            ErrorDetail::BadRequest(bad) => Detail::BadRequest(
                bad.field_violations
                    .into_iter()
                    .map(|v| (v.field, v.description))
                    .collect(),
            ),
            other => Detail::Other(format!("{other:?}")),
        })
        .collect()
}

/// Asserts that `result` failed with `code`, exactly `message` and exactly the `expected`
/// details, in any order (`tonic_types::ErrorDetails`, which the runtime builds statuses with,
/// keeps one detail per type and encodes them in its own order, not the proto's), and returns
/// the status.
#[track_caller]
fn assert_failure<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    message: &str,
    expected: &[Detail],
) -> Status {
    let status = result.expect_err("the call should fail");
    assert_eq!(
        (status.code(), status.message()),
        (code, message),
        "{status:?}"
    );
    let by_text = |details: &mut Vec<&Detail>| details.sort_by_key(|d| format!("{d:?}"));
    let decoded = details(&status);
    let mut actual: Vec<&Detail> = decoded.iter().collect();
    let mut expected: Vec<&Detail> = expected.iter().collect();
    by_text(&mut actual);
    by_text(&mut expected);
    assert_eq!(actual, expected, "{status:?}");
    status
}

struct Downstream {
    users: Users,
    catalog: Catalog,
    inventory: Inventory,
}

impl Downstream {
    /// Stubs answering as `user`, `product` (for every product but [`BACKUP`], which always
    /// answers) and `stock` say.
    fn new(user: Reply, product: Reply, stock: Reply) -> Self {
        Self {
            users: Users {
                get_user: Method::new(move |request: &GetUserRequest, _| {
                    user.answer(|| GetUserResponse {
                        user: Some(User {
                            id: request.id,
                            display_name: "Ada".into(),
                            ..Default::default()
                        }),
                    })
                }),
            },
            catalog: Catalog {
                get_product: Method::new(move |request: &GetProductRequest, _| {
                    let found = |title: &str| GetProductResponse {
                        product: Some(Product {
                            id: request.id,
                            title: title.into(),
                            ..Default::default()
                        }),
                    };
                    if request.id == BACKUP {
                        Answer::ok(found("Gift card"))
                    } else {
                        product.answer(|| found("Lamp"))
                    }
                }),
            },
            inventory: Inventory {
                get_stock: Method::new(move |request: &GetStockRequest, _| {
                    stock.answer(|| Stock {
                        product_id: request.product_id,
                        available: 5,
                        reserved: 1,
                        ..Default::default()
                    })
                }),
            },
        }
    }

    /// Every stub answers.
    fn answering() -> Self {
        Self::new(Reply::Value, Reply::Value, Reply::Value)
    }

    async fn start(&self) -> (Edge, PagesClient<Channel>) {
        let router = Server::builder()
            .add_service(UserServiceServer::new(self.users.clone()))
            .add_service(CatalogServiceServer::new(self.catalog.clone()))
            .add_service(InventoryServiceServer::new(self.inventory.clone()));
        let edge = Edge::start(Stubs::serve(router).await, PagesComposer::new).await;
        let client = PagesClient::new(edge.channel());
        (edge, client)
    }

    /// The products asked for, in arrival order.
    fn products_asked(&self) -> Vec<i64> {
        let asked = self.catalog.get_product.messages();
        asked.iter().map(|r| r.id).collect()
    }

    /// The sellers asked for, in arrival order.
    fn users_asked(&self) -> Vec<i64> {
        let asked = self.users.get_user.messages();
        asked.iter().map(|r| r.id).collect()
    }

    /// The products whose stock was asked for, in arrival order.
    fn stock_asked(&self) -> Vec<i64> {
        let asked = self.inventory.get_stock.messages();
        asked.iter().map(|r| r.product_id).collect()
    }
}

/// The page of [`PRODUCT`] by [`SELLER`].
fn page_request() -> tonic::Request<GetPageRequest> {
    request(
        GetPageRequest {
            product_id: PRODUCT,
            seller_id: SELLER,
        },
        CALLER,
    )
}

/// The steps `mosaic-partial` names, in its order; `None` without the key.
fn partial_steps<T>(response: &tonic::Response<T>) -> Option<Vec<String>> {
    response.metadata().get(MOSAIC_PARTIAL).map(|value| {
        let value = value.to_str().unwrap();
        value.split(',').map(str::to_owned).collect()
    })
}

#[tokio::test]
async fn a_page_of_answered_steps_is_whole() {
    let downstream = Downstream::answering();
    let (_edge, mut client) = downstream.start().await;

    let response = client.get_page(page_request()).await.unwrap();
    assert_eq!(partial_steps(&response), None, "{:?}", response.metadata());
    assert_eq!(
        response.into_inner(),
        Page {
            title: "Lamp".into(),
            seller: "Ada".into(),
            available: 5,
            partial: false,
        }
    );

    assert_eq!(downstream.users_asked(), [SELLER]);
    assert_eq!(
        downstream.products_asked(),
        [PRODUCT],
        "`backup`, read only by `p`'s fallback, is not fetched when `p` answers"
    );
    assert_eq!(downstream.stock_asked(), [PRODUCT]);
    let stock = downstream.inventory.get_stock.received();
    assert_eq!(stock[0].previous_attempts, None);
}

#[tokio::test]
async fn a_missing_seller_is_ignored_and_the_page_is_partial() {
    let downstream = Downstream::new(
        Reply::Fail(Status::not_found("no user 7")),
        Reply::Value,
        Reply::Value,
    );
    let (_edge, mut client) = downstream.start().await;

    let response = client.get_page(page_request()).await.unwrap();
    assert_eq!(partial_steps(&response), Some(vec!["seller".to_owned()]));
    assert_eq!(
        response.into_inner(),
        Page {
            title: "Lamp".into(),
            seller: String::new(),
            available: 5,
            partial: true,
        }
    );
    assert_eq!(
        downstream.users_asked(),
        [SELLER],
        "NOT_FOUND is not retried"
    );
    assert_eq!(downstream.stock_asked(), [PRODUCT]);
}

#[tokio::test]
async fn an_unavailable_stock_is_retried_then_ignored_by_the_catch_all() {
    let downstream = Downstream::new(
        Reply::Value,
        Reply::Value,
        Reply::Fail(Status::unavailable("inventory down")),
    );
    let (_edge, mut client) = downstream.start().await;

    let response = client.get_page(page_request()).await.unwrap();
    assert_eq!(partial_steps(&response), Some(vec!["stock".to_owned()]));
    assert_eq!(
        response.into_inner(),
        Page {
            title: "Lamp".into(),
            seller: "Ada".into(),
            available: 0,
            partial: true,
        }
    );
    // The handlers see the failure after the upstream's retries: UNAVAILABLE, three attempts.
    let stock = downstream.inventory.get_stock.received();
    let attempts: Vec<_> = stock.iter().map(|r| r.previous_attempts).collect();
    assert_eq!(attempts, [None, Some(1), Some(2)], "{stock:?}");
    assert_eq!(downstream.stock_asked(), [PRODUCT; 3]);
    assert_eq!(downstream.users_asked(), [SELLER]);
}

#[tokio::test]
async fn two_ignored_steps_are_both_named_in_the_order_they_failed() {
    // The seller fails 200 ms late, well after the stock's three attempts (25 ms and 50 ms of
    // backoff) are over: `stock` is ignored first.
    let downstream = Downstream::new(
        Reply::FailLate(Status::not_found("no user 7")),
        Reply::Value,
        Reply::Fail(Status::unavailable("inventory down")),
    );
    let (_edge, mut client) = downstream.start().await;

    let response = client.get_page(page_request()).await.unwrap();
    assert_eq!(
        partial_steps(&response),
        Some(vec!["stock".to_owned(), "seller".to_owned()]),
        "{:?}",
        response.metadata()
    );
    assert_eq!(
        response.into_inner(),
        Page {
            title: "Lamp".into(),
            seller: String::new(),
            available: 0,
            partial: true,
        }
    );
    assert_eq!(downstream.users_asked(), [SELLER]);
    assert_eq!(
        downstream.stock_asked(),
        [PRODUCT; 3],
        "UNAVAILABLE is retried"
    );
}

#[tokio::test]
async fn a_forbidden_stock_fails_the_page_as_is() {
    let downstream = Downstream::new(
        Reply::Value,
        Reply::Value,
        Reply::FailLate(Status::permission_denied("stock is private")),
    );
    let (_edge, mut client) = downstream.start().await;

    assert_failure(
        client.get_page(page_request()).await,
        Code::PermissionDenied,
        "step `stock` (demo.inventory.v1.InventoryService/GetStock) failed: stock is private",
        &[],
    );
    assert_eq!(downstream.stock_asked(), [PRODUCT], "not retried");
    assert_eq!(downstream.users_asked(), [SELLER]);
    assert_eq!(downstream.products_asked(), [PRODUCT]);
}

#[tokio::test]
async fn an_unavailable_product_falls_back_to_the_backup() {
    let downstream = Downstream::new(
        Reply::Value,
        Reply::Fail(Status::unavailable("catalog down")),
        Reply::Value,
    );
    let (_edge, mut client) = downstream.start().await;

    let response = client.get_page(page_request()).await.unwrap();
    assert_eq!(
        partial_steps(&response),
        None,
        "a fallback is not partial: {:?}",
        response.metadata()
    );
    assert_eq!(
        response.into_inner(),
        Page {
            title: "Gift card".into(),
            seller: "Ada".into(),
            available: 5,
            partial: false,
        }
    );
    let products = downstream.catalog.get_product.received();
    let asked: Vec<_> = products
        .iter()
        .filter(|r| r.message.id == PRODUCT)
        .map(|r| r.previous_attempts)
        .collect();
    assert_eq!(
        asked,
        [None, Some(1), Some(2)],
        "retried before the fallback applies: {products:?}"
    );
    assert_eq!(
        downstream.products_asked(),
        [PRODUCT, PRODUCT, PRODUCT, BACKUP],
        "the backup is fetched once `p` has failed, after its retries"
    );
    assert_eq!(downstream.users_asked(), [SELLER]);
    assert_eq!(downstream.stock_asked(), [PRODUCT]);
}

#[tokio::test]
async fn a_missing_product_answers_the_handlers_status_and_details() {
    let downstream = Downstream::new(
        Reply::Value,
        Reply::FailLate(Status::not_found("gone")),
        Reply::Value,
    );
    let (_edge, mut client) = downstream.start().await;

    assert_failure(
        client.get_page(page_request()).await,
        Code::NotFound,
        "no product 42",
        &[
            Detail::ResourceInfo {
                resource_type: "product".into(),
                resource_name: "42".into(),
                owner: String::new(),
                description: String::new(),
            },
            Detail::ErrorInfo {
                reason: "PRODUCT_MISSING".into(),
                domain: "catalog".into(),
                // `error.message` is the downstream's own message, not the step-naming one.
                metadata: HashMap::from([("upstream".to_owned(), "gone".to_owned())]),
            },
        ],
    );
    assert_eq!(
        downstream.products_asked(),
        [PRODUCT],
        "NOT_FOUND is not retried, and only the UNAVAILABLE handler fetches `backup`"
    );
    assert_eq!(downstream.users_asked(), [SELLER]);
    assert_eq!(downstream.stock_asked(), [PRODUCT]);
}

#[tokio::test]
async fn a_seller_failing_otherwise_than_not_found_fails_the_page() {
    let downstream = Downstream::new(
        Reply::FailLate(Status::internal("users db corrupt")),
        Reply::Value,
        Reply::Value,
    );
    let (_edge, mut client) = downstream.start().await;

    assert_failure(
        client.get_page(page_request()).await,
        Code::Internal,
        "step `seller` (demo.users.v1.UserService/GetUser) failed: users db corrupt",
        &[],
    );
    assert_eq!(
        downstream.users_asked(),
        [SELLER],
        "INTERNAL is not retried"
    );
    assert_eq!(downstream.stock_asked(), [PRODUCT]);
    assert_eq!(downstream.products_asked(), [PRODUCT]);
}

#[tokio::test]
async fn a_product_id_that_is_not_positive_is_rejected_before_any_call() {
    let downstream = Downstream::answering();
    let (_edge, mut client) = downstream.start().await;

    for product_id in [0, -3] {
        assert_failure(
            client
                .get_page(request(
                    GetPageRequest {
                        product_id,
                        seller_id: SELLER,
                    },
                    CALLER,
                ))
                .await,
            Code::InvalidArgument,
            &format!("product_id must be positive, got {product_id}"),
            &[Detail::BadRequest(vec![(
                "product_id".into(),
                "must be positive".into(),
            )])],
        );
    }
    assert!(downstream.users_asked().is_empty());
    assert!(downstream.products_asked().is_empty());
    assert!(downstream.stock_asked().is_empty());
}

#[tokio::test]
async fn a_failing_backup_does_not_fail_a_page_whose_product_answered() {
    // `backup` is only read by `p`'s UNAVAILABLE fallback: when `p` answers, the page does not
    // need it.
    let downstream = Downstream::answering();
    let downstream = Downstream {
        catalog: Catalog {
            get_product: Method::new(|request: &GetProductRequest, _| {
                if request.id == BACKUP {
                    Answer::err(Status::not_found("no gift cards"))
                } else {
                    Answer::ok(GetProductResponse {
                        product: Some(Product {
                            id: request.id,
                            title: "Lamp".into(),
                            ..Default::default()
                        }),
                    })
                }
            }),
        },
        ..downstream
    };
    let (_edge, mut client) = downstream.start().await;

    let response = client.get_page(page_request()).await;
    let response = response.unwrap();
    assert_eq!(partial_steps(&response), None);
    assert_eq!(
        response.into_inner(),
        Page {
            title: "Lamp".into(),
            seller: "Ada".into(),
            available: 5,
            partial: false,
        }
    );
    assert_eq!(downstream.products_asked(), [PRODUCT], "no backup needed");
}

#[tokio::test]
async fn a_failing_backup_does_not_hide_the_not_found_handlers_status() {
    // `p` fails with NOT_FOUND, whose handler answers its own status; the UNAVAILABLE
    // handler, the only one reading `backup`, does not apply, so `backup` failing must not
    // change the answer.
    let downstream = Downstream::answering();
    let downstream = Downstream {
        catalog: Catalog {
            get_product: Method::new(|request: &GetProductRequest, _| {
                if request.id == BACKUP {
                    Answer::err(Status::permission_denied("no gift cards"))
                } else {
                    Answer::err(Status::not_found("gone"))
                }
            }),
        },
        ..downstream
    };
    let (_edge, mut client) = downstream.start().await;

    assert_failure(
        client.get_page(page_request()).await,
        Code::NotFound,
        "no product 42",
        &[
            Detail::ResourceInfo {
                resource_type: "product".into(),
                resource_name: "42".into(),
                owner: String::new(),
                description: String::new(),
            },
            Detail::ErrorInfo {
                reason: "PRODUCT_MISSING".into(),
                domain: "catalog".into(),
                metadata: HashMap::from([("upstream".to_owned(), "gone".to_owned())]),
            },
        ],
    );
}
