//! Token verification against keys made for the tests (`gateway/tests/fixtures/jwt-*.pem`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const RSA: &str = include_str!("../../../tests/fixtures/jwt-rsa-test-key.pem");
const RSA_2: &str = include_str!("../../../tests/fixtures/jwt-rsa-test-key-2.pem");
const EC: &str = include_str!("../../../tests/fixtures/jwt-ec-test-key.pem");
const ED: &str = include_str!("../../../tests/fixtures/jwt-ed25519-test-key.pem");

fn encoding(pem: &str, alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        _ => EncodingKey::from_secret(pem.as_bytes()),
    }
    .unwrap()
}

fn jwk(pem: &str, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&encoding(pem, alg), alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

fn sign(claims: &Value, pem: &str, alg: Algorithm, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(Into::into);
    jsonwebtoken::encode(&header, claims, &encoding(pem, alg)).unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims() -> Value {
    json!({"sub": "alice", "iss": "https://id.test", "aud": "storefront", "exp": now() + 600, "plan": "gold"})
}

fn config(keys: KeySource) -> JwtConfig {
    JwtConfig {
        keys,
        issuers: vec!["https://id.test".into()],
        audiences: vec!["storefront".into()],
        algorithms: DEFAULT_ALGORITHMS.to_vec(),
        leeway: Duration::from_secs(30),
        refresh_interval: Duration::from_secs(300),
        min_refresh_interval: Duration::from_millis(300),
        consumer_claim: "sub".into(),
        plan_claim: Some("plan".into()),
        max_token_bytes: 8192,
        token_cache_size: 0,
    }
}

/// A verifier over a JWKS file holding the RSA, EC and Ed25519 keys.
async fn verifier_with(algorithms: Vec<Algorithm>, extra: Vec<Value>) -> Arc<Verifier> {
    let mut keys = vec![
        jwk(RSA, Algorithm::RS256, "rsa"),
        jwk(EC, Algorithm::ES256, "ec"),
        jwk(ED, Algorithm::EdDSA, "ed"),
    ];
    keys.extend(extra);
    let dir = std::env::temp_dir().join(format!(
        "mosaic-jwks-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    let mut config = config(KeySource::File(path));
    config.algorithms = algorithms;
    Verifier::new(config).await.unwrap()
}

async fn verifier() -> Arc<Verifier> {
    verifier_with(DEFAULT_ALGORITHMS.to_vec(), vec![]).await
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_are_accepted() {
    let verifier = verifier().await;
    for (pem, alg, kid) in [
        (RSA, Algorithm::RS256, "rsa"),
        (EC, Algorithm::ES256, "ec"),
        (ED, Algorithm::EdDSA, "ed"),
    ] {
        let token = sign(&claims(), pem, alg, Some(kid));
        let claims = verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims["sub"], "alice");
        assert_eq!(
            verifier.consumer_of(&claims).unwrap(),
            ("alice".to_owned(), Some("gold".to_owned()))
        );
    }
}

#[tokio::test]
async fn registered_claims_are_enforced() {
    let verifier = verifier().await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims();
        change(&mut claims);
        sign(&claims, RSA, Algorithm::RS256, Some("rsa"))
    };
    let cases: Vec<(String, TokenError)> = vec![
        (
            with(&|c| c["exp"] = json!(now() - 120)),
            TokenError::Expired,
        ),
        (
            with(&|c| c["nbf"] = json!(now() + 120)),
            TokenError::NotYetValid,
        ),
        (with(&|c| c["aud"] = json!("billing")), TokenError::Audience),
        (
            with(&|c| c["iss"] = json!("https://evil.test")),
            TokenError::Issuer,
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            TokenError::MissingClaim("exp".into()),
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            TokenError::MissingClaim("aud".into()),
        ),
        // GHSA-h395-gr6q-cpjc: an `exp` of the wrong type must not skip the check.
        (
            with(&|c| c["exp"] = json!("99999999999")),
            TokenError::MissingClaim("exp".into()),
        ),
        (
            with(&|c| c["nbf"] = json!(format!("{}", now() + 3600))),
            TokenError::ClaimType("nbf".into()),
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(verifier.verify(&token).await.unwrap_err(), expected);
    }
    // Inside the leeway: still accepted.
    let recent = with(&|c| c["exp"] = json!(now() - 10));
    verifier.verify(&recent).await.unwrap();
}

#[tokio::test]
async fn none_and_confused_algorithms_are_refused() {
    let verifier = verifier().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    assert_eq!(
        verifier
            .verify(&format!("{header}.{body}."))
            .await
            .unwrap_err(),
        TokenError::Algorithm
    );
    // HS256 with the RSA key's public half as the secret: HS256 is not accepted ...
    let public_pem = {
        let jwk = jwk(RSA, Algorithm::RS256, "rsa");
        serde_json::to_string(&jwk).unwrap()
    };
    let forged = sign(&claims(), &public_pem, Algorithm::HS256, Some("rsa"));
    assert_eq!(
        verifier.verify(&forged).await.unwrap_err(),
        TokenError::Algorithm
    );
    // ... and where it is, the RSA key is still not an HMAC key.
    let permissive = verifier_with(
        vec![Algorithm::RS256, Algorithm::HS256],
        vec![json!({"kty": "oct", "kid": "shared", "k": URL_SAFE_NO_PAD.encode("s3cret-s3cret-s3cret-s3cret-s3cret")})],
    )
    .await;
    assert_eq!(
        permissive.verify(&forged).await.unwrap_err(),
        TokenError::Algorithm
    );
    let hs = sign(
        &claims(),
        "s3cret-s3cret-s3cret-s3cret-s3cret",
        Algorithm::HS256,
        Some("shared"),
    );
    permissive.verify(&hs).await.unwrap();
    // Another RSA key's signature under a known kid is a bad signature.
    let wrong_key = sign(&claims(), RSA_2, Algorithm::RS256, Some("rsa"));
    assert_eq!(
        verifier.verify(&wrong_key).await.unwrap_err(),
        TokenError::Signature
    );
}

#[tokio::test]
async fn malformed_oversized_and_unknown_key_tokens_are_refused() {
    let verifier = verifier().await;
    for bad in [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "...",
        "eyJhbGciOiJSUzI1NiJ9.e30.",
        "\u{0}.\u{0}.\u{0}",
    ] {
        let error = verifier.verify(bad).await.unwrap_err();
        assert!(
            matches!(
                error,
                TokenError::Malformed
                    | TokenError::Algorithm
                    | TokenError::NoKeyId
                    | TokenError::Signature
            ),
            "{bad:?}: {error:?}"
        );
    }
    let long = "a".repeat(9000);
    assert_eq!(
        verifier.verify(&long).await.unwrap_err(),
        TokenError::TooLong(8192)
    );
    let unknown = sign(&claims(), RSA, Algorithm::RS256, Some("not-a-key"));
    assert_eq!(
        verifier.verify(&unknown).await.unwrap_err(),
        TokenError::UnknownKey
    );
    let no_kid = sign(&claims(), RSA, Algorithm::RS256, None);
    assert_eq!(
        verifier.verify(&no_kid).await.unwrap_err(),
        TokenError::NoKeyId
    );
}

/// A JWKS endpoint whose document can be changed and whose fetches are counted.
struct JwksServer {
    url: Uri,
    document: Arc<Mutex<String>>,
    hits: Arc<AtomicU64>,
}

async fn jwks_server(keys: Vec<Value>) -> JwksServer {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: Uri = format!("http://{}/jwks.json", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let document = Arc::new(Mutex::new(json!({ "keys": keys }).to_string()));
    let hits = Arc::new(AtomicU64::new(0));
    let (doc, count) = (Arc::clone(&document), Arc::clone(&hits));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (doc, count) = (Arc::clone(&doc), Arc::clone(&count));
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    count.fetch_add(1, Ordering::SeqCst);
                    let body = doc.lock().unwrap().clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(body)),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    JwksServer {
        url,
        document,
        hits,
    }
}

#[tokio::test]
async fn a_url_key_set_follows_rotation_and_unknown_kids_cannot_flood_it() {
    let server = jwks_server(vec![jwk(RSA, Algorithm::RS256, "old")]).await;
    let verifier = Verifier::new(config(KeySource::Url {
        url: server.url.clone(),
        ca: None,
    }))
    .await
    .unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    verifier
        .verify(&sign(&claims(), RSA, Algorithm::RS256, Some("old")))
        .await
        .unwrap();

    // 50 tokens naming made-up kids, at once and in a row: one fetch at most.
    let flood: Vec<String> = (0..50)
        .map(|i| {
            sign(
                &claims(),
                RSA,
                Algorithm::RS256,
                Some(&format!("made-up-{i}")),
            )
        })
        .collect();
    let answers = futures_util::future::join_all(flood.iter().map(|t| verifier.verify(t))).await;
    assert!(answers.iter().all(|a| *a == Err(TokenError::UnknownKey)));
    let after_flood = server.hits.load(Ordering::SeqCst);
    assert!((1..=2).contains(&after_flood), "{after_flood} fetches");

    // The issuer rotates to a new key; once the interval has passed, its first token fetches.
    *server.document.lock().unwrap() =
        json!({ "keys": [jwk(RSA_2, Algorithm::RS256, "new")] }).to_string();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let rotated = sign(&claims(), RSA_2, Algorithm::RS256, Some("new"));
    verifier.verify(&rotated).await.unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), after_flood + 1);
    assert_eq!(verifier.fetches(), server.hits.load(Ordering::SeqCst));
    // The old key left the set with the rotation.
    let old = sign(&claims(), RSA, Algorithm::RS256, Some("old"));
    assert_eq!(
        verifier.verify(&old).await.unwrap_err(),
        TokenError::UnknownKey
    );
}

#[tokio::test]
async fn a_key_set_that_does_not_load_fails_the_start() {
    let server = jwks_server(vec![]).await;
    let error = Verifier::new(config(KeySource::Url {
        url: server.url.clone(),
        ca: None,
    }))
    .await
    .unwrap_err();
    assert!(error.contains("no key usable"), "{error}");
    let missing = Verifier::new(config(KeySource::File("/nonexistent/jwks.json".into())))
        .await
        .unwrap_err();
    assert!(missing.contains("cannot read JWKS file"), "{missing}");
}

/// Random strings and random edits of valid tokens: never a panic, and no edited token
/// verifies unless the edit left the signed bytes and signature as they were.
#[tokio::test]
async fn random_and_mutated_tokens_never_panic_or_pass() {
    use rand::{Rng, SeedableRng};
    let verifier = verifier().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6a77_7421);
    let valid = [
        sign(&claims(), RSA, Algorithm::RS256, Some("rsa")),
        sign(&claims(), EC, Algorithm::ES256, Some("ec")),
        sign(&claims(), ED, Algorithm::EdDSA, Some("ed")),
    ];
    let alphabet = b"abcXYZ019-_.=+/ {}\":,\x00";
    let mut passed = 0;
    for round in 0..3_000 {
        let token = if round % 3 == 0 {
            (0..rng.random_range(0..200))
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect::<String>()
        } else {
            let original = &valid[rng.random_range(0..valid.len())];
            let mut bytes = original.as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = alphabet[rng.random_range(0..alphabet.len())];
            }
            let edited = String::from_utf8_lossy(&bytes).into_owned();
            if &edited == original {
                continue;
            }
            edited
        };
        if verifier.verify(&token).await.is_ok() {
            passed += 1;
        }
    }
    // base64url's last character may carry unused bits, so an edit there can decode to the
    // same signature; anything more than a handful would be a verification hole.
    assert!(passed <= 5, "{passed} edited tokens verified");
}

#[tokio::test]
async fn a_cached_token_still_expires_and_edits_still_fail() {
    let mut cached = config(KeySource::File({
        let dir = std::env::temp_dir().join(format!("mosaic-jwks-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        std::fs::write(
            &path,
            json!({ "keys": [jwk(RSA, Algorithm::RS256, "rsa")] }).to_string(),
        )
        .unwrap();
        path
    }));
    cached.token_cache_size = 2;
    cached.leeway = Duration::ZERO;
    let verifier = Verifier::new(cached).await.unwrap();
    // Valid for one more second: accepted (and cached), then refused once it has expired.
    let mut short = claims();
    short["exp"] = json!(now() + 1);
    let token = sign(&short, RSA, Algorithm::RS256, Some("rsa"));
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        TokenError::Expired
    );
    // A token that differs from a cached one in its signature is checked, not looked up.
    let good = sign(&claims(), RSA, Algorithm::RS256, Some("rsa"));
    verifier.verify(&good).await.unwrap();
    let mut forged = good.clone();
    forged.pop();
    forged.push(if good.ends_with('A') { 'B' } else { 'A' });
    assert!(verifier.verify(&forged).await.is_err());
    // More distinct tokens than the cache holds: it stays bounded and keeps answering.
    for i in 0..5 {
        let mut distinct = claims();
        distinct["jti"] = json!(i);
        verifier
            .verify(&sign(&distinct, RSA, Algorithm::RS256, Some("rsa")))
            .await
            .unwrap();
        let held = verifier.cache.entries.lock().unwrap().len();
        assert!(held <= 2, "{held} cached");
    }
}
