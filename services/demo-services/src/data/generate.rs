//! The seeded generator behind [`Dataset`](super::Dataset): word lists and one function per
//! record kind.
//!
//! Everything draws from one `ChaCha8Rng` in a fixed order, so the order of the calls below is
//! part of the data: reordering them (or adding a draw in the middle) changes every record
//! after that point. Append new draws at the end of a record's generator when possible. Float
//! arithmetic is limited to plain IEEE operations (no `powi`, no transcendental functions),
//! whose results are identical on every platform and build profile.

use std::collections::BTreeMap;

use prost_types::Timestamp;
use rand::seq::{IndexedRandom as _, SliceRandom as _};
use rand::{Rng, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use super::{PRODUCT_COUNT, REVIEW_COUNT, USER_COUNT, slot};
use crate::pb::catalog::v1::{Category, Money, Product};
use crate::pb::inventory::v1::{Stock, WarehouseStock};
use crate::pb::reviews::v1::Review;
use crate::pb::users::v1::{Tier, User};

/// The seed of the one and only data set. Changing it changes every expected value in tests.
const SEED: u64 = 0x6d6f_7361_6963_0001;

/// 2020-01-01T00:00:00Z, the earliest timestamp in the data.
const EPOCH_2020: i64 = 1_577_836_800;
/// 2021-01-01T00:00:00Z, the earliest product listing.
const EPOCH_2021: i64 = 1_609_459_200;
/// 2023-01-01T00:00:00Z, the latest user sign-up.
const EPOCH_2023: i64 = 1_672_531_200;
/// 2024-07-01T00:00:00Z, the latest product listing.
const EPOCH_2024_07: i64 = 1_719_792_000;
/// 2025-01-01T00:00:00Z, "now" for the data: nothing is newer.
pub(super) const DATA_NOW: i64 = 1_735_689_600;

/// Every product whose id is a multiple of this has no reviews.
pub(super) const NO_REVIEWS_EVERY: i64 = 50;

/// Every record, in id order.
pub(super) struct Records {
    pub(super) users: Vec<User>,
    pub(super) products: Vec<Product>,
    pub(super) reviews: Vec<Review>,
    pub(super) stock: Vec<Stock>,
}

/// Generates every record from the fixed seed.
pub(super) fn records() -> Records {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let users: Vec<User> = (1..=USER_COUNT).map(|id| gen_user(&mut rng, id)).collect();
    let products: Vec<Product> = (1..=PRODUCT_COUNT)
        .map(|id| gen_product(&mut rng, id, &users))
        .collect();
    let reviews = gen_reviews(&mut rng, &users, &products);
    let stock: Vec<Stock> = (1..=PRODUCT_COUNT)
        .map(|id| gen_stock(&mut rng, id))
        .collect();
    Records {
        users,
        products,
        reviews,
        stock,
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Amara", "Bea", "Carlos", "Chen", "Dara", "Elif", "Emil", "Fatima", "Grace",
    "Hiro", "Ines", "Ivan", "Jonas", "Kavya", "Lena", "Luca", "Maya", "Mateo", "Noor", "Olu",
    "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Abe", "Bianchi", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova",
    "Jensen", "Kim", "Larsen", "Mensah", "Nakamura", "Okafor", "Patel", "Quispe", "Rossi",
    "Schmidt", "Tanaka", "Urbina", "Varga", "Weber", "Xu", "Yilmaz", "Zhang",
];
const ROLES: &[&str] = &[
    "Software engineer",
    "Product designer",
    "Teacher",
    "Nurse",
    "Photographer",
    "Student",
    "Chef",
    "Data analyst",
    "Carpenter",
    "Musician",
];
const CITIES: &[&str] = &[
    "Amsterdam",
    "Austin",
    "Berlin",
    "Lagos",
    "Lisbon",
    "Montreal",
    "Osaka",
    "Seoul",
    "Sydney",
    "Toronto",
    "Valencia",
    "Warsaw",
];
const INTERESTS: &[&str] = &[
    "cycling",
    "cooking",
    "board games",
    "hiking",
    "photography",
    "jazz",
    "gardening",
    "running",
    "sci-fi",
    "woodworking",
    "travel",
    "yoga",
    "chess",
    "coffee",
];
const LOCALES: &[&str] = &[
    "en-US", "en-GB", "de-DE", "fr-FR", "ja-JP", "es-ES", "pt-BR",
];

fn gen_user(rng: &mut ChaCha8Rng, id: i64) -> User {
    let first = pick(rng, FIRST_NAMES);
    let last = pick(rng, LAST_NAMES);
    let tier = match rng.random_range(0..10) {
        0..=5 => Tier::Free,
        6..=8 => Tier::Pro,
        _ => Tier::Enterprise,
    };
    let interest_count = rng_count(rng, 0, 4);
    let interests: Vec<String> = INTERESTS
        .choose_multiple(rng, interest_count)
        .map(|s| (*s).to_owned())
        .collect();
    let bio = rng.random_bool(0.5).then(|| {
        let role = pick(rng, ROLES);
        let city = pick(rng, CITIES);
        match interests.first() {
            Some(interest) => format!("{role} based in {city}. Into {interest}."),
            None => format!("{role} based in {city}."),
        }
    });
    let mut attributes = BTreeMap::new();
    attributes.insert("locale".to_owned(), pick(rng, LOCALES).to_owned());
    let theme = if rng.random_bool(0.4) {
        "dark"
    } else {
        "light"
    };
    attributes.insert("theme".to_owned(), theme.to_owned());
    if rng.random_bool(0.3) {
        attributes.insert("newsletter".to_owned(), "weekly".to_owned());
    }
    User {
        id,
        display_name: format!("{first} {last}"),
        email: format!(
            "{}.{}{id}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        created_at: Some(timestamp(between(rng, EPOCH_2020, EPOCH_2023))),
        tier: tier.into(),
        bio,
        attributes,
        interests,
    }
}

/// Words to build titles and tags from, per category.
struct CategoryWords {
    category: Category,
    adjectives: &'static [&'static str],
    nouns: &'static [&'static str],
    tags: &'static [&'static str],
    /// Price range in whole units.
    price: (i64, i64),
}

const CATEGORIES: &[CategoryWords] = &[
    CategoryWords {
        category: Category::Books,
        adjectives: &[
            "Silent", "Last", "Hidden", "Northern", "Paper", "Glass", "Second",
        ],
        nouns: &[
            "Harbor",
            "Garden",
            "Algorithm",
            "Orchard",
            "Atlas",
            "Lighthouse",
            "Winter",
        ],
        tags: &[
            "fiction",
            "non-fiction",
            "mystery",
            "history",
            "paperback",
            "bestseller",
        ],
        price: (6, 45),
    },
    CategoryWords {
        category: Category::Electronics,
        adjectives: &[
            "Wireless",
            "Compact",
            "Smart",
            "Portable",
            "Noise-Cancelling",
            "4K",
        ],
        nouns: &[
            "Earbuds", "Speaker", "Monitor", "Keyboard", "Charger", "Camera", "Router",
        ],
        tags: &[
            "bluetooth",
            "usb-c",
            "rechargeable",
            "gadget",
            "bestseller",
            "new",
        ],
        price: (15, 1_200),
    },
    CategoryWords {
        category: Category::Home,
        adjectives: &["Oak", "Ceramic", "Linen", "Cast-Iron", "Minimal", "Woven"],
        nouns: &[
            "Lamp",
            "Skillet",
            "Bookshelf",
            "Throw",
            "Vase",
            "Kettle",
            "Side Table",
        ],
        tags: &["kitchen", "decor", "handmade", "eco-friendly", "gift-idea"],
        price: (12, 650),
    },
    CategoryWords {
        category: Category::Apparel,
        adjectives: &[
            "Merino",
            "Organic",
            "Waterproof",
            "Classic",
            "Relaxed",
            "Quilted",
        ],
        nouns: &[
            "Sweater", "Jacket", "T-Shirt", "Scarf", "Sneakers", "Beanie", "Chinos",
        ],
        tags: &["unisex", "sustainable", "winter", "summer", "new"],
        price: (10, 240),
    },
    CategoryWords {
        category: Category::Sports,
        adjectives: &[
            "Trail",
            "Carbon",
            "Ultralight",
            "Pro",
            "Adjustable",
            "Insulated",
        ],
        nouns: &[
            "Running Shoes",
            "Tent",
            "Yoga Mat",
            "Dumbbells",
            "Water Bottle",
            "Helmet",
        ],
        tags: &["outdoor", "fitness", "camping", "cycling", "gift-idea"],
        price: (8, 520),
    },
    CategoryWords {
        category: Category::Toys,
        adjectives: &[
            "Wooden",
            "Magnetic",
            "Cooperative",
            "Giant",
            "Puzzle",
            "Remote-Control",
        ],
        nouns: &[
            "Blocks",
            "Board Game",
            "Train Set",
            "Robot",
            "Kite",
            "Building Kit",
        ],
        tags: &["kids", "family", "educational", "gift-idea", "bestseller"],
        price: (5, 140),
    },
];
/// Only reachable if `CATEGORIES` were empty.
const UNCATEGORISED: CategoryWords = CategoryWords {
    category: Category::Unspecified,
    adjectives: &[],
    nouns: &[],
    tags: &[],
    price: (1, 2),
};
const AUDIENCES: &[&str] = &[
    "everyday use",
    "small apartments",
    "weekend trips",
    "beginners and experts alike",
    "gifting",
    "busy mornings",
];
const SELLING_POINTS: &[&str] = &[
    "Built to last and easy to care for.",
    "Ships in recyclable packaging.",
    "Backed by a two-year warranty.",
    "Designed and tested in small batches.",
    "A customer favourite since launch.",
];
const COLORS: &[&str] = &[
    "black",
    "white",
    "slate",
    "forest green",
    "navy",
    "sand",
    "red",
];
const MATERIALS: &[&str] = &[
    "cotton",
    "steel",
    "oak",
    "recycled plastic",
    "wool",
    "aluminium",
];
const BOOK_FORMATS: &[&str] = &["paperback", "hardcover", "ebook"];
const BRANDS: &[&str] = &[
    "Northwind",
    "Acme",
    "Globex",
    "Lumen",
    "Fjord & Co",
    "Kestrel",
    "Brightside",
    "Tessellate",
    "Umbra",
    "Halcyon",
];
const PRICE_ENDINGS: &[i32] = &[0, 490_000_000, 950_000_000, 990_000_000];

fn gen_product(rng: &mut ChaCha8Rng, id: i64, users: &[User]) -> Product {
    let words = CATEGORIES.choose(rng).unwrap_or(&UNCATEGORISED);
    let adjective = pick(rng, words.adjectives);
    let noun = pick(rng, words.nouns);
    let title = if words.category == Category::Books {
        format!("The {adjective} {noun}")
    } else {
        format!("{adjective} {noun}")
    };
    let description = format!(
        "A {} {} for {}. {}",
        adjective.to_lowercase(),
        noun.to_lowercase(),
        pick(rng, AUDIENCES),
        pick(rng, SELLING_POINTS)
    );
    let price = Money {
        currency_code: if rng.random_bool(0.8) { "USD" } else { "EUR" }.to_owned(),
        units: between(rng, words.price.0, words.price.1),
        nanos: PRICE_ENDINGS.choose(rng).copied().unwrap_or(0),
    };
    let tag_count = rng_count(rng, 1, 3);
    let tags: Vec<String> = words
        .tags
        .choose_multiple(rng, tag_count)
        .map(|s| (*s).to_owned())
        .collect();
    let mut attributes = BTreeMap::new();
    if words.category == Category::Books {
        attributes.insert("format".to_owned(), pick(rng, BOOK_FORMATS).to_owned());
        attributes.insert("pages".to_owned(), between(rng, 90, 900).to_string());
    } else {
        attributes.insert("color".to_owned(), pick(rng, COLORS).to_owned());
        attributes.insert("material".to_owned(), pick(rng, MATERIALS).to_owned());
        attributes.insert("weight_g".to_owned(), between(rng, 50, 12_000).to_string());
    }
    let brand = rng.random_bool(0.7).then(|| pick(rng, BRANDS).to_owned());
    let seller_id = between(rng, 1, USER_COUNT + 1);
    let seller_since = users
        .get(slot(seller_id).unwrap_or(0))
        .and_then(|u| u.created_at)
        .map_or(EPOCH_2020, |t| t.seconds);
    Product {
        id,
        title,
        description,
        price: Some(price),
        category: words.category.into(),
        tags,
        attributes,
        brand,
        seller_id,
        created_at: Some(timestamp(between(
            rng,
            seller_since.max(EPOCH_2021),
            EPOCH_2024_07,
        ))),
    }
}

const REVIEW_TITLES: [&[&str]; 5] = [
    &["Disappointed", "Broke after a week", "Not as described"],
    &["Meh", "Could be better", "Not worth the price"],
    &["It's fine", "Does the job", "Average"],
    &["Really good", "Happy with it", "Solid choice"],
    &["Love it!", "Exceeded expectations", "Buy it"],
];
const REVIEW_SENTENCES: [&[&str]; 5] = [
    &[
        "Stopped working almost immediately.",
        "The pictures are misleading.",
        "Support never answered my emails.",
    ],
    &[
        "Quality feels cheaper than expected.",
        "Arrived late and slightly damaged.",
        "Works, but only just.",
    ],
    &[
        "Nothing special, nothing wrong.",
        "Good enough for the price.",
        "Some parts are great, some are not.",
    ],
    &[
        "Well made and arrived quickly.",
        "Would buy again.",
        "Small flaws, but I use it every day.",
    ],
    &[
        "Exactly what I was looking for.",
        "Great quality, great price.",
        "I already ordered a second one as a gift.",
    ],
];

fn gen_reviews(rng: &mut ChaCha8Rng, users: &[User], products: &[Product]) -> Vec<Review> {
    // Popularity is skewed (u^2 over a shuffled order): a few products collect hundreds of
    // reviews, most collect a handful, and every 50th product none.
    let mut reviewable: Vec<&Product> = products
        .iter()
        .filter(|p| p.id % NO_REVIEWS_EVERY != 0)
        .collect();
    reviewable.shuffle(rng);
    (1..=REVIEW_COUNT)
        .filter_map(|id| {
            let u: f64 = rng.random();
            let scaled = (u * u * reviewable.len() as f64).floor();
            let product = reviewable
                .get(scaled as usize)
                .or_else(|| reviewable.last())?;
            let author = users.choose(rng)?;
            let rating = match rng.random_range(0..100) {
                0..=4 => 1,
                5..=12 => 2,
                13..=27 => 3,
                28..=59 => 4,
                _ => 5,
            };
            let mood = usize::try_from(rating - 1).unwrap_or(0);
            let title = pick(rng, REVIEW_TITLES.get(mood).copied().unwrap_or(&[]));
            let sentences = REVIEW_SENTENCES.get(mood).copied().unwrap_or(&[]);
            let sentence_count = rng_count(rng, 1, 3);
            let body = sentences
                .choose_multiple(rng, sentence_count)
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let since = [product.created_at, author.created_at]
                .into_iter()
                .flatten()
                .map(|t| t.seconds)
                .max()
                .unwrap_or(EPOCH_2020);
            // Plain multiplication, not `powi`, whose last bit may vary by platform or build.
            let helpful: f64 = rng.random();
            Some(Review {
                id,
                product_id: product.id,
                author_id: author.id,
                rating,
                title: title.to_owned(),
                body,
                created_at: Some(timestamp(between(rng, since, DATA_NOW))),
                helpful_votes: (helpful * helpful * helpful * 120.0) as i32,
            })
        })
        .collect()
}

const WAREHOUSES: &[&str] = &["ams-1", "fra-1", "iad-1", "sfo-1", "nrt-1"];

fn gen_stock(rng: &mut ChaCha8Rng, product_id: i64) -> Stock {
    let sold_out = rng.random_bool(0.05);
    let warehouse_count = rng_count(rng, 1, 3);
    let warehouses: Vec<WarehouseStock> = WAREHOUSES
        .choose_multiple(rng, warehouse_count)
        .map(|w| WarehouseStock {
            warehouse_id: (*w).to_owned(),
            quantity: if sold_out { 0 } else { between(rng, 0, 401) },
        })
        .collect();
    let on_hand: i64 = warehouses.iter().map(|w| w.quantity).sum();
    let reserved = between(rng, 0, on_hand / 5 + 1);
    Stock {
        product_id,
        available: on_hand - reserved,
        reserved,
        warehouses,
        updated_at: Some(timestamp(between(rng, DATA_NOW - 7 * 86_400, DATA_NOW))),
    }
}

/// A uniformly random value in `lo..hi`; `lo` when the range is empty, so bad bounds can never
/// panic.
fn between(rng: &mut ChaCha8Rng, lo: i64, hi: i64) -> i64 {
    if hi <= lo {
        lo
    } else {
        rng.random_range(lo..hi)
    }
}

/// A count in `lo..=hi`.
fn rng_count(rng: &mut ChaCha8Rng, lo: usize, hi: usize) -> usize {
    if hi <= lo {
        lo
    } else {
        rng.random_range(lo..=hi)
    }
}

/// A random word; `""` only for an empty list.
fn pick(rng: &mut ChaCha8Rng, words: &[&'static str]) -> &'static str {
    words.choose(rng).copied().unwrap_or_default()
}

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}
