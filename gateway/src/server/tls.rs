//! TLS on the edge listener: rustls with the ring provider (no OpenSSL), TLS 1.3 and 1.2 only,
//! ALPN `h2` then `http/1.1`, so gRPC, gRPC-Web, Connect and HTTP/JSON share the port as they
//! do in plain text. With `client_ca`, client certificates are verified against those CAs
//! (mutual TLS): required by default, or optional, letting clients without one through
//! unauthenticated. The certificate chain and key come from PEM files and are read again
//! when either file's modification time changes (checked every `reload_interval`): new
//! handshakes get the new certificate, connections already open keep theirs, and files that
//! do not load (half written, a key that does not match) leave the certificate in force and
//! are logged.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::ring::default_provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::error::GatewayError;
use crate::config::TlsConfig;

/// How long a client may take to finish the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate in force, swapped when its files change.
#[derive(Debug)]
pub(crate) struct ReloadingCert {
    config: TlsConfig,
    current: ArcSwap<CertifiedKey>,
    /// The files' modification times when `current` was read.
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads the chain and key and checks that they belong together.
fn load(config: &TlsConfig) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert)
        .map_err(|error| format!("cannot read {}: {error}", config.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|error| format!("{}: {error}", config.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", config.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|error| {
        format!(
            "cannot read a private key from {}: {error}",
            config.key.display()
        )
    })?;
    let key = default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| format!("{}: {error}", config.key.display()))?;
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().map_err(|error| {
        format!(
            "the key in {} does not belong to the certificate in {}: {error}",
            config.key.display(),
            config.cert.display()
        )
    })?;
    Ok(certified)
}

impl ReloadingCert {
    fn new(config: &TlsConfig) -> Result<Self, String> {
        let stamps = (modified(&config.cert), modified(&config.key));
        Ok(Self {
            current: ArcSwap::from_pointee(load(config)?),
            config: config.clone(),
            stamps: Mutex::new(stamps),
        })
    }

    /// Reads the files again if they changed since the last read; returns whether the
    /// certificate was replaced.
    pub(crate) fn refresh(&self) -> bool {
        let now = (modified(&self.config.cert), modified(&self.config.key));
        let mut stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        if *stamps == now {
            return false;
        }
        match load(&self.config) {
            Ok(certified) => {
                self.current.store(Arc::new(certified));
                *stamps = now;
                tracing::info!(cert = %self.config.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(error) => {
                // Not marked as read: the next check tries again (the files may be mid-write).
                tracing::warn!(%error, "the TLS files changed but do not load; the certificate in force stays");
                false
            }
        }
    }
}

/// The acceptor for `config`, and the certificate it serves (to refresh).
pub(crate) fn acceptor(
    config: &TlsConfig,
) -> Result<(TlsAcceptor, Arc<ReloadingCert>), GatewayError> {
    let refuse = |reason: String| GatewayError::Tls { reason };
    let resolver = Arc::new(ReloadingCert::new(config).map_err(refuse)?);
    let provider = Arc::new(default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| refuse(error.to_string()))?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|error| refuse(format!("cannot read {}: {error}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|error| refuse(format!("{}: {error}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|error| refuse(format!("{}: {error}", path.display())))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if config.client_cert_required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|error| refuse(format!("{}: {error}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server =
        builder.with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(server)), resolver))
}

/// Checks the files every `config.reload_interval` until the returned task is aborted.
pub(crate) fn watch(resolver: Arc<ReloadingCert>) -> tokio::task::JoinHandle<()> {
    let interval = resolver.config.reload_interval;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            resolver.refresh();
        }
    })
}
