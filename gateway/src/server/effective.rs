//! `GET /config`: the configuration in force, as JSON, with every default filled in, so an
//! operator sees what the gateway actually does rather than what the file left out.
//!
//! Keys and units follow `gateway.toml` (durations as `humantime` strings, the budget as a
//! percent), so a value read here can be pasted back into the file. Nothing in the file is a
//! secret today; key material (TLS, API keys) will appear here as the path it is read from,
//! never as its contents.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::snapshot::Snapshot;
use crate::config::{
    AccessLogTarget, BreakerPolicy, BudgetPolicy, HedgePolicy, Hedging, MethodPolicy, RetryPolicy,
    UpstreamConfig,
};
use crate::telemetry::metrics::CODE_NAMES;

/// The configuration of `snapshot`.
pub(super) fn config(snapshot: &Snapshot) -> Value {
    let config = &snapshot.config;
    json!({
        "generation": snapshot.generation,
        "listener": {
            "address": config.listener.address.to_string(),
            "drain_timeout": duration(config.listener.drain_timeout),
            "tls": config.listener.tls.as_ref().map(|tls| serde_json::json!({
                "cert": tls.cert.display().to_string(),
                "key": tls.key.display().to_string(),
                "reload_interval": duration(tls.reload_interval),
                "client_ca": tls.client_ca.as_ref().map(|p| p.display().to_string()),
                "client_cert_required": tls.client_ca.is_some() && tls.client_cert_required,
            })),
        },
        "admin": config.admin.as_ref().map(|admin| json!({ "address": admin.address.to_string() })),
        "reflection": {
            "descriptor_sets": config
                .descriptor_sets
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>(),
        },
        "metrics": { "enabled": config.metrics.enabled },
        "access_log": config.access_log.as_ref().map(|log| json!({
            "path": match &log.target {
                AccessLogTarget::Stdout => "stdout".to_owned(),
                AccessLogTarget::File(path) => path.display().to_string(),
            },
            "fields": log.fields.iter().map(|field| field.name()).collect::<Vec<_>>(),
        })),
        "upstreams": config
            .upstreams
            .iter()
            .map(|upstream| (upstream.name.clone(), self::upstream(upstream)))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn upstream(upstream: &UpstreamConfig) -> Value {
    let policy = &upstream.policy;
    json!({
        "endpoints": upstream.endpoints.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "services": upstream.services,
        "connect_timeout": duration(upstream.connect_timeout),
        "max_concurrent": policy.max_concurrent,
        "connections_per_endpoint": policy.connections_per_endpoint,
        "ready_timeout": duration(policy.ready_timeout),
        "max_ejection_percent": policy.max_ejection_percent,
        "dns_refresh": duration(policy.dns_refresh),
        "max_replay_bytes": policy.max_replay_bytes,
        "breaker": breaker(&policy.breaker),
        "retry": retry(&policy.retry),
        "budget": budget(&policy.budget),
        "hedge": match &policy.hedge {
            Hedging::Unset => Value::Null,
            Hedging::Off => json!({ "enabled": false }),
            Hedging::On(hedge) => self::hedge(hedge),
        },
        "methods": policy
            .methods
            .iter()
            .map(|(name, method)| (name.clone(), self::method(method)))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn breaker(breaker: &BreakerPolicy) -> Value {
    let mut value = json!({
        "consecutive_failures": breaker.consecutive_failures,
        "backoff_min": duration(breaker.backoff_min),
        "backoff_max": duration(breaker.backoff_max),
    });
    if let Some(rate) = &breaker.failure_rate {
        value["failure_rate"] = json!(rate.threshold);
        value["failure_rate_window"] = json!(duration(rate.window));
        value["failure_rate_min_requests"] = json!(rate.min_requests);
    }
    value
}

fn retry(retry: &RetryPolicy) -> Value {
    json!({
        "max_attempts": retry.max_attempts,
        "initial_backoff": duration(retry.initial_backoff),
        "max_backoff": duration(retry.max_backoff),
        "multiplier": retry.multiplier,
        "retryable_codes": retry
            .retryable_codes
            .iter()
            .map(|code| CODE_NAMES.get(*code as usize).copied().unwrap_or("UNKNOWN"))
            .collect::<Vec<_>>(),
    })
}

fn budget(budget: &BudgetPolicy) -> Value {
    json!({
        "percent": f64::from(budget.ratio) * 100.0,
        "min_per_second": budget.min_per_second,
        "ttl": duration(budget.ttl),
    })
}

fn hedge(hedge: &HedgePolicy) -> Value {
    json!({ "delay": duration(hedge.delay), "max_attempts": hedge.max_attempts })
}

fn method(method: &MethodPolicy) -> Value {
    json!({
        "timeout": method.timeout.map(duration),
        "idempotent": method.idempotent,
        "retry": method.retry.as_ref().map(retry),
        "hedge": match &method.hedge {
            None => Value::Null,
            Some(None) => json!({ "enabled": false }),
            Some(Some(hedge)) => self::hedge(hedge),
        },
    })
}

fn duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
