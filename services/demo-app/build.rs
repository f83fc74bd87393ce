//! Generates the demo's edge APIs (the storefront and the mobile shop) from their annotated
//! protos: no Rust is written for them but the mobile shop's price labels.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    mosaic_codegen::configure().compile_protos(
        &[
            "demo/storefront/v1/storefront.proto",
            "demo/mobile/v1/mobile.proto",
        ],
        &["../../proto"],
    )?;
    Ok(())
}
