//! `mosaic-gateway`: runs a gateway from a `gateway.toml`, routing every configured upstream
//! service through the pass-through path (the sidecar role). Edge APIs with composition rules
//! are served by an application built on the library instead (see `services/demo-app`).
//!
//! ```text
//! mosaic-gateway [--config gateway.toml] [--check]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use mosaic_gateway::{Gateway, GatewayConfig, telemetry};

const USAGE: &str = "usage: mosaic-gateway [--config <gateway.toml>] [--check]";

/// mimalloc rather than the system allocator: a gateway allocates and frees small buffers on
/// every call, and glibc's allocator spent about a third of the CPU of an HTTP/JSON
/// pass-through call (BENCHMARKS.md, "HTTP/JSON: Mosaic against grpc-gateway").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let (config_path, check_only) = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match GatewayConfig::from_file(&config_path) {
        Ok(config) => config,
        Err(error) => {
            telemetry::init();
            tracing::error!("{error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init_with(&config.logging);
    if check_only {
        println!("{}: ok", config_path.display());
        return ExitCode::SUCCESS;
    }
    match Gateway::builder(config)
        .reload_from(&config_path)
        .bind()
        .await
    {
        Ok(gateway) => {
            gateway.serve().await;
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<(PathBuf, bool), String> {
    let mut config = PathBuf::from("gateway.toml");
    let mut check = false;
    let mut args = args;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                config = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--config needs a file path")?;
            }
            "--check" => check = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok((config, check))
}
