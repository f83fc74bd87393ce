//! The `google.api.http` rule, shared by the generator and the gateway so that a template the
//! generator accepts is exactly one the gateway routes.
//!
//! - [`template`]: the path template grammar (`/v1/{name=shelves/*/books/*}:verb`), parsed
//!   with byte positions for diagnostics;
//! - [`binding`]: one HTTP binding of one method, checked against the method's messages (every
//!   variable names a singular scalar field, the body and `response_body` fields exist);
//! - [`matcher`]: one matcher built once over every binding: literal segments before `*`
//!   before `**` whatever the declaration order, 404 against 405, percent-decoding as the spec
//!   says;
//! - [`escape`]: percent-decoding of path segments and query strings;
//! - [`openapi`]: the OpenAPI 3.1 document of a set of bindings.

pub mod binding;
pub mod escape;
pub mod matcher;
pub mod openapi;
pub mod template;

pub use binding::{Binding, BodyRule, FieldPath, HttpMethod, Rule, RuleError, RulePart};
pub use matcher::{Conflict, Lookup, Matcher};
pub use template::{Segment, Template, TemplateError, Variable};
