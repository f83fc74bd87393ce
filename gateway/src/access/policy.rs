//! Who may call what: a policy per method, per service, or for everything.
//!
//! The most specific policy wins and nothing merges: a method's policy replaces its service's,
//! which replaces the default. Without a policy a method needs a caller authenticated by any
//! configured scheme, except `grpc.health.v1.Health`, which is public so that load balancers
//! can probe it; a policy can say otherwise for either.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::Caller;

/// How a caller proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A key in the API-key header (or query parameter).
    ApiKey,
    /// A bearer JWT in `authorization`.
    Jwt,
    /// A client certificate verified by the listener's TLS.
    Mtls,
}

impl Scheme {
    /// Its name in `gateway.toml`, in proto options and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Jwt => "jwt",
            Self::Mtls => "mtls",
        }
    }

    /// The scheme `name` names.
    pub fn by_name(name: &str) -> Option<Self> {
        Some(match name {
            "api_key" => Self::ApiKey,
            "jwt" => Self::Jwt,
            "mtls" => Self::Mtls,
            _ => return None,
        })
    }
}

/// One access policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// Callable without credentials; credentials that are sent are still verified, so a
    /// public method still knows (and limits) the consumers that identify themselves.
    pub public: bool,
    /// The schemes accepted; empty: every configured one.
    pub schemes: Vec<Scheme>,
    /// Scopes the caller's token must all grant (`scope`, space-separated, or `scp`).
    pub scopes: Vec<String>,
    /// Claims the caller's token must carry, each with one of the listed values.
    pub claims: Vec<(String, Vec<String>)>,
    /// Plans allowed; empty: any.
    pub plans: Vec<String>,
    /// Consumers allowed by name (a key's consumer, a token's subject, a certificate's SAN);
    /// empty: any.
    pub consumers: Vec<String>,
}

impl Policy {
    /// Why `caller` may not call under this policy, if it may not.
    pub(crate) fn refuse(&self, caller: &Caller) -> Option<String> {
        if !self.consumers.is_empty() && !self.consumers.iter().any(|c| **c == *caller.consumer) {
            return Some(format!(
                "consumer `{}` is not among those allowed to call this method",
                caller.consumer
            ));
        }
        if !self.plans.is_empty()
            && !caller
                .plan
                .as_deref()
                .is_some_and(|plan| self.plans.iter().any(|p| p == plan))
        {
            return Some(format!(
                "this method needs the plan {}; consumer `{}` has {}",
                one_of(&self.plans),
                caller.consumer,
                caller
                    .plan
                    .as_deref()
                    .map_or("none".to_owned(), |plan| format!("`{plan}`"))
            ));
        }
        if self.scopes.is_empty() && self.claims.is_empty() {
            return None;
        }
        let Some(claims) = &caller.claims else {
            return Some(format!(
                "this method needs a bearer token with {}; the call was authenticated by {}",
                if self.scopes.is_empty() {
                    "claims".to_owned()
                } else {
                    format!("scopes {}", all_of(&self.scopes))
                },
                caller.scheme.name()
            ));
        };
        let granted = scopes_of(claims);
        let missing: Vec<&str> = self
            .scopes
            .iter()
            .filter(|scope| !granted.contains(&scope.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Some(format!(
                "the token lacks the scope{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (claim, values) in &self.claims {
            let matches = match claims.get(claim) {
                Some(Value::String(text)) => values.iter().any(|v| v == text),
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|item| item.as_str().is_some_and(|t| values.iter().any(|v| v == t))),
                Some(other @ (Value::Number(_) | Value::Bool(_))) => {
                    let text = other.to_string();
                    values.contains(&text)
                }
                _ => false,
            };
            if !matches {
                return Some(format!(
                    "the token's `{claim}` claim is not {}",
                    one_of(values)
                ));
            }
        }
        None
    }
}

/// The scopes a token grants: `scope` (space-separated, OAuth 2) or `scp` (a list or a string).
fn scopes_of(claims: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut scopes = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(text)) => scopes.extend(text.split_ascii_whitespace()),
            Some(Value::Array(items)) => scopes.extend(items.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    scopes
}

fn one_of(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    match quoted.len() {
        1 => quoted[0].clone(),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

fn all_of(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The health service, public unless a policy says otherwise.
const HEALTH: &str = "grpc.health.v1.Health";

/// Every policy, found by method then service then default.
#[derive(Debug)]
pub(crate) struct Policies {
    /// By `pkg.Service/Method` and by `pkg.Service`.
    by_name: HashMap<Box<str>, Arc<Policy>>,
    default: Arc<Policy>,
}

impl Policies {
    pub(crate) fn new(default: Policy, named: impl IntoIterator<Item = (String, Policy)>) -> Self {
        let mut by_name: HashMap<Box<str>, Arc<Policy>> = named
            .into_iter()
            .map(|(name, policy)| (name.into_boxed_str(), Arc::new(policy)))
            .collect();
        by_name.entry(HEALTH.into()).or_insert_with(|| {
            Arc::new(Policy {
                public: true,
                ..Policy::default()
            })
        });
        Self {
            by_name,
            default: Arc::new(default),
        }
    }

    /// The policy of the call to `path` (`/pkg.Service/Method`).
    pub(crate) fn of(&self, path: &str) -> &Arc<Policy> {
        let name = path.trim_start_matches('/');
        if let Some(policy) = self.by_name.get(name) {
            return policy;
        }
        let service = name.split_once('/').map_or(name, |(service, _)| service);
        self.by_name.get(service).unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(claims: serde_json::Value, plan: Option<&str>) -> Caller {
        Caller {
            consumer: "alice".into(),
            plan: plan.map(Into::into),
            scheme: Scheme::Jwt,
            claims: claims.as_object().cloned().map(Arc::new),
            context: Arc::default(),
        }
    }

    #[test]
    fn the_most_specific_policy_wins() {
        let public = Policy {
            public: true,
            ..Policy::default()
        };
        let scoped = Policy {
            scopes: vec!["read".into()],
            ..Policy::default()
        };
        let policies = Policies::new(
            Policy::default(),
            [
                ("a.Svc".to_owned(), scoped.clone()),
                ("a.Svc/Open".to_owned(), public.clone()),
            ],
        );
        assert_eq!(**policies.of("/a.Svc/Open"), public);
        assert_eq!(**policies.of("/a.Svc/Other"), scoped);
        assert_eq!(**policies.of("/b.Svc/M"), Policy::default());
        assert!(policies.of("/grpc.health.v1.Health/Check").public);
    }

    #[test]
    fn scopes_claims_and_plans_are_all_checked() {
        let policy = Policy {
            scopes: vec!["orders:read".into(), "orders:write".into()],
            claims: vec![("tenant".into(), vec!["acme".into(), "globex".into()])],
            plans: vec!["gold".into()],
            ..Policy::default()
        };
        let ok = caller(
            serde_json::json!({"scope": "orders:read orders:write", "tenant": "acme"}),
            Some("gold"),
        );
        assert_eq!(policy.refuse(&ok), None);
        let scp = caller(
            serde_json::json!({"scp": ["orders:read", "orders:write"], "tenant": ["globex"]}),
            Some("gold"),
        );
        assert_eq!(policy.refuse(&scp), None);
        let missing = caller(
            serde_json::json!({"scope": "orders:read", "tenant": "acme"}),
            Some("gold"),
        );
        assert_eq!(
            policy.refuse(&missing).unwrap(),
            "the token lacks the scope `orders:write`"
        );
        let tenant = caller(
            serde_json::json!({"scope": "orders:read orders:write", "tenant": "initech"}),
            Some("gold"),
        );
        assert_eq!(
            policy.refuse(&tenant).unwrap(),
            "the token's `tenant` claim is not one of `acme`, `globex`"
        );
        let plan = caller(serde_json::json!({}), Some("free"));
        assert!(
            policy
                .refuse(&plan)
                .unwrap()
                .contains("needs the plan `gold`")
        );
        let keyed = Caller {
            scheme: Scheme::ApiKey,
            claims: None,
            ..caller(serde_json::json!({}), Some("gold"))
        };
        assert!(
            policy
                .refuse(&keyed)
                .unwrap()
                .contains("authenticated by api_key")
        );
    }
}
