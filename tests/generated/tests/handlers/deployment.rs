//! `deployment.proto`: `Shop/GetShelf` reads deployment values (`$env`) loaded once when its
//! composer is built, from the environment, `[env]` and defaults, with a value computed from
//! them; a missing or malformed variable, or a failed validation, stops the composer from
//! being built, and a key of `[env]` that no service reads stops the gateway from binding.

use std::collections::BTreeMap;
use std::time::Duration;

use mosaic_gateway::GatewayError;
use mosaic_gateway::compose::Deployment;
use mosaic_generated_check::demo::catalog::v1::catalog_service_server::CatalogServiceServer;
use mosaic_generated_check::demo::catalog::v1::{GetProductResponse, Product};
use mosaic_generated_check::golden::deployment::v1::shop_client::ShopClient;
use mosaic_generated_check::golden::deployment::v1::{GetShelfRequest, ShopComposer, ShopEnv};
use tonic::Code;
use tonic::transport::Server;

use crate::support::{Catalog, Edge, Method, Stubs, assert_status, request};

const CALLER: Duration = Duration::from_secs(10);

fn catalog() -> Catalog {
    Catalog {
        get_product: Method::always(GetProductResponse {
            product: Some(Product {
                id: 501,
                title: "Lamp".to_owned(),
                ..Default::default()
            }),
        }),
    }
}

async fn stubs(catalog: &Catalog) -> Stubs {
    Stubs::serve(Server::builder().add_service(CatalogServiceServer::new(catalog.clone()))).await
}

fn environment(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn table(text: &str) -> BTreeMap<String, toml::Value> {
    toml::from_str(text).unwrap()
}

#[tokio::test]
async fn compositions_read_the_values_loaded_at_start() {
    let catalog = catalog();
    let edge = Edge::configured(
        stubs(&catalog).await,
        "[env]\nmax_items = 3\nfeatured = [501, 502]\nbrand = \"from the file\"\n",
        |downstreams, config| {
            // The environment wins over `[env]`, which wins over the defaults.
            let deployment = Deployment::with_environment(
                config.env.clone(),
                environment(&[("BRAND", "Acme"), ("DISCOUNT", "0.25")]),
            );
            ShopComposer::new(downstreams, &deployment).unwrap()
        },
    )
    .await
    .unwrap();
    let mut client = ShopClient::new(edge.channel());
    let shelf = client
        .get_shelf(request(
            GetShelfRequest {
                product_id: 501,
                count: 3,
            },
            CALLER,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shelf.title, "Acme: Lamp", "computed once from `brand`");
    assert!(shelf.featured);
    assert_eq!(
        shelf.badge.unwrap().text,
        "Acme #501",
        "read by a built message"
    );
    assert_eq!(shelf.discount, 0.25);

    // The per-call validation reads the limit too, and rejects before calling anything.
    let rejected = client
        .get_shelf(request(
            GetShelfRequest {
                product_id: 502,
                count: 4,
            },
            CALLER,
        ))
        .await;
    assert_status(rejected, Code::InvalidArgument, "at most 3 items");
    assert_eq!(catalog.get_product.received().len(), 1);
}

#[test]
fn defaults_apply_and_every_problem_is_named() {
    let values = ShopEnv::load(&Deployment::with_environment(
        table("max_items = 10"),
        BTreeMap::new(),
    ))
    .unwrap();
    assert_eq!(
        (
            values.brand.as_str(),
            values.max_items,
            values.featured.len(),
            values.title_prefix.as_str()
        ),
        ("Mosaic", 10, 0, "Mosaic: ")
    );

    let error = ShopEnv::load(&Deployment::with_environment(
        table("featured = \"501\""),
        environment(&[("DISCOUNT", "a lot")]),
    ))
    .unwrap_err();
    assert_eq!(error.service(), "golden.deployment.v1.Shop");
    assert_eq!(
        error.problems(),
        [
            "`max_items` (int64) is required: set the environment variable `SHOP_MAX_ITEMS`, or `max_items` in gateway.toml's `[env]`",
            "`[env].featured`: is a string, not an array",
            "environment variable `DISCOUNT` (for `discount`): `a lot` is not a double",
        ]
    );
    // `from` names the environment variable.
    let values = ShopEnv::load(&Deployment::with_environment(
        BTreeMap::new(),
        environment(&[("SHOP_MAX_ITEMS", "4"), ("FEATURED", "1, 2")]),
    ))
    .unwrap();
    assert_eq!((values.max_items, values.featured), (4, vec![1, 2]));
}

#[test]
fn a_failed_validation_stops_the_start() {
    let error = ShopEnv::load(&Deployment::with_environment(
        table("max_items = 0"),
        BTreeMap::new(),
    ))
    .unwrap_err();
    assert_eq!(error.problems(), ["max_items must be positive, not 0"]);
    assert!(
        error
            .to_string()
            .starts_with("the deployment values of `golden.deployment.v1.Shop` are wrong"),
        "{error}"
    );
}

#[tokio::test]
async fn an_env_key_no_service_reads_stops_the_gateway() {
    let catalog = catalog();
    let error = Edge::configured(
        stubs(&catalog).await,
        "[env]\nmax_items = 3\nmax_itmes = 4\n",
        |downstreams, config| {
            let deployment = Deployment::with_environment(config.env.clone(), BTreeMap::new());
            ShopComposer::new(downstreams, &deployment).unwrap()
        },
    )
    .await
    .err()
    .expect("the gateway does not bind");
    assert!(
        matches!(&error, GatewayError::UnreadDeploymentValues { names, .. } if names == &["max_itmes"]),
        "{error:?}"
    );
    let shown = error.to_string();
    assert!(
        shown.contains("`max_itmes`") && shown.contains("`max_items`"),
        "{shown}"
    );
}
