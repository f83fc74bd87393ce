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

/// Every case of the corpus, pinned: a case that disappears fails the test as surely as one
/// whose report changes. A new case is added here and in the directory.
const CASES: &[&str] = &[
    "access_on_downstream",
    "access_public_with_scopes",
    "access_unknown_scheme",
    "alias_composed",
    "alias_field_without_counterpart",
    "alias_incompatible_field",
    "alias_unknown_source",
    "alias_wrong_source",
    "ambiguous_autobind",
    "argument_in_error",
    "argument_names_differ",
    "argument_passed_twice",
    "argument_types_differ",
    "argument_types_differ_after_error",
    "autobind_not_message",
    "autobind_type_mismatch",
    "binding_type_mismatch",
    "blank_guard",
    "built_only_by_failed_steps",
    "call_streaming_method",
    "call_timeout_malformed",
    "call_without_method",
    "caller_reserved",
    "composer_name_clash",
    "composition_module_clash",
    "condition_oneof_unconditional",
    "custom_rules_conflict",
    "custom_step_problems",
    "custom_two_services",
    "duplicate_step_name",
    "empty_expression",
    "enum_alias_elsewhere",
    "enum_from_int",
    "enum_value_unknown",
    "enum_without_counterpart",
    "env_declarations",
    "env_two_services",
    "error_fallback_type_mismatch",
    "error_handler_after_catch_all",
    "escaped_and_split_strings",
    "expression_trailing_operator",
    "expression_type_mismatch",
    "expression_unterminated_string",
    "field_rule_aggregate_form",
    "guard_not_bool",
    "hedge_not_idempotent",
    "http_bad_template",
    "http_conflict",
    "http_unknown_fields",
    "invalid_iterator_name",
    "invalid_step_name",
    "literal_problems",
    "log_unknown_level",
    "macro_variable_shadows_step",
    "map_src_not_list",
    "map_without_body",
    "map_without_iterator",
    "message_builds_itself",
    "message_cycle",
    "message_to_other_message",
    "message_without_rules",
    "metadata_key_invalid",
    "metadata_value_mismatch",
    "method_response_field_mismatch",
    "method_timeout_malformed",
    "method_without_slash",
    "non_ascii_expression",
    "numeric_conversion",
    "options_not_imported",
    "proto_syntax_error",
    "read_before_defined",
    "request_field_twice",
    "request_field_type_mismatch",
    "reserved_iterator_name",
    "reserved_step_name",
    "response_also_built",
    "response_metadata_problems",
    "response_of_different_requests",
    "response_without_rules",
    "retry_attempts_too_many",
    "retry_policy_invalid",
    "rule_list_without_colon",
    "rule_unknown_field",
    "several_errors",
    "step_name_starts_with_digit",
    "step_name_underscore",
    "step_names_same_rust_ident",
    "step_without_body",
    "streaming_edge_method",
    "switch_problems",
    "time_problems",
    "unbound_field",
    "unknown_argument",
    "unknown_field_in_expression",
    "unknown_message",
    "unknown_method",
    "unknown_name",
    "unknown_option_field",
    "unknown_request_field",
    "unknown_service",
    "validation_if_not_bool",
    "validation_message_not_string",
    "validation_value_read",
    "validation_without_condition",
];

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
    let found: Vec<String> = cases
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect();
    let missing: Vec<&&str> = CASES
        .iter()
        .filter(|c| !found.iter().any(|f| f == **c))
        .collect();
    let unlisted: Vec<&String> = found
        .iter()
        .filter(|f| !CASES.contains(&f.as_str()))
        .collect();
    assert!(
        missing.is_empty() && unlisted.is_empty(),
        "the corpus differs from its pinned list: missing {missing:?}, not listed {unlisted:?}"
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
