//! The facade that generated composition handlers call, and nothing else does.
//!
//! Code emitted by `mosaic-codegen` names runtime items only through
//! `::mosaic_gateway::compose::…`, so user names cannot clash with them and the generated code
//! holds no policy of its own: deadlines, step scheduling, error naming and expression helpers
//! all live here. Everything such code needs is re-exported from this module, the tonic and
//! std types included.
//!
//! # The pieces, by idea
//!
//! - [`EdgeCall`] (`deadline.rs`): the edge call's deadline, fixed when the handler starts;
//!   [`EdgeCall::run`] bounds the handler by it, and [`EdgeCall::downstream_request`] gives each
//!   downstream call the time left as `grpc-timeout`.
//! - [`step`] and [`Step`] (`step.rs`): one task per step of the composition graph; a step
//!   starts as soon as the steps it awaits are done, runs at most once, and is cancelled when its
//!   last handle is dropped.
//! - [`map_ordered`] (`map.rs`): a `map` step's elements, concurrently under a bound, in order,
//!   failing on the first error.
//! - [`step_failed`] and [`ComposeError`] (`error.rs`): failures that name the step and the
//!   downstream method and keep the downstream's code.
//! - [`Downstreams`] (`downstream.rs`): the tonic channel for each downstream service, from
//!   `gateway.toml`.
//! - [`Deployment`] (`deployment.rs`): the values compositions read as `$env`, loaded once
//!   when a composer is built.
//! - [`cel`]: helpers for compiled expressions.
//! - [`EdgeCodec`] (`codec.rs`): the codec of generated edge servers, which answers a request
//!   message that does not decode with `INVALID_ARGUMENT` rather than tonic's `INTERNAL`.
//!
//! # The shape of a generated handler
//!
//! Each step is spawned as soon as it is declared; dependents await clones of the handles they
//! read; the handler awaits what the response needs together, so the first failure ends the
//! call, and [`EdgeCall::run`] bounds it all by the deadline. Returning (with a value, an error,
//! or at the deadline) drops the handles, which cancels whatever still runs.
//!
//! ```
//! use mosaic_gateway::compose::{self, Duration, EdgeCall, Request, Response, Status};
//!
//! // Stands in for a typed tonic client call.
//! async fn get_product(request: Request<u64>) -> Result<Response<String>, Status> {
//!     Ok(Response::new(format!("product {}", request.into_inner())))
//! }
//!
//! async fn get_product_page(request: Request<u64>) -> Result<Response<(String, Vec<u32>)>, Status> {
//!     let edge = EdgeCall::start(
//!         &request,
//!         "demo.storefront.v1.Storefront/GetProductPage",
//!         Some(Duration::from_millis(800)),
//!     );
//!     let input = compose::Arc::new(request.into_inner());
//!     edge.run(async move {
//!         let p = compose::step({
//!             let input = input.clone();
//!             async move {
//!                 let request = edge.downstream_request(*input, None)?;
//!                 get_product(request).await.map(Response::into_inner).map_err(|status| {
//!                     compose::step_failed("p", "demo.catalog.v1.CatalogService/GetProduct", status)
//!                 })
//!             }
//!         });
//!         let rs = compose::step(async { Ok(vec![4_u32, 5]) });
//!         let reviews = compose::step({
//!             let rs = rs.clone();
//!             async move {
//!                 let rs = rs.await?;
//!                 compose::map_ordered(rs.iter(), compose::DEFAULT_MAP_CONCURRENCY, |r| async move {
//!                     Ok(r * 10)
//!                 })
//!                 .await
//!             }
//!         });
//!         let (p, reviews) = compose::try_join!(p, reviews)?;
//!         Ok(Response::new((p.as_ref().clone(), reviews.as_ref().clone())))
//!     })
//!     .await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let page = get_product_page(Request::new(501)).await.expect("composed");
//! assert_eq!(page.into_inner(), ("product 501".to_owned(), vec![40, 50]));
//! # }
//! ```

// What generated code alone uses is hidden from the docs: users write protos, not these calls.
// `Composer`, `Downstreams`, `EdgeCall` and `ComposeError` are what a user's own code meets.
#[doc(hidden)]
pub mod cel;
mod codec;
mod composer;
mod deployment;
mod error;
mod handle;
mod map;
mod metadata;
mod step;

#[doc(hidden)]
pub use std::sync::Arc;
#[doc(hidden)]
pub use std::time::Duration;

#[doc(hidden)]
pub use tokio::time::Instant;
/// Awaits several steps (or any futures returning `Result<_, Status>`) together and returns on
/// the first error: the way a handler should wait for the steps its response reads.
#[doc(hidden)]
pub use tokio::try_join;
#[doc(hidden)]
pub use tonic::{Code, Request, Response, Status, async_trait};

#[doc(hidden)]
pub use self::codec::EdgeCodec;
pub use self::composer::Composer;
pub use self::deployment::{Deployment, DeploymentError};
#[doc(hidden)]
pub use self::deployment::{EnvValue, Reader, deployment, with_deployment};
#[doc(hidden)]
pub use self::error::{call_downstream, step_failed};
#[doc(hidden)]
pub use self::handle::{call_error, handler_status, ignored, rejection};
#[doc(hidden)]
pub use self::map::{DEFAULT_MAP_CONCURRENCY, map_ordered};
#[doc(hidden)]
pub use self::metadata::{
    Outgoing, ResponseMetadata, call_downstream_capturing, pick_incoming, with_incoming,
};
#[doc(hidden)]
pub use self::step::{Step, step, step_if};
#[doc(hidden)]
pub use crate::client::PARTIAL_HEADER;
#[doc(hidden)]
pub use crate::client::{
    CallRetry, CallSpec, DEFAULT_EDGE_TIMEOUT, DOWNSTREAM_MARGIN, DownstreamChannel, MethodDefaults,
};
pub use crate::client::{CallsSaved, Downstreams, EdgeCall};
pub use crate::grpc::status::ComposeError;
#[doc(hidden)]
pub use tonic_types::ErrorDetails;
#[doc(hidden)]
pub use tracing;

/// The caller of the edge call being served, as composition expressions read it (`caller`):
/// the token's claims as text, then `consumer`, `plan` and `scheme`; empty when `[auth]` did
/// not identify the caller.
pub fn caller() -> Arc<std::collections::BTreeMap<String, String>> {
    crate::grpc::context::caller()
}
