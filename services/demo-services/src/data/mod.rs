//! The demo data set: users, products, reviews and stock, generated from a fixed seed.
//!
//! Why generated rather than shipped as fixtures: a few thousand records with realistic variety
//! (optional fields present for some rows, maps, skewed popularity) would be a large file to
//! review, while a seeded generator is a page of code and yields the same bytes on every run and
//! machine (`ChaCha8Rng` is portable and the lock file pins `rand`). Tests can therefore write
//! expected values down, and two processes (a demo service and a test asserting on it) agree.
//!
//! The data set is built once per process ([`Dataset::shared`]) and indexed so that every lookup
//! the services do is O(1) by id or O(k) over the k matching reviews.
//!
//! Shape facts worth knowing when writing tests:
//! - ids are contiguous: users `1..=1000`, products `1..=500`, reviews `1..=5000`;
//! - every review's product and author exist; every product's seller exists;
//! - products whose id is a multiple of 50 have no reviews (so averages of 0 are testable), and
//!   review counts are skewed so that a few products have hundreds;
//! - timestamps lie between 2020-01-01 and 2025-01-01 and respect causality (a review is newer
//!   than its product and its author).

mod generate;

use std::sync::{Arc, OnceLock};

use crate::pb::catalog::v1::{Category, Product};
use crate::pb::inventory::v1::Stock;
use crate::pb::reviews::v1::Review;
use crate::pb::users::v1::User;
use generate::Records;

/// Number of users; their ids are `1..=USER_COUNT`.
pub const USER_COUNT: i64 = 1_000;
/// Number of products; their ids are `1..=PRODUCT_COUNT`.
pub const PRODUCT_COUNT: i64 = 500;
/// Number of reviews; their ids are `1..=REVIEW_COUNT`.
pub const REVIEW_COUNT: i64 = 5_000;

/// All demo records, indexed for the services' lookups.
#[derive(PartialEq)]
pub struct Dataset {
    /// By id: `users[id - 1]`.
    users: Vec<User>,
    /// By id: `products[id - 1]`.
    products: Vec<Product>,
    /// By id: `reviews[id - 1]`.
    reviews: Vec<Review>,
    /// By product id: `stock[id - 1]`.
    stock: Vec<Stock>,
    /// Product ids in ascending order per category, indexed by the `Category` number; slot 0
    /// (`CATEGORY_UNSPECIFIED`) lists every product.
    product_ids_by_category: Vec<Vec<i64>>,
    /// Review positions per product (slot `product_id - 1`), newest first.
    reviews_by_product: Vec<Vec<usize>>,
    /// Review positions per author (slot `author_id - 1`), newest first.
    reviews_by_author: Vec<Vec<usize>>,
}

impl std::fmt::Debug for Dataset {
    // The derived form would print thousands of records.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("users", &self.users.len())
            .field("products", &self.products.len())
            .field("reviews", &self.reviews.len())
            .field("stock", &self.stock.len())
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// The process-wide data set, generated on first use.
    pub fn shared() -> Arc<Dataset> {
        static SHARED: OnceLock<Arc<Dataset>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(|| Arc::new(Dataset::generate())))
    }

    /// Generates a fresh copy of the data set; equal to every other copy.
    ///
    /// Prefer [`Dataset::shared`]; this exists to prove determinism.
    pub fn generate() -> Dataset {
        let Records {
            users,
            products,
            reviews,
            stock,
        } = generate::records();

        let mut product_ids_by_category = vec![Vec::new(); Category::Toys as usize + 1];
        for product in &products {
            if let Some(all) = product_ids_by_category.get_mut(0) {
                all.push(product.id);
            }
            let slot = usize::try_from(product.category).ok();
            if let Some(list) = slot.and_then(|s| product_ids_by_category.get_mut(s)) {
                list.push(product.id);
            }
        }

        let mut reviews_by_product = vec![Vec::new(); products.len()];
        let mut reviews_by_author = vec![Vec::new(); users.len()];
        for (pos, review) in reviews.iter().enumerate() {
            if let Some(list) = slot(review.product_id).and_then(|s| reviews_by_product.get_mut(s))
            {
                list.push(pos);
            }
            if let Some(list) = slot(review.author_id).and_then(|s| reviews_by_author.get_mut(s)) {
                list.push(pos);
            }
        }
        let newest_first = |a: &usize, b: &usize| {
            let key = |pos: &usize| {
                reviews
                    .get(*pos)
                    .map(|r| (r.created_at.map_or(0, |t| t.seconds), r.id))
            };
            key(b).cmp(&key(a))
        };
        for list in reviews_by_product.iter_mut().chain(&mut reviews_by_author) {
            list.sort_by(newest_first);
        }

        Dataset {
            users,
            products,
            reviews,
            stock,
            product_ids_by_category,
            reviews_by_product,
            reviews_by_author,
        }
    }

    /// Every user, in id order.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// Every product, in id order.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// Every review, in id order.
    pub fn reviews(&self) -> &[Review] {
        &self.reviews
    }

    /// Every product's stock, in product id order.
    pub fn stock_levels(&self) -> &[Stock] {
        &self.stock
    }

    /// The user with this id.
    pub fn user(&self, id: i64) -> Option<&User> {
        self.users.get(slot(id)?)
    }

    /// The product with this id.
    pub fn product(&self, id: i64) -> Option<&Product> {
        self.products.get(slot(id)?)
    }

    /// The review with this id.
    pub fn review(&self, id: i64) -> Option<&Review> {
        self.reviews.get(slot(id)?)
    }

    /// The stock of the product with this id.
    pub fn stock(&self, product_id: i64) -> Option<&Stock> {
        self.stock.get(slot(product_id)?)
    }

    /// Ids of the products in `category`, ascending; every product for
    /// [`Category::Unspecified`].
    pub fn product_ids_in(&self, category: Category) -> &[i64] {
        usize::try_from(i32::from(category))
            .ok()
            .and_then(|s| self.product_ids_by_category.get(s))
            .map_or(&[], Vec::as_slice)
    }

    /// Reviews of a product, newest first; `None` if the product does not exist.
    pub fn reviews_of_product(&self, product_id: i64) -> Option<Vec<&Review>> {
        let positions = self.reviews_by_product.get(slot(product_id)?)?;
        Some(self.reviews_at(positions))
    }

    /// Reviews written by a user, newest first; `None` if the user does not exist.
    pub fn reviews_by_author(&self, author_id: i64) -> Option<Vec<&Review>> {
        let positions = self.reviews_by_author.get(slot(author_id)?)?;
        Some(self.reviews_at(positions))
    }

    fn reviews_at(&self, positions: &[usize]) -> Vec<&Review> {
        positions
            .iter()
            .filter_map(|&pos| self.reviews.get(pos))
            .collect()
    }
}

/// Position of a 1-based id in a vector; `None` for ids below 1.
fn slot(id: i64) -> Option<usize> {
    usize::try_from(id.checked_sub(1)?).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::generate::{DATA_NOW, NO_REVIEWS_EVERY};
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(Dataset::generate(), Dataset::generate());
        assert!(Dataset::generate() == *Dataset::shared());
    }

    /// FNV-1a over the encoded records: pins the data so that a change (a new seed, a `rand`
    /// upgrade that draws differently) fails here first, not in tests that wrote values down.
    fn fingerprint(data: &Dataset) -> u64 {
        use prost::Message as _;
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: Vec<u8>| {
            for b in bytes {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        data.users().iter().for_each(|m| eat(m.encode_to_vec()));
        data.products().iter().for_each(|m| eat(m.encode_to_vec()));
        data.reviews().iter().for_each(|m| eat(m.encode_to_vec()));
        data.stock_levels()
            .iter()
            .for_each(|m| eat(m.encode_to_vec()));
        hash
    }

    #[test]
    fn data_is_pinned() {
        assert_eq!(
            fingerprint(&Dataset::shared()),
            15_356_467_817_723_078_995,
            "the demo data changed"
        );
    }

    #[test]
    fn counts_and_ids_are_contiguous() {
        let data = Dataset::shared();
        assert_eq!(data.users().len(), 1_000);
        assert_eq!(data.products().len(), 500);
        assert_eq!(data.reviews().len(), 5_000);
        assert_eq!(data.stock_levels().len(), 500);
        for (i, user) in data.users().iter().enumerate() {
            assert_eq!(user.id, i as i64 + 1);
        }
        for (i, review) in data.reviews().iter().enumerate() {
            assert_eq!(review.id, i as i64 + 1);
        }
        assert_eq!(data.user(0), None);
        assert_eq!(data.user(-1), None);
        assert_eq!(data.user(1_001), None);
        assert_eq!(data.product(501), None);
        assert_eq!(data.user(42).map(|u| u.id), Some(42));
    }

    #[test]
    fn references_are_valid_and_causal() {
        let data = Dataset::shared();
        for review in data.reviews() {
            let product = data.product(review.product_id).expect("product exists");
            let author = data.user(review.author_id).expect("author exists");
            assert!((1..=5).contains(&review.rating));
            let created = review.created_at.expect("timestamp").seconds;
            assert!(created >= product.created_at.expect("timestamp").seconds);
            assert!(created >= author.created_at.expect("timestamp").seconds);
            assert!(created < DATA_NOW);
            assert_ne!(review.product_id % NO_REVIEWS_EVERY, 0);
        }
        for product in data.products() {
            assert!(data.user(product.seller_id).is_some());
            assert_ne!(product.category, Category::Unspecified as i32);
            let stock = data.stock(product.id).expect("stock exists");
            assert!((1..=3).contains(&stock.warehouses.len()));
            let on_hand: i64 = stock.warehouses.iter().map(|w| w.quantity).sum();
            assert_eq!(stock.available + stock.reserved, on_hand);
            assert!(stock.available >= 0);
        }
    }

    #[test]
    fn optional_fields_are_mixed() {
        let data = Dataset::shared();
        let with_bio = data.users().iter().filter(|u| u.bio.is_some()).count();
        assert!(
            (400..600).contains(&with_bio),
            "{with_bio} users with a bio"
        );
        let with_brand = data.products().iter().filter(|p| p.brand.is_some()).count();
        assert!((250..450).contains(&with_brand), "{with_brand} branded");
        let emails: HashSet<_> = data.users().iter().map(|u| &u.email).collect();
        assert_eq!(emails.len(), 1_000, "emails are unique");
    }

    #[test]
    fn review_indexes_are_newest_first_and_complete() {
        let data = Dataset::shared();
        let mut seen = 0;
        for product in data.products() {
            let reviews = data.reviews_of_product(product.id).expect("known product");
            assert!(reviews.iter().all(|r| r.product_id == product.id));
            let times: Vec<i64> = reviews
                .iter()
                .map(|r| r.created_at.map_or(0, |t| t.seconds))
                .collect();
            assert!(times.windows(2).all(|w| w[0] >= w[1]));
            if product.id % NO_REVIEWS_EVERY == 0 {
                assert!(reviews.is_empty());
            }
            seen += reviews.len();
        }
        assert_eq!(seen, 5_000);
        let by_author: usize = data
            .users()
            .iter()
            .map(|u| data.reviews_by_author(u.id).expect("known user").len())
            .sum();
        assert_eq!(by_author, 5_000);
        let busiest = data
            .products()
            .iter()
            .map(|p| data.reviews_of_product(p.id).map_or(0, |r| r.len()))
            .max();
        assert!(busiest > Some(100), "popularity is skewed: {busiest:?}");
        assert!(data.reviews_of_product(501).is_none());
        assert!(data.reviews_by_author(0).is_none());
    }

    #[test]
    fn category_index_partitions_products() {
        let data = Dataset::shared();
        assert_eq!(data.product_ids_in(Category::Unspecified).len(), 500);
        let per_category: usize = [
            Category::Books,
            Category::Electronics,
            Category::Home,
            Category::Apparel,
            Category::Sports,
            Category::Toys,
        ]
        .into_iter()
        .map(|c| {
            let ids = data.product_ids_in(c);
            assert!(!ids.is_empty());
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            ids.len()
        })
        .sum();
        assert_eq!(per_category, 500);
    }
}
