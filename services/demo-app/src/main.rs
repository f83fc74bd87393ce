//! The built-in demo: the four demo downstream services and a Mosaic gateway in one process,
//! serving the generated storefront edge API beside pass-through routes to the services.
//!
//! `cargo run --release` at the repository root runs it. The services listen on
//! 127.0.0.1:50051-50054 and the gateway on 127.0.0.1:8080 (admin on 127.0.0.1:9901), routing
//! to them as `gateway.toml` beside this file says.
//!
//! `--config` and `--no-services` run the same composed API against other downstreams: services
//! started elsewhere (the `demo-service` binary, containers, another machine) at the addresses a
//! configuration of one's own names.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mosaic_demo::demo::storefront::v1::StorefrontComposer;
use mosaic_demo_services::{DemoService, FaultConfig, ServiceHandle};
use mosaic_gateway::config::UpstreamConfig;
use mosaic_gateway::{Gateway, GatewayConfig, telemetry};

/// The built-in configuration, and the name its errors give it.
const CONFIG: &str = include_str!("../gateway.toml");
const CONFIG_ORIGIN: &str = "services/demo-app/gateway.toml";

#[derive(Debug, Parser)]
#[command(
    name = "mosaic-demo",
    version,
    about = "Mosaic's built-in demo: the storefront edge API composed from four demo services"
)]
struct Cli {
    /// Gateway configuration to serve [default: the built-in services/demo-app/gateway.toml].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Do not start the demo services in this process; route to services started elsewhere
    /// (for example with `demo-service serve`) at the addresses the configuration names.
    #[arg(long)]
    no_services: bool,
}

/// mimalloc rather than the system allocator: a gateway allocates and frees small buffers on
/// every call, and glibc's allocator spent about a third of the CPU of an HTTP/JSON
/// pass-through call (BENCHMARKS.md, "HTTP/JSON: Mosaic against grpc-gateway").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(error) => {
            telemetry::init();
            return Err(error);
        }
    };
    telemetry::init_with(&config.logging);

    let mut services = Vec::new();
    if !cli.no_services {
        for service in DemoService::ALL {
            warn_if_not_routed_here(&config, service);
            services.push(start_service(service).await?);
        }
    }

    let mut builder = Gateway::builder(config);
    if let Some(path) = &cli.config {
        // SIGHUP and the admin's POST /reload read the file again; the built-in
        // configuration cannot change, so without --config a reload is refused.
        builder = builder.reload_from(path);
    }
    let storefront = StorefrontComposer::new(builder.downstreams());
    let mobile = mosaic_demo::mobile_shop(builder.downstreams(), &builder.deployment())?;
    let gateway = builder
        .composer(storefront)
        .composer(mobile)
        .descriptor_set("demo protos", mosaic_demo::FILE_DESCRIPTOR_SET)?
        .bind()
        .await?;
    print_usage(&gateway, &cli);
    gateway.serve().await;

    for service in services {
        service.stop().await;
    }
    Ok(())
}

/// The configuration named by `--config`, or the built-in one.
fn load_config(cli: &Cli) -> anyhow::Result<GatewayConfig> {
    // `ConfigError` already names the file and lists every problem; no context to add.
    Ok(match &cli.config {
        Some(path) => GatewayConfig::from_file(path)?,
        None => GatewayConfig::from_toml_str(CONFIG, CONFIG_ORIGIN)?,
    })
}

async fn start_service(service: DemoService) -> anyhow::Result<ServiceHandle> {
    mosaic_demo_services::start(service, service.default_addr(), FaultConfig::default())
        .await
        .with_context(|| format!("starting the demo {} service", service.name()))
}

/// In-process services always listen on their well-known ports, whatever the configuration
/// says; a configuration that routes elsewhere most likely wanted `--no-services`, and the
/// calls it routes would never reach the services started here.
fn warn_if_not_routed_here(config: &GatewayConfig, service: DemoService) {
    let Some(upstream) = config.upstream_for(service.grpc_service()) else {
        return;
    };
    if !routes_to(upstream, service.default_addr()) {
        tracing::warn!(
            service = service.grpc_service(),
            upstream = %upstream.name,
            in_process = %service.default_addr(),
            "the configuration routes this service away from the one started in this process; \
             pass --no-services to use only services started elsewhere"
        );
    }
}

/// Whether one of `upstream`'s endpoints is the loopback address `addr` listens on.
fn routes_to(upstream: &UpstreamConfig, addr: SocketAddr) -> bool {
    upstream.endpoints.iter().any(|endpoint| {
        let host = endpoint.host().map(|host| host.trim_matches(['[', ']']));
        let loopback = host.is_some_and(|host| {
            host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        });
        loopback && endpoint.port_u16() == Some(addr.port())
    })
}

fn print_usage(gateway: &Gateway, cli: &Cli) {
    let addr = gateway.local_addr();
    println!("Mosaic demo gateway on {addr} (gRPC over h2c; reflection v1 and v1alpha)");
    println!("services: {}", gateway.services().join(", "));
    if cli.no_services {
        println!("demo services: not started here (--no-services), routed as configured");
    }
    println!();
    println!("try, with any gRPC client, for example grpcurl:");
    println!("  grpcurl -plaintext {addr} list");
    println!("  grpcurl -plaintext -d '{{\"id\": 42}}' {addr} demo.users.v1.UserService/GetUser");
    println!(
        "  grpcurl -plaintext -d '{{\"product_id\": 7, \"limit\": 3}}' {addr} demo.reviews.v1.ReviewService/ListReviews"
    );
    println!(
        "  grpcurl -plaintext -d '{{\"product_id\": 7, \"review_limit\": 3}}' {addr} demo.storefront.v1.Storefront/GetProductPage"
    );
    println!("  curl -H 'Accept-Language: fr' 'http://{addr}/v1/mobile/products/7?viewer_id=3'");
    if let Some(admin) = gateway.admin_addr() {
        println!("  curl http://{admin}/ready");
    }
    println!("Ctrl-C stops it (in-flight calls drain first).");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mosaic-demo").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_flags_means_the_built_in_demo() {
        let cli = parse(&[]).expect("no flags");
        assert_eq!(cli.config, None);
        assert!(!cli.no_services);
        let config = load_config(&cli).expect("the built-in configuration is valid");
        for service in DemoService::ALL {
            let upstream = config
                .upstream_for(service.grpc_service())
                .expect("every demo service is routed");
            assert!(routes_to(upstream, service.default_addr()), "{upstream:?}");
        }
    }

    #[test]
    fn only_loopback_endpoints_on_the_well_known_port_count_as_routed_here() {
        let users = DemoService::Users;
        let routed = |endpoints: &str| {
            let text = format!(
                "[listener]\naddress = \"127.0.0.1:0\"\n[upstreams.users]\nendpoints = [{endpoints}]\nservices = [\"{}\"]\n",
                users.grpc_service()
            );
            let config = GatewayConfig::from_toml_str(&text, "test").expect("valid");
            let upstream = config.upstream_for(users.grpc_service()).expect("routed");
            routes_to(upstream, users.default_addr())
        };
        assert!(routed("\"http://127.0.0.1:50051\""));
        assert!(routed("\"http://localhost:50051\""));
        assert!(routed("\"http://[::1]:50051\""));
        assert!(routed(
            "\"http://10.0.0.7:50051\", \"http://127.0.0.1:50051\""
        ));
        assert!(!routed("\"http://127.0.0.1:60051\""));
        assert!(!routed("\"http://users.internal:50051\""));
    }

    #[test]
    fn flags_parse() {
        let cli = parse(&["--config", "elsewhere.toml", "--no-services"]).expect("both flags");
        assert_eq!(cli.config, Some(PathBuf::from("elsewhere.toml")));
        assert!(cli.no_services);
        let cli = parse(&["--config=a/b.toml"]).expect("--config=");
        assert_eq!(cli.config, Some(PathBuf::from("a/b.toml")));
        assert!(!cli.no_services);

        for bad in [&["--config"][..], &["--no-services=yes"], &["--services"]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_errors_name_the_file_and_the_problem() {
        let dir = std::env::temp_dir().join(format!("mosaic-demo-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");

        let missing = dir.join("missing.toml");
        let cli = parse(&["--config", missing.to_str().expect("utf-8 path")]).expect("parses");
        let error = format!("{:#}", load_config(&cli).expect_err("no such file"));
        assert!(error.contains("missing.toml"), "{error}");
        assert!(error.contains("cannot read the file"), "{error}");

        let invalid = dir.join("invalid.toml");
        std::fs::write(&invalid, "[listener]\naddress = \"nowhere\"\n").expect("written");
        let cli = parse(&["--config", invalid.to_str().expect("utf-8 path")]).expect("parses");
        let error = format!("{:#}", load_config(&cli).expect_err("invalid"));
        assert!(error.contains("invalid.toml"), "{error}");
        assert!(error.contains("listener.address"), "{error}");

        let _ = std::fs::remove_dir_all(&dir);
    }
}
