//! The demo's generated code: the storefront edge API composed from the demo services, plus
//! prost types and tonic clients for everything it calls.

include!(concat!(env!("OUT_DIR"), "/mosaic.rs"));
