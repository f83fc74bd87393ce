//! Generation time for a proto set with 200 composed messages: `configure().check()` (load,
//! every check, emission) against loading alone (protox parsing and linking the same files),
//! in the same run, alternating, over rounds. The target is under 1 s for the whole set.
//!
//! ```sh
//! cargo bench -p mosaic-codegen --bench generation
//! ```

// A benchmark fails loudly on a broken setup.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Edge methods, each answering its own page message.
const PAGES: usize = 100;
/// Messages built per element of a page's reviews (shared by the pages).
const CARDS: usize = 100;
const ROUNDS: usize = 7;

fn main() {
    let dir = std::env::temp_dir().join(format!("mosaic-generation-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let proto = dir.join("bench.proto");
    std::fs::write(&proto, protos()).expect("the bench proto");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let includes = [dir.clone(), repo.join("proto")];
    let files = [PathBuf::from("bench.proto")];

    // Once, to fail loudly on a broken set and to count what is generated.
    let generated = mosaic_codegen::configure()
        .check(&files, &includes)
        .unwrap_or_else(|d| panic!("{}", mosaic_codegen::render_all(&d)));
    let lines: usize = generated
        .packages
        .values()
        .map(|code| code.lines().count())
        .sum();
    println!(
        "{} composed messages ({PAGES} pages, {CARDS} cards), {lines} lines generated",
        PAGES + CARDS
    );

    let mut load = Vec::new();
    let mut check = Vec::new();
    for round in 0..ROUNDS {
        let time_load = || {
            let start = Instant::now();
            mosaic_codegen::load::load(&files, &includes).expect("loads");
            start.elapsed()
        };
        let time_check = || {
            let start = Instant::now();
            mosaic_codegen::configure()
                .check(&files, &includes)
                .expect("checks");
            start.elapsed()
        };
        // Which goes first alternates, so drift hits both alike.
        let (l, c) = if round % 2 == 0 {
            let l = time_load();
            (l, time_check())
        } else {
            let c = time_check();
            (time_load(), c)
        };
        println!("round {round}: load {l:>9.1?}  generate {c:>9.1?}");
        load.push(l);
        check.push(c);
    }
    let (load, check) = (median(&mut load), median(&mut check));
    println!(
        "median: load {load:.1?}, generate {check:.1?} ({:.2}x loading alone); target: under 1 s: {}",
        check.as_secs_f64() / load.as_secs_f64(),
        if check < Duration::from_secs(1) {
            "met"
        } else {
            "MISSED"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// One file: an edge service with a method per page; each page calls two demo services,
/// computes values, validates, and maps its reviews into a card message with its own call.
fn protos() -> String {
    let mut out = String::from(
        r#"syntax = "proto3";
package bench.v1;
import "demo/reviews/v1/reviews.proto";
import "demo/users/v1/users.proto";
import "mosaic/v1/options.proto";

message PageRequest {
  int64 product_id = 1;
  int64 user_id = 2;
}
"#,
    );
    out.push_str("service Bench {\n  option (mosaic.v1.service) = {};\n");
    for page in 0..PAGES {
        out.push_str(&format!(
            "  rpc GetPage{page}(PageRequest) returns (Page{page});\n"
        ));
    }
    out.push_str("}\n");
    for page in 0..PAGES {
        let card = page % CARDS;
        out.push_str(&format!(
            r#"
message Page{page} {{
  option (mosaic.v1.message) = {{
    def {{validation {{if: "$.product_id <= 0" message: "'bad product'"}}}}
    def {{name: "u" call {{method: "demo.users.v1.UserService/GetUser" request {{field: "id" by: "$.user_id"}}}}}}
    def {{name: "rs" call {{method: "demo.reviews.v1.ReviewService/ListReviews" request: [{{field: "product_id" by: "$.product_id"}}, {{field: "limit" by: "20"}}]}}}}
    def {{name: "good" by: "rs.reviews.filter(r, r.rating >= 4)"}}
    def {{name: "cards" map {{iterator {{name: "r" src: "good"}} message {{name: "Card{card}" args {{name: "review" by: "r"}}}}}}}}
  }};
  string user_name = 1 [(mosaic.v1.field).by = "u.user.display_name"];
  int64 count = 2 [(mosaic.v1.field).by = "size(rs.reviews)"];
  double average = 3 [(mosaic.v1.field).by = "rs.average_rating"];
  repeated Card{card} cards = 4 [(mosaic.v1.field).by = "cards"];
  bool pro = 5 [(mosaic.v1.field).by = "u.user.tier == demo.users.v1.Tier.TIER_PRO"];
  repeated string titles = 6 [(mosaic.v1.field).by = "good.map(r, r.title)"];
}}
"#
        ));
    }
    for card in 0..CARDS {
        out.push_str(&format!(
            r#"
message Card{card} {{
  option (mosaic.v1.message) = {{
    def {{name: "a" call {{method: "demo.users.v1.UserService/GetUser" request {{field: "id" by: "$.review.author_id"}}}}}}
  }};
  string author = 1 [(mosaic.v1.field).by = "a.user.display_name"];
  int32 rating = 2 [(mosaic.v1.field).by = "$.review.rating"];
  string text = 3 [(mosaic.v1.field).by = "$.review.title + ': ' + $.review.body"];
}}
"#
        ));
    }
    out
}
