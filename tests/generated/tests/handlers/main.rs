//! The generated handlers of every golden fixture, run: each composer is hosted by a real
//! gateway in front of stub downstream services (real tonic servers on loopback that record
//! what they receive) and called with its generated tonic client. The tests check the answers
//! field by field against what the stubs returned, the downstream requests the composition
//! built, and the failure paths (downstream errors, validations, conversions, deadlines).

// Helpers outside `#[test]` functions are not covered by clippy's allow-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod aliases;
mod autobind;
mod conditions;
mod custom;
mod deployment;
mod enums;
mod errors;
mod fanout;
mod literals;
mod metadata;
mod resilience;
mod shapes;
mod simple;
mod storage;
mod switch;
mod times;
