//! Mutual TLS as an authentication scheme: the client certificate's SAN names the consumer,
//! and a policy admits consumers by that name. Three independent clients present certificates:
//! tonic (rustls), curl (OpenSSL) and, in the ignored test, Python's grpcio (C-core).

use std::path::PathBuf;

use mosaic_demo::demo::users::v1::GetUserRequest;
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo_services::DemoService;
use mosaic_tests::{Stack, scratch_file};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Certificate files of one test run.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// The client CA the gateway trusts.
    client_ca: PathBuf,
    /// `spiffe://mosaic.test/web`, admitted by the policy.
    web: (PathBuf, PathBuf),
    /// `spiffe://mosaic.test/batch`, a valid certificate the policy does not admit.
    batch: (PathBuf, PathBuf),
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

fn write(name: &str, text: &str) -> PathBuf {
    let path = scratch_file(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn client(issuer: &(rcgen::Certificate, KeyPair), uri: &str, name: &str) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
    (
        write(&format!("mtls-{name}.pem"), &cert.pem()),
        write(&format!("mtls-{name}.key"), &key.serialize_pem()),
    )
}

fn pki() -> Pki {
    let (server_ca, server_ca_key) = ca("edge CA");
    let server_key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let server = params
        .signed_by(&server_key, &server_ca, &server_ca_key)
        .unwrap();
    let client_issuer = ca("clients CA");
    let client_ca = &client_issuer.0;
    Pki {
        ca: write("mtls-ca.pem", &server_ca.pem()),
        server_cert: write("mtls-server.pem", &server.pem()),
        server_key: write("mtls-server.key", &server_key.serialize_pem()),
        client_ca: write("mtls-client-ca.pem", &client_ca.pem()),
        web: client(&client_issuer, "spiffe://mosaic.test/web", "web"),
        batch: client(&client_issuer, "spiffe://mosaic.test/batch", "batch"),
    }
}

async fn start(pki: &Pki) -> Stack {
    let tls = format!(
        "\n[listener.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\nclient_auth = \"optional\"\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.client_ca.display()
    );
    let auth = r#"
[auth.mtls]

[auth.policies."demo.users.v1.UserService"]
consumers = ["spiffe://mosaic.test/web"]
"#;
    Stack::start_with(|config| {
        config.replacen(
            "drain_timeout = \"5s\"\n",
            &format!("drain_timeout = \"5s\"\n{tls}"),
            1,
        ) + auth
    })
    .await
    .unwrap()
}

async fn curl_with(pki: &Pki, cert: Option<&(PathBuf, PathBuf)>, url: &str) -> (u16, String) {
    let mut command = tokio::process::Command::new("curl");
    command
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(&pki.ca);
    if let Some((cert, key)) = cert {
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let output = command.arg(url).output().await.expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

async fn tonic_get_user(
    stack: &Stack,
    pki: &Pki,
    cert: Option<&(PathBuf, PathBuf)>,
) -> Result<(), tonic::Status> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca).unwrap()))
        .domain_name("localhost");
    if let Some((cert, key)) = cert {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ));
    }
    let channel =
        Endpoint::from_shared(format!("https://127.0.0.1:{}", stack.gateway_addr().port()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
    UserServiceClient::new(channel)
        .get_user(GetUserRequest { id: 3 })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_client_certificate_names_the_consumer_a_policy_admits() {
    let pki = pki();
    let stack = start(&pki).await;
    let users = || {
        stack
            .service(DemoService::Users)
            .faults()
            .stats()
            .calls_total
    };
    let before = users();

    tonic_get_user(&stack, &pki, Some(&pki.web)).await.unwrap();
    let denied = tonic_get_user(&stack, &pki, Some(&pki.batch))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "permission denied: consumer `spiffe://mosaic.test/batch` is not among those allowed to call this method"
    );
    let anonymous = tonic_get_user(&stack, &pki, None).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(
        anonymous.message(),
        "missing credentials: this method needs a client certificate"
    );
    assert_eq!(users(), before + 1, "refused calls reach nothing");

    let url = format!(
        "https://127.0.0.1:{}/v1/users/3",
        stack.gateway_addr().port()
    );
    let (status, body) = curl_with(&pki, Some(&pki.web), &url).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = curl_with(&pki, Some(&pki.batch), &url).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = curl_with(&pki, None, &url).await;
    assert_eq!(status, 401);
    assert_eq!(users(), before + 2);
}

#[tokio::test]
#[ignore = "needs python3 with grpcio (.ci/run installs it)"]
async fn python_grpcio_presents_a_client_certificate() {
    let pki = pki();
    let stack = start(&pki).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/grpcio_mtls_client.py");
    let address = format!("127.0.0.1:{}", stack.gateway_addr().port());
    let run = |cert: &(PathBuf, PathBuf)| {
        let mut command = std::process::Command::new("python3");
        command
            .arg(script)
            .arg(&address)
            .arg(&pki.ca)
            .arg(&cert.0)
            .arg(&cert.1);
        command
    };
    let ok = tokio::task::spawn_blocking({
        let mut command = run(&pki.web);
        move || command.output().expect("python3 runs")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        text.starts_with("OK\n"),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let denied = tokio::task::spawn_blocking({
        let mut command = run(&pki.batch);
        move || command.output().expect("python3 runs")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&denied.stdout).into_owned();
    assert!(text.starts_with("PERMISSION_DENIED\n"), "{text}");
    assert!(text.contains("spiffe://mosaic.test/batch"), "{text}");
}
