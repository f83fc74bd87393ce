//! `demo.catalog.v1.CatalogService`: product lookups and a paged, filterable listing.
//!
//! Paging is keyset-based (the token remembers the last id served, not an offset), the way
//! real catalog backends page, so a gateway that walks pages sees stable results. Tokens are
//! opaque to clients (hex-encoded) and bound to the category filter they were issued for; a
//! token that does not decode, or that comes back with a different filter, is rejected rather
//! than silently restarting the listing.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::data::Dataset;
use crate::pb::catalog::v1::catalog_service_server::CatalogService;
use crate::pb::catalog::v1::{
    BatchGetProductsRequest, BatchGetProductsResponse, Category, GetProductRequest,
    GetProductResponse, ListProductsRequest, ListProductsResponse, Product,
};
use crate::request::{batch_ids, limit, not_found, positive_id};

/// Page size when the request leaves it 0.
const DEFAULT_PAGE_SIZE: usize = 20;
/// Largest page served; larger requests are capped.
const MAX_PAGE_SIZE: usize = 100;

/// Serves products from the shared [`Dataset`].
#[derive(Clone, Debug)]
pub(crate) struct ProductCatalog {
    data: Arc<Dataset>,
}

impl ProductCatalog {
    pub(crate) fn new(data: Arc<Dataset>) -> Self {
        Self { data }
    }

    fn lookup(&self, id: i64) -> Result<&Product, Status> {
        self.data
            .product(id)
            .ok_or_else(|| not_found("product", id))
    }
}

#[tonic::async_trait]
impl CatalogService for ProductCatalog {
    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<GetProductResponse>, Status> {
        let id = positive_id("id", request.get_ref().id)?;
        let product = self.lookup(id)?.clone();
        Ok(Response::new(GetProductResponse {
            product: Some(product),
        }))
    }

    async fn batch_get_products(
        &self,
        request: Request<BatchGetProductsRequest>,
    ) -> Result<Response<BatchGetProductsResponse>, Status> {
        let ids = &request.get_ref().ids;
        batch_ids(ids)?;
        let products = ids
            .iter()
            .map(|&id| self.lookup(id).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(BatchGetProductsResponse { products }))
    }

    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        let request = request.get_ref();
        let page_size = limit(
            "page_size",
            request.page_size,
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        )?;
        let category = Category::try_from(request.category).map_err(|_| {
            Status::invalid_argument(format!(
                "category {} is not a known Category",
                request.category
            ))
        })?;
        let after_id = if request.page_token.is_empty() {
            0
        } else {
            let token = PageToken::decode(&request.page_token)?;
            if token.category != category {
                return Err(Status::invalid_argument(
                    "page_token was issued for a different category filter",
                ));
            }
            token.after_id
        };

        let ids = self.data.product_ids_in(category);
        let start = ids.partition_point(|&id| id <= after_id);
        let page = ids.get(start..).unwrap_or_default();
        let page = page.get(..page_size).unwrap_or(page);
        let products: Vec<Product> = page
            .iter()
            .filter_map(|&id| self.data.product(id).cloned())
            .collect();
        let next_page_token = match page.last() {
            Some(&last) if start + page.len() < ids.len() => PageToken {
                category,
                after_id: last,
            }
            .encode(),
            _ => String::new(),
        };
        Ok(Response::new(ListProductsResponse {
            products,
            next_page_token,
            total_size: i64::try_from(ids.len()).unwrap_or(i64::MAX),
        }))
    }
}

/// Where the next page starts: after `after_id`, within `category`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageToken {
    category: Category,
    after_id: i64,
}

impl PageToken {
    /// Version tag inside the token, so the format can change without misreading old tokens.
    const VERSION: &'static str = "v1";

    fn encode(self) -> String {
        let plain = format!(
            "{}:{}:{}",
            Self::VERSION,
            i32::from(self.category),
            self.after_id
        );
        plain.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(token: &str) -> Result<PageToken, Status> {
        Self::try_decode(token).ok_or_else(|| Status::invalid_argument("page_token is malformed"))
    }

    fn try_decode(token: &str) -> Option<PageToken> {
        if !token.len().is_multiple_of(2) || !token.is_ascii() {
            return None;
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let plain = String::from_utf8(bytes).ok()?;
        let mut parts = plain.split(':');
        let (version, category, after_id) = (parts.next()?, parts.next()?, parts.next()?);
        if version != Self::VERSION || parts.next().is_some() {
            return None;
        }
        let category = Category::try_from(category.parse::<i32>().ok()?).ok()?;
        let after_id = after_id.parse::<i64>().ok().filter(|&id| id > 0)?;
        Some(PageToken { category, after_id })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tonic::Code;

    use super::*;

    fn catalog() -> ProductCatalog {
        ProductCatalog::new(Dataset::shared())
    }

    async fn list(request: ListProductsRequest) -> Result<ListProductsResponse, Status> {
        catalog()
            .list_products(Request::new(request))
            .await
            .map(Response::into_inner)
    }

    #[tokio::test]
    async fn get_and_batch_get() {
        let product = catalog()
            .get_product(Request::new(GetProductRequest { id: 500 }))
            .await
            .expect("product 500")
            .into_inner()
            .product
            .expect("set");
        assert_eq!(product.id, 500);
        assert!(product.price.is_some());

        let missing = catalog()
            .get_product(Request::new(GetProductRequest { id: 501 }))
            .await
            .expect_err("unknown");
        assert_eq!(missing.code(), Code::NotFound);
        assert_eq!(missing.message(), "product 501 not found");

        let batch = catalog()
            .batch_get_products(Request::new(BatchGetProductsRequest { ids: vec![5, 1, 3] }))
            .await
            .expect("batch")
            .into_inner();
        let ids: Vec<i64> = batch.products.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![5, 1, 3]);
    }

    #[tokio::test]
    async fn walking_all_pages_yields_every_product_once() {
        let mut seen = HashSet::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = list(ListProductsRequest {
                page_size: 0,
                page_token: token,
                category: 0,
            })
            .await
            .expect("page");
            pages += 1;
            assert_eq!(page.total_size, 500);
            assert!(page.products.len() <= DEFAULT_PAGE_SIZE);
            for product in page.products {
                assert!(seen.insert(product.id), "duplicate {}", product.id);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen.len(), 500);
        assert_eq!(pages, 25);
    }

    #[tokio::test]
    async fn category_filter_pages_within_the_category() {
        let category = Category::Books as i32;
        let mut token = String::new();
        let mut total = 0;
        loop {
            let page = list(ListProductsRequest {
                page_size: 7,
                page_token: token,
                category,
            })
            .await
            .expect("page");
            assert!(page.products.iter().all(|p| p.category == category));
            total += page.products.len();
            if page.next_page_token.is_empty() {
                assert_eq!(i64::try_from(total).ok(), Some(page.total_size));
                break;
            }
            token = page.next_page_token;
        }
        assert!(total > 0);
    }

    #[tokio::test]
    async fn page_size_is_capped() {
        let page = list(ListProductsRequest {
            page_size: 1_000,
            ..Default::default()
        })
        .await
        .expect("page");
        assert_eq!(page.products.len(), MAX_PAGE_SIZE);
    }

    #[tokio::test]
    async fn bad_requests_are_invalid_argument() {
        for (request, message) in [
            (
                ListProductsRequest {
                    page_size: -1,
                    ..Default::default()
                },
                "page_size must not be negative, got -1",
            ),
            (
                ListProductsRequest {
                    page_token: "not-a-token".to_owned(),
                    ..Default::default()
                },
                "page_token is malformed",
            ),
            (
                ListProductsRequest {
                    page_token: "7631".to_owned(),
                    ..Default::default()
                },
                "page_token is malformed",
            ),
            (
                ListProductsRequest {
                    category: 99,
                    ..Default::default()
                },
                "category 99 is not a known Category",
            ),
            (
                ListProductsRequest {
                    page_token: PageToken {
                        category: Category::Toys,
                        after_id: 20,
                    }
                    .encode(),
                    category: Category::Books as i32,
                    ..Default::default()
                },
                "page_token was issued for a different category filter",
            ),
        ] {
            let status = list(request).await.expect_err(message);
            assert_eq!(status.code(), Code::InvalidArgument);
            assert_eq!(status.message(), message);
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = PageToken {
            category: Category::Home,
            after_id: 123,
        };
        assert_eq!(PageToken::try_decode(&token.encode()), Some(token));
        for garbage in ["", "0", "zz", "é1", "76313a303a30", "76323a303a31"] {
            assert_eq!(PageToken::try_decode(garbage), None, "{garbage:?}");
        }
    }
}
