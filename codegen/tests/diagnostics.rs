//! The diagnostics corpus: every proto in `tests/diagnostics/` has one mistake (or a few), and
//! `<name>.expected` next to it holds the exact report the generator must print for it: each
//! diagnostic as rendered for users (message, `--> file:line:col`, the source line, the caret
//! under the offending part, the hint), then the summary line.
//!
//! The protos import the demo's protos from the repository's `proto/` directory; the
//! `mosaic.v1` options are built into the generator.
//!
//! After an intended change to a message or a position, regenerate the expected files with
//!
//! ```text
//! MOSAIC_BLESS=1 cargo test -p mosaic-codegen --test diagnostics
//! ```
//!
//! and read every changed file before committing it: the corpus exists to catch wrong
//! positions and unhelpful messages, not to record them.

// Test helpers outside `#[test]` functions are not covered by clippy's allow-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

const CORPUS: &str = "tests/diagnostics";
const PROTOS: &str = "../proto";
const BLESS: &str = "MOSAIC_BLESS=1 cargo test -p mosaic-codegen --test diagnostics";

fn blessing() -> bool {
    std::env::var_os("MOSAIC_BLESS").is_some_and(|v| v != "0" && !v.is_empty())
}

/// The corpus's protos, by file name, sorted.
fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "proto"))
        .collect();
    cases.sort();
    cases
}

/// What the generator reports for one proto, as the expected files hold it.
fn report(proto: &Path) -> Result<String, String> {
    let name = proto.file_name().unwrap().to_str().unwrap().to_owned();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        mosaic_codegen::configure().check(&[name.as_str()], &[CORPUS, PROTOS])
    }));
    match outcome {
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            Err(format!("the generator panicked: {message}"))
        }
        Ok(Ok(_)) => Err("the generator accepted it; every corpus proto must fail".to_owned()),
        Ok(Err(diagnostics)) => Ok(mosaic_codegen::render_all(&diagnostics)),
    }
}

#[test]
fn every_bad_proto_gets_its_exact_report() {
    let cases = cases();
    assert!(
        cases.len() >= 28,
        "the corpus shrank to {} protos",
        cases.len()
    );
    let bless = blessing();
    let mut failures = Vec::new();
    for proto in &cases {
        let expected_path = proto.with_extension("expected");
        let actual = match report(proto) {
            Ok(actual) => actual,
            Err(problem) => {
                failures.push(format!("{}: {problem}", proto.display()));
                continue;
            }
        };
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: the report changed\n--- expected ({})\n{expected}--- actual\n{actual}",
                proto.display(),
                expected_path.display(),
            )),
            Err(_) => failures.push(format!(
                "{}: no {} yet; its report is\n{actual}",
                proto.display(),
                expected_path.display(),
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{} of {} cases failed. After an intended change, regenerate the expected files \
         with\n\n    {BLESS}\n\nand read every changed file before committing it.",
        failures.join("\n\n"),
        failures.len(),
        cases.len(),
    );
}

#[test]
fn every_expected_file_has_its_proto() {
    let orphans: Vec<String> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "expected"))
        .filter(|path| !path.with_extension("proto").exists())
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        orphans.is_empty(),
        "expected files without a proto: {orphans:?}"
    );
}
