//! `demo.reviews.v1.ReviewService`: reviews by product and by author, plus a server stream.
//!
//! `ListReviews` answers with aggregates over *all* of a product's reviews next to a limited
//! page, the usual shape that tempts a gateway to recompute aggregates from the page; tests can
//! catch that. `StreamReviews` exists so that the gateway's server-streaming pass-through has a
//! real, multi-message stream to carry (the busiest products have hundreds of reviews).

use std::sync::Arc;

use futures_util::stream;
use tonic::{Request, Response, Status};

use crate::data::Dataset;
use crate::pb::reviews::v1::review_service_server::ReviewService;
use crate::pb::reviews::v1::{
    ListReviewsByAuthorRequest, ListReviewsByAuthorResponse, ListReviewsRequest,
    ListReviewsResponse, Review, StreamReviewsRequest,
};
use crate::request::{limit, not_found, positive_id};

/// Reviews returned when the request's limit is 0.
const DEFAULT_LIMIT: usize = 10;
/// Most reviews returned by one list call; larger limits are capped.
const MAX_LIMIT: usize = 100;

/// Serves reviews from the shared [`Dataset`].
#[derive(Clone, Debug)]
pub(crate) struct ReviewArchive {
    data: Arc<Dataset>,
}

impl ReviewArchive {
    pub(crate) fn new(data: Arc<Dataset>) -> Self {
        Self { data }
    }

    fn of_product(&self, product_id: i64) -> Result<Vec<&Review>, Status> {
        let product_id = positive_id("product_id", product_id)?;
        self.data
            .reviews_of_product(product_id)
            .ok_or_else(|| not_found("product", product_id))
    }
}

/// Every review of a product, in order, as a finished stream.
type ReviewStream = stream::Iter<std::vec::IntoIter<Result<Review, Status>>>;

#[tonic::async_trait]
impl ReviewService for ReviewArchive {
    async fn list_reviews(
        &self,
        request: Request<ListReviewsRequest>,
    ) -> Result<Response<ListReviewsResponse>, Status> {
        let request = request.get_ref();
        let limit = limit("limit", request.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        let all = self.of_product(request.product_id)?;
        let average_rating = if all.is_empty() {
            0.0
        } else {
            let sum: i64 = all.iter().map(|r| i64::from(r.rating)).sum();
            sum as f64 / all.len() as f64
        };
        Ok(Response::new(ListReviewsResponse {
            reviews: all.iter().take(limit).map(|&r| r.clone()).collect(),
            average_rating,
            total_count: count(all.len()),
        }))
    }

    async fn list_reviews_by_author(
        &self,
        request: Request<ListReviewsByAuthorRequest>,
    ) -> Result<Response<ListReviewsByAuthorResponse>, Status> {
        let request = request.get_ref();
        let limit = limit("limit", request.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        let author_id = positive_id("author_id", request.author_id)?;
        let all = self
            .data
            .reviews_by_author(author_id)
            .ok_or_else(|| not_found("user", author_id))?;
        Ok(Response::new(ListReviewsByAuthorResponse {
            reviews: all.iter().take(limit).map(|&r| r.clone()).collect(),
            total_count: count(all.len()),
        }))
    }

    type StreamReviewsStream = ReviewStream;

    async fn stream_reviews(
        &self,
        request: Request<StreamReviewsRequest>,
    ) -> Result<Response<Self::StreamReviewsStream>, Status> {
        let all = self.of_product(request.get_ref().product_id)?;
        let items: Vec<Result<Review, Status>> = all.into_iter().map(|r| Ok(r.clone())).collect();
        Ok(Response::new(stream::iter(items)))
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;
    use tonic::Code;

    use super::*;

    fn archive() -> ReviewArchive {
        ReviewArchive::new(Dataset::shared())
    }

    /// A product with more reviews than the default limit.
    fn busy_product() -> i64 {
        let data = Dataset::shared();
        data.products()
            .iter()
            .map(|p| p.id)
            .find(|&id| data.reviews_of_product(id).is_some_and(|r| r.len() > 20))
            .expect("a busy product")
    }

    #[tokio::test]
    async fn list_reviews_pages_newest_first_with_full_aggregates() {
        let product_id = busy_product();
        let data = Dataset::shared();
        let all = data.reviews_of_product(product_id).expect("known");
        let response = archive()
            .list_reviews(Request::new(ListReviewsRequest {
                product_id,
                limit: 0,
            }))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(response.reviews.len(), DEFAULT_LIMIT);
        assert_eq!(response.total_count, all.len() as i64);
        let expected_avg = all.iter().map(|r| f64::from(r.rating)).sum::<f64>() / all.len() as f64;
        assert!((response.average_rating - expected_avg).abs() < 1e-9);
        let newest = all.first().map(|r| r.id);
        assert_eq!(response.reviews.first().map(|r| r.id), newest);
        assert!(response.reviews.iter().all(|r| r.product_id == product_id));
    }

    #[tokio::test]
    async fn product_without_reviews_has_zero_average() {
        let response = archive()
            .list_reviews(Request::new(ListReviewsRequest {
                product_id: 50,
                limit: 5,
            }))
            .await
            .expect("list")
            .into_inner();
        assert!(response.reviews.is_empty());
        assert_eq!(response.total_count, 0);
        assert_eq!(response.average_rating, 0.0);
    }

    #[tokio::test]
    async fn errors_name_the_problem() {
        let unknown = archive()
            .list_reviews(Request::new(ListReviewsRequest {
                product_id: 777,
                limit: 0,
            }))
            .await
            .expect_err("unknown product");
        assert_eq!(unknown.code(), Code::NotFound);
        assert_eq!(unknown.message(), "product 777 not found");

        let negative = archive()
            .list_reviews(Request::new(ListReviewsRequest {
                product_id: 1,
                limit: -5,
            }))
            .await
            .expect_err("negative limit");
        assert_eq!(negative.code(), Code::InvalidArgument);
        assert_eq!(negative.message(), "limit must not be negative, got -5");

        let author = archive()
            .list_reviews_by_author(Request::new(ListReviewsByAuthorRequest {
                author_id: 5_000,
                limit: 0,
            }))
            .await
            .expect_err("unknown author");
        assert_eq!(author.code(), Code::NotFound);
        assert_eq!(author.message(), "user 5000 not found");

        let bad_id = archive()
            .list_reviews_by_author(Request::new(ListReviewsByAuthorRequest {
                author_id: 0,
                limit: 0,
            }))
            .await
            .expect_err("zero author");
        assert_eq!(bad_id.message(), "author_id must be positive, got 0");
    }

    #[tokio::test]
    async fn by_author_counts_everything() {
        let data = Dataset::shared();
        let author_id = data
            .reviews()
            .first()
            .map(|r| r.author_id)
            .expect("reviews");
        let expected = data.reviews_by_author(author_id).expect("known").len();
        let response = archive()
            .list_reviews_by_author(Request::new(ListReviewsByAuthorRequest {
                author_id,
                limit: 1,
            }))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(response.reviews.len(), 1);
        assert_eq!(response.total_count, expected as i64);
        assert!(response.reviews.iter().all(|r| r.author_id == author_id));
    }

    #[tokio::test]
    async fn stream_reviews_yields_every_review() {
        let product_id = busy_product();
        let expected = Dataset::shared()
            .reviews_of_product(product_id)
            .expect("known")
            .len();
        let stream = archive()
            .stream_reviews(Request::new(StreamReviewsRequest { product_id }))
            .await
            .expect("stream")
            .into_inner();
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), expected);
        assert!(items.iter().all(Result::is_ok));
    }
}
