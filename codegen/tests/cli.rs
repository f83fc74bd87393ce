//! The `mosaic-codegen` command, run as users run it: its help and version, its exit codes (0
//! valid, 1 problems in the protos, 2 bad usage), the diagnostics `check` prints and the files
//! `generate` writes. Also the library's build error, as a build script's `main` shows it.
//!
//! The protos are the diagnostics corpus (`tests/diagnostics/`) and the golden fixtures
//! (`tests/golden/`); they import the demo's protos from the repository's `proto/` directory.
//! The working directory is the crate's.

// Test helpers outside `#[test]` functions are not covered by clippy's allow-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mosaic-codegen");
const CORPUS: &str = "tests/diagnostics";
const GOLDEN: &str = "tests/golden";
const PROTOS: &str = "../proto";

/// Runs the command with `args` in the crate's directory.
fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts the exit code, showing what the command printed when it differs.
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit code {code}\n--- stdout\n{}--- stderr\n{}",
        stdout(output),
        stderr(output),
    );
}

/// An empty directory of its own for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn help_lists_the_subcommands() {
    for flag in ["--help", "-h"] {
        let output = run(&[flag]);
        assert_exit(&output, 0);
        let help = stdout(&output);
        assert!(help.contains("Usage: mosaic-codegen <COMMAND>"), "{help}");
        for command in ["check", "generate", "openapi"] {
            assert!(
                help.lines()
                    .any(|line| line.trim_start().starts_with(command)),
                "`{flag}` does not list `{command}`:\n{help}"
            );
        }
    }
}

#[test]
fn each_subcommand_has_help() {
    for (command, option) in [
        ("check", "--include <DIR>"),
        ("generate", "--out <DIR>"),
        ("openapi", "--proto-names"),
    ] {
        let output = run(&[command, "--help"]);
        assert_exit(&output, 0);
        let help = stdout(&output);
        assert!(
            help.contains(&format!("Usage: mosaic-codegen {command}")) && help.contains(option),
            "`{command} --help` does not show `{option}`:\n{help}"
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    let output = run(&["--version"]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("mosaic-codegen {}\n", env!("CARGO_PKG_VERSION"))
    );
    let output = run(&["check", "-V"]);
    assert_exit(&output, 0);
    assert!(stdout(&output).ends_with(&format!(" {}\n", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn check_accepts_a_valid_proto() {
    // Both spellings of an include directory, `-I<dir>` and `--include <dir>`.
    let golden = format!("-I{GOLDEN}");
    let output = run(&["check", &golden, "--include", PROTOS, "simple.proto"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "ok: 1 package(s) with composition rules\n");
    assert_eq!(stderr(&output), "");
}

#[test]
fn check_prints_the_diagnostics_of_a_bad_proto() {
    // A mistake the checks find, and one the parser finds.
    for name in ["call_without_method", "proto_syntax_error"] {
        let proto = format!("{name}.proto");
        let output = run(&["check", "-I", CORPUS, "-I", PROTOS, &proto]);
        assert_exit(&output, 1);
        let expected =
            std::fs::read_to_string(Path::new(CORPUS).join(format!("{name}.expected"))).unwrap();
        assert_eq!(stderr(&output), expected, "the report for {proto}");
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn generate_writes_what_a_build_gets() {
    let out = scratch("generate");
    let output = run(&[
        "generate",
        "-I",
        GOLDEN,
        "-I",
        PROTOS,
        "--out",
        out.to_str().unwrap(),
        "simple.proto",
    ]);
    assert_exit(&output, 0);
    // The build script's instructions to cargo are not for a terminal.
    assert!(!stdout(&output).contains("cargo:"), "{}", stdout(&output));
    // `simple.proto` is package `golden.simple.v1`; `tests/golden/simple.rs` is its code.
    let expected = std::fs::read_to_string(Path::new(GOLDEN).join("simple.rs")).unwrap();
    let actual = std::fs::read_to_string(out.join("golden.simple.v1.mosaic.rs")).unwrap();
    assert!(
        actual == expected,
        "generate wrote other composition code than tests/golden/simple.rs"
    );
    // The rest of what `compile_protos` writes: prost and tonic's file, the module tree and
    // the descriptor set.
    for file in ["golden.simple.v1.rs", "mosaic.rs", "mosaic_descriptor.bin"] {
        assert!(out.join(file).is_file(), "generate did not write {file}");
    }
    let tree = std::fs::read_to_string(out.join("mosaic.rs")).unwrap();
    assert!(tree.contains("/golden.simple.v1.mosaic.rs\""), "{tree}");
}

#[test]
fn generate_prints_each_diagnostic_once() {
    let out = scratch("generate-bad");
    let output = run(&[
        "generate",
        "-I",
        CORPUS,
        "-I",
        PROTOS,
        "--out",
        out.to_str().unwrap(),
        "call_without_method.proto",
    ]);
    assert_exit(&output, 1);
    let expected =
        std::fs::read_to_string(Path::new(CORPUS).join("call_without_method.expected")).unwrap();
    assert_eq!(stderr(&output), expected);
    assert_eq!(stdout(&output), "");
}

#[test]
fn openapi_writes_the_document() {
    let out = scratch("openapi");
    let file = out.join("api.json");
    let output = run(&[
        "openapi",
        "-I",
        PROTOS,
        "-o",
        file.to_str().unwrap(),
        "--proto-names",
        "demo/storefront/v1/storefront.proto",
    ]);
    assert_exit(&output, 0);
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{document}"
    );
}

#[test]
fn bad_usage_exits_2() {
    let cases: &[&[&str]] = &[
        &["check", "--bogus", "simple.proto"],
        &["--bogus"],
        &[],
        &["build", "simple.proto"],
        &["check"],
        &["generate", "-I", GOLDEN, "simple.proto"],
        &["check", "-I"],
    ];
    for args in cases {
        let output = run(args);
        assert_exit(&output, 2);
        // The error (or the help, without a command) points to `--help`, on stderr.
        assert!(
            stderr(&output).contains("--help"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "{args:?}");
    }
    let output = run(&["check", "--bogus", "simple.proto"]);
    assert!(stderr(&output).contains("'--bogus'"), "{}", stderr(&output));
}

/// The diagnostics error of `compile_protos` for `call_without_method.proto`, printed to
/// stderr first or not.
fn build_error(build_script: bool) -> mosaic_codegen::Error {
    let out = scratch(&format!("build-error-{build_script}"));
    mosaic_codegen::configure()
        .out_dir(out)
        .build_script(build_script)
        .compile_protos(&["call_without_method.proto"], &[CORPUS, PROTOS])
        .unwrap_err()
}

/// A build script's `main` returning `Result<(), Box<dyn Error>>` prints the error's `Debug`
/// after the diagnostics `compile_protos` printed: it must not dump the diagnostics' fields
/// (the whole proto file's text) nor repeat them.
#[test]
fn build_error_debug_shows_each_diagnostic_once() {
    const MESSAGE: &str = "a `call` needs a `method`";
    // Lines of the proto no diagnostic quotes.
    const ELSEWHERE: [&str; 2] = ["package diag.v1;", "message GetProfileRequest"];

    let printed = build_error(true);
    assert!(matches!(
        printed,
        mosaic_codegen::Error::Diagnostics { printed: true, .. }
    ));
    let debug = format!("{:?}", Box::<dyn std::error::Error>::from(printed));
    assert_eq!(
        debug,
        "mosaic-codegen found 1 error in the protos (shown above)"
    );

    let unprinted = build_error(false);
    let debug = format!("{:?}", Box::<dyn std::error::Error>::from(unprinted));
    assert_eq!(debug.matches(MESSAGE).count(), 1, "{debug}");
    assert!(
        debug.contains("--> call_without_method.proto:22:7"),
        "{debug}"
    );
    for line in ELSEWHERE {
        assert!(
            !debug.contains(line),
            "the Debug form dumps the proto:\n{debug}"
        );
    }
    assert!(!debug.contains("line_starts"), "{debug}");
}
