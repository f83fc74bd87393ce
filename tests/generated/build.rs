//! Generates every golden fixture of `codegen/tests/golden/` into this crate, so the workspace's
//! build and `clippy -D warnings` check the emitted Rust itself.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    mosaic_codegen::configure().compile_protos(
        &[
            "simple.proto",
            "fanout.proto",
            "autobind.proto",
            "storage.proto",
            "resilience.proto",
        ],
        &["../../codegen/tests/golden", "../../proto"],
    )?;
    Ok(())
}
