//! `mosaic-codegen check`: runs every check of the generator on protos without building, and
//! prints the diagnostics. `mosaic-codegen openapi`: runs the same checks, then writes the
//! OpenAPI 3.1 document of the protos' `google.api.http` bindings (to stdout, or `-o file`).
//!
//! ```text
//! mosaic-codegen check -I proto demo/storefront/v1/storefront.proto
//! mosaic-codegen openapi -I proto -o storefront.openapi.json demo/storefront/v1/storefront.proto
//! ```
//!
//! Exits 0 when the protos are valid, 1 when they have problems, 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: mosaic-codegen check [-I <include dir>]... <file.proto>...\n       \
                     mosaic-codegen openapi [-I <include dir>]... [-o <file>] [--proto-names] <file.proto>...";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let openapi = match command.as_deref() {
        Some("check") => false,
        Some("openapi") => true,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut includes = Vec::new();
    let mut protos = Vec::new();
    let mut output = None;
    let mut proto_names = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-I" | "--include" => match args.next() {
                Some(dir) => includes.push(PathBuf::from(dir)),
                None => {
                    eprintln!("error: {arg} needs a directory\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-o" | "--output" if openapi => match args.next() {
                Some(file) => output = Some(PathBuf::from(file)),
                None => {
                    eprintln!("error: {arg} needs a file\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--proto-names" if openapi => proto_names = true,
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
    let generator = mosaic_codegen::configure();
    if openapi {
        let title = protos
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let options = mosaic_http_rule::openapi::Options {
            title,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            proto_field_names: proto_names,
        };
        return match generator.openapi(&protos, &includes, &options) {
            Ok(document) => {
                let text = match serde_json::to_string_pretty(&document) {
                    Ok(text) => text,
                    Err(error) => {
                        eprintln!("error: {error}");
                        return ExitCode::FAILURE;
                    }
                };
                match output {
                    Some(path) => {
                        if let Err(error) = std::fs::write(&path, text + "\n") {
                            eprintln!("error: cannot write {}: {error}", path.display());
                            return ExitCode::FAILURE;
                        }
                    }
                    None => println!("{text}"),
                }
                ExitCode::SUCCESS
            }
            Err(diagnostics) => {
                eprint!("{}", mosaic_codegen::render_all(&diagnostics));
                ExitCode::FAILURE
            }
        };
    }
    match generator.check(&protos, &includes) {
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
