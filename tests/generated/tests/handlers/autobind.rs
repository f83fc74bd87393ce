//! `autobind.proto`: `Products/GetProduct` copies the product's and the stock's fields into
//! same-named fields of the view, and binds `in_stock` explicitly.

use mosaic_generated_check::demo::catalog::v1::catalog_service_server::CatalogServiceServer;
use mosaic_generated_check::demo::catalog::v1::{
    Category, GetProductRequest as CatalogRequest, GetProductResponse, Money, Product,
};
use mosaic_generated_check::demo::inventory::v1::inventory_service_server::InventoryServiceServer;
use mosaic_generated_check::demo::inventory::v1::{GetStockRequest, Stock, WarehouseStock};
use mosaic_generated_check::golden::autobind::v1::products_client::ProductsClient;
use mosaic_generated_check::golden::autobind::v1::{
    GetProductRequest, ProductView, ProductsComposer,
};
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};

use crate::support::{Catalog, Edge, Inventory, Method, Stubs, assert_status};

async fn start(catalog: &Catalog, inventory: &Inventory) -> (Edge, ProductsClient<Channel>) {
    let router = Server::builder()
        .add_service(CatalogServiceServer::new(catalog.clone()))
        .add_service(InventoryServiceServer::new(inventory.clone()));
    let edge = Edge::start(Stubs::serve(router).await, ProductsComposer::new).await;
    let client = ProductsClient::new(edge.channel());
    (edge, client)
}

fn price() -> Money {
    Money {
        currency_code: "EUR".into(),
        units: 19,
        nanos: 990_000_000,
    }
}

/// The catalog's product: its `id` differs from the one asked for, so the view's `id` shows
/// where it was copied from.
fn lamp() -> Catalog {
    Catalog {
        get_product: Method::always(GetProductResponse {
            product: Some(Product {
                id: 4242,
                title: "Lamp".into(),
                description: "not in the view".into(),
                price: Some(price()),
                category: Category::Home.into(),
                tags: vec!["home".into(), "light".into()],
                seller_id: 5,
                ..Default::default()
            }),
        }),
    }
}

fn stock(available: i64) -> Inventory {
    Inventory {
        get_stock: Method::always(Stock {
            product_id: 42,
            available,
            reserved: 1,
            warehouses: vec![WarehouseStock {
                warehouse_id: "w1".into(),
                quantity: available,
            }],
            updated_at: None,
        }),
    }
}

#[tokio::test]
async fn get_product_copies_same_named_fields() {
    let (catalog, inventory) = (lamp(), stock(3));
    let (_edge, mut client) = start(&catalog, &inventory).await;

    let view = client
        .get_product(GetProductRequest { product_id: 42 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        view,
        ProductView {
            id: 4242,
            title: "Lamp".into(),
            price: Some(price()),
            tags: vec!["home".into(), "light".into()],
            available: 3,
            in_stock: true,
        }
    );
    assert_eq!(catalog.get_product.messages(), [CatalogRequest { id: 42 }]);
    assert_eq!(
        inventory.get_stock.messages(),
        [GetStockRequest { product_id: 42 }]
    );
}

#[tokio::test]
async fn nothing_available_is_not_in_stock() {
    let (catalog, inventory) = (lamp(), stock(0));
    let (_edge, mut client) = start(&catalog, &inventory).await;

    let view = client
        .get_product(GetProductRequest { product_id: 42 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((view.available, view.in_stock), (0, false), "{view:?}");
    assert_eq!(view.title, "Lamp");
}

#[tokio::test]
async fn an_unknown_product_fails_with_the_catalogs_code() {
    let catalog = Catalog {
        get_product: Method::failing(Status::not_found("product 404 not found")),
    };
    let inventory = stock(3);
    let (_edge, mut client) = start(&catalog, &inventory).await;

    assert_status(
        client
            .get_product(GetProductRequest { product_id: 404 })
            .await,
        Code::NotFound,
        "step `p` (demo.catalog.v1.CatalogService/GetProduct) failed: product 404 not found",
    );
    assert_eq!(catalog.get_product.messages(), [CatalogRequest { id: 404 }]);
}
