//! One bounded HTTP GET, for key sets published at a URL (`http` or `https`).
//!
//! A JWKS fetch is one request every few minutes to one host, so it takes a fresh HTTP/1.1
//! connection each time rather than a pooled client: nothing is held between fetches and the
//! whole exchange (connect, TLS, headers, body) runs under one timeout and one size bound.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// The body of `GET url`, which must answer 200 within `timeout` and `max_bytes`.
pub(crate) async fn get(
    url: &Uri,
    ca: Option<&Path>,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    tokio::time::timeout(timeout, exchange(url, ca, max_bytes))
        .await
        .map_err(|_| {
            format!(
                "GET {url} took longer than {}",
                humantime::format_duration(timeout)
            )
        })?
}

async fn exchange(url: &Uri, ca: Option<&Path>, max_bytes: usize) -> Result<Vec<u8>, String> {
    let host = url.host().ok_or_else(|| format!("{url} has no host"))?;
    let tls = match url.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{url}: only http and https URLs are fetched")),
    };
    let port = url.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|error| format!("cannot connect to {host}:{port}: {error}"))?;
    let request = Request::get(url.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, url.authority().map_or(host, |a| a.as_str()))
        .header(header::ACCEPT, "application/json")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|error| error.to_string())?;
    let response = if tls {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(ca)?));
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|error| format!("{host}: {error}"))?;
        let stream = connector
            .connect(name, stream)
            .await
            .map_err(|error| format!("TLS with {host}: {error}"))?;
        send(TokioIo::new(stream), request).await?
    } else {
        send(TokioIo::new(stream), request).await?
    };
    if !response.status().is_success() {
        return Err(format!("GET {url} answered {}", response.status()));
    }
    let body = Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|error| format!("reading {url}: {error}"))?;
    Ok(body.to_bytes().to_vec())
}

async fn send<T>(
    io: TokioIo<T>,
    request: Request<Empty<bytes::Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|error| error.to_string())?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "key-set connection ended with an error");
        }
    });
    sender
        .send_request(request)
        .await
        .map_err(|error| error.to_string())
}

/// TLS for a fetch: the CAs in `ca`, else the system's roots.
fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?
            {
                let cert = cert.map_err(|error| format!("{}: {error}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}
