//! `demo-service`: run one demo downstream service, or turn the fault knobs of a running one.
//!
//! The library starts services in-process for the demo app and tests; this binary exists for
//! everything else: running services by hand next to a gateway under development, in
//! containers, or from scripts that make a downstream misbehave mid-run.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Parser, Subcommand};
use mosaic_demo_services::pb::faults::v1 as pb;
use mosaic_demo_services::pb::faults::v1::fault_control_client::FaultControlClient;
use mosaic_demo_services::{DemoService, FaultConfig, FaultStats, Latency, parse_error_code};
use tonic::Code;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "demo-service",
    version,
    about = "Mosaic's demo downstream gRPC services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one demo service (plus health, reflection and FaultControl) until ctrl-c/SIGTERM.
    Serve(ServeArgs),
    /// Show, change or reset the fault knobs of a running demo service.
    Faults(FaultsArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Which service to serve.
    #[arg(value_parser = PossibleValuesParser::new(DemoService::ALL.map(DemoService::name))
        .try_map(|name| name.parse::<DemoService>()))]
    service: DemoService,
    /// Address to listen on [default: the service's well-known port, 127.0.0.1:50051..50054].
    #[arg(long, env = "MOSAIC_DEMO_ADDR")]
    addr: Option<SocketAddr>,
    /// Added latency per call: 0, 20ms, 5ms..20ms, exp:10ms or normal:10ms,2ms.
    #[arg(long, env = "MOSAIC_DEMO_LATENCY")]
    latency: Option<Latency>,
    /// Probability (0..1) that a call fails with --error-code.
    #[arg(long, env = "MOSAIC_DEMO_ERROR_RATE", value_parser = parse_rate)]
    error_rate: Option<f64>,
    /// Status of injected failures, e.g. unavailable, deadline_exceeded, internal.
    #[arg(long, env = "MOSAIC_DEMO_ERROR_CODE", value_parser = parse_error_code)]
    error_code: Option<Code>,
    /// Probability (0..1) that a call never answers.
    #[arg(long, env = "MOSAIC_DEMO_HANG_RATE", value_parser = parse_rate)]
    hang_rate: Option<f64>,
}

// No env fallbacks here on purpose: a shell that exported MOSAIC_DEMO_* for `serve` must not
// turn a read-only `faults` call into a write.
#[derive(Debug, Args)]
struct FaultsArgs {
    /// The service to talk to: a URI (http://127.0.0.1:50051), host:port, or a service name
    /// for its well-known address.
    #[arg(long)]
    target: String,
    /// New added latency: 0, 20ms, 5ms..20ms, exp:10ms or normal:10ms,2ms.
    #[arg(long)]
    latency: Option<Latency>,
    /// New probability (0..1) that a call fails with the error code.
    #[arg(long, value_parser = parse_rate)]
    error_rate: Option<f64>,
    /// New status of injected failures, e.g. unavailable.
    #[arg(long, value_parser = parse_error_code)]
    error_code: Option<Code>,
    /// New probability (0..1) that a call never answers.
    #[arg(long, value_parser = parse_rate)]
    hang_rate: Option<f64>,
    /// Zero the call counters (after applying any new knobs).
    #[arg(long)]
    reset_stats: bool,
}

/// Knob values given on the command line; unset ones keep their current value.
#[derive(Clone, Copy, Debug)]
struct Knobs {
    latency: Option<Latency>,
    error_rate: Option<f64>,
    error_code: Option<Code>,
    hang_rate: Option<f64>,
}

impl Knobs {
    fn any(self) -> bool {
        self.latency.is_some()
            || self.error_rate.is_some()
            || self.error_code.is_some()
            || self.hang_rate.is_some()
    }

    fn apply_to(self, mut config: FaultConfig) -> FaultConfig {
        if let Some(latency) = self.latency {
            config.latency = latency;
        }
        if let Some(rate) = self.error_rate {
            config.error_rate = rate;
        }
        if let Some(code) = self.error_code {
            config.error_code = code;
        }
        if let Some(rate) = self.hang_rate {
            config.hang_rate = rate;
        }
        config
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{text} is not a probability between 0 and 1"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr so that `faults` output on stdout stays clean for scripts.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Faults(args) => faults(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let knobs = Knobs {
        latency: args.latency,
        error_rate: args.error_rate,
        error_code: args.error_code,
        hang_rate: args.hang_rate,
    };
    let config = knobs.apply_to(FaultConfig::default());
    let addr = args.addr.unwrap_or_else(|| args.service.default_addr());
    let mut server = mosaic_demo_services::start(args.service, addr, config.clone()).await?;
    if !config.is_noop() {
        tracing::info!(faults = %config, "faults injected from the start");
    }
    let outcome = tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
        ended = server.wait() => ended.context("the server stopped unexpectedly"),
    };
    server.stop().await;
    outcome
}

/// Resolves on ctrl-c, or SIGTERM on Unix (what container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

async fn faults(args: FaultsArgs) -> anyhow::Result<()> {
    let knobs = Knobs {
        latency: args.latency,
        error_rate: args.error_rate,
        error_code: args.error_code,
        hang_rate: args.hang_rate,
    };
    let target = target_uri(&args.target);
    let channel = tonic::transport::Endpoint::from_shared(target.clone())
        .with_context(|| format!("invalid target {target:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {target}"))?;
    let mut control = FaultControlClient::new(channel);

    let mut state = control
        .get_faults(pb::GetFaultsRequest {})
        .await
        .context("GetFaults failed")?
        .into_inner();
    if knobs.any() {
        // Read-modify-write: flags not given keep the service's current values.
        let current = FaultConfig::try_from(state.config.unwrap_or_default())
            .map_err(|message| anyhow::anyhow!("the service reported a bad config: {message}"))?;
        let wanted = knobs.apply_to(current);
        wanted
            .validate()
            .map_err(|message| anyhow::anyhow!("invalid faults: {message}"))?;
        state = control
            .set_faults(pb::SetFaultsRequest {
                config: Some(pb::FaultConfig::from(&wanted)),
            })
            .await
            .context("SetFaults failed")?
            .into_inner();
    }
    if args.reset_stats {
        state = control
            .reset_stats(pb::ResetStatsRequest {})
            .await
            .context("ResetStats failed")?
            .into_inner();
    }
    print_state(&target, &state)
}

/// Accepts a URI, a bare host:port, or a demo service name.
fn target_uri(target: &str) -> String {
    if let Ok(service) = target.parse::<DemoService>() {
        format!("http://{}", service.default_addr())
    } else if target.contains("://") {
        target.to_owned()
    } else {
        format!("http://{target}")
    }
}

fn print_state(target: &str, state: &pb::FaultState) -> anyhow::Result<()> {
    let config = FaultConfig::try_from(state.config.unwrap_or_default())
        .map_err(|message| anyhow::anyhow!("the service reported a bad config: {message}"))?;
    let stats = FaultStats::from(state);
    println!("{target}");
    println!("  faults: {config}");
    println!(
        "  calls:  total={} failed_injected={} hung={}",
        stats.calls_total, stats.calls_failed_injected, stats.calls_hung
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "demo-service",
            "serve",
            "reviews",
            "--addr",
            "127.0.0.1:6000",
            "--latency",
            "5ms..20ms",
            "--error-rate",
            "0.1",
            "--error-code",
            "deadline_exceeded",
            "--hang-rate",
            "0.01",
        ])
        .expect("valid flags");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.service, DemoService::Reviews);
        assert_eq!(args.addr, Some("127.0.0.1:6000".parse().expect("addr")));
        assert_eq!(args.error_code, Some(Code::DeadlineExceeded));
        assert_eq!(args.error_rate, Some(0.1));
    }

    #[test]
    fn bad_flags_are_rejected() {
        for args in [
            vec!["demo-service", "serve", "payments"],
            vec!["demo-service", "serve", "users", "--error-rate", "1.5"],
            vec!["demo-service", "serve", "users", "--error-code", "ok"],
            vec!["demo-service", "serve", "users", "--error-code", "teapot"],
            vec!["demo-service", "serve", "users", "--latency", "-5ms"],
            vec!["demo-service", "faults"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn knobs_override_only_what_is_given() {
        let current = FaultConfig {
            error_rate: 0.5,
            error_code: Code::Internal,
            ..FaultConfig::default()
        };
        let knobs = Knobs {
            latency: Some(Latency::Fixed(Duration::from_millis(3))),
            error_rate: None,
            error_code: None,
            hang_rate: Some(0.2),
        };
        let merged = knobs.apply_to(current);
        assert_eq!(merged.error_rate, 0.5);
        assert_eq!(merged.error_code, Code::Internal);
        assert_eq!(merged.hang_rate, 0.2);
        assert_eq!(merged.latency, Latency::Fixed(Duration::from_millis(3)));
    }

    #[test]
    fn targets_accept_names_and_bare_addresses() {
        assert_eq!(target_uri("users"), "http://127.0.0.1:50051");
        assert_eq!(target_uri("127.0.0.1:7000"), "http://127.0.0.1:7000");
        assert_eq!(target_uri("http://[::1]:7000"), "http://[::1]:7000");
    }
}
