//! The per-upstream resilience stack every downstream call goes through (crate-private).
//!
//! Each upstream in `gateway.toml` gets one stack, built once at start and cloned per call.
//! Typed calls made by generated handlers and raw pass-through calls use the *same* stack, so
//! a breaker opened by one protects the other and one limit covers both. Outermost first:
//!
//! ```text
//! ConcurrencyLimit   at most N calls in flight; the rest shed: RESOURCE_EXHAUSTED   (limit.rs)
//!   Deadline         the call's deadline bounds the wait, the head and the body      (deadline.rs)
//!     Balance        P2C over peak-EWMA; bounded wait for a ready endpoint; unsent
//!                    requests moved to another endpoint                    (balance/mod.rs)
//!       Endpoint     per endpoint: circuit breaker, latency, a pool of HTTP/2 conns  (endpoint.rs,
//!                    its calls accounted and their outcomes read      (balance/call.rs, breaker.rs)
//! ```
//!
//! Retries and hedging are *not* in this stack: an HTTP request's body streams and cannot be
//! replayed without a copy, while a typed call still holds its prost message. So they live one
//! layer up, in `client`: typed calls are retried and hedged around each call
//! (`client/retry.rs`), and pass-through calls to idempotent methods keep a bounded copy of a
//! small request (`client/replay.rs`); both draw on the upstream's retry budget. Here, only
//! requests that never left are moved to another endpoint (see `balance/mod.rs`).
//!
//! Every failure decided here is a [`crate::LocalError`]; `grpc/status.rs` maps each to one
//! code.

pub(crate) mod balance;
pub(crate) mod breaker;
pub(crate) mod deadline;
mod discover;
pub(crate) mod endpoint;
mod ewma;
pub(crate) mod limit;
pub(crate) mod policy;

pub(crate) use discover::Discovery;
pub(crate) use policy::UpstreamPolicy;
