//! The generated code of the golden fixtures, compiled (see `build.rs`).

include!(concat!(env!("OUT_DIR"), "/mosaic.rs"));
