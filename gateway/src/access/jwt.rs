//! Bearer tokens: JWTs signed with RS256 (and the other RSA algorithms), ES256, ES384, EdDSA or
//! HMAC, verified by `jsonwebtoken` against a JSON Web Key Set read from a file or fetched from
//! a URL.
//!
//! What is refused, and why it cannot be talked around:
//! - `alg: none` and any algorithm not in `algorithms`: the header's `alg` must be one the
//!   configuration accepts *and* one the key itself is for (a key's `alg`, else its type: RSA
//!   keys verify RS/PS algorithms, EC keys their curve's ES algorithm, OKP keys EdDSA, `oct`
//!   keys HMAC). An HS256 token signed with an RSA public key therefore finds no HMAC key.
//! - tokens longer than `max_token_bytes`, before anything is decoded;
//! - `exp` in the past, `nbf` in the future (both with `leeway`); `exp` is required;
//! - an `iss` or `aud` outside the configured ones (required when configured).
//!
//! Keys are looked up by `kid`; a token without one is accepted only when the set holds one
//! key.
//!
//! A verified token is remembered (by its SHA-256) until it expires, for at most
//! `refresh_interval`, in a cache of `token_cache_size` entries: clients send the same token
//! for its whole life, and a signature check costs far more than the rest of a pass-through
//! call (RS256 ~160 µs, ES256 ~340 µs of CPU with RustCrypto; see BENCHMARKS.md). A cached
//! token is still refused once `exp` (with the leeway) passes; a key rotated out of the set
//! stops admitting its cached tokens within `refresh_interval`. When the cache is full it is
//! emptied of expired entries, and if none expired, of everything: it never grows past its
//! size. A URL's set is fetched at start, again every `refresh_interval`, and again when a token
//! names a `kid` the set lacks (a key rotated in), but at most once per `min_refresh_interval`
//! however many such tokens arrive: a flood of made-up `kid`s costs one fetch per interval.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Uri;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::fetch;

/// `[auth.jwt]`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct JwtConfig {
    /// Where the key set comes from.
    pub keys: KeySource,
    /// Accepted `iss` values; empty: any issuer.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; empty: the audience is not checked.
    pub audiences: Vec<String>,
    /// The algorithms accepted at all.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// How often a URL's key set is fetched again.
    pub refresh_interval: Duration,
    /// The shortest time between two fetches, whatever asks for them.
    pub min_refresh_interval: Duration,
    /// The claim that names the consumer.
    pub consumer_claim: String,
    /// The claim that names the consumer's plan, if plans come from tokens.
    pub plan_claim: Option<String>,
    /// Longer tokens are refused unread.
    pub max_token_bytes: usize,
    /// Verified tokens remembered; 0 verifies every call's token.
    pub token_cache_size: usize,
}

/// Where a key set comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum KeySource {
    /// A JWKS file, read at start and on reload.
    File(PathBuf),
    /// A JWKS URL (`http` or `https`), fetched and refreshed.
    Url {
        /// The URL.
        url: Uri,
        /// CA certificates (PEM) for an `https` URL; the system's roots otherwise.
        ca: Option<PathBuf>,
    },
}

/// The algorithms accepted when `algorithms` is not set: the asymmetric ones. HMAC needs a
/// shared secret, so it is accepted only when named.
pub(crate) const DEFAULT_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why a token was refused: said to the caller, so never a token's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("the bearer token is longer than {0} bytes")]
    TooLong(usize),
    #[error("the bearer token is malformed")]
    Malformed,
    #[error("the bearer token's algorithm is not accepted")]
    Algorithm,
    #[error("the bearer token names no key (`kid`) and the key set has several")]
    NoKeyId,
    #[error("the bearer token's signing key is not known")]
    UnknownKey,
    #[error("the bearer token's signature is not valid")]
    Signature,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is not valid yet")]
    NotYetValid,
    #[error("the bearer token's issuer is not accepted")]
    Issuer,
    #[error("the bearer token's audience is not accepted")]
    Audience,
    #[error("the bearer token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the bearer token's `{0}` claim has the wrong type")]
    ClaimType(String),
}

/// One usable key: what it verifies and with which algorithms.
struct Key {
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The keys of one set, by `kid`.
#[derive(Default)]
struct KeySet {
    by_id: HashMap<String, Arc<Key>>,
    /// Keys without a `kid`, usable only when they are the only key.
    anonymous: Vec<Arc<Key>>,
}

impl KeySet {
    /// The usable keys of `set`; keys of unsupported types or curves are skipped and logged.
    fn new(set: &JwkSet, accepted: &[Algorithm]) -> Self {
        let mut keys = KeySet::default();
        for jwk in &set.keys {
            let algorithms: Vec<Algorithm> = algorithms_of(jwk)
                .into_iter()
                .filter(|alg| accepted.contains(alg))
                .collect();
            if algorithms.is_empty() {
                tracing::debug!(kid = ?jwk.common.key_id, "JWK skipped: no accepted algorithm");
                continue;
            }
            let decoding = match DecodingKey::from_jwk(jwk) {
                Ok(decoding) => decoding,
                Err(error) => {
                    tracing::warn!(kid = ?jwk.common.key_id, %error, "JWK skipped: unusable");
                    continue;
                }
            };
            let key = Arc::new(Key {
                decoding,
                algorithms,
            });
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.by_id.insert(kid.clone(), key);
                }
                None => keys.anonymous.push(key),
            }
        }
        keys
    }

    fn len(&self) -> usize {
        self.by_id.len() + self.anonymous.len()
    }

    fn find(&self, kid: Option<&str>) -> Result<&Arc<Key>, TokenError> {
        match kid {
            Some(kid) => self.by_id.get(kid).ok_or(TokenError::UnknownKey),
            None if self.len() == 1 => self
                .by_id
                .values()
                .chain(&self.anonymous)
                .next()
                .ok_or(TokenError::NoKeyId),
            None => Err(TokenError::NoKeyId),
        }
    }
}

/// What a key verifies: its declared `alg`, else what its type allows.
fn algorithms_of(jwk: &Jwk) -> Vec<Algorithm> {
    use Algorithm::*;
    let declared = jwk.common.key_algorithm.and_then(|alg| {
        Some(match alg {
            KeyAlgorithm::HS256 => HS256,
            KeyAlgorithm::HS384 => HS384,
            KeyAlgorithm::HS512 => HS512,
            KeyAlgorithm::ES256 => ES256,
            KeyAlgorithm::ES384 => ES384,
            KeyAlgorithm::RS256 => RS256,
            KeyAlgorithm::RS384 => RS384,
            KeyAlgorithm::RS512 => RS512,
            KeyAlgorithm::PS256 => PS256,
            KeyAlgorithm::PS384 => PS384,
            KeyAlgorithm::PS512 => PS512,
            KeyAlgorithm::EdDSA => EdDSA,
            _ => return None,
        })
    });
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => vec![],
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            vec![EdDSA]
        }
        AlgorithmParameters::OctetKey(_) => vec![HS256, HS384, HS512],
        _ => vec![],
    };
    match declared {
        // A declared algorithm the key type cannot do makes the key unusable.
        Some(alg) => by_type.into_iter().filter(|a| *a == alg).collect(),
        None => by_type,
    }
}

/// The verified claims of a token.
pub(crate) type Claims = Map<String, Value>;

/// A verified token, remembered.
struct Cached {
    claims: Arc<Claims>,
    /// Past this (Unix seconds), the token is verified again (and refused if expired).
    until: u64,
    /// Before this (Unix seconds, `nbf` less the leeway), it is not valid yet.
    from: u64,
}

/// Verified tokens by the SHA-256 of their text.
#[derive(Default)]
struct TokenCache {
    entries: std::sync::Mutex<HashMap<[u8; 32], Cached>>,
}

/// Verifies bearer tokens against one key set.
pub(crate) struct Verifier {
    config: JwtConfig,
    keys: ArcSwap<KeySet>,
    /// When the set was last fetched (URL sets); held while a fetch runs, so concurrent
    /// unknown-`kid` tokens wait for one fetch instead of starting their own.
    fetched: Mutex<Option<Instant>>,
    /// Fetches made, for tests and `/upstreams`-style introspection.
    fetches: std::sync::atomic::AtomicU64,
    cache: TokenCache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.load().len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Loads the key set (a file now, a URL by a first fetch that must succeed).
    pub(crate) async fn new(config: JwtConfig) -> Result<Arc<Self>, String> {
        let verifier = Arc::new(Self {
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetched: Mutex::new(None),
            fetches: Default::default(),
            cache: TokenCache::default(),
            config,
        });
        let set = verifier.load().await?;
        verifier.keys.store(Arc::new(set));
        *verifier.fetched.lock().await = Some(Instant::now());
        Ok(verifier)
    }

    /// Refreshes a URL's key set every `refresh_interval` until the verifier is dropped.
    pub(crate) fn spawn_refresh(self: &Arc<Self>) {
        if !matches!(self.config.keys, KeySource::Url { .. }) {
            return;
        }
        let weak = Arc::downgrade(self);
        let period = self.config.refresh_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + period, period);
            loop {
                tick.tick().await;
                let Some(verifier) = weak.upgrade() else {
                    return;
                };
                verifier.refresh().await;
            }
        });
    }

    /// Fetches the set again unless one was fetched within `min_refresh_interval`; true when
    /// the set was replaced.
    async fn refresh(&self) -> bool {
        let mut fetched = self.fetched.lock().await;
        if fetched.is_some_and(|at| at.elapsed() < self.config.min_refresh_interval) {
            return false;
        }
        *fetched = Some(Instant::now());
        match self.load().await {
            Ok(set) => {
                self.keys.store(Arc::new(set));
                true
            }
            Err(error) => {
                tracing::warn!(%error, "JWKS refresh failed; the keys in force stay");
                false
            }
        }
    }

    async fn load(&self) -> Result<KeySet, String> {
        let text = match &self.config.keys {
            KeySource::File(path) => std::fs::read(path)
                .map_err(|error| format!("cannot read JWKS file {}: {error}", path.display()))?,
            KeySource::Url { url, ca } => {
                self.fetches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                fetch::get(url, ca.as_deref(), FETCH_TIMEOUT, MAX_JWKS_BYTES).await?
            }
        };
        let set: JwkSet = serde_json::from_slice(&text)
            .map_err(|error| format!("the key set is not a JWKS document: {error}"))?;
        let keys = KeySet::new(&set, &self.config.algorithms);
        if keys.len() == 0 {
            return Err("the key set holds no key usable with the accepted algorithms".into());
        }
        Ok(keys)
    }

    /// How many times the key set was fetched from its URL.
    #[cfg(test)]
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The claims of `token`, once its signature and registered claims are verified (or it
    /// was verified before and has not expired since).
    pub(crate) async fn verify(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        if token.len() > self.config.max_token_bytes {
            return Err(TokenError::TooLong(self.config.max_token_bytes));
        }
        if self.config.token_cache_size == 0 {
            return self.verify_signed(token).await.map(Arc::new);
        }
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = jsonwebtoken::get_current_timestamp();
        {
            let entries = self
                .cache
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(cached) = entries.get(&digest)
                && now < cached.until
                && now >= cached.from
            {
                return Ok(Arc::clone(&cached.claims));
            }
        }
        let claims = Arc::new(self.verify_signed(token).await?);
        let leeway = self.config.leeway.as_secs();
        let number = |name: &str| claims.get(name).and_then(Value::as_u64);
        let until = number("exp")
            .map_or(now, |exp| exp.saturating_add(leeway))
            .min(now.saturating_add(self.config.refresh_interval.as_secs()));
        let from = number("nbf").map_or(0, |nbf| nbf.saturating_sub(leeway));
        let mut entries = self
            .cache
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.config.token_cache_size {
            entries.retain(|_, cached| now < cached.until);
            if entries.len() >= self.config.token_cache_size {
                entries.clear();
            }
        }
        entries.insert(
            digest,
            Cached {
                claims: Arc::clone(&claims),
                until,
                from,
            },
        );
        Ok(claims)
    }

    /// Verifies `token`'s signature and registered claims.
    async fn verify_signed(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            // A readable header naming an algorithm this library does not know (`none`
            // among them) is an algorithm refusal; anything else is malformed.
            if declared_alg(token).is_some() {
                TokenError::Algorithm
            } else {
                TokenError::Malformed
            }
        })?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm);
        }
        let key = match self.keys.load().find(header.kid.as_deref()) {
            Ok(key) => Arc::clone(key),
            Err(TokenError::UnknownKey) => {
                // Perhaps rotated in since the last fetch: one fetch per interval at most.
                // Another call's fetch may have brought it in, so the set is looked at again
                // whether or not this call fetched.
                if !matches!(self.config.keys, KeySource::Url { .. }) {
                    return Err(TokenError::UnknownKey);
                }
                self.refresh().await;
                Arc::clone(self.keys.load().find(header.kid.as_deref())?)
            }
            Err(other) => return Err(other),
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if !self.config.issuers.is_empty() {
            validation.set_issuer(&self.config.issuers);
            required.push("iss");
        }
        if self.config.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.config.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|error| token_error(error.into_kind()))?;
        Ok(data.claims)
    }

    /// The consumer a token's claims name, and its plan.
    pub(crate) fn consumer_of(
        &self,
        claims: &Claims,
    ) -> Result<(String, Option<String>), TokenError> {
        let claim = &self.config.consumer_claim;
        let consumer = match claims.get(claim) {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            Some(Value::Number(number)) => number.to_string(),
            Some(_) => return Err(TokenError::ClaimType(claim.clone())),
            None => return Err(TokenError::MissingClaim(claim.clone())),
        };
        let plan = match &self.config.plan_claim {
            None => None,
            Some(claim) => match claims.get(claim) {
                None => None,
                Some(Value::String(plan)) => Some(plan.clone()),
                Some(_) => return Err(TokenError::ClaimType(claim.clone())),
            },
        };
        Ok((consumer, plan))
    }
}

/// The longest a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set read.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// The `alg` a token's header declares, read without trusting anything else in it.
fn declared_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let value: Value = serde_json::from_slice(&json).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

fn token_error(kind: jsonwebtoken::errors::ErrorKind) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as E;
    match kind {
        E::ExpiredSignature => TokenError::Expired,
        E::ImmatureSignature => TokenError::NotYetValid,
        E::InvalidIssuer => TokenError::Issuer,
        E::InvalidAudience => TokenError::Audience,
        E::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
        E::InvalidClaimFormat(claim) => TokenError::ClaimType(claim),
        E::InvalidSignature => TokenError::Signature,
        E::InvalidAlgorithm | E::InvalidAlgorithmName | E::MissingAlgorithm => {
            TokenError::Algorithm
        }
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests;
