//! `[auth]` and `[rate_limits]`: who may call, and how often.
//!
//! ```toml
//! [auth]
//! forward_credentials = false        # strip the token / key before calling downstreams
//! forward_claims = { sub = "x-user-id", tenant = "x-tenant", consumer = "x-consumer" }
//!
//! [auth.api_keys]
//! header = "x-api-key"               # the default
//! query = "api_key"                  # HTTP callers may pass the key as a query parameter
//! file = "keys.toml"                 # [[keys]] entries like the inline ones; both may be used
//! keys = [{ hash = "sha256:9f86d0…", consumer = "acme", plan = "gold" }]
//!
//! [auth.jwt]
//! jwks_url = "https://id.example.com/.well-known/jwks.json"   # or jwks_file = "jwks.json"
//! jwks_ca = "certs/id-ca.pem"        # for an https URL; the system's roots otherwise
//! issuers = ["https://id.example.com/"]
//! audiences = ["storefront"]
//! algorithms = ["RS256", "ES256", "EdDSA"]   # the default; HS256 only when named
//! leeway = "30s"
//! refresh_interval = "5m"
//! min_refresh_interval = "30s"       # the most an unknown `kid` can make it fetch
//! consumer_claim = "sub"
//! plan_claim = "plan"
//! max_token_bytes = 8192
//! token_cache_size = 10000          # verified tokens remembered until they expire; 0: off
//!
//! [auth.mtls]                        # client certificates (listener.tls.client_ca) identify
//!
//! [auth.default]                     # methods no policy names: any configured scheme
//! schemes = ["jwt", "api_key"]
//!
//! [auth.policies."demo.users.v1.UserService"]
//! scopes = ["users:read"]
//! claims = { tenant = ["acme", "globex"] }
//! [auth.policies."demo.users.v1.UserService/GetUser"]
//! public = true
//!
//! [rate_limits]
//! store = "local"                    # or "redis": buckets shared by every replica
//! redis = { url = "redis://127.0.0.1:6379", timeout = "50ms", on_error = "local" }
//! plans.free = { rate = 10, per = "1s", burst = 20 }
//! plans.default = { rate = 100 }     # consumers without a plan
//! methods."demo.users.v1.UserService/GetUser" = { rate = 5 }   # per consumer
//! anonymous = { rate = 20 }          # per address, for calls without credentials
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, Uri};
use serde::Deserialize;

use super::Problems;
use crate::access::{
    AccessConfig, ApiKey, ApiKeysConfig, DEFAULT_ALGORITHMS, DEFAULT_KEY_HEADER, JwtConfig,
    KeySource, LimitStore, OnRedisError, Policy, Rate, RateLimitsConfig, RedisConfig, Scheme,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    forward_credentials: Option<bool>,
    #[serde(default)]
    forward_claims: BTreeMap<String, String>,
    api_keys: Option<RawApiKeys>,
    jwt: Option<RawJwt>,
    mtls: Option<RawMtls>,
    default: Option<RawPolicy>,
    #[serde(default)]
    policies: BTreeMap<String, RawPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKeys {
    header: Option<String>,
    query: Option<String>,
    file: Option<PathBuf>,
    #[serde(default)]
    keys: Vec<RawKey>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyFile {
    #[serde(default)]
    keys: Vec<RawKey>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    hash: String,
    consumer: String,
    plan: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    jwks_ca: Option<PathBuf>,
    #[serde(default)]
    issuers: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    algorithms: Option<Vec<String>>,
    leeway: Option<String>,
    refresh_interval: Option<String>,
    min_refresh_interval: Option<String>,
    consumer_claim: Option<String>,
    plan_claim: Option<String>,
    max_token_bytes: Option<u32>,
    token_cache_size: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMtls {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    public: Option<bool>,
    schemes: Option<Vec<String>>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    claims: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    plans: Vec<String>,
    #[serde(default)]
    consumers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimits {
    store: Option<String>,
    redis: Option<RawRedis>,
    #[serde(default)]
    plans: BTreeMap<String, RawRate>,
    #[serde(default)]
    methods: BTreeMap<String, RawRate>,
    anonymous: Option<RawRate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    rate: u32,
    per: Option<String>,
    burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    url: String,
    timeout: Option<String>,
    on_error: Option<String>,
    key_prefix: Option<String>,
}

/// Verified tokens remembered when `token_cache_size` is not set.
const DEFAULT_TOKEN_CACHE_SIZE: u32 = 10_000;

/// The longest token read when `max_token_bytes` is not set.
const DEFAULT_MAX_TOKEN_BYTES: u32 = 8192;

/// Validates `[auth]` and `[rate_limits]`; `None` when neither is present. `mtls_possible`:
/// the listener verifies client certificates.
pub(super) fn access(
    auth: Option<&RawAuth>,
    limits: Option<&RawRateLimits>,
    mtls_possible: bool,
    problems: &mut Problems,
) -> Option<AccessConfig> {
    if auth.is_none() && limits.is_none() {
        return None;
    }
    let rate_limits = limits.map(|raw| rate_limits(raw, problems));
    let Some(auth) = auth else {
        // Limits without authentication: every caller is anonymous, every method public.
        return Some(AccessConfig {
            api_keys: None,
            jwt: None,
            mtls: false,
            default_policy: Policy {
                public: true,
                ..Policy::default()
            },
            policies: Vec::new(),
            forward_credentials: false,
            forward_claims: Vec::new(),
            rate_limits,
        });
    };
    let api_keys = auth.api_keys.as_ref().map(|raw| api_keys(raw, problems));
    let jwt = auth.jwt.as_ref().and_then(|raw| jwt(raw, problems));
    let mtls = auth
        .mtls
        .as_ref()
        .is_some_and(|raw| raw.enabled.unwrap_or(true));
    if mtls && !mtls_possible {
        problems.push(
            "auth.mtls",
            "needs `listener.tls.client_ca`: client certificates are what identify callers",
        );
    }
    if api_keys.is_none() && auth.jwt.is_none() && !mtls {
        problems.push(
            "auth",
            "configures no scheme; add `[auth.api_keys]`, `[auth.jwt]` or `[auth.mtls]`",
        );
    }
    let configured = |scheme: Scheme| match scheme {
        Scheme::ApiKey => api_keys.is_some(),
        Scheme::Jwt => auth.jwt.is_some(),
        Scheme::Mtls => mtls,
    };
    let default_policy = auth
        .default
        .as_ref()
        .map(|raw| policy("auth.default", raw, &configured, problems))
        .unwrap_or_default();
    let policies = auth
        .policies
        .iter()
        .map(|(name, raw)| {
            let key = format!("auth.policies.\"{name}\"");
            if !is_policy_target(name) {
                problems.push(
                    key.clone(),
                    "name a service (`pkg.Service`) or a method (`pkg.Service/Method`)",
                );
            }
            (name.clone(), policy(&key, raw, &configured, problems))
        })
        .collect();
    let forward_claims = auth
        .forward_claims
        .iter()
        .filter_map(
            |(claim, header)| match HeaderName::try_from(header.as_str()) {
                Ok(name) if !name.as_str().starts_with("grpc-") => Some((claim.clone(), name)),
                Ok(_) => {
                    problems.push(
                        format!("auth.forward_claims.{claim}"),
                        "`grpc-` headers are reserved by gRPC",
                    );
                    None
                }
                Err(_) => {
                    problems.push(
                        format!("auth.forward_claims.{claim}"),
                        format!("`{header}` is not a valid header name"),
                    );
                    None
                }
            },
        )
        .collect();
    Some(AccessConfig {
        api_keys,
        jwt,
        mtls,
        default_policy,
        policies,
        forward_credentials: auth.forward_credentials.unwrap_or(false),
        forward_claims,
        rate_limits,
    })
}

fn is_policy_target(name: &str) -> bool {
    let (service, method) = name.split_once('/').unwrap_or((name, "x"));
    super::is_service_name(service) && super::is_identifier(method)
}

fn api_keys(raw: &RawApiKeys, problems: &mut Problems) -> ApiKeysConfig {
    let header = match raw.header.as_deref() {
        None => HeaderName::from_static(DEFAULT_KEY_HEADER),
        Some(name) => HeaderName::try_from(name).unwrap_or_else(|_| {
            problems.push(
                "auth.api_keys.header",
                format!("`{name}` is not a header name"),
            );
            HeaderName::from_static(DEFAULT_KEY_HEADER)
        }),
    };
    if header == http::header::AUTHORIZATION {
        problems.push(
            "auth.api_keys.header",
            "`authorization` carries bearer tokens; choose another header for keys",
        );
    }
    let mut keys = Vec::new();
    let mut add = |key: String, raw: &RawKey, problems: &mut Problems| match ApiKey::parse_digest(
        &raw.hash,
    ) {
        Ok(digest) if raw.consumer.is_empty() => {
            let _ = digest;
            problems.push(format!("{key}.consumer"), "must name the key's consumer");
        }
        Ok(digest) => keys.push(ApiKey {
            digest,
            consumer: raw.consumer.clone(),
            plan: raw.plan.clone(),
        }),
        Err(message) => problems.push(format!("{key}.hash"), message),
    };
    for (i, key) in raw.keys.iter().enumerate() {
        add(format!("auth.api_keys.keys[{i}]"), key, problems);
    }
    if let Some(path) = &raw.file {
        match std::fs::read_to_string(path) {
            Err(error) => problems.push(
                "auth.api_keys.file",
                format!("cannot read {}: {error}", path.display()),
            ),
            Ok(text) => match toml::from_str::<RawKeyFile>(&text) {
                Err(error) => problems.push(
                    "auth.api_keys.file",
                    format!("{}: {}", path.display(), error.message()),
                ),
                Ok(file) => {
                    for (i, key) in file.keys.iter().enumerate() {
                        add(format!("{}: keys[{i}]", path.display()), key, problems);
                    }
                }
            },
        }
    }
    ApiKeysConfig {
        header,
        query: raw.query.clone(),
        keys,
    }
}

fn jwt(raw: &RawJwt, problems: &mut Problems) -> Option<JwtConfig> {
    let keys = match (&raw.jwks_file, &raw.jwks_url) {
        (Some(file), None) => Some(KeySource::File(file.clone())),
        (None, Some(url)) => match url.parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() =>
            {
                Some(KeySource::Url {
                    url: uri,
                    ca: raw.jwks_ca.clone(),
                })
            }
            _ => {
                problems.push(
                    "auth.jwt.jwks_url",
                    format!("`{url}` is not an http(s) URL"),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.push("auth.jwt", "set `jwks_file` or `jwks_url`, not both");
            None
        }
        (None, None) => {
            problems.push("auth.jwt", "needs the keys: `jwks_file` or `jwks_url`");
            None
        }
    };
    let algorithms = match &raw.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(names) => names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| match name.parse::<jsonwebtoken::Algorithm>() {
                Ok(alg) => Some(alg),
                Err(_) => {
                    problems.push(
                        format!("auth.jwt.algorithms[{i}]"),
                        format!("`{name}` is not a JWS algorithm this gateway verifies (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512)"),
                    );
                    None
                }
            })
            .collect(),
    };
    if algorithms.is_empty() && raw.algorithms.as_ref().is_some_and(Vec::is_empty) {
        problems.push("auth.jwt.algorithms", "must name at least one algorithm");
    }
    let leeway = match raw.leeway.as_deref() {
        Some("0s" | "0") => Duration::ZERO,
        other => problems.duration("auth.jwt.leeway", other, Duration::from_secs(30)),
    };
    let refresh_interval = problems.duration(
        "auth.jwt.refresh_interval",
        raw.refresh_interval.as_deref(),
        Duration::from_secs(300),
    );
    let min_refresh_interval = problems.duration(
        "auth.jwt.min_refresh_interval",
        raw.min_refresh_interval.as_deref(),
        Duration::from_secs(30),
    );
    let max_token_bytes = problems.bounded(
        "auth.jwt.max_token_bytes",
        raw.max_token_bytes,
        256..=65536,
        DEFAULT_MAX_TOKEN_BYTES,
    ) as usize;
    Some(JwtConfig {
        keys: keys?,
        issuers: raw.issuers.clone(),
        audiences: raw.audiences.clone(),
        algorithms,
        leeway,
        refresh_interval,
        min_refresh_interval,
        consumer_claim: raw.consumer_claim.clone().unwrap_or_else(|| "sub".into()),
        plan_claim: raw.plan_claim.clone(),
        max_token_bytes,
        token_cache_size: problems.bounded(
            "auth.jwt.token_cache_size",
            raw.token_cache_size,
            0..=10_000_000,
            DEFAULT_TOKEN_CACHE_SIZE,
        ) as usize,
    })
}

fn policy(
    key: &str,
    raw: &RawPolicy,
    configured: &dyn Fn(Scheme) -> bool,
    problems: &mut Problems,
) -> Policy {
    let schemes = raw
        .schemes
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, name)| match Scheme::by_name(name) {
            Some(scheme) if configured(scheme) => Some(scheme),
            Some(scheme) => {
                problems.push(
                    format!("{key}.schemes[{i}]"),
                    format!(
                        "`{}` is not configured; add `[auth.{}]`",
                        scheme.name(),
                        scheme.name()
                    ),
                );
                None
            }
            None => {
                problems.push(
                    format!("{key}.schemes[{i}]"),
                    format!("unknown scheme `{name}`; expected \"api_key\", \"jwt\" or \"mtls\""),
                );
                None
            }
        })
        .collect();
    if raw.schemes.as_ref().is_some_and(Vec::is_empty) {
        problems.push(format!("{key}.schemes"), "must name at least one scheme");
    }
    Policy {
        public: raw.public.unwrap_or(false),
        schemes,
        scopes: raw.scopes.clone(),
        claims: raw
            .claims
            .iter()
            .map(|(claim, values)| {
                let values = match values {
                    OneOrMany::One(value) => vec![value.clone()],
                    OneOrMany::Many(values) => values.clone(),
                };
                (claim.clone(), values)
            })
            .collect(),
        plans: raw.plans.clone(),
        consumers: raw.consumers.clone(),
    }
}

fn rate_limits(raw: &RawRateLimits, problems: &mut Problems) -> RateLimitsConfig {
    let store = match raw.store.as_deref() {
        None | Some("local") => {
            if raw.redis.is_some() && raw.store.is_none() {
                problems.push(
                    "rate_limits.store",
                    "`redis` is configured; set `store = \"redis\"` to use it (or remove it)",
                );
            }
            LimitStore::Local
        }
        Some("redis") => match &raw.redis {
            None => {
                problems.push("rate_limits.redis", "needs `url` when `store = \"redis\"`");
                LimitStore::Local
            }
            Some(redis) => {
                if !redis.url.starts_with("redis://") {
                    problems.push(
                        "rate_limits.redis.url",
                        format!("`{}` is not a `redis://host:port` URL", redis.url),
                    );
                }
                let on_error = match redis.on_error.as_deref() {
                    None | Some("local") => OnRedisError::Local,
                    Some("refuse") => OnRedisError::Refuse,
                    Some(other) => {
                        problems.push(
                            "rate_limits.redis.on_error",
                            format!("unknown value `{other}`; expected \"local\" or \"refuse\""),
                        );
                        OnRedisError::Local
                    }
                };
                LimitStore::Redis(RedisConfig {
                    url: redis.url.clone(),
                    timeout: problems.duration(
                        "rate_limits.redis.timeout",
                        redis.timeout.as_deref(),
                        Duration::from_millis(50),
                    ),
                    on_error,
                    key_prefix: redis
                        .key_prefix
                        .clone()
                        .unwrap_or_else(|| "mosaic:rl".into()),
                })
            }
        },
        Some(other) => {
            problems.push(
                "rate_limits.store",
                format!("unknown store `{other}`; expected \"local\" or \"redis\""),
            );
            LimitStore::Local
        }
    };
    fn rate(key: String, raw: &RawRate, problems: &mut Problems) -> Option<Rate> {
        if raw.rate == 0 {
            problems.push(format!("{key}.rate"), "must be at least 1 call");
            return None;
        }
        let per = problems.duration(
            &format!("{key}.per"),
            raw.per.as_deref(),
            Duration::from_secs(1),
        );
        let burst = raw.burst.unwrap_or(raw.rate);
        if burst == 0 {
            problems.push(format!("{key}.burst"), "must be at least 1 call");
            return None;
        }
        Some(Rate {
            calls: raw.rate,
            per,
            burst,
        })
    }
    let plans = raw
        .plans
        .iter()
        .filter_map(|(plan, raw)| {
            Some((
                plan.clone(),
                rate(format!("rate_limits.plans.{plan}"), raw, problems)?,
            ))
        })
        .collect();
    let methods = raw
        .methods
        .iter()
        .filter_map(|(name, raw)| {
            let key = format!("rate_limits.methods.\"{name}\"");
            let limit = rate(key, raw, problems)?;
            Some((name.clone(), limit))
        })
        .collect::<BTreeMap<_, _>>();
    for name in methods.keys() {
        if !is_policy_target(name) {
            problems.push(
                format!("rate_limits.methods.\"{name}\""),
                "name a service (`pkg.Service`) or a method (`pkg.Service/Method`)",
            );
        }
    }
    let anonymous = raw
        .anonymous
        .as_ref()
        .and_then(|raw| rate("rate_limits.anonymous".into(), raw, problems));
    RateLimitsConfig {
        store,
        plans,
        methods,
        anonymous,
    }
}
