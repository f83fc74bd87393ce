//! Generates the storefront edge API from its annotated proto: no Rust is written for it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    mosaic_codegen::configure()
        .compile_protos(&["demo/storefront/v1/storefront.proto"], &["../../proto"])?;
    Ok(())
}
