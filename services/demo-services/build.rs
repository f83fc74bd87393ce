//! Compiles the demo protos without `protoc`: `protox` parses them into a `FileDescriptorSet`,
//! which feeds both tonic's code generator and the encoded descriptor set that the servers
//! register with gRPC reflection (and that the gateway can load at run time).

use std::path::PathBuf;

use protox::prost::Message as _;

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
    // Only our own protos: the well-known types they import are built into protox.
    println!("cargo:rerun-if-changed={INCLUDE_ROOT}/demo");

    let fds = protox::compile(PROTOS, [INCLUDE_ROOT])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join(DESCRIPTOR_FILE), fds.encode_to_vec())?;

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
