//! Deterministic demo downstream services for Mosaic, with fault knobs.
//!
//! Mosaic composes calls to downstream gRPC services, so its demo and its whole-system tests
//! need real downstreams: real HTTP/2, real protobuf shapes (maps, proto3 `optional`, enums,
//! timestamps, every streaming kind) and data that is the same on every run, so an expected
//! response can be written down once. The resilience features (deadlines, retries, hedging,
//! breakers) also need downstreams that can be made slow, flaky or unresponsive on demand and
//! that count what they did, so the knobs live here, beside the services they disturb.
//!
//! Four services share one generated [`Dataset`]: users, catalog, reviews and inventory. Each
//! server ([`start`], [`start_on`]) also serves gRPC health, gRPC reflection (v1 and v1alpha)
//! and the `demo.faults.v1.FaultControl` service on the same port; injected faults only touch
//! the demo service's own methods, so health checks and reflection keep answering while the
//! service misbehaves. Every method of every server ends at its caller's `grpc-timeout` with
//! DEADLINE_EXCEEDED, as a real gRPC server's would, injected latency and hangs included.

mod catalog;
mod data;
mod deadline;
mod demo_service;
mod faults;
mod inventory;
mod request;
mod reviews;
mod server;
mod users;

pub use data::{Dataset, PRODUCT_COUNT, REVIEW_COUNT, USER_COUNT};
pub use demo_service::{DemoService, UnknownDemoService};
pub use faults::{
    CallRecord, FaultConfig, FaultHandle, FaultStats, JOURNAL_CAPACITY, Latency, MAX_LATENCY,
    ParseLatencyError, TraceParent, UnknownErrorCode, error_code_name, parse_error_code,
};
pub use server::{ServiceHandle, start, start_on};

/// Code generated from `proto/demo/**` by `build.rs` (prost messages, tonic clients and servers).
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    reason = "generated code"
)]
pub mod pb {
    /// `demo.users.v1`
    pub mod users {
        /// `demo.users.v1`
        pub mod v1 {
            tonic::include_proto!("demo.users.v1");
        }
    }
    /// `demo.catalog.v1`
    pub mod catalog {
        /// `demo.catalog.v1`
        pub mod v1 {
            tonic::include_proto!("demo.catalog.v1");
        }
    }
    /// `demo.reviews.v1`
    pub mod reviews {
        /// `demo.reviews.v1`
        pub mod v1 {
            tonic::include_proto!("demo.reviews.v1");
        }
    }
    /// `demo.inventory.v1`
    pub mod inventory {
        /// `demo.inventory.v1`
        pub mod v1 {
            tonic::include_proto!("demo.inventory.v1");
        }
    }
    /// `demo.faults.v1`
    pub mod faults {
        /// `demo.faults.v1`
        pub mod v1 {
            tonic::include_proto!("demo.faults.v1");
        }
    }
}

/// Encoded `google.protobuf.FileDescriptorSet` of every demo proto and the well-known types they
/// import, with source info (comments). Servers register it with gRPC reflection; the gateway
/// and tools can decode it to learn the downstream schemas without `protoc`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mosaic_demo_descriptor.bin"));
