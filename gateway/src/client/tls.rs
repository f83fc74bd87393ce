//! TLS to an upstream: its `[upstreams.NAME.tls]` files read once, into the client
//! configuration every endpoint of the upstream shares.
//!
//! rustls with the ring provider (no OpenSSL), TLS 1.3 and 1.2 only, as on the edge listener.
//! ALPN offers `h2` alone: gRPC needs HTTP/2, and the endpoint refuses a server that picks
//! nothing (`resilience/endpoint.rs`). The upstream's certificate is verified against `ca`, or
//! the system's roots without it, for `server_name`, or each endpoint's host without it; with
//! `cert` and `key` the gateway presents a client certificate (mutual TLS).
//!
//! Files that do not load fail the building of the upstream, each message naming the file, so
//! a gateway refuses to start (or a reload to apply) rather than serve an upstream it cannot
//! reach, or reach without verifying it.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::ring::default_provider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::UpstreamTls;
use crate::resilience::endpoint::EndpointTls;

/// Reads the files of `tls` and prepares what the upstream's endpoints connect with.
pub(crate) fn endpoint_tls(tls: &UpstreamTls) -> Result<EndpointTls, String> {
    let provider = Arc::new(default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| error.to_string())?;
    let roots = match &tls.ca {
        Some(path) => roots_from(path)?,
        None => system_roots()?,
    };
    let builder = builder.with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|error| {
                format!("cannot read a private key from {}: {error}", key.display())
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|error| {
                    format!(
                        "cannot use the key in {} with the certificate in {}: {error}",
                        key.display(),
                        cert.display()
                    )
                })?
        }
        // Validation pairs them; one alone never reaches here.
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let server_name = match &tls.server_name {
        Some(name) => {
            let bare = name.trim_start_matches('[').trim_end_matches(']');
            Some(ServerName::try_from(bare.to_owned()).map_err(|error| {
                format!("`{name}` is not a name a certificate can carry: {error}")
            })?)
        }
        None => None,
    };
    Ok(EndpointTls {
        config: Arc::new(config),
        server_name,
    })
}

/// The certificates of a PEM file, at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// The CA certificates of `ca`, as trust anchors.
fn roots_from(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .map_err(|error| format!("{}: not a CA certificate: {error}", path.display()))?;
    }
    Ok(roots)
}

/// The system's trust anchors (rustls-native-certs: the platform store, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`); none found is an error, since no upstream could then be verified.
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        let why = if errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", errors.join("; "))
        };
        return Err(format!(
            "found no CA certificates in the system's store{why}; name a CA bundle with `ca`"
        ));
    }
    Ok(roots)
}
