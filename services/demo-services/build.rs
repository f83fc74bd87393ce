//! Compiles the demo protos without `protoc`: `protox` parses them into a `FileDescriptorSet`,
//! which feeds both tonic's code generator and the encoded descriptor set that the servers
//! register with gRPC reflection (and that the gateway can load at run time).

use std::path::PathBuf;

/// Every demo proto, relative to the include root.
const PROTOS: &[&str] = &[
    "demo/users/v1/users.proto",
    "demo/catalog/v1/catalog.proto",
    "demo/reviews/v1/reviews.proto",
    "demo/inventory/v1/inventory.proto",
    "demo/faults/v1/faults.proto",
];

/// Include root: the repository's `proto/` folder, seen from this crate.
const INCLUDE_ROOT: &str = "../../proto";

/// Name of the encoded descriptor set in `OUT_DIR`, included by `lib.rs`.
const DESCRIPTOR_FILE: &str = "mosaic_demo_descriptor.bin";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Our own protos and the google.api ones they import; the well-known types are built into
    // protox.
    println!("cargo:rerun-if-changed={INCLUDE_ROOT}/demo");
    println!("cargo:rerun-if-changed={INCLUDE_ROOT}/google");

    let mut compiler = protox::Compiler::new([INCLUDE_ROOT])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;
    let fds = compiler.file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by protox rather than prost, so that extension options (the `google.api.http`
    // routes) are kept for the gateway's HTTP edge.
    std::fs::write(
        out_dir.join(DESCRIPTOR_FILE),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        // Sorted maps encode in key order, so the same data gives the same bytes in every
        // process (a HashMap's order changes per process), which byte-level tests rely on.
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .out_dir(&out_dir)
        .compile_fds(fds)?;
    Ok(())
}
