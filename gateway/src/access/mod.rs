//! Managed access: who the caller is (API key, bearer JWT, client certificate), whether it may
//! call the method (the method's policy), and whether it is within its limits, decided for
//! every call before it is routed anywhere.
//!
//! Every protocol reaches the same check: gRPC as it arrives, gRPC-Web, Connect and HTTP/JSON
//! once they have become the gRPC call they stand for, so one policy governs a method however
//! it is called. The order, and what each refusal is:
//!
//! 1. the method's policy is found (method, then service, then the default);
//! 2. credentials are read: a bearer token (`authorization: Bearer ...`), then an API key (the
//!    key header, or for HTTP callers the key query parameter), then the connection's client
//!    certificate, taking the first present whose scheme the policy accepts. A credential that
//!    is present but not valid is refused (`UNAUTHENTICATED`) even on a public method; none at
//!    all is refused unless the method is public;
//! 3. the policy's consumers, plans, scopes and claims (`PERMISSION_DENIED`);
//! 4. the rate limits of the consumer's plan and of the method (`RESOURCE_EXHAUSTED` with the
//!    time to wait), or for anonymous calls those of the caller's address.
//!
//! Refusals carry a message saying what was missing or wrong, never the credential itself. An
//! admitted call loses its credentials (unless `forward_credentials`), so downstreams do not
//! receive a token or key meant for the gateway, and gains the configured claims as metadata.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, header};
use serde_json::Value;

mod fetch;
pub(crate) mod identity;
mod jwt;
mod keys;
mod limits;
mod policy;
mod proto;

pub use identity::PeerIdentity;
pub(crate) use jwt::DEFAULT_ALGORITHMS;
pub use jwt::{JwtConfig, KeySource};
pub use keys::{ApiKey, digest_of};
pub use limits::{LimitStore, OnRedisError, Rate, RateLimitsConfig, RedisConfig};
pub use policy::{Policy, Scheme};

use crate::grpc::context::CallContext;
use crate::grpc::status::LocalError;
use jwt::TokenError;

/// `[auth]`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessConfig {
    /// `[auth.api_keys]`.
    pub api_keys: Option<ApiKeysConfig>,
    /// `[auth.jwt]`.
    pub jwt: Option<JwtConfig>,
    /// `[auth.mtls]`: client certificates identify callers (needs `listener.tls.client_ca`).
    pub mtls: bool,
    /// The policy of methods no other policy names.
    pub default_policy: Policy,
    /// Policies by `pkg.Service` or `pkg.Service/Method`.
    pub policies: Vec<(String, Policy)>,
    /// Whether admitted calls keep their credentials on the way downstream.
    pub forward_credentials: bool,
    /// Claims copied into request metadata: claim name, header name.
    pub forward_claims: Vec<(String, HeaderName)>,
    /// `[rate_limits]`.
    pub rate_limits: Option<RateLimitsConfig>,
}

/// `[auth.api_keys]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeysConfig {
    /// The header that carries a key.
    pub header: HeaderName,
    /// The query parameter HTTP callers may use instead; removed before transcoding.
    pub query: Option<String>,
    /// The known keys.
    pub keys: Vec<ApiKey>,
}

/// The header keys are read from when `header` is not set.
pub(crate) const DEFAULT_KEY_HEADER: &str = "x-api-key";

/// Who made a call, once admitted. Generated handlers read it from the request's extensions
/// (`request.extensions().get::<Caller>()`).
#[derive(Clone, Debug)]
pub struct Caller {
    pub(crate) consumer: Arc<str>,
    pub(crate) plan: Option<Arc<str>>,
    pub(crate) scheme: Scheme,
    pub(crate) claims: Option<Arc<serde_json::Map<String, Value>>>,
    /// What hosted handlers' work carries: the forwarded claims, the caller as text.
    pub(crate) context: Arc<CallContext>,
}

impl Caller {
    /// The consumer: an API key's owner, a token's subject (or `consumer_claim`), a client
    /// certificate's SAN.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The consumer's plan, if it has one.
    pub fn plan(&self) -> Option<&str> {
        self.plan.as_deref()
    }

    /// How the caller was authenticated.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// A claim of the caller's token (none for other schemes).
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.as_ref()?.get(name)
    }

    /// The caller as composition expressions read it (`caller.sub`, `caller.consumer`): every
    /// top-level claim that is a string, number or boolean, as text, then `consumer`, `plan`
    /// (when there is one) and `scheme`, which win over claims of the same names.
    fn as_text(&self) -> BTreeMap<String, String> {
        let mut text = BTreeMap::new();
        for (name, value) in self.claims.iter().flat_map(|claims| claims.iter()) {
            let value = match value {
                Value::String(value) => value.clone(),
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => continue,
            };
            text.insert(name.clone(), value);
        }
        text.insert("consumer".into(), self.consumer.to_string());
        if let Some(plan) = &self.plan {
            text.insert("plan".into(), plan.to_string());
        }
        text.insert("scheme".into(), self.scheme.name().into());
        text
    }
}

/// The connection a call came on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Peer {
    pub(crate) addr: Option<SocketAddr>,
    /// The client certificate's identity, on mutual TLS.
    pub(crate) identity: Option<Arc<PeerIdentity>>,
}

/// The assembled checks.
#[derive(Clone, Debug)]
pub(crate) struct Access {
    keys: Option<Arc<(keys::KeyStore, ApiKeysConfig)>>,
    jwt: Option<Arc<jwt::Verifier>>,
    mtls: bool,
    policies: Arc<policy::Policies>,
    /// `[auth.default]` and `[auth.policies]`, kept to merge with the protos' rules.
    default_policy: Policy,
    config_policies: Vec<(String, Policy)>,
    limits: Option<Arc<limits::Limits>>,
    forward_credentials: bool,
    forward_claims: Vec<(String, HeaderName)>,
    /// What is accepted at all, for "needs ..." messages.
    configured: Vec<Scheme>,
}

impl Access {
    /// Builds the checks: reads key sets (fetching a JWKS URL once) and connects to Redis.
    pub(crate) async fn new(config: &AccessConfig) -> Result<Arc<Self>, String> {
        let jwt = match &config.jwt {
            Some(jwt) => {
                let verifier = jwt::Verifier::new(jwt.clone())
                    .await
                    .map_err(|error| format!("auth.jwt: {error}"))?;
                verifier.spawn_refresh();
                Some(verifier)
            }
            None => None,
        };
        let limits = match &config.rate_limits {
            Some(limits) => {
                let limits = Arc::new(limits::Limits::new(limits)?);
                limits.connect().await;
                let weak = Arc::downgrade(&limits);
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        let Some(limits) = weak.upgrade() else { return };
                        limits.forget_idle();
                    }
                });
                Some(limits)
            }
            None => None,
        };
        let mut configured = Vec::new();
        if jwt.is_some() {
            configured.push(Scheme::Jwt);
        }
        if config.api_keys.is_some() {
            configured.push(Scheme::ApiKey);
        }
        if config.mtls {
            configured.push(Scheme::Mtls);
        }
        Ok(Arc::new(Self {
            keys: config
                .api_keys
                .as_ref()
                .map(|keys| Arc::new((keys::KeyStore::new(&keys.keys), keys.clone()))),
            jwt,
            mtls: config.mtls,
            policies: Arc::new(policy::Policies::new(
                config.default_policy.clone(),
                config.policies.iter().cloned(),
            )),
            default_policy: config.default_policy.clone(),
            config_policies: config.policies.clone(),
            limits,
            forward_credentials: config.forward_credentials,
            forward_claims: config.forward_claims.clone(),
            configured,
        }))
    }

    /// These checks with the access rules the edge protos in `pool` declare for the services
    /// `served` says are routed here. `gateway.toml` wins: its policy for a method replaces
    /// the proto's, and its policy for a service replaces every proto rule of that service.
    pub(crate) fn with_rules_of(
        self: &Arc<Self>,
        pool: &prost_reflect::DescriptorPool,
        served: impl Fn(&str) -> bool,
    ) -> Arc<Self> {
        let declared = proto::policies(pool, served);
        if declared.is_empty() {
            return Arc::clone(self);
        }
        let configured = |name: &str| {
            let service = name.split_once('/').map_or(name, |(service, _)| service);
            self.config_policies
                .iter()
                .any(|(key, _)| key == name || key == service)
        };
        let merged = declared
            .into_iter()
            .filter(|(name, _)| !configured(name))
            .chain(self.config_policies.iter().cloned());
        let mut access = (**self).clone();
        access.policies = Arc::new(policy::Policies::new(self.default_policy.clone(), merged));
        Arc::new(access)
    }

    /// The API-key query parameter HTTP callers may use, if any.
    pub(crate) fn key_query(&self) -> Option<(&str, &HeaderName)> {
        let (_, config) = &**self.keys.as_ref()?;
        Some((config.query.as_deref()?, &config.header))
    }

    /// Admits the call to `path` or says why not; on admission the credentials are removed
    /// from `headers` (unless forwarded) and the forwarded claims added. The caller comes
    /// back with a refusal too once it is known (a consumer over its limit), so analytics can
    /// count the refusal against it.
    pub(crate) async fn admit(
        &self,
        path: &str,
        headers: &mut HeaderMap,
        peer: &Peer,
    ) -> (Option<Caller>, Result<(), LocalError>) {
        // A caller's own copies of forwarded headers never pass, whoever it is.
        for (_, name) in &self.forward_claims {
            headers.remove(name);
        }
        // Policies are found by exact method name, so a path spelled another way (percent
        // escapes, extra segments) that an upstream might still read as the method is refused
        // rather than given its service's looser policy.
        if !is_canonical(path) {
            return (
                None,
                Err(LocalError::MalformedPath {
                    path: path.to_owned(),
                }),
            );
        }
        let policy = self.policies.of(path);
        let accepted: &[Scheme] = if policy.schemes.is_empty() {
            &self.configured
        } else {
            &policy.schemes
        };
        let caller = match self.authenticate(accepted, headers, peer).await {
            Ok(caller) => caller,
            Err(refusal) => return (None, Err(refusal)),
        };
        match &caller {
            None if !policy.public => {
                let refusal = LocalError::Unauthenticated {
                    reason: format!(
                        "missing credentials: this method needs {}",
                        needs(accepted, self)
                    ),
                    challenge: self.challenge(accepted, None),
                };
                return (None, Err(refusal));
            }
            Some(caller) => {
                if let Some(reason) = policy.refuse(caller) {
                    return (
                        Some(caller.clone()),
                        Err(LocalError::PermissionDenied { reason }),
                    );
                }
            }
            None => {}
        }
        if let Some(limits) = &self.limits {
            let checked = limits
                .check(path, caller.as_ref(), peer.addr.map(|a| a.ip()))
                .await;
            if let Err(refused) = checked {
                let refusal = match refused {
                    limits::Refused::Exceeded(exceeded) => LocalError::RateLimited {
                        limit: exceeded.limit,
                        quota: exceeded.quota,
                        retry_after: exceeded.retry_after,
                    },
                    limits::Refused::StoreUnavailable(reason) => {
                        LocalError::LimitStoreUnavailable { reason }
                    }
                };
                return (caller, Err(refusal));
            }
        }
        if !self.forward_credentials {
            if self.jwt.is_some() {
                headers.remove(header::AUTHORIZATION);
            }
            if let Some((_, keys)) = self.keys.as_deref() {
                headers.remove(&keys.header);
            }
        }
        let caller = caller.map(|mut caller| {
            let forwarded = self.forward(&caller, headers);
            caller.context = Arc::new(CallContext {
                forwarded,
                caller: Arc::new(caller.as_text()),
                ..CallContext::default()
            });
            caller
        });
        (caller, Ok(()))
    }

    /// The caller the first accepted credential present names; `None` when none is present.
    async fn authenticate(
        &self,
        accepted: &[Scheme],
        headers: &HeaderMap,
        peer: &Peer,
    ) -> Result<Option<Caller>, LocalError> {
        if accepted.contains(&Scheme::Jwt)
            && let Some(verifier) = &self.jwt
            && let Some(value) = headers.get(header::AUTHORIZATION)
            && let Some(token) = bearer(value)
        {
            let invalid = |error: TokenError| LocalError::Unauthenticated {
                reason: error.to_string(),
                challenge: self.challenge(accepted, Some(&error)),
            };
            let claims = verifier.verify(token).await.map_err(invalid)?;
            let (consumer, plan) = verifier.consumer_of(&claims).map_err(invalid)?;
            return Ok(Some(Caller {
                consumer: consumer.into(),
                plan: plan.map(Into::into),
                scheme: Scheme::Jwt,
                claims: Some(claims),
                context: Arc::default(),
            }));
        }
        if accepted.contains(&Scheme::ApiKey)
            && let Some((store, config)) = self.keys.as_deref()
            && let Some(value) = headers.get(&config.header)
        {
            let Some(owner) = store.find(value.as_bytes()) else {
                return Err(LocalError::Unauthenticated {
                    reason: format!("the API key in `{}` is not valid", config.header),
                    challenge: self.challenge(accepted, None),
                });
            };
            return Ok(Some(Caller {
                consumer: Arc::clone(&owner.consumer),
                plan: owner.plan.clone(),
                scheme: Scheme::ApiKey,
                claims: None,
                context: Arc::default(),
            }));
        }
        if accepted.contains(&Scheme::Mtls)
            && self.mtls
            && let Some(identity) = &peer.identity
            && let Some(name) = identity.name()
        {
            return Ok(Some(Caller {
                consumer: name.into(),
                plan: None,
                scheme: Scheme::Mtls,
                claims: None,
                context: Arc::default(),
            }));
        }
        Ok(None)
    }

    /// `www-authenticate` for a refusal: a `Bearer` challenge when tokens are accepted (with
    /// RFC 6750's `invalid_token` when one was refused), else one naming the key header.
    fn challenge(&self, accepted: &[Scheme], error: Option<&TokenError>) -> Option<HeaderValue> {
        let text = if accepted.contains(&Scheme::Jwt) && self.jwt.is_some() {
            match error {
                Some(error) => format!(
                    "Bearer realm=\"mosaic\", error=\"invalid_token\", error_description=\"{error}\""
                ),
                None => "Bearer realm=\"mosaic\"".to_owned(),
            }
        } else if let (true, Some((_, keys))) =
            (accepted.contains(&Scheme::ApiKey), self.keys.as_deref())
        {
            format!("ApiKey realm=\"mosaic\", header=\"{}\"", keys.header)
        } else {
            return None;
        };
        HeaderValue::try_from(text).ok()
    }

    /// Sets the forwarded claims in `headers`; returns them, when there are any.
    fn forward(&self, caller: &Caller, headers: &mut HeaderMap) -> Option<HeaderMap> {
        let mut forwarded = HeaderMap::new();
        for (claim, name) in &self.forward_claims {
            // Never trust a caller's own copy of a forwarded header.
            headers.remove(name);
            let value = match claim.as_str() {
                "consumer" => Some(caller.consumer.to_string()),
                "plan" => caller.plan.as_deref().map(str::to_owned),
                _ => caller.claim(claim).and_then(|value| match value {
                    Value::String(text) => Some(text.clone()),
                    Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
                    _ => None,
                }),
            };
            if let Some(value) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
                headers.insert(name.clone(), value.clone());
                forwarded.insert(name.clone(), value);
            }
        }
        (!forwarded.is_empty()).then_some(forwarded)
    }
}

/// The services and methods of `pool` served here (by `served`) whose protos declare access
/// rules, for the warning a gateway without `[auth]` gives: it enforces none of them.
pub(crate) fn declared_rules(
    pool: &prost_reflect::DescriptorPool,
    served: impl Fn(&str) -> bool,
) -> Vec<String> {
    proto::policies(pool, served)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Moves an API key passed as the query parameter `parameter` into the key header `header`,
/// so the key is checked like any other and the transcoder never sees it as a field. A key
/// header already present wins; a key that does not decode is left for the header check to
/// miss (and the call to be refused as unauthenticated).
pub(crate) fn key_from_query<B>(
    request: &mut http::Request<B>,
    parameter: &str,
    header: &HeaderName,
) {
    let Some(query) = request.uri().query() else {
        return;
    };
    let mut key = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if name == parameter {
            let value = pair.split_once('=').map_or("", |(_, value)| value);
            key.get_or_insert_with(|| percent_decode(value));
        } else if !pair.is_empty() {
            kept.push(pair);
        }
    }
    let Some(key) = key else { return };
    let mut parts = request.uri().clone().into_parts();
    let path = parts.path_and_query.as_ref().map_or("/", |pq| pq.path());
    let rebuilt = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    parts.path_and_query = rebuilt.parse().ok();
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    if !request.headers().contains_key(header)
        && let Some(value) = key.and_then(|key| HeaderValue::try_from(key).ok())
    {
        request.headers_mut().insert(header.clone(), value);
    }
}

/// A query value decoded as the transcoder decodes queries (`%XX`, `+` a space); `None` when
/// malformed.
fn percent_decode(text: &str) -> Option<String> {
    mosaic_http_rule::escape::decode(text, mosaic_http_rule::escape::Mode::Query).ok()
}

/// `/package.Service/Method` in the characters proto names are made of.
fn is_canonical(path: &str) -> bool {
    let Some((service, method)) = path.strip_prefix('/').and_then(|rest| rest.split_once('/'))
    else {
        return false;
    };
    let word = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    word(service) && word(method) && !method.contains('.')
}

/// The token of `Bearer <token>` (the scheme's case does not matter).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// "a bearer token in `authorization` or an API key in `x-api-key`".
fn needs(accepted: &[Scheme], access: &Access) -> String {
    let mut ways = Vec::new();
    for scheme in accepted {
        match scheme {
            Scheme::Jwt if access.jwt.is_some() => {
                ways.push("a bearer token in `authorization`".to_owned())
            }
            Scheme::ApiKey => {
                if let Some((_, keys)) = access.keys.as_deref() {
                    ways.push(format!("an API key in `{}`", keys.header));
                }
            }
            Scheme::Mtls if access.mtls => ways.push("a client certificate".to_owned()),
            _ => {}
        }
    }
    if ways.is_empty() {
        "a scheme this gateway does not have configured".to_owned()
    } else {
        ways.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keys_move_into_the_key_header() {
        let header = HeaderName::from_static("x-api-key");
        let mut request = http::Request::get("/v1/users/7?api_key=k%2B1&view=full&api_key=other")
            .body(())
            .unwrap();
        key_from_query(&mut request, "api_key", &header);
        assert_eq!(request.uri().to_string(), "/v1/users/7?view=full");
        assert_eq!(request.headers()["x-api-key"], "k+1");

        let mut only = http::Request::get("/v1/users/7?api_key=k1")
            .body(())
            .unwrap();
        only.headers_mut()
            .insert("x-api-key", HeaderValue::from_static("from-header"));
        key_from_query(&mut only, "api_key", &header);
        assert_eq!(only.uri().to_string(), "/v1/users/7");
        assert_eq!(only.headers()["x-api-key"], "from-header");

        let mut bad = http::Request::get("/v1/x?api_key=%zz").body(()).unwrap();
        key_from_query(&mut bad, "api_key", &header);
        assert_eq!(bad.uri().to_string(), "/v1/x");
        assert!(bad.headers().get("x-api-key").is_none());
    }

    /// Random bytes and random edits of well-formed input, seeded: the parsers of keys,
    /// headers, queries and certificates answer every one without panicking.
    #[test]
    fn parsers_survive_random_input() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d6f_7361_6963);
        let alphabet = b"%+=&?/abcAZ09_-. \t\x00\xff:;,\"'";
        let header = HeaderName::from_static("x-api-key");
        let cert = rcgen_free_certificate();
        for round in 0..20_000 {
            let len = rng.random_range(0..64);
            let text: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect();
            let _ = percent_decode(&text);
            let _ = ApiKey::parse_digest(&text);
            let _ = ApiKey::parse_digest(&format!("sha256:{text}"));
            if let Ok(value) = HeaderValue::try_from(text.as_bytes()) {
                let _ = bearer(&value);
            }
            let uri = format!("/v1/x?{text}");
            if let Ok(mut request) = http::Request::get(uri.as_str()).body(()) {
                key_from_query(&mut request, "api_key", &header);
                key_from_query(&mut request, &text, &header);
            }
            let mut bytes = cert.clone();
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
            if round % 4 == 0 {
                bytes.truncate(rng.random_range(0..bytes.len()));
            }
            let _ = PeerIdentity::of_certificate(&bytes);
            let noise: Vec<u8> = (0..rng.random_range(0..256))
                .map(|_| rng.random())
                .collect();
            let _ = PeerIdentity::of_certificate(&noise);
        }
    }

    /// A DER certificate with URI and DNS SANs (made once with openssl for this test).
    fn rcgen_free_certificate() -> Vec<u8> {
        use base64::Engine;
        let pem = include_str!("../../tests/fixtures/san-test-cert.pem");
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    #[test]
    fn a_certificate_names_its_holder_by_uri_then_dns() {
        let identity = PeerIdentity::of_certificate(&rcgen_free_certificate()).unwrap();
        assert_eq!(identity.uris, ["spiffe://mosaic.test/web"]);
        assert_eq!(identity.dns_names, ["web.mosaic.test"]);
        assert_eq!(identity.name(), Some("spiffe://mosaic.test/web"));
    }

    #[test]
    fn only_canonical_paths_are_admitted() {
        assert!(is_canonical("/demo.users.v1.UserService/GetUser"));
        assert!(is_canonical("/grpc.health.v1.Health/Check"));
        for odd in [
            "/a.Svc/Delet%65",
            "/a.Svc/Delete/",
            "//a.Svc/Delete",
            "/a.Svc/De lete",
            "/a.Svc",
            "/a.Svc/M.x",
            "",
        ] {
            assert!(!is_canonical(odd), "{odd}");
        }
    }

    #[test]
    fn bearer_tokens_are_read_whatever_the_scheme_case() {
        let value = |text: &'static str| HeaderValue::from_static(text);
        assert_eq!(bearer(&value("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&value("bearer abc ")), Some("abc"));
        assert_eq!(bearer(&value("Basic abc")), None);
        assert_eq!(bearer(&value("Bearer ")), None);
        assert_eq!(bearer(&value("Bearer")), None);
    }
}
