//! The `mosaic-codegen` command: the generator's checks and output, without a build.
//!
//! - `check` runs every check of the generator on protos and prints the diagnostics.
//! - `generate --out <dir>` writes the Rust a build script's `compile_protos` would write (prost
//!   types, tonic clients and servers, the composition code `<package>.mosaic.rs`, the module
//!   tree `mosaic.rs`, the descriptor set), to read or review.
//! - `openapi` runs the same checks, then writes the OpenAPI 3.1 document of the protos'
//!   `google.api.http` bindings (to stdout, or `-o <file>`; `--proto-names` for proto field
//!   names instead of lowerCamelCase).
//!
//! ```text
//! mosaic-codegen check -I proto demo/storefront/v1/storefront.proto
//! mosaic-codegen generate -I proto --out generated demo/storefront/v1/storefront.proto
//! mosaic-codegen openapi -I proto -o storefront.openapi.json demo/storefront/v1/storefront.proto
//! mosaic-codegen --help
//! mosaic-codegen generate --help
//! ```
//!
//! Protos are named as imported, relative to an include directory (`-I <dir>`, `-I<dir>` or
//! `--include <dir>`, repeatable; `.` when none is given). The `mosaic.v1` options and
//! `google/api`, `google/rpc` protos are built in.
//!
//! Exits 0 when the protos are valid, 1 when they have problems (or the output cannot be
//! written), 2 on bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  mosaic-codegen check -I proto demo/storefront/v1/storefront.proto
  mosaic-codegen generate -I proto --out generated demo/storefront/v1/storefront.proto
  mosaic-codegen openapi -I proto -o api.json demo/storefront/v1/storefront.proto

Exit status: 0 when the protos are valid, 1 when they have problems, 2 on bad usage.";

/// Checks protos annotated with `mosaic.v1` composition rules, and shows the Rust and the
/// OpenAPI document they generate.
#[derive(Parser)]
#[command(
    name = "mosaic-codegen",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every check on the protos and print the diagnostics, without building.
    Check(Protos),
    /// Write the Rust a build script would generate for the protos, to read or review.
    ///
    /// The same files `mosaic_codegen::configure().compile_protos(..)` writes to `OUT_DIR`: prost
    /// types and tonic clients and servers (`<package>.rs`), the composition code
    /// (`<package>.mosaic.rs`), the module tree to `include!` (`mosaic.rs`) and the descriptor
    /// set (`mosaic_descriptor.bin`).
    Generate {
        /// The directory to write into (created if missing).
        #[arg(short, long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        protos: Protos,
    },
    /// Check the protos, then write the OpenAPI 3.1 document of their HTTP bindings.
    Openapi {
        /// Write the document to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Name fields as in the proto (`user_id`) instead of lowerCamelCase (`userId`), as the
        /// gateway's `field_names = "proto"`.
        #[arg(long)]
        proto_names: bool,
        #[command(flatten)]
        protos: Protos,
    },
}

/// The protos to read, and where to find them and their imports.
#[derive(Args)]
struct Protos {
    /// A directory to find the protos and their imports under; repeatable [default: .]
    #[arg(short = 'I', long = "include", value_name = "DIR")]
    includes: Vec<PathBuf>,
    /// The proto files, named as imported (relative to an include directory).
    #[arg(value_name = "FILE.proto", required = true)]
    protos: Vec<PathBuf>,
}

impl Protos {
    fn includes(&self) -> Vec<PathBuf> {
        if self.includes.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            self.includes.clone()
        }
    }
}

fn main() -> ExitCode {
    // Usage errors exit 2; `--help` and `--version` exit 0.
    match Cli::parse().command {
        Command::Check(protos) => check(&protos),
        Command::Generate { out, protos } => generate(&out, &protos),
        Command::Openapi {
            output,
            proto_names,
            protos,
        } => openapi(output.as_deref(), proto_names, &protos),
    }
}

fn check(protos: &Protos) -> ExitCode {
    match mosaic_codegen::configure().check(&protos.protos, &protos.includes()) {
        Ok(generated) => {
            println!(
                "ok: {} package(s) with composition rules",
                generated.packages.len()
            );
            ExitCode::SUCCESS
        }
        Err(diagnostics) => problems(&diagnostics),
    }
}

fn generate(out: &Path, protos: &Protos) -> ExitCode {
    if let Err(error) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create {}: {error}", out.display());
        return ExitCode::FAILURE;
    }
    let outcome = mosaic_codegen::configure()
        .out_dir(out)
        .build_script(false)
        .compile_protos(&protos.protos, &protos.includes());
    match outcome {
        Ok(()) => {
            println!(
                "ok: wrote {} and the files it includes",
                out.join("mosaic.rs").display()
            );
            ExitCode::SUCCESS
        }
        Err(mosaic_codegen::Error::Diagnostics { diagnostics, .. }) => problems(&diagnostics),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn openapi(output: Option<&Path>, proto_names: bool, protos: &Protos) -> ExitCode {
    let title = protos
        .protos
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let options = mosaic_http_rule::openapi::Options {
        title,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        proto_field_names: proto_names,
    };
    let document =
        match mosaic_codegen::configure().openapi(&protos.protos, &protos.includes(), &options) {
            Ok(document) => document,
            Err(diagnostics) => return problems(&diagnostics),
        };
    let text = match serde_json::to_string_pretty(&document) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match output {
        Some(path) => {
            if let Err(error) = std::fs::write(path, text + "\n") {
                eprintln!("error: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
        None => println!("{text}"),
    }
    ExitCode::SUCCESS
}

/// Prints the diagnostics (each once, then the summary line) and fails.
fn problems(diagnostics: &[mosaic_codegen::Diagnostic]) -> ExitCode {
    eprint!("{}", mosaic_codegen::render_all(diagnostics));
    ExitCode::FAILURE
}
