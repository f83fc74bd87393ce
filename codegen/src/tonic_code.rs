//! The prost types and tonic clients and servers of every file compiled.
//!
//! tonic-prost-build gives all clients and servers one codec. Edge (composed) services need
//! another on their servers: a request message that does not decode is the caller's mistake
//! and must answer `INVALID_ARGUMENT`, which `mosaic_gateway::compose::EdgeCodec` does, while
//! tonic-prost's codec answers `INTERNAL`. The same codec on the generated *clients* would be
//! wrong, since what a client decodes is a downstream's response, and a malformed one is the
//! downstream's fault. So [`Services`] generates each service's client with tonic-prost's codec
//! and its server with the codec its kind needs: the edge codec for services with the
//! `mosaic.v1.service` option, tonic-prost's for every other (downstream) service, whose servers
//! behave like any tonic server.

use std::collections::BTreeSet;
use std::path::Path;

use prost_build::{Service, ServiceGenerator};
use prost_reflect::DescriptorPool;

/// The codec of edge servers, as generated code names it.
const EDGE_CODEC: &str = "::mosaic_gateway::compose::EdgeCodec";

/// Writes the prost types and the tonic clients and servers of `files` (whose descriptors are
/// in `pool`, options readable) to `out_dir`, one file per package.
pub(crate) fn compile(
    pool: &DescriptorPool,
    files: tonic_prost_build::FileDescriptorSet,
    out_dir: &Path,
) -> std::io::Result<()> {
    let services = Services {
        edge: edge_services(pool),
        clients: tonic_prost_build::configure()
            .build_client(true)
            .build_server(false)
            .service_generator(),
        servers: tonic_prost_build::configure()
            .build_client(false)
            .build_server(true)
            .service_generator(),
        edge_servers: tonic_prost_build::configure()
            .build_client(false)
            .build_server(true)
            .codec_path(EDGE_CODEC)
            .service_generator(),
    };
    let mut config = tonic_prost_build::Config::new();
    config.service_generator(Box::new(services));
    // No client or server here: with either on, tonic-prost-build would replace the service
    // generator set in `config` by its own.
    tonic_prost_build::configure()
        .btree_map(".")
        // A `map`'s call step, the one large member of its oneof, so the oneof stays small.
        .boxed(".mosaic.v1.MapStep.body.call")
        .build_client(false)
        .build_server(false)
        .out_dir(out_dir)
        .compile_fds_with_config(files, config)
}

/// The fully qualified names of the services with the `mosaic.v1.service` option.
fn edge_services(pool: &DescriptorPool) -> BTreeSet<String> {
    let Some(option) = pool.get_extension_by_name("mosaic.v1.service") else {
        return BTreeSet::new();
    };
    pool.services()
        .filter(|service| service.options().has_extension(&option))
        .map(|service| service.full_name().to_owned())
        .collect()
}

/// Generates each service's client, then its server with the codec its kind needs (see the
/// module docs).
struct Services {
    /// Fully qualified names of the edge services.
    edge: BTreeSet<String>,
    clients: Box<dyn ServiceGenerator>,
    servers: Box<dyn ServiceGenerator>,
    edge_servers: Box<dyn ServiceGenerator>,
}

impl Services {
    fn all(&mut self) -> [&mut Box<dyn ServiceGenerator>; 3] {
        [&mut self.clients, &mut self.servers, &mut self.edge_servers]
    }
}

impl ServiceGenerator for Services {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let name = if service.package.is_empty() {
            service.proto_name.clone()
        } else {
            format!("{}.{}", service.package, service.proto_name)
        };
        self.clients.generate(service.clone(), buf);
        if self.edge.contains(&name) {
            self.edge_servers.generate(service, buf);
        } else {
            self.servers.generate(service, buf);
        }
    }

    fn finalize(&mut self, buf: &mut String) {
        for generator in self.all() {
            generator.finalize(buf);
        }
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        for generator in self.all() {
            generator.finalize_package(package, buf);
        }
    }
}
