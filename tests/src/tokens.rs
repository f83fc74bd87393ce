//! Bearer tokens for the tests, signed with keys made for them
//! (`gateway/tests/fixtures/jwt-*-test-key.pem`), and the JWKS document that publishes those
//! keys.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The RSA test key (`kid` "rsa").
pub const RSA: &str = include_str!("../../gateway/tests/fixtures/jwt-rsa-test-key.pem");
/// A second RSA key, published under no `kid` the gateway knows unless a test adds it.
pub const RSA_2: &str = include_str!("../../gateway/tests/fixtures/jwt-rsa-test-key-2.pem");
/// The P-256 test key (`kid` "ec").
pub const EC: &str = include_str!("../../gateway/tests/fixtures/jwt-ec-test-key.pem");
/// The Ed25519 test key (`kid` "ed").
pub const ED: &str = include_str!("../../gateway/tests/fixtures/jwt-ed25519-test-key.pem");

/// The issuer and audience the tests' gateways accept.
pub const ISSUER: &str = "https://id.mosaic.test";
/// The audience the tests' gateways accept.
pub const AUDIENCE: &str = "storefront";

fn encoding(pem: &str, alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(pem.as_bytes())
        }
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .expect("a test key")
}

/// The public JWK of the private key `pem`, under `kid`.
pub fn jwk(pem: &str, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&encoding(pem, alg), alg).expect("a JWK");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).expect("JSON")
}

/// The JWKS of the three test keys: "rsa", "ec", "ed".
pub fn jwks() -> Value {
    json!({ "keys": [
        jwk(RSA, Algorithm::RS256, "rsa"),
        jwk(EC, Algorithm::ES256, "ec"),
        jwk(ED, Algorithm::EdDSA, "ed"),
    ]})
}

/// Now, in seconds since the epoch.
pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims the tests' gateways accept: `sub`, the issuer and audience, valid for ten minutes.
pub fn claims(subject: &str) -> Value {
    json!({
        "sub": subject,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 600,
        "iat": now(),
    })
}

/// `claims` signed with `pem` by `alg`, naming `kid`.
pub fn sign(claims: &Value, pem: &str, alg: Algorithm, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding(pem, alg)).expect("a token")
}

/// A valid RS256 token for `subject` with `extra` claims merged in.
pub fn token(subject: &str, extra: Value) -> String {
    let mut claims = claims(subject);
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (name, value) in extra {
            claims.insert(name.clone(), value.clone());
        }
    }
    sign(&claims, RSA, Algorithm::RS256, Some("rsa"))
}
