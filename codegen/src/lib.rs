//! Mosaic's build-time generator.
//!
//! It will turn `.proto` files annotated with `mosaic.v1` composition options into typed
//! aggregation handlers. The pipeline is descriptors → IR → checks → plan → emission; see
//! `ARCHITECTURE.md`. Nothing is generated yet: the crate exists so the workspace has its final shape.
