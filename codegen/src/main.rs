//! `mosaic-codegen check`: runs every check of the generator on protos without building, and
//! prints the diagnostics.
//!
//! ```text
//! mosaic-codegen check -I proto demo/storefront/v1/storefront.proto
//! ```
//!
//! Exits 0 when the protos are valid, 1 when they have problems, 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: mosaic-codegen check [-I <include dir>]... <file.proto>...";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("check") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut includes = Vec::new();
    let mut protos = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-I" | "--include" => match args.next() {
                Some(dir) => includes.push(PathBuf::from(dir)),
                None => {
                    eprintln!("error: {arg} needs a directory\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            other if other.starts_with("-I") => includes.push(PathBuf::from(&other[2..])),
            other if other.starts_with('-') => {
                eprintln!("error: unknown option `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => protos.push(PathBuf::from(arg)),
        }
    }
    if protos.is_empty() {
        eprintln!("error: no proto files given\n{USAGE}");
        return ExitCode::from(2);
    }
    if includes.is_empty() {
        includes.push(PathBuf::from("."));
    }
    match mosaic_codegen::configure().check(&protos, &includes) {
        Ok(generated) => {
            println!(
                "ok: {} package(s) with composition rules",
                generated.packages.len()
            );
            ExitCode::SUCCESS
        }
        Err(diagnostics) => {
            eprint!("{}", mosaic_codegen::render_all(&diagnostics));
            ExitCode::FAILURE
        }
    }
}
