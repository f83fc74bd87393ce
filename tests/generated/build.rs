//! Generates every golden fixture of `codegen/tests/golden/` into this crate, so the workspace's
//! build and `clippy -D warnings` check the emitted Rust itself, and `tests/` runs it.
//!
//! The fixtures are the directory's `*.proto` files, found here as `codegen/tests/golden.rs`
//! finds them: a new fixture needs no list updated.

use std::path::PathBuf;

const GOLDEN: &str = "../../codegen/tests/golden";
const PROTOS: &str = "../../proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A directory is scanned whole: a fixture added, changed or removed reruns this script.
    println!("cargo:rerun-if-changed={GOLDEN}");
    let mut fixtures = Vec::new();
    for entry in std::fs::read_dir(GOLDEN)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            let name = path.file_name().ok_or("a fixture has a file name")?;
            fixtures.push(PathBuf::from(name));
        }
    }
    fixtures.sort();
    if fixtures.is_empty() {
        return Err(format!("no fixture (*.proto) in {GOLDEN}").into());
    }
    mosaic_codegen::configure().compile_protos(&fixtures, &[GOLDEN, PROTOS])?;
    Ok(())
}
