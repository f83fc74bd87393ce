//! Golden files: the composition code generated for each fixture proto in `tests/golden/`
//! (and for the demo's storefront) is committed next to it as `<name>.rs`, and this test fails
//! when the output changes. The fixtures import the demo's protos from the repository's
//! `proto/` directory.
//!
//! The fixtures are the directory's `*.proto` files, listed nowhere else:
//! `tests/generated/build.rs` finds the same ones to compile and run their generated code.
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
/// The golden file of the demo's storefront, the one not generated from a fixture here.
const STOREFRONT: &str = "storefront";

fn blessing() -> bool {
    std::env::var_os("MOSAIC_BLESS").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Generates `proto` (as found under `includes`) and compares the one package's code with
/// `tests/golden/<name>.rs`, or rewrites that file when blessing; the error says how they differ.
fn golden(name: &str, proto: &str, includes: &[&str]) -> Result<(), String> {
    let generated = mosaic_codegen::configure()
        .check(&[proto], includes)
        .map_err(|diagnostics| {
            format!(
                "{proto} does not generate:\n{}",
                mosaic_codegen::render_all(&diagnostics)
            )
        })?;
    let packages: Vec<&String> = generated.packages.keys().collect();
    if packages.len() != 1 {
        return Err(format!(
            "{proto} should generate one package, got {packages:?}"
        ));
    }
    let actual = generated.packages.values().next().unwrap();
    let path = Path::new(GOLDEN).join(format!("{name}.rs"));
    if blessing() {
        std::fs::write(&path, actual).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != *actual {
        return Err(format!(
            "the code generated for {proto} differs from {}:\n{}\nIf the change is intended, \
             regenerate the golden files with\n\n    {BLESS}\n\nand review the diff.",
            path.display(),
            first_difference(&expected, actual),
        ));
    }
    Ok(())
}

/// The names (file stems) of the files in `tests/golden/` ending in `.extension`, sorted.
fn stems(extension: &str) -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(GOLDEN)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
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

/// Every fixture of `tests/golden/`, each against its golden file; all are checked (or blessed)
/// before the test fails, and the failure names each one that differs.
#[test]
fn fixtures() {
    let fixtures = stems("proto");
    assert!(!fixtures.is_empty(), "no fixture (*.proto) in {GOLDEN}");
    let failures: Vec<String> = fixtures
        .iter()
        .filter_map(|name| golden(name, &format!("{name}.proto"), &[GOLDEN, PROTOS]).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A golden file whose fixture was removed or renamed would stay behind unchecked.
#[test]
fn every_golden_file_has_its_fixture() {
    let fixtures = stems("proto");
    let orphans: Vec<String> = stems("rs")
        .into_iter()
        .filter(|name| name != STOREFRONT && !fixtures.contains(name))
        .collect();
    assert!(
        orphans.is_empty(),
        "golden files without a fixture in {GOLDEN}: {orphans:?}; remove them or restore their \
         protos"
    );
}

/// The demo's storefront, whose proto lives with the demo's, not among the fixtures.
#[test]
fn storefront() {
    golden(STOREFRONT, "demo/storefront/v1/storefront.proto", &[PROTOS])
        .unwrap_or_else(|failure| panic!("{failure}"));
}
