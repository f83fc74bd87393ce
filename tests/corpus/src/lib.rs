//! The soundness corpus: whatever the checker accepts must compile.
//!
//! `build.rs` generates proto files programmatically (see `build/`) into `OUT_DIR/protos`.
//! Each case is a small, self-contained package with its own downstream and edge services,
//! valid per `mosaic-codegen`'s checker, and the cases combine systematically:
//!
//! - value kinds: every proto scalar, enums, messages and the well-known types, singular,
//!   `repeated`, `map<K, V>` (every key kind), proto3 `optional` and oneof members, as
//!   response fields, step values, message arguments and downstream request fields;
//! - constructs: field and step `by`, `call` (with `request` and `timeout`), `message` with
//!   `args`, `map` with each body, `validation`, guards, `autobind`, `caller`, method timeouts,
//!   steps read by one, several or no readers;
//! - expressions: the language's operators, functions, methods and literals;
//! - shapes: nested messages, recursion, deep and one-segment packages, name clashes with
//!   generated items and Rust keywords.
//!
//! The generated code of every selected case is compiled into this crate, so `cargo build` and
//! `cargo clippy --workspace --all-targets -- -D warnings` check it.
//!
//! Cases the checker accepts but whose generated code is broken today are listed in
//! `KNOWN_UNSOUND` in `build.rs` (and in [`EXCLUDED`] of a build) and left out. To reproduce
//! them:
//!
//! ```text
//! MOSAIC_CORPUS_ALL=1 cargo build -p mosaic-corpus-check              # every case
//! MOSAIC_CORPUS_ONLY=oneof_by_int32 cargo build -p mosaic-corpus-check # just these (comma-separated)
//! ```
//!
//! The protos of every case, excluded ones included, are written to
//! `target/debug/build/mosaic-corpus-check-*/out/protos/corpus/`, to read or to run
//! `mosaic-codegen check` on.

include!(concat!(env!("OUT_DIR"), "/corpus_index.rs"));
include!(concat!(env!("OUT_DIR"), "/mosaic.rs"));
