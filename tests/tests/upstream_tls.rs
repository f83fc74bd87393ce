//! TLS and mutual TLS from the gateway to an upstream. The demo services speak h2c only, so each
//! test puts a TLS-terminating front before the users service: a rustls server (ALPN `h2`,
//! optionally requiring a client certificate) that proxies the decrypted bytes to the service's
//! plain-text port and remembers what each handshake showed (SNI, client certificate). The
//! gateway is a pass-through one with an `https://` upstream, called over plain text as usual.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use mosaic_demo_services::DemoService;
use mosaic_gateway::GatewayHandle;
use mosaic_tests::pb::users::v1::GetUserRequest;
use mosaic_tests::pb::users::v1::user_service_client::UserServiceClient;
use mosaic_tests::{channel, loopback, scratch_file, start_passthrough_gateway, start_service};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tonic::Code;

/// A certificate authority of one test, its certificate written to a PEM file.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pem: PathBuf,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let pem = write(&format!("upstream-tls-{name}.pem"), &cert.pem());
        Self { cert, key, pem }
    }

    /// A server certificate for `names` (DNS names or IP addresses), with its key.
    fn server(&self, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "users upstream");
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    /// A client certificate naming `uri`, written as PEM files (chain, key).
    fn client(&self, uri: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params
            .distinguished_name
            .push(DnType::CommonName, "gateway");
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (
            write("upstream-tls-client.pem", &cert.pem()),
            write("upstream-tls-client.key", &key.serialize_pem()),
        )
    }
}

fn write(name: &str, text: &str) -> PathBuf {
    let path = scratch_file(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// What one handshake at the front showed.
#[derive(Clone, Debug)]
struct Handshake {
    /// The SNI the gateway sent (none for an IP address).
    sni: Option<String>,
    /// The client certificate the gateway presented, DER.
    client_cert: Option<CertificateDer<'static>>,
}

/// A TLS-terminating front for a plain-text service.
struct Front {
    addr: SocketAddr,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
    failures: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

/// How the front is set up.
struct FrontSettings {
    cert: (CertificateDer<'static>, PrivateKeyDer<'static>),
    /// Client certificates required, chaining to this CA.
    client_ca: Option<PathBuf>,
    /// ALPN protocols offered; `h2` by default.
    alpn: Vec<Vec<u8>>,
}

impl FrontSettings {
    fn new(cert: (CertificateDer<'static>, PrivateKeyDer<'static>)) -> Self {
        Self {
            cert,
            client_ca: None,
            alpn: vec![b"h2".to_vec()],
        }
    }
}

impl Front {
    async fn start(backend: SocketAddr, settings: FrontSettings) -> Self {
        let provider = Arc::new(default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match &settings.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_file(ca).unwrap())
                    .unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let (cert, key) = settings.cert;
        let mut config = builder.with_single_cert(vec![cert], key).unwrap();
        config.alpn_protocols = settings.alpn;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let handshakes = Arc::clone(&handshakes);
            let failures = Arc::clone(&failures);
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let handshakes = Arc::clone(&handshakes);
                    let failures = Arc::clone(&failures);
                    tokio::spawn(async move {
                        let mut tls = match acceptor.accept(stream).await {
                            Ok(tls) => tls,
                            Err(error) => {
                                lock(&failures).push(error.to_string());
                                return;
                            }
                        };
                        let session = tls.get_ref().1;
                        lock(&handshakes).push(Handshake {
                            sni: session.server_name().map(str::to_owned),
                            client_cert: session
                                .peer_certificates()
                                .and_then(|chain| chain.first().cloned()),
                        });
                        let mut plain = TcpStream::connect(backend).await.unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    });
                }
            }
        });
        Self {
            addr,
            handshakes,
            failures,
            task,
        }
    }

    fn handshakes(&self) -> Vec<Handshake> {
        lock(&self.handshakes).clone()
    }

    fn failures(&self) -> Vec<String> {
        lock(&self.failures).clone()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits up to a second for `check` to hold: the front records a handshake in its own task,
/// which may run just after the gateway's side of the handshake is over.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    check()
}

/// A pass-through gateway whose upstream `users` is `https://` at `front`, with `tls` (lines
/// of `[upstreams.users.tls]`, empty for none).
async fn gateway(front: SocketAddr, tls: &str) -> anyhow::Result<GatewayHandle> {
    let table = if tls.is_empty() {
        String::new()
    } else {
        format!("\n[upstreams.users.tls]\n{tls}\n")
    };
    start_passthrough_gateway(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\ndrain_timeout = \"1s\"\n\n\
         [upstreams.users]\nendpoints = [\"https://127.0.0.1:{}\"]\n\
         services = [\"demo.users.v1.UserService\"]\nconnect_timeout = \"2s\"\n{table}",
        front.port()
    ))
    .await
}

async fn get_user(gateway: &GatewayHandle) -> Result<String, tonic::Status> {
    let response = UserServiceClient::new(channel(gateway.local_addr()))
        .get_user(GetUserRequest { id: 3 })
        .await?;
    Ok(response
        .into_inner()
        .user
        .map(|user| user.display_name)
        .unwrap_or_default())
}

#[tokio::test]
async fn a_pass_through_call_reaches_an_https_upstream_verified_by_a_private_ca() {
    let users = start_service(DemoService::Users).await.unwrap();
    let ca = Ca::new("users-ca");
    let front = Front::start(
        users.local_addr(),
        FrontSettings::new(ca.server(&["127.0.0.1"])),
    )
    .await;
    let gateway = gateway(front.addr, &format!("ca = \"{}\"", ca.pem.display()))
        .await
        .unwrap();

    let direct = UserServiceClient::new(channel(users.local_addr()))
        .get_user(GetUserRequest { id: 3 })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .display_name;
    assert_eq!(get_user(&gateway).await.unwrap(), direct);
    assert_eq!(get_user(&gateway).await.unwrap(), direct);
    let handshakes = front.handshakes();
    assert!(
        (1..=2).contains(&handshakes.len()),
        "at most the two connections of the endpoint's pool: {handshakes:?}"
    );
    for handshake in &handshakes {
        assert_eq!(handshake.sni, None, "no SNI for an IP address");
        assert!(handshake.client_cert.is_none());
    }
    assert_eq!(front.failures(), Vec::<String>::new());
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_upstream_certificate_from_another_ca_fails_the_call_unavailable() {
    let users = start_service(DemoService::Users).await.unwrap();
    let ca = Ca::new("users-ca");
    let stranger = Ca::new("stranger-ca");
    let front = Front::start(
        users.local_addr(),
        FrontSettings::new(ca.server(&["127.0.0.1"])),
    )
    .await;
    let gateway = gateway(front.addr, &format!("ca = \"{}\"", stranger.pem.display()))
        .await
        .unwrap();

    let status = get_user(&gateway).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let message = status.message();
    assert!(message.contains("upstream `users`"), "{message}");
    assert!(
        message.contains(&format!("at https://{}", front.addr)),
        "the endpoint is named by its scheme: {message}"
    );
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
    assert!(front.handshakes().is_empty(), "no session was established");
    assert_eq!(
        users.faults().stats().calls_total,
        0,
        "nothing reached the service"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_upstream_requiring_a_client_certificate_gets_the_gateways() {
    let users = start_service(DemoService::Users).await.unwrap();
    let ca = Ca::new("users-ca");
    let clients = Ca::new("clients-ca");
    let mut settings = FrontSettings::new(ca.server(&["127.0.0.1"]));
    settings.client_ca = Some(clients.pem.clone());
    let front = Front::start(users.local_addr(), settings).await;

    let without = gateway(front.addr, &format!("ca = \"{}\"", ca.pem.display()))
        .await
        .unwrap();
    let status = get_user(&without).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("upstream `users`"), "{status:?}");
    assert_eq!(users.faults().stats().calls_total, 0);
    let refused = eventually(|| {
        front
            .failures()
            .iter()
            .any(|failure| failure.contains("peer sent no certificates"))
    })
    .await;
    assert!(
        refused,
        "the front refused a client without a certificate: {:?}",
        front.failures()
    );
    without.shutdown().await;

    let (cert, key) = clients.client("spiffe://mosaic.test/gateway");
    let with = gateway(
        front.addr,
        &format!(
            "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
            ca.pem.display(),
            cert.display(),
            key.display()
        ),
    )
    .await
    .unwrap();
    get_user(&with).await.unwrap();
    let presented = front
        .handshakes()
        .into_iter()
        .find_map(|handshake| handshake.client_cert)
        .expect("the front saw a client certificate");
    assert_eq!(presented, CertificateDer::from_pem_file(&cert).unwrap());
    assert_eq!(users.faults().stats().calls_total, 1);
    with.shutdown().await;
}

#[tokio::test]
async fn server_name_is_the_name_verified_and_sent_as_sni() {
    let users = start_service(DemoService::Users).await.unwrap();
    let ca = Ca::new("users-ca");
    let front = Front::start(
        users.local_addr(),
        FrontSettings::new(ca.server(&["users.internal"])),
    )
    .await;

    let by_address = gateway(front.addr, &format!("ca = \"{}\"", ca.pem.display()))
        .await
        .unwrap();
    let status = get_user(&by_address).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("certificate not valid for name"),
        "the address 127.0.0.1 is verified, and the certificate names users.internal: {status:?}"
    );
    by_address.shutdown().await;

    let by_name = gateway(
        front.addr,
        &format!(
            "ca = \"{}\"\nserver_name = \"users.internal\"",
            ca.pem.display()
        ),
    )
    .await
    .unwrap();
    get_user(&by_name).await.unwrap();
    let handshakes = front.handshakes();
    assert_eq!(handshakes.len(), 1, "{handshakes:?}");
    assert_eq!(handshakes[0].sni.as_deref(), Some("users.internal"));
    assert!(
        front
            .failures()
            .iter()
            .any(|failure| failure.contains("BadCertificate")),
        "the first gateway turned the certificate down: {:?}",
        front.failures()
    );
    by_name.shutdown().await;
}

#[tokio::test]
async fn an_upstream_that_does_not_pick_h2_is_refused() {
    let users = start_service(DemoService::Users).await.unwrap();
    let ca = Ca::new("users-ca");
    let mut settings = FrontSettings::new(ca.server(&["127.0.0.1"]));
    settings.alpn = Vec::new();
    let front = Front::start(users.local_addr(), settings).await;
    let gateway = gateway(front.addr, &format!("ca = \"{}\"", ca.pem.display()))
        .await
        .unwrap();

    let status = get_user(&gateway).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("did not negotiate HTTP/2 over ALPN (it chose no protocol)"),
        "{status:?}"
    );
    assert_eq!(users.faults().stats().calls_total, 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn tls_files_that_do_not_load_fail_the_start_naming_the_file() {
    let ca = Ca::new("users-ca");
    let missing = scratch_file("upstream-tls-missing-ca.pem");
    let error = gateway(
        "127.0.0.1:1".parse().unwrap(),
        &format!("ca = \"{}\"", missing.display()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("cannot set up TLS to upstream `users`: cannot read "),
        "{error}"
    );
    assert!(error.contains(&missing.display().to_string()), "{error}");

    // A key that belongs to another certificate.
    let (cert, _) = ca.client("spiffe://mosaic.test/a");
    let (_, other_key) = ca.client("spiffe://mosaic.test/b");
    let error = gateway(
        "127.0.0.1:1".parse().unwrap(),
        &format!(
            "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
            ca.pem.display(),
            cert.display(),
            other_key.display()
        ),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains(&other_key.display().to_string()), "{error}");
    assert!(error.contains(&cert.display().to_string()), "{error}");
}
