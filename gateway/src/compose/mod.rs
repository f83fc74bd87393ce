//! The facade that generated composition handlers call, and nothing else does.
//!
//! Code emitted by `mosaic-codegen` names runtime items only through
//! `::mosaic_gateway::compose::…`, so user names cannot clash with them and the generated code
//! holds no policy of its own: deadlines, step scheduling, error naming and expression helpers
//! all live here.

pub mod cel;
