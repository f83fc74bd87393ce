//! Rate limits per consumer: a limit per plan (over every method), per method, and for
//! anonymous callers per address, each a GCRA token bucket (`calls` per `per`, up to `burst` at
//! once).
//!
//! Buckets live in this process (`governor`) or, for several replicas, in Redis: one `EVALSHA`
//! per check runs the same algorithm on the server's clock, so replicas share one bucket per
//! key and a check is one round trip. When Redis does not answer within `timeout`, the
//! configured choice applies: the local bucket (the default), or a refusal. A broken
//! connection is reopened in the background, at most once a second; until then every check
//! takes the fallback at once instead of waiting on a dead server.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use governor::clock::{Clock, QuantaClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use redis::aio::MultiplexedConnection;

use super::Caller;

/// `[rate_limits]`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitsConfig {
    /// Where buckets are kept.
    pub store: LimitStore,
    /// Per consumer over every method, by plan; `default` for consumers without a plan.
    pub plans: BTreeMap<String, Rate>,
    /// Per consumer and method (`pkg.Service/Method`) or service (`pkg.Service`).
    pub methods: BTreeMap<String, Rate>,
    /// Per address, for calls no credential identifies.
    pub anonymous: Option<Rate>,
}

/// One bucket's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed per `per`.
    pub calls: u32,
    /// The window `calls` are spread over.
    pub per: Duration,
    /// Calls allowed at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    /// The time one call's token takes to come back.
    fn interval(&self) -> Duration {
        (self.per / self.calls).max(Duration::from_nanos(1))
    }

    fn quota(&self) -> Quota {
        // The interval is at least 1 ns and the burst at least 1, so neither falls back.
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.interval())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst)
    }

    fn describe(&self) -> String {
        format!(
            "{} calls per {}",
            self.calls,
            humantime::format_duration(self.per)
        )
    }
}

/// Where buckets are kept.
#[derive(Clone, Debug, PartialEq)]
pub enum LimitStore {
    /// In this process.
    Local,
    /// In Redis, shared by every gateway that uses it.
    Redis(RedisConfig),
}

/// `[rate_limits.redis]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// The longest a check waits for Redis before the fallback applies.
    pub timeout: Duration,
    /// What happens when Redis cannot be asked.
    pub on_error: OnRedisError,
    /// Prefix of every key the gateway writes.
    pub key_prefix: String,
}

/// What a check does when Redis cannot answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnRedisError {
    /// Use this gateway's own bucket for the key (the default): limits stay in force,
    /// per replica.
    Local,
    /// Refuse the call (`UNAVAILABLE`).
    Refuse,
}

/// A call over a limit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exceeded {
    /// Which limit, for the message: "plan `free` (10 calls per 1s)".
    pub(crate) limit: String,
    /// The bucket's size.
    pub(crate) quota: u32,
    /// When the next call would be admitted.
    pub(crate) retry_after: Duration,
}

/// Why a check did not admit a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refused {
    Exceeded(Exceeded),
    /// Redis could not be asked and `on_error = "refuse"`.
    StoreUnavailable(String),
}

type Local = RateLimiter<Arc<str>, HashMapStateStore<Arc<str>>, QuantaClock>;

/// One configured limit and its local buckets.
struct Limit {
    /// `plan:free`, `method:pkg.Svc/M`, `anonymous`: part of every key.
    id: String,
    /// For messages.
    label: String,
    rate: Rate,
    local: Local,
}

impl Limit {
    fn new(id: String, label: String, rate: Rate, clock: &QuantaClock) -> Self {
        let local = RateLimiter::hashmap_with_clock(rate.quota(), clock.clone());
        Self {
            id,
            label,
            rate,
            local,
        }
    }

    fn exceeded(&self, retry_after: Duration) -> Exceeded {
        Exceeded {
            limit: format!("{} ({})", self.label, self.rate.describe()),
            quota: self.rate.burst,
            retry_after,
        }
    }

    fn check_local(&self, subject: &Arc<str>, clock: &QuantaClock) -> Result<(), Exceeded> {
        self.local
            .check_key(subject)
            .map(|_| ())
            .map_err(|not_until| self.exceeded(not_until.wait_time_from(clock.now())))
    }
}

/// Every limit, checked before a call goes anywhere.
pub(crate) struct Limits {
    plans: BTreeMap<String, Limit>,
    methods: std::collections::HashMap<Box<str>, Limit>,
    anonymous: Option<Limit>,
    clock: QuantaClock,
    redis: Option<Arc<Redis>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("plans", &self.plans.keys().collect::<Vec<_>>())
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Limits {
    pub(crate) fn new(config: &RateLimitsConfig) -> Result<Self, String> {
        let clock = QuantaClock::default();
        let plans = config
            .plans
            .iter()
            .map(|(plan, rate)| {
                let limit = Limit::new(
                    format!("plan:{plan}"),
                    format!("plan `{plan}`"),
                    *rate,
                    &clock,
                );
                (plan.clone(), limit)
            })
            .collect();
        let methods = config
            .methods
            .iter()
            .map(|(name, rate)| {
                let limit =
                    Limit::new(format!("method:{name}"), format!("`{name}`"), *rate, &clock);
                (name.as_str().into(), limit)
            })
            .collect();
        let anonymous = config
            .anonymous
            .map(|rate| Limit::new("anonymous".into(), "anonymous callers".into(), rate, &clock));
        let redis = match &config.store {
            LimitStore::Local => None,
            LimitStore::Redis(redis) => Some(Arc::new(Redis::new(redis)?)),
        };
        Ok(Self {
            plans,
            methods,
            anonymous,
            clock,
            redis,
        })
    }

    /// Checks every limit that applies to a call to `path` by `caller` (or, anonymous, from
    /// `address`). The first limit exceeded refuses the call.
    pub(crate) async fn check(
        &self,
        path: &str,
        caller: Option<&Caller>,
        address: Option<IpAddr>,
    ) -> Result<(), Refused> {
        let name = path.trim_start_matches('/');
        let (subject, plan_limit): (Arc<str>, Option<&Limit>) = match caller {
            Some(caller) => {
                // Keyed by scheme too: a token whose subject is an API key's consumer name
                // does not share (or drain) that key's buckets. A plan the configuration
                // does not list is held to the default plan's limit.
                let plan = caller.plan.as_deref().unwrap_or("default");
                let limit = self.plans.get(plan).or_else(|| self.plans.get("default"));
                let subject = format!("{}:{}", caller.scheme.name(), caller.consumer);
                (subject.into(), limit)
            }
            // Anonymous calls are keyed by address (IPv6 by its /64, which one client
            // controls whole), for the anonymous limit and for method limits alike.
            None => (address_key(address).into(), self.anonymous.as_ref()),
        };
        let method_limit = self.methods.get(name).or_else(|| {
            let service = name.split_once('/').map_or(name, |(service, _)| service);
            self.methods.get(service)
        });
        for limit in [plan_limit, method_limit].into_iter().flatten() {
            self.check_one(limit, &subject).await?;
        }
        Ok(())
    }

    async fn check_one(&self, limit: &Limit, subject: &Arc<str>) -> Result<(), Refused> {
        let Some(redis) = &self.redis else {
            return limit
                .check_local(subject, &self.clock)
                .map_err(Refused::Exceeded);
        };
        match redis.check(&limit.id, subject, limit.rate).await {
            Ok(None) => Ok(()),
            Ok(Some(retry_after)) => Err(Refused::Exceeded(limit.exceeded(retry_after))),
            Err(error) => match redis.on_error {
                OnRedisError::Local => limit
                    .check_local(subject, &self.clock)
                    .map_err(Refused::Exceeded),
                OnRedisError::Refuse => Err(Refused::StoreUnavailable(error)),
            },
        }
    }

    /// Forgets local buckets that are full again, so keys of consumers that went quiet do not
    /// keep memory.
    pub(crate) fn forget_idle(&self) {
        for limit in self
            .plans
            .values()
            .chain(self.methods.values())
            .chain(&self.anonymous)
        {
            limit.local.retain_recent();
            limit.local.shrink_to_fit();
        }
    }
}

/// The bucket key of an anonymous caller: its IPv4 address, or its IPv6 /64.
fn address_key(address: Option<IpAddr>) -> String {
    match address {
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "ip:unknown".to_owned(),
    }
}

/// GCRA on the Redis server's clock. Keys hold the theoretical arrival time in microseconds
/// and expire when their bucket is full again. Returns `{admitted, retry_after_us}`.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - tolerance
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return {1, 0}
";

/// The shared store.
struct Redis {
    client: redis::Client,
    script: redis::Script,
    connection: ArcSwapOption<MultiplexedConnection>,
    reconnecting: Arc<AtomicBool>,
    timeout: Duration,
    on_error: OnRedisError,
    prefix: String,
}

impl Redis {
    fn new(config: &RedisConfig) -> Result<Self, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|error| format!("rate_limits.redis.url: {error}"))?;
        Ok(Self {
            client,
            script: redis::Script::new(GCRA),
            connection: ArcSwapOption::empty(),
            reconnecting: Arc::new(AtomicBool::new(false)),
            timeout: config.timeout,
            on_error: config.on_error,
            prefix: config.key_prefix.clone(),
        })
    }

    /// `None` when admitted, the wait when not; an error when Redis could not be asked.
    async fn check(
        self: &Arc<Self>,
        id: &str,
        subject: &str,
        rate: Rate,
    ) -> Result<Option<Duration>, String> {
        let Some(connection) = self.connection.load_full() else {
            self.reconnect();
            return Err("not connected to Redis".into());
        };
        let mut connection = (*connection).clone();
        let key = format!("{}:{id}:{subject}", self.prefix);
        let interval = rate.interval().as_micros().max(1) as u64;
        let mut invocation = self.script.key(key);
        invocation.arg(interval).arg(rate.burst.max(1));
        let answer: Result<Result<(i64, i64), redis::RedisError>, _> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection)).await;
        match answer {
            Ok(Ok((1, _))) => Ok(None),
            Ok(Ok((_, wait_us))) => Ok(Some(Duration::from_micros(wait_us.max(0) as u64))),
            Ok(Err(error)) => {
                if error.is_io_error() || error.is_connection_dropped() {
                    self.connection.store(None);
                    self.reconnect();
                }
                Err(format!("Redis: {error}"))
            }
            Err(_) => Err(format!(
                "Redis did not answer within {}",
                humantime::format_duration(self.timeout)
            )),
        }
    }

    /// Opens a connection in the background unless one is being opened; at most once a second.
    fn reconnect(self: &Arc<Self>) {
        if self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let connect = this.client.get_multiplexed_async_connection();
            match tokio::time::timeout(Duration::from_secs(1), connect).await {
                Ok(Ok(connection)) => {
                    this.connection.store(Some(Arc::new(connection)));
                    tracing::info!("connected to Redis for shared rate limits");
                }
                Ok(Err(error)) => tracing::warn!(%error, "cannot connect to Redis"),
                Err(_) => tracing::warn!("connecting to Redis timed out"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            this.reconnecting.store(false, Ordering::Release);
        });
    }
}

impl Limits {
    /// Connects to Redis, when the store is Redis; waits up to a second so that the first
    /// calls after start are counted in the shared buckets.
    pub(crate) async fn connect(&self) {
        let Some(redis) = &self.redis else { return };
        redis.reconnect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while redis.connection.load().is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Scheme;

    fn caller(consumer: &str, plan: Option<&str>) -> Caller {
        Caller {
            consumer: consumer.into(),
            plan: plan.map(Into::into),
            scheme: Scheme::ApiKey,
            claims: None,
            context: Arc::default(),
        }
    }

    fn limits(plans: &[(&str, Rate)], methods: &[(&str, Rate)], anonymous: Option<Rate>) -> Limits {
        Limits::new(&RateLimitsConfig {
            store: LimitStore::Local,
            plans: plans.iter().map(|(p, r)| (p.to_string(), *r)).collect(),
            methods: methods.iter().map(|(m, r)| (m.to_string(), *r)).collect(),
            anonymous,
        })
        .unwrap()
    }

    const FIVE: Rate = Rate {
        calls: 5,
        per: Duration::from_secs(60),
        burst: 5,
    };

    #[tokio::test]
    async fn a_plan_limits_each_consumer_on_its_own() {
        let limits = limits(&[("free", FIVE)], &[], None);
        let alice = caller("alice", Some("free"));
        let bob = caller("bob", Some("free"));
        for _ in 0..5 {
            limits.check("/a.S/M", Some(&alice), None).await.unwrap();
        }
        let Err(Refused::Exceeded(exceeded)) = limits.check("/a.S/N", Some(&alice), None).await
        else {
            panic!("the sixth call in a minute is over the plan");
        };
        assert_eq!(exceeded.limit, "plan `free` (5 calls per 1m)");
        assert_eq!(exceeded.quota, 5);
        // One token comes back every 12 s.
        assert!(exceeded.retry_after > Duration::from_secs(11));
        assert!(exceeded.retry_after <= Duration::from_secs(12));
        limits.check("/a.S/M", Some(&bob), None).await.unwrap();
        // No plan limit for gold, and no default: unlimited.
        let carol = caller("carol", Some("gold"));
        for _ in 0..20 {
            limits.check("/a.S/M", Some(&carol), None).await.unwrap();
        }
    }

    #[tokio::test]
    async fn method_limits_apply_per_consumer_and_anonymous_per_address() {
        let two = Rate {
            calls: 2,
            per: Duration::from_secs(60),
            burst: 2,
        };
        let limits = limits(&[], &[("a.S/M", two), ("b.S", two)], Some(two));
        let alice = caller("alice", None);
        for _ in 0..2 {
            limits.check("/a.S/M", Some(&alice), None).await.unwrap();
            limits.check("/b.S/X", Some(&alice), None).await.unwrap();
        }
        assert!(limits.check("/a.S/M", Some(&alice), None).await.is_err());
        assert!(limits.check("/b.S/Y", Some(&alice), None).await.is_err());
        limits
            .check("/a.S/Other", Some(&alice), None)
            .await
            .unwrap();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two_ip: IpAddr = "192.0.2.2".parse().unwrap();
        limits.check("/c.S/M", None, Some(one)).await.unwrap();
        limits.check("/c.S/M", None, Some(one)).await.unwrap();
        assert!(limits.check("/c.S/M", None, Some(one)).await.is_err());
        limits.check("/c.S/M", None, Some(two_ip)).await.unwrap();
        // Method limits hold anonymous callers to them too, by address.
        let three: IpAddr = "192.0.2.3".parse().unwrap();
        limits.check("/a.S/M", None, Some(three)).await.unwrap();
        limits.check("/a.S/M", None, Some(three)).await.unwrap();
        assert!(limits.check("/a.S/M", None, Some(three)).await.is_err());
        // One IPv6 client rotating through its /64 is one caller.
        for host in 1..=2 {
            let address: IpAddr = format!("2001:db8:1:2::{host}").parse().unwrap();
            limits.check("/d.S/M", None, Some(address)).await.unwrap();
        }
        let rotated: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limits.check("/d.S/M", None, Some(rotated)).await.is_err());
    }

    #[tokio::test]
    async fn an_unlisted_plan_gets_the_default_and_schemes_do_not_share_buckets() {
        let limits = limits(&[("default", FIVE)], &[], None);
        let stranger = caller("mallory", Some("made-up-plan"));
        for _ in 0..5 {
            limits.check("/a.S/M", Some(&stranger), None).await.unwrap();
        }
        assert!(limits.check("/a.S/M", Some(&stranger), None).await.is_err());
        let keyed = caller("acme", None);
        let token = Caller {
            scheme: Scheme::Jwt,
            ..caller("acme", None)
        };
        for _ in 0..5 {
            limits.check("/a.S/M", Some(&token), None).await.unwrap();
        }
        limits.check("/a.S/M", Some(&keyed), None).await.unwrap();
    }
}
