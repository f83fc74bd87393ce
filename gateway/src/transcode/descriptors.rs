//! The one descriptor pool the HTTP edge reads: every descriptor set the gateway was given,
//! with their options kept (the `google.api.http` annotations are extensions, which
//! `prost_types` would drop), plus the protos it always needs (`google.rpc.Status` and the
//! error details, `google.api.HttpBody`, the health service).

use prost_reflect::DescriptorPool;

/// `google.rpc` status and details, `google.api` annotations and `HttpBody` (`build.rs`).
const EDGE_DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/edge_descriptors.bin"));

/// Decodes `sets` (encoded `FileDescriptorSet`s, each named by its origin) into one pool. A
/// file that appears in several sets is taken from the first.
pub(crate) fn edge_pool<'a>(
    sets: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<DescriptorPool, (String, String)> {
    let mut pool = DescriptorPool::new();
    let built_in = [
        (
            "the gateway's google.rpc and google.api protos",
            EDGE_DESCRIPTORS,
        ),
        ("grpc.health.v1", tonic_health::pb::FILE_DESCRIPTOR_SET),
    ];
    for (origin, encoded) in sets.into_iter().chain(built_in) {
        pool.decode_file_descriptor_set(encoded)
            .map_err(|error| (origin.to_owned(), error.to_string()))?;
    }
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_protos_resolve() {
        let pool = edge_pool([]).unwrap();
        for name in [
            "google.rpc.Status",
            "google.rpc.ErrorInfo",
            "google.rpc.BadRequest",
            "google.api.HttpBody",
            "google.api.HttpRule",
            "grpc.health.v1.HealthCheckRequest",
        ] {
            assert!(pool.get_message_by_name(name).is_some(), "{name}");
        }
        assert!(pool.get_extension_by_name("google.api.http").is_some());
    }
}
