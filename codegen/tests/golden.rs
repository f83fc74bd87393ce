//! Golden files: the composition code generated for each fixture proto in `tests/golden/`
//! (and for the demo's storefront) is committed next to it as `<name>.rs`, and this test fails
//! when the output changes. The fixtures import the demo's protos from the repository's
//! `proto/` directory.
//!
//! After an intended change to the generator, regenerate them with
//!
//! ```text
//! MOSAIC_BLESS=1 cargo test -p mosaic-codegen --test golden
//! ```
//!
//! and read the diff: it is the change every user's generated code sees.

// Test helpers outside `#[test]` functions are not covered by clippy's allow-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

const GOLDEN: &str = "tests/golden";
const PROTOS: &str = "../proto";
const BLESS: &str = "MOSAIC_BLESS=1 cargo test -p mosaic-codegen --test golden";

fn blessing() -> bool {
    std::env::var_os("MOSAIC_BLESS").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Generates `proto` (as found under `includes`) and compares the one package's code with
/// `tests/golden/<name>.rs`, or rewrites that file when blessing.
fn golden(name: &str, proto: &str, includes: &[&str]) {
    let generated = match mosaic_codegen::configure().check(&[proto], includes) {
        Ok(generated) => generated,
        Err(diagnostics) => panic!(
            "{proto} does not generate:\n{}",
            mosaic_codegen::render_all(&diagnostics)
        ),
    };
    let packages: Vec<&String> = generated.packages.keys().collect();
    assert_eq!(
        packages.len(),
        1,
        "{proto} should generate one package, got {packages:?}"
    );
    let actual = generated.packages.values().next().unwrap();
    let path = Path::new(GOLDEN).join(format!("{name}.rs"));
    if blessing() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != *actual {
        panic!(
            "the code generated for {proto} differs from {}:\n{}\nIf the change is intended, \
             regenerate the golden files with\n\n    {BLESS}\n\nand review the diff.",
            path.display(),
            first_difference(&expected, actual),
        );
    }
}

/// The first differing line, with a little context, for the failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let line = expected
        .iter()
        .zip(&actual)
        .position(|(e, a)| e != a)
        .unwrap_or(expected.len().min(actual.len()));
    let context = |lines: &[&str]| {
        lines
            .iter()
            .enumerate()
            .skip(line.saturating_sub(2))
            .take(5)
            .map(|(i, l)| format!("{:>5} | {l}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "first difference at line {} ({} lines expected, {} generated)\n--- expected\n{}\n--- generated\n{}",
        line + 1,
        expected.len(),
        actual.len(),
        context(&expected),
        context(&actual),
    )
}

#[test]
fn simple() {
    golden("simple", "simple.proto", &[GOLDEN, PROTOS]);
}

#[test]
fn fanout() {
    golden("fanout", "fanout.proto", &[GOLDEN, PROTOS]);
}

#[test]
fn autobind() {
    golden("autobind", "autobind.proto", &[GOLDEN, PROTOS]);
}

#[test]
fn storage() {
    golden("storage", "storage.proto", &[GOLDEN, PROTOS]);
}

#[test]
fn resilience() {
    golden("resilience", "resilience.proto", &[GOLDEN, PROTOS]);
}

#[test]
fn storefront() {
    golden(
        "storefront",
        "demo/storefront/v1/storefront.proto",
        &[PROTOS],
    );
}
