//! Compiles the protos the HTTP edge always needs, whatever descriptor sets it is given:
//! `google.rpc.Status` with the standard error details (to render error bodies) and the
//! `google.api` HTTP annotations and `HttpBody`. `protox` keeps this a cargo-only build.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "google/api/annotations.proto",
    "google/api/httpbody.proto",
];

const INCLUDE_ROOT: &str = "../proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={INCLUDE_ROOT}/google");
    let mut compiler = protox::Compiler::new([INCLUDE_ROOT])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(PROTOS)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("edge_descriptors.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    Ok(())
}
