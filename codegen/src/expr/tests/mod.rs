//! Tests of the expression layer: each file covers one stage, through the public API only
//! (plus [`fixture`], a small schema shaped like the demo's storefront).

mod check;
mod emit;
mod fixture;
mod parse;
mod robustness;
