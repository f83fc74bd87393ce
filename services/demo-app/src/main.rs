//! The built-in demo: the four demo downstream services and a Mosaic gateway in one process,
//! serving the generated storefront edge API beside pass-through routes to the services.
//!
//! `cargo run --release` at the repository root runs it. The services listen on
//! 127.0.0.1:50051-50054 and the gateway on 127.0.0.1:8080 (admin on 127.0.0.1:9901), routing
//! to them as `gateway.toml` beside this file says.

use anyhow::Context;
use mosaic_demo::demo::storefront::v1::StorefrontComposer;
use mosaic_demo_services::{DemoService, FaultConfig};
use mosaic_gateway::{Gateway, GatewayConfig, telemetry};

const CONFIG: &str = include_str!("../gateway.toml");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let config = GatewayConfig::from_toml_str(CONFIG, "services/demo-app/gateway.toml")?;

    let mut services = Vec::new();
    for service in DemoService::ALL {
        let handle =
            mosaic_demo_services::start(service, service.default_addr(), FaultConfig::default())
                .await
                .with_context(|| format!("starting the demo {} service", service.name()))?;
        services.push(handle);
    }

    let builder = Gateway::builder(config);
    let storefront = StorefrontComposer::new(builder.downstreams()).into_server();
    let gateway = builder
        .grpc_service(storefront)
        .require_downstreams(StorefrontComposer::DOWNSTREAM_SERVICES)
        .descriptor_set("demo protos", mosaic_demo::FILE_DESCRIPTOR_SET)?
        .bind()
        .await?;
    print_usage(&gateway);
    gateway.serve().await;

    for service in services {
        service.stop().await;
    }
    Ok(())
}

fn print_usage(gateway: &Gateway) {
    let addr = gateway.local_addr();
    println!("Mosaic demo gateway on {addr} (gRPC over h2c; reflection v1 and v1alpha)");
    println!("services: {}", gateway.services().join(", "));
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
    if let Some(admin) = gateway.admin_addr() {
        println!("  curl http://{admin}/ready");
    }
    println!("Ctrl-C stops it (in-flight calls drain first).");
}
