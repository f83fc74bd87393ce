//! Managed access end to end: API keys, bearer JWTs, per-method policy and rate limits on the
//! real gateway in front of the demo services, called with tonic and curl. Every refusal is
//! checked against the demo services' own call counters: a refused call reaches nothing.

use mosaic_demo::demo::catalog::v1::GetProductRequest;
use mosaic_demo::demo::catalog::v1::catalog_service_client::CatalogServiceClient;
use mosaic_demo::demo::inventory::v1::GetStockRequest;
use mosaic_demo::demo::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_demo::demo::users::v1::GetUserRequest;
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo_services::DemoService;
use mosaic_tests::curl::curl;
use mosaic_tests::scrape::Scrape;
use mosaic_tests::tokens::{self, AUDIENCE, ISSUER};
use mosaic_tests::{Stack, scratch_file};
use serde_json::json;
use tonic::{Code, Request};

const ACME_KEY: &str = "mk_live_acme_7Gq2xVfP9kLr3Wz8";
const GLOBEX_KEY: &str = "mk_live_globex_Yt4nB6sQ1dHc0Ju5";

/// The demo stack behind a gateway with keys, tokens, policies and a free plan of 5 calls a
/// minute.
async fn start() -> Stack {
    let jwks = scratch_file("auth-jwks.json");
    std::fs::write(&jwks, tokens::jwks().to_string()).unwrap();
    let acme = mosaic_gateway::digest_of(ACME_KEY);
    let globex = mosaic_gateway::digest_of(GLOBEX_KEY);
    let tables = format!(
        r#"
[auth]
forward_claims = {{ sub = "x-user-id", tenant = "x-tenant", consumer = "x-consumer" }}

[auth.api_keys]
query = "api_key"
keys = [
  {{ hash = "{acme}", consumer = "acme", plan = "free" }},
  {{ hash = "{globex}", consumer = "globex", plan = "gold" }},
]

[auth.jwt]
jwks_file = "{jwks}"
issuers = ["{ISSUER}"]
audiences = ["{AUDIENCE}"]
plan_claim = "plan"

[auth.policies."demo.catalog.v1.CatalogService"]
public = true

[auth.policies."demo.users.v1.UserService/GetUser"]
schemes = ["jwt"]
scopes = ["users:read"]

[auth.policies."demo.inventory.v1.InventoryService"]
schemes = ["api_key"]

[rate_limits]
plans.free = {{ rate = 5, per = "1m" }}
"#,
        jwks = jwks.display()
    );
    Stack::start_with(|config| config + &tables).await.unwrap()
}

/// Request metadata a test sends.
type Metadata<'a> = &'a [(&'static str, &'a str)];

fn calls(stack: &Stack, service: DemoService) -> u64 {
    stack.service(service).faults().stats().calls_total
}

fn with_metadata<T>(message: T, metadata: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    for (name, value) in metadata {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("ASCII metadata"));
    }
    request
}

async fn get_stock(stack: &Stack, metadata: &[(&'static str, &str)]) -> Result<(), tonic::Status> {
    InventoryServiceClient::new(stack.via_gateway())
        .get_stock(with_metadata(GetStockRequest { product_id: 7 }, metadata))
        .await
        .map(|_| ())
}

async fn get_user(stack: &Stack, token: Option<&str>) -> Result<(), tonic::Status> {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let metadata: Vec<(&'static str, &str)> = bearer
        .as_deref()
        .map(|value| vec![("authorization", value)])
        .unwrap_or_default();
    UserServiceClient::new(stack.via_gateway())
        .get_user(with_metadata(GetUserRequest { id: 3 }, &metadata))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn api_keys_admit_their_consumers_and_nothing_else() {
    let stack = start().await;
    let before = calls(&stack, DemoService::Inventory);
    get_stock(&stack, &[("x-api-key", GLOBEX_KEY)])
        .await
        .unwrap();
    assert_eq!(calls(&stack, DemoService::Inventory), before + 1);

    let refusals: [(Metadata<'_>, Code, &str); 4] = [
        (
            &[],
            Code::Unauthenticated,
            "missing credentials: this method needs an API key in `x-api-key`",
        ),
        (
            &[("x-api-key", "mk_live_guess")],
            Code::Unauthenticated,
            "the API key in `x-api-key` is not valid",
        ),
        // A key in the wrong header is no key at all.
        (
            &[("x-api-token", GLOBEX_KEY)],
            Code::Unauthenticated,
            "missing credentials",
        ),
        (
            &[("authorization", GLOBEX_KEY)],
            Code::Unauthenticated,
            "missing credentials",
        ),
    ];
    for (metadata, code, message) in refusals {
        let status = get_stock(&stack, metadata).await.unwrap_err();
        assert_eq!(status.code(), code, "{metadata:?}: {status:?}");
        assert!(
            status.message().starts_with(message),
            "{metadata:?}: {}",
            status.message()
        );
        assert!(!status.message().contains("mk_live"), "no secret is echoed");
        assert_eq!(
            status
                .metadata()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("ApiKey realm=\"mosaic\", header=\"x-api-key\"")
        );
    }
    assert_eq!(
        calls(&stack, DemoService::Inventory),
        before + 1,
        "refusals reach nothing"
    );

    // Over HTTP: the key header, or the query parameter (which the transcoder never sees).
    let url = format!("http://{}/v1/products/7/stock", stack.gateway_addr());
    let header = format!("x-api-key: {GLOBEX_KEY}");
    let ok = curl(&["-H", &header, &url]).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let query = curl(&[&format!("{url}?api_key={GLOBEX_KEY}")]).await;
    assert_eq!(query.status, 200, "{}", query.text());
    let missing = curl(&[&url]).await;
    assert_eq!(missing.status, 401, "{}", missing.text());
    assert_eq!(
        missing.header("www-authenticate"),
        Some("ApiKey realm=\"mosaic\", header=\"x-api-key\"")
    );
    assert_eq!(missing.json()["code"], 16);
    let wrong = curl(&[&format!("{url}?api_key=nope")]).await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.text().contains("nope"), "{}", wrong.text());
    assert_eq!(calls(&stack, DemoService::Inventory), before + 3);
}

#[tokio::test]
async fn the_token_corpus_is_refused_before_any_downstream_call() {
    use jsonwebtoken::Algorithm;
    let stack = start().await;
    let scoped = json!({"scope": "users:read profile"});
    let before = calls(&stack, DemoService::Users);
    get_user(&stack, Some(&tokens::token("alice", scoped.clone())))
        .await
        .unwrap();
    // Every key type the set publishes.
    for (pem, alg, kid) in [
        (tokens::EC, Algorithm::ES256, "ec"),
        (tokens::ED, Algorithm::EdDSA, "ed"),
    ] {
        let mut claims = tokens::claims("alice");
        claims["scope"] = json!("users:read");
        get_user(&stack, Some(&tokens::sign(&claims, pem, alg, Some(kid))))
            .await
            .unwrap();
    }
    assert_eq!(calls(&stack, DemoService::Users), before + 3);

    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = tokens::claims("alice");
        claims["scope"] = json!("users:read");
        change(&mut claims);
        tokens::sign(&claims, tokens::RSA, Algorithm::RS256, Some("rsa"))
    };
    let none = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(tokens::claims("alice").to_string())
        )
    };
    // HS256 keyed with the RSA key's published (public) JWK: the classic confusion.
    let public = tokens::jwk(tokens::RSA, Algorithm::RS256, "rsa").to_string();
    let confused = tokens::sign(
        &tokens::claims("alice"),
        &public,
        Algorithm::HS256,
        Some("rsa"),
    );
    let corpus: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            with(&|c| c["exp"] = json!(tokens::now() - 3600)),
            "the bearer token has expired",
        ),
        (
            "not yet valid",
            with(&|c| c["nbf"] = json!(tokens::now() + 3600)),
            "the bearer token is not valid yet",
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("billing")),
            "the bearer token's audience is not accepted",
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://evil.test")),
            "the bearer token's issuer is not accepted",
        ),
        (
            "alg none",
            none,
            "the bearer token's algorithm is not accepted",
        ),
        (
            "HS256 with the RSA public key",
            confused,
            "the bearer token's algorithm is not accepted",
        ),
        (
            "unknown kid",
            tokens::sign(
                &tokens::claims("alice"),
                tokens::RSA_2,
                Algorithm::RS256,
                Some("rotated"),
            ),
            "the bearer token's signing key is not known",
        ),
        (
            "another key under a known kid",
            tokens::sign(
                &tokens::claims("alice"),
                tokens::RSA_2,
                Algorithm::RS256,
                Some("rsa"),
            ),
            "the bearer token's signature is not valid",
        ),
        (
            "oversized",
            format!("{}.{}.x", "a".repeat(6000), "b".repeat(3000)),
            "the bearer token is longer than 8192 bytes",
        ),
        (
            "malformed",
            "not-a-jwt".to_owned(),
            "the bearer token is malformed",
        ),
        (
            "garbage segments",
            "e30.e30.e30".to_owned(),
            "the bearer token is malformed",
        ),
    ];
    for (name, token, message) in &corpus {
        let status = get_user(&stack, Some(token)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{name}: {status:?}");
        assert_eq!(status.message(), *message, "{name}");
        let challenge = status
            .metadata()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"mosaic\", error=\"invalid_token\""),
            "{name}: {challenge}"
        );
    }
    let missing = get_user(&stack, None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(
        missing.message(),
        "missing credentials: this method needs a bearer token in `authorization`"
    );
    // An API key does not open a method whose policy takes tokens only.
    let keyed = UserServiceClient::new(stack.via_gateway())
        .get_user(with_metadata(
            GetUserRequest { id: 3 },
            &[("x-api-key", GLOBEX_KEY)],
        ))
        .await
        .unwrap_err();
    assert_eq!(keyed.code(), Code::Unauthenticated);
    // A valid token without the scope.
    let unscoped = get_user(
        &stack,
        Some(&tokens::token("alice", json!({"scope": "profile"}))),
    )
    .await
    .unwrap_err();
    assert_eq!(unscoped.code(), Code::PermissionDenied);
    assert_eq!(
        unscoped.message(),
        "permission denied: the token lacks the scope `users:read`"
    );
    assert_eq!(
        calls(&stack, DemoService::Users),
        before + 3,
        "refusals reach nothing"
    );

    // Over HTTP: 401 with the RFC 6750 challenge, 403 for the scope.
    let url = format!("http://{}/v1/users/3", stack.gateway_addr());
    let expired = format!("authorization: Bearer {}", corpus[0].1);
    let answer = curl(&["-H", &expired, &url]).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            "Bearer realm=\"mosaic\", error=\"invalid_token\", error_description=\"the bearer token has expired\""
        )
    );
    assert_eq!(answer.json()["message"], "the bearer token has expired");
    let profile = format!(
        "authorization: Bearer {}",
        tokens::token("alice", json!({"scope": "profile"}))
    );
    let forbidden = curl(&["-H", &profile, &url]).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text());
    let good = format!("authorization: Bearer {}", tokens::token("alice", scoped));
    assert_eq!(curl(&["-H", &good, &url]).await.status, 200);
    assert_eq!(calls(&stack, DemoService::Users), before + 4);
}

#[tokio::test]
async fn credentials_stay_at_the_gateway_and_claims_travel_as_metadata() {
    let stack = start().await;
    let users = stack.service(DemoService::Users).faults();
    users.start_journal();
    let token = tokens::token(
        "alice",
        json!({"scope": "users:read", "tenant": "acme-corp"}),
    );
    let mut request = with_metadata(
        GetUserRequest { id: 3 },
        &[("x-user-id", "root"), ("x-consumer", "admin")],
    );
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    UserServiceClient::new(stack.via_gateway())
        .get_user(request)
        .await
        .unwrap();
    let journal = users.take_journal();
    assert_eq!(journal.len(), 1);
    let headers = &journal[0].headers;
    assert!(
        headers.get("authorization").is_none(),
        "the token stays at the gateway"
    );
    // The caller's own copies of forwarded headers are replaced, not appended to.
    assert_eq!(
        headers.get_all("x-user-id").iter().collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(
        headers.get_all("x-consumer").iter().collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(headers["x-tenant"], "acme-corp");
}

#[tokio::test]
async fn the_edge_proto_declares_who_may_call_and_the_config_wins() {
    use mosaic_tests::storefront::GetUserProfileRequest;
    use mosaic_tests::storefront::storefront_client::StorefrontClient;
    let stack = start().await;
    let profile = |metadata: Vec<(&'static str, String)>| {
        let mut client = StorefrontClient::new(stack.via_gateway());
        async move {
            let mut request = Request::new(GetUserProfileRequest {
                user_id: 3,
                ..Default::default()
            });
            for (name, value) in metadata {
                request.metadata_mut().insert(name, value.parse().unwrap());
            }
            client
                .get_user_profile(request)
                .await
                .map(|answer| answer.into_inner())
        }
    };
    let bearer = |scope: &str| {
        vec![(
            "authorization",
            format!(
                "Bearer {}",
                tokens::token("alice", json!({ "scope": scope }))
            ),
        )]
    };
    let users = calls(&stack, DemoService::Users);
    // storefront.proto: `access: {schemes: ["jwt"] scopes: ["profile:read"]}`. The composed
    // call's own downstream calls carry the forwarded claims too.
    let journal = stack.service(DemoService::Users).faults();
    journal.start_journal();
    let mut tenant = bearer("profile:read");
    tenant[0].1 = format!(
        "Bearer {}",
        tokens::token(
            "alice",
            json!({ "scope": "profile:read", "tenant": "acme-corp", "uid": 3 })
        )
    );
    let page = profile(tenant).await.unwrap();
    // storefront.proto reads the caller in expressions: `caller.consumer`, `caller.uid`.
    assert_eq!(page.viewer, "alice");
    assert!(
        page.own_profile,
        "the token's uid claim is the profile's user"
    );
    let seen = journal.take_journal();
    assert_eq!(seen.len(), 1, "GetUserProfile calls GetUser once");
    assert_eq!(seen[0].headers["x-user-id"], "alice");
    assert_eq!(seen[0].headers["x-tenant"], "acme-corp");
    assert!(seen[0].headers.get("authorization").is_none());
    let other = profile(bearer("profile:read")).await.unwrap();
    assert_eq!(other.viewer, "alice");
    assert!(!other.own_profile, "no uid claim");
    let unscoped = profile(bearer("users:read")).await.unwrap_err();
    assert_eq!(unscoped.code(), Code::PermissionDenied);
    assert_eq!(
        unscoped.message(),
        "permission denied: the token lacks the scope `profile:read`"
    );
    let keyed = profile(vec![("x-api-key", GLOBEX_KEY.to_owned())])
        .await
        .unwrap_err();
    assert_eq!(
        keyed.code(),
        Code::Unauthenticated,
        "the proto accepts tokens only"
    );
    assert_eq!(
        calls(&stack, DemoService::Users),
        users + 2,
        "two composed calls ran"
    );

    // A gateway.toml policy for the service replaces the proto's rule.
    let open = Stack::start_with(|config| {
        config
            + &format!(
                "\n[auth.api_keys]\nkeys = [{{ hash = \"{}\", consumer = \"globex\" }}]\n\n[auth.policies.\"demo.storefront.v1.Storefront\"]\npublic = true\n",
                mosaic_gateway::digest_of(GLOBEX_KEY)
            )
    })
    .await
    .unwrap();
    let anonymous = StorefrontClient::new(open.via_gateway())
        .get_user_profile(GetUserProfileRequest {
            user_id: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(anonymous.viewer, "", "nobody identified: `caller` is empty");
    assert!(!anonymous.own_profile);
}

#[tokio::test]
async fn public_methods_need_no_credentials_but_refuse_bad_ones() {
    let stack = start().await;
    let mut catalog = CatalogServiceClient::new(stack.via_gateway());
    catalog
        .get_product(GetProductRequest { id: 7 })
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(stack.via_gateway());
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    let before = calls(&stack, DemoService::Catalog);
    let bad = catalog
        .get_product(with_metadata(
            GetProductRequest { id: 7 },
            &[("authorization", "Bearer not-a-jwt")],
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::Unauthenticated);
    assert_eq!(calls(&stack, DemoService::Catalog), before);
    // Methods no policy names need some credential.
    let mut reviews =
        mosaic_demo::demo::reviews::v1::review_service_client::ReviewServiceClient::new(
            stack.via_gateway(),
        );
    let anonymous = reviews
        .list_reviews(mosaic_demo::demo::reviews::v1::ListReviewsRequest {
            product_id: 7,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(
        anonymous.message(),
        "missing credentials: this method needs a bearer token in `authorization` or an API key in `x-api-key`"
    );
}

#[tokio::test]
async fn a_plan_limit_sheds_with_the_time_to_wait_and_counts_per_consumer() {
    let stack = start().await;
    let before = calls(&stack, DemoService::Inventory);
    for _ in 0..5 {
        get_stock(&stack, &[("x-api-key", ACME_KEY)]).await.unwrap();
    }
    let over = get_stock(&stack, &[("x-api-key", ACME_KEY)])
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted);
    assert!(
        over.message()
            .starts_with("rate limit exceeded: plan `free` (5 calls per 1m); retry in "),
        "{}",
        over.message()
    );
    let retry_after: u64 = over
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=12).contains(&retry_after),
        "one call comes back every 12 s: {retry_after}"
    );
    assert_eq!(over.metadata().get("ratelimit-limit").unwrap(), "5");
    assert_eq!(over.metadata().get("ratelimit-remaining").unwrap(), "0");
    // Another consumer, on another plan, is not affected.
    get_stock(&stack, &[("x-api-key", GLOBEX_KEY)])
        .await
        .unwrap();

    let url = format!(
        "http://{}/v1/products/7/stock?api_key={ACME_KEY}",
        stack.gateway_addr()
    );
    let http = curl(&[&url]).await;
    assert_eq!(http.status, 429, "{}", http.text());
    assert!(
        http.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok())
    );
    assert_eq!(http.header("ratelimit-limit"), Some("5"));
    let body = http.json();
    assert_eq!(body["code"], 8);
    let details = body["details"].as_array().unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"),
        "{body}"
    );
    assert!(
        details
            .iter()
            .any(|d| d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure"),
        "{body}"
    );
    assert_eq!(
        calls(&stack, DemoService::Inventory),
        before + 6,
        "5 acme calls and 1 globex call reached the service; the shed ones did not"
    );

    let scrape = Scrape::fetch(stack.admin_addr()).await.unwrap();
    let metric = "mosaic_consumer_call_duration_seconds_count";
    let api = "demo.inventory.v1.InventoryService";
    let by = |consumer: &str, plan: &str, code: &str| {
        scrape.sum(
            metric,
            &[
                ("consumer", consumer),
                ("plan", plan),
                ("api", api),
                ("rpc_status_code", code),
            ],
        )
    };
    assert_eq!(by("acme", "free", "OK"), 5.0);
    assert_eq!(
        by("acme", "free", "RESOURCE_EXHAUSTED"),
        2.0,
        "one gRPC and one HTTP call shed"
    );
    assert_eq!(by("globex", "gold", "OK"), 1.0);
}

#[tokio::test]
async fn the_access_log_names_each_calls_consumer() {
    let jwks = scratch_file("auth-log-jwks.json");
    std::fs::write(&jwks, tokens::jwks().to_string()).unwrap();
    let log = scratch_file("auth-access.log");
    let tables = format!(
        "\n[access_log]\npath = \"{}\"\nfields = [\"method\", \"status\", \"consumer\", \"plan\"]\n\n[auth.api_keys]\nkeys = [{{ hash = \"{}\", consumer = \"globex\", plan = \"gold\" }}]\n\n[auth.jwt]\njwks_file = \"{}\"\nissuers = [\"{ISSUER}\"]\naudiences = [\"{AUDIENCE}\"]\n",
        log.display(),
        mosaic_gateway::digest_of(GLOBEX_KEY),
        jwks.display()
    );
    let mut stack = Stack::start_with(|config| config + &tables).await.unwrap();
    get_stock(&stack, &[("x-api-key", GLOBEX_KEY)])
        .await
        .unwrap();
    get_user(&stack, Some(&tokens::token("alice", json!({}))))
        .await
        .unwrap();
    get_stock(&stack, &[]).await.unwrap_err();
    stack.shutdown_gateway().await;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"method": "/demo.inventory.v1.InventoryService/GetStock", "status": "OK", "consumer": "globex", "plan": "gold"}),
            json!({"method": "/demo.users.v1.UserService/GetUser", "status": "OK", "consumer": "alice", "plan": null}),
            json!({"method": "/demo.inventory.v1.InventoryService/GetStock", "status": "UNAUTHENTICATED", "consumer": null, "plan": null}),
        ]
    );
}

#[tokio::test]
async fn anonymous_calls_cannot_spoof_forwarded_claims_or_paths() {
    let stack = start().await;
    // A public method called with no credential and a forged forwarded header.
    let catalog = stack.service(DemoService::Catalog).faults();
    catalog.start_journal();
    CatalogServiceClient::new(stack.via_gateway())
        .get_product(with_metadata(
            GetProductRequest { id: 7 },
            &[("x-user-id", "admin"), ("x-tenant", "everyone")],
        ))
        .await
        .unwrap();
    let journal = catalog.take_journal();
    assert_eq!(journal.len(), 1);
    assert!(
        journal[0].headers.get("x-user-id").is_none(),
        "{:?}",
        journal[0].headers
    );
    assert!(journal[0].headers.get("x-tenant").is_none());

    // A method spelled another way is not given its service's looser policy.
    let token = format!(
        "Bearer {}",
        tokens::token("alice", json!({"scope": "profile"}))
    );
    let before = calls(&stack, DemoService::Users);
    let body = mosaic_tests::raw::frame(&[vec![0x08, 0x03]]);
    for path in [
        "/demo.users.v1.UserService/Get%55ser",
        "/demo.users.v1.UserService/GetUser/",
    ] {
        let mut raw = mosaic_tests::raw::RawConnection::open(stack.gateway_addr())
            .await
            .unwrap();
        let response = raw
            .call(path, body.clone(), &[("authorization", &token)])
            .await
            .unwrap();
        let trailers = response.trailers.as_ref().unwrap_or(&response.headers);
        let status = tonic::Status::from_header_map(trailers).unwrap();
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
        assert!(
            status.message().starts_with("malformed gRPC path"),
            "{}",
            status.message()
        );
    }
    assert_eq!(calls(&stack, DemoService::Users), before);
}
