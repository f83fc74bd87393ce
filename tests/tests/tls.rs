//! TLS on the edge listener, with curl as the client: HTTP/2 by ALPN and HTTP/1.1 on the same
//! port, TLS 1.2 and 1.3 accepted, a plain-text request refused, and a certificate rotated by
//! rewriting its files while the gateway serves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mosaic_tests::curl::CurlResponse;
use mosaic_tests::{Stack, scratch_file};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA (its certificate, PEM) and a server certificate for 127.0.0.1 it signed, with its key.
struct Issued {
    ca: String,
    cert: String,
    key: String,
}

fn issue(name: &str) -> Issued {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} edge"));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Issued {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

struct Files {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn write(issued: &Issued, files: &Files) {
    std::fs::write(&files.ca, &issued.ca).unwrap();
    // Key first, then the certificate: the gateway reloads once both match.
    std::fs::write(&files.key, &issued.key).unwrap();
    std::fs::write(&files.cert, &issued.cert).unwrap();
}

/// The demo stack with `tls` (a `[listener.tls]` table) in the listener's configuration.
async fn start_with_tls(tls: &str) -> anyhow::Result<Stack> {
    Stack::start_with(|config| {
        config.replacen(
            "drain_timeout = \"5s\"\n",
            &format!("drain_timeout = \"5s\"\n{tls}"),
            1,
        )
    })
    .await
}

async fn curl_tls(args: &[&str], ca: &Path, url: &str) -> Result<CurlResponse, String> {
    let ca = ca.display().to_string();
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--cacert", &ca])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl runs");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    let mut parts = status_line.split_whitespace();
    let version = parts
        .next()
        .unwrap_or_default()
        .trim_start_matches("HTTP/")
        .to_owned();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    Ok(CurlResponse {
        version,
        status,
        headers: Vec::new(),
        body,
    })
}

#[tokio::test]
async fn http2_and_http1_over_tls_and_a_rotated_certificate() {
    let files = Files {
        ca: scratch_file("tls-ca.pem"),
        cert: scratch_file("tls-cert.pem"),
        key: scratch_file("tls-key.pem"),
    };
    let first = issue("first");
    write(&first, &files);
    let tls = format!(
        "\n[listener.tls]\ncert = \"{}\"\nkey = \"{}\"\nreload_interval = \"100ms\"\n",
        files.cert.display(),
        files.key.display()
    );
    let stack = start_with_tls(&tls).await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/v1/products/7",
        stack.gateway_addr().port()
    );

    let h2 = curl_tls(&["--http2"], &files.ca, &url).await.unwrap();
    assert_eq!(
        (h2.version.as_str(), h2.status),
        ("2", 200),
        "ALPN picks h2"
    );
    assert!(h2.json()["title"].is_string());
    let h1 = curl_tls(&["--http1.1"], &files.ca, &url).await.unwrap();
    assert_eq!((h1.version.as_str(), h1.status), ("1.1", 200));
    let tls12 = curl_tls(&["--tlsv1.2", "--tls-max", "1.2"], &files.ca, &url).await;
    assert_eq!(tls12.map(|r| r.status), Ok(200), "TLS 1.2 is taken");
    let old = curl_tls(&["--tlsv1.0", "--tls-max", "1.1"], &files.ca, &url).await;
    assert!(old.is_err(), "TLS 1.1 and below are refused");
    // A plain-text request to the TLS port gets no HTTP answer.
    let plain = tokio::time::timeout(Duration::from_secs(5), async {
        let output = tokio::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "2",
                &url.replace("https://", "http://"),
            ])
            .output()
            .await
            .unwrap();
        output.status.success()
    })
    .await
    .unwrap();
    assert!(!plain, "plain text is not served on the TLS port");

    // Rotate: a certificate from another CA, written over the files.
    let second = issue("second");
    let second_ca = scratch_file("tls-ca2.pem");
    std::fs::write(&second_ca, &second.ca).unwrap();
    std::fs::write(&files.key, &second.key).unwrap();
    std::fs::write(&files.cert, &second.cert).unwrap();
    let started = tokio::time::Instant::now();
    loop {
        if curl_tls(&["--http2"], &second_ca, &url).await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        curl_tls(&["--http2"], &files.ca, &url).await.is_err(),
        "the old certificate is no longer served"
    );
    for path in [&files.ca, &files.cert, &files.key, &second_ca] {
        std::fs::remove_file(path).ok();
    }
}

#[tokio::test]
async fn a_key_that_does_not_match_refuses_to_start() {
    let files = Files {
        ca: scratch_file("tls-bad-ca.pem"),
        cert: scratch_file("tls-bad-cert.pem"),
        key: scratch_file("tls-bad-key.pem"),
    };
    let one = issue("one");
    let other = issue("other");
    std::fs::write(&files.cert, &one.cert).unwrap();
    std::fs::write(&files.key, &other.key).unwrap();
    let tls = format!(
        "\n[listener.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        files.cert.display(),
        files.key.display()
    );
    let error = start_with_tls(&tls)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("does not belong to the certificate"),
        "{error}"
    );
    for path in [&files.cert, &files.key] {
        std::fs::remove_file(path).ok();
    }
}

/// A client certificate (and key) signed by a CA of its own; returns (CA, cert, key) PEMs.
fn client_identity(name: &str) -> Issued {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} clients CA"));
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![format!("{name}.clients.test")]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Issued {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

#[tokio::test]
async fn client_certificates_are_verified_when_a_client_ca_is_set() {
    let server = issue("mtls");
    let trusted = client_identity("trusted");
    let stranger = client_identity("stranger");
    let path = |name: &str, text: &str| {
        let file = scratch_file(name);
        std::fs::write(&file, text).unwrap();
        file
    };
    let ca = path("mtls-ca.pem", &server.ca);
    let cert = path("mtls-cert.pem", &server.cert);
    let key = path("mtls-key.pem", &server.key);
    let client_ca = path("mtls-client-ca.pem", &trusted.ca);
    let trusted_cert = path("mtls-trusted.pem", &trusted.cert);
    let trusted_key = path("mtls-trusted.key", &trusted.key);
    let stranger_cert = path("mtls-stranger.pem", &stranger.cert);
    let stranger_key = path("mtls-stranger.key", &stranger.key);
    for required in [true, false] {
        let tls = format!(
            "\n[listener.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\nclient_auth = \"{}\"\n",
            cert.display(),
            key.display(),
            client_ca.display(),
            if required { "required" } else { "optional" }
        );
        let stack = start_with_tls(&tls).await.unwrap();
        let url = format!(
            "https://127.0.0.1:{}/v1/products/7",
            stack.gateway_addr().port()
        );
        let with = |c: &Path, k: &Path| {
            vec![
                "--cert".to_owned(),
                c.display().to_string(),
                "--key".to_owned(),
                k.display().to_string(),
            ]
        };
        let trusted_args = with(&trusted_cert, &trusted_key);
        let trusted_args: Vec<&str> = trusted_args.iter().map(String::as_str).collect();
        let ok = curl_tls(&trusted_args, &ca, &url).await;
        assert_eq!(
            ok.map(|r| r.status),
            Ok(200),
            "a trusted client certificate is taken"
        );
        let stranger_args = with(&stranger_cert, &stranger_key);
        let stranger_args: Vec<&str> = stranger_args.iter().map(String::as_str).collect();
        assert!(
            curl_tls(&stranger_args, &ca, &url).await.is_err(),
            "a certificate from another CA is refused"
        );
        let anonymous = curl_tls(&[], &ca, &url).await;
        if required {
            assert!(anonymous.is_err(), "no certificate, no connection");
        } else {
            assert_eq!(
                anonymous.map(|r| r.status),
                Ok(200),
                "optional: let through"
            );
        }
    }
    for file in [
        ca,
        cert,
        key,
        client_ca,
        trusted_cert,
        trusted_key,
        stranger_cert,
        stranger_key,
    ] {
        std::fs::remove_file(file).ok();
    }
}
