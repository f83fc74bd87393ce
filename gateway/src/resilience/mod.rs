//! The per-upstream resilience stack every downstream call goes through.
//!
//! Each upstream in `gateway.toml` gets one stack, built once at start and cloned per call.
//! Typed calls made by generated handlers and raw pass-through calls use the *same* stack, so
//! a breaker opened by one protects the other and one limit covers both. Outermost first:
//!
//! ```text
//! ConcurrencyLimit   at most N calls in flight; the rest shed: RESOURCE_EXHAUSTED   (limit.rs)
//!   Deadline         the call's grpc-timeout bounds the wait and the response head   (deadline.rs)
//!     Balance        P2C over peak-EWMA; bounded wait for a ready endpoint; unsent
//!                    requests moved to another endpoint                               (balance.rs)
//!       Endpoint     per endpoint: circuit breaker, latency, a pool of HTTP/2 conns  (endpoint.rs,
//!                                                                                     breaker.rs)
//! ```
//!
//! Retries and hedging are *not* in this stack: an HTTP request's body streams and cannot be
//! replayed without buffering it, while a typed call still holds its prost message. So they
//! live one level up, in `compose::retry`, around each typed call, and draw on this upstream's
//! retry budget ([`crate::Upstream::budget`]). Pass-through calls get only the transparent
//! retry of requests that never left (see `balance.rs`).
//!
//! Every failure decided here is a [`crate::LocalError`]; `status.rs` maps each to one code.

pub mod balance;
pub mod breaker;
pub mod deadline;
mod discover;
pub mod endpoint;
pub mod ewma;
pub mod limit;
pub mod policy;

pub(crate) use discover::Discovery;
pub use policy::{BudgetPolicy, HedgePolicy, MethodPolicy, RetryPolicy, UpstreamPolicy};
