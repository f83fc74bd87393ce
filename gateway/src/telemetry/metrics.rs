//! Metrics: the families the gateway exports at the admin listener's `GET /metrics`, and the
//! handles its layers record into.
//!
//! Names and labels follow the OpenTelemetry RPC semantic conventions (v1.44, with the
//! `rpc.status_code` attribute of the conventions' main branch) mapped to Prometheus as the
//! OpenTelemetry specification says: dots become underscores, the unit is appended as a word
//! (`s` → `_seconds`, `By` → `_bytes`), counters end in `_total`. What the conventions do not
//! cover is named `mosaic_…`. ARCHITECTURE.md lists every family.
//!
//! # The hot path
//!
//! Nothing on a call's path formats a string or looks a label set up in a family: every label
//! but the status is known before the call (the method table is built at start, each endpoint
//! gets its handles when it is made), and the status, one of gRPC's 17 codes, indexes an array
//! of lazily created histograms ([`ByStatus`]). Recording a call is then an atomic load and one
//! histogram observation. Counters that are only read at scrape time (sheds, retries, breaker
//! transitions) are plain atomics kept by the layer that counts them and read by a collector,
//! and gauges (breaker state, load estimates, calls in flight) are read from the live state at
//! scrape time: they cost the call path nothing at all.
//!
//! Per-consumer or per-peer values never become labels: they would make the series unbounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// A label set: every value but the status is fixed when the handle is made.
pub(crate) type Labels = Vec<(&'static str, Arc<str>)>;

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The method label of calls to methods the gateway has no descriptor for, as the semantic
/// conventions ask (an unbounded label would let callers grow the series without limit).
pub(crate) const OTHER_METHOD: &str = "_OTHER";

/// Call durations, in nanoseconds: the semantic conventions' recommended buckets (5 ms to
/// 10 s), preceded by five finer ones, since a loopback hop or the gateway's own share of a call
/// takes 0.1–1 ms.
const DURATION_BUCKETS: [u64; 19] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    750_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    7_500_000_000,
    10_000_000_000,
];

/// Message sizes, in bytes: 16 B to 16 MiB in powers of four.
const SIZE_BUCKETS: [u64; 11] = [
    16,
    64,
    256,
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
];

/// gRPC status names, indexed by code, as `rpc.status_code` spells them.
pub(crate) const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

fn duration_histogram() -> Histogram {
    Histogram::new(&DURATION_BUCKETS, 1e-9)
}

fn size_histogram() -> Histogram {
    Histogram::new(&SIZE_BUCKETS, 1.0)
}

/// A histogram with fixed buckets kept in atomics, striped across a few shards.
///
/// prometheus-client's own histogram takes a write lock for every observation; every call
/// through the gateway records into the same few series from every core, so that lock (and
/// even a single set of atomic counters) would bounce between cores on the hot path. Here an
/// observation is a bucket search over a few integers and two relaxed additions to the
/// calling thread's shard, each shard on its own cache lines; a scrape sums the shards without
/// stopping writers (a scrape racing an observation may see its bucket before its sum, which
/// Prometheus tolerates: each counter is monotonic on its own).
#[derive(Clone, Debug)]
pub(crate) struct Histogram(Arc<HistogramInner>);

/// Shards per histogram: enough that the worker threads of a small machine rarely share one.
const SHARDS: usize = 4;

/// The most buckets a histogram has, `+Inf` included.
const MAX_BUCKETS: usize = DURATION_BUCKETS.len() + 1;

#[derive(Debug)]
struct HistogramInner {
    /// Upper bounds, in the histogram's integer unit.
    bounds: &'static [u64],
    shards: [Shard; SHARDS],
    /// What one integer unit is in the exported unit (1e-9 for nanoseconds → seconds).
    scale: f64,
}

/// One thread group's counts: one per bound, then `+Inf`, and the sum of observations.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    counts: [AtomicU64; MAX_BUCKETS],
    sum: AtomicU64,
}

/// The shard this thread records into, assigned round-robin on a thread's first observation.
fn shard_index() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|index| *index)
}

impl Histogram {
    fn new(bounds: &'static [u64], scale: f64) -> Self {
        debug_assert!(bounds.len() < MAX_BUCKETS);
        Self(Arc::new(HistogramInner {
            bounds,
            shards: Default::default(),
            scale,
        }))
    }

    /// Records one value in the histogram's integer unit (bytes, or nanoseconds).
    pub(crate) fn observe(&self, value: u64) {
        let inner = &self.0;
        let bucket = inner.bounds.partition_point(|bound| *bound < value);
        let shard = &inner.shards[shard_index()];
        shard.counts[bucket].fetch_add(1, Ordering::Relaxed);
        shard.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration (for histograms in seconds).
    pub(crate) fn observe_duration(&self, duration: Duration) {
        self.observe(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The count in bucket `index` (`bounds.len()` is `+Inf`), over every shard.
    fn bucket(&self, index: usize) -> u64 {
        self.0
            .shards
            .iter()
            .map(|shard| shard.counts[index].load(Ordering::Relaxed))
            .sum()
    }

    #[cfg(test)]
    fn count(&self) -> u64 {
        (0..=self.0.bounds.len())
            .map(|index| self.bucket(index))
            .sum()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let inner = &self.0;
        let mut count = 0;
        let buckets: Vec<(f64, u64)> = (0..=inner.bounds.len())
            .map(|index| {
                let n = self.bucket(index);
                count += n;
                let bound = inner
                    .bounds
                    .get(index)
                    .map_or(f64::INFINITY, |bound| *bound as f64 * inner.scale);
                (bound, n)
            })
            .collect();
        let sum: u64 = inner
            .shards
            .iter()
            .map(|shard| shard.sum.load(Ordering::Relaxed))
            .sum();
        encoder.encode_histogram::<NoLabelSet>(sum as f64 * inner.scale, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The families every part of the gateway records into, registered once.
#[derive(Clone)]
pub(crate) struct Metrics {
    server_duration: Histograms,
    server_active: Family<Labels, Gauge>,
    server_request_size: Histograms,
    server_response_size: Histograms,
    client_duration: Histograms,
    attempt_duration: Histograms,
    server_own: Histograms,
    step_duration: Histograms,
    consumers: Arc<ConsumerCalls>,
}

/// Per-consumer series (`mosaic_consumer_call_duration_seconds`), made as consumers appear:
/// the first `max` consumers get their own, every later one is counted as `other`.
struct ConsumerCalls {
    family: Histograms,
    max: std::sync::atomic::AtomicUsize,
    series: std::sync::Mutex<ConsumerSeries>,
}

/// Consumer, plan, API.
type ConsumerKey = (Arc<str>, Option<Arc<str>>, Arc<str>);

#[derive(Default)]
struct ConsumerSeries {
    /// By consumer, plan and API (the gRPC service).
    by_key: HashMap<ConsumerKey, Arc<ByStatus>>,
    /// Consumers that have their own series.
    named: std::collections::HashSet<Arc<str>>,
}

/// Consumers given their own series when `[metrics] max_consumers` is not set.
pub const DEFAULT_MAX_CONSUMERS: usize = 100;

/// The label of consumers beyond `max_consumers`.
pub(crate) const OTHER_CONSUMER: &str = "other";

/// Histograms of one label set, one per gRPC status, each created when its status first occurs
/// (so a scrape shows only the statuses seen, and recording never looks anything up).
pub(crate) struct ByStatus {
    family: Histograms,
    labels: Labels,
    slots: [OnceLock<Histogram>; 17],
}

/// What the edge side records for one method (or for every method without a descriptor).
pub(crate) struct ServerMethod {
    /// `rpc_server_call_duration_seconds`, by status.
    pub(crate) calls: ByStatus,
    /// `mosaic_server_active_calls`.
    pub(crate) active: Gauge,
    /// `rpc_server_request_size_bytes`: one observation per request message.
    pub(crate) request_size: Histogram,
    /// `rpc_server_response_size_bytes`: one observation per response message.
    pub(crate) response_size: Histogram,
    /// `mosaic_server_own_duration_seconds`: the gateway's own share of each call.
    pub(crate) own: Histogram,
}

// === impl Metrics ===

impl Metrics {
    /// Registers the call families in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            server_duration: Family::new_with_constructor(duration_histogram),
            server_active: Family::default(),
            server_request_size: Family::new_with_constructor(size_histogram),
            server_response_size: Family::new_with_constructor(size_histogram),
            client_duration: Family::new_with_constructor(duration_histogram),
            attempt_duration: Family::new_with_constructor(duration_histogram),
            server_own: Family::new_with_constructor(duration_histogram),
            step_duration: Family::new_with_constructor(duration_histogram),
            consumers: Arc::new(ConsumerCalls {
                family: Family::new_with_constructor(duration_histogram),
                max: std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_CONSUMERS),
                series: Default::default(),
            }),
        };
        registry.register_with_unit(
            "mosaic_consumer_call_duration",
            "Duration of admitted edge calls by consumer, plan, API (gRPC service) and status; \
             consumers beyond metrics.max_consumers are counted as `other`",
            Unit::Seconds,
            metrics.consumers.family.clone(),
        );
        registry.register_with_unit(
            "rpc_server_call_duration",
            "Duration of edge calls answered by the gateway, by method and status",
            Unit::Seconds,
            metrics.server_duration.clone(),
        );
        registry.register(
            "mosaic_server_active_calls",
            "Edge calls in progress",
            metrics.server_active.clone(),
        );
        registry.register_with_unit(
            "rpc_server_request_size",
            "Size of each request message of edge calls (gRPC payload, without the 5-byte prefix)",
            Unit::Bytes,
            metrics.server_request_size.clone(),
        );
        registry.register_with_unit(
            "rpc_server_response_size",
            "Size of each response message of edge calls (gRPC payload, without the 5-byte prefix)",
            Unit::Bytes,
            metrics.server_response_size.clone(),
        );
        registry.register_with_unit(
            "mosaic_server_own_duration",
            "The gateway's own share of each edge call: its duration less the time during which \
             at least one attempt was out at a downstream",
            Unit::Seconds,
            metrics.server_own.clone(),
        );
        registry.register_with_unit(
            "mosaic_compose_step_duration",
            "Duration of each call step of composed edge calls (retries included), by edge \
             method, step and status",
            Unit::Seconds,
            metrics.step_duration.clone(),
        );
        registry.register_with_unit(
            "rpc_client_call_duration",
            "Duration of calls to upstreams, retries and hedges included, by upstream, method \
             and status",
            Unit::Seconds,
            metrics.client_duration.clone(),
        );
        registry.register_with_unit(
            "mosaic_client_attempt_duration",
            "Duration of each attempt sent to an upstream endpoint, by endpoint and status",
            Unit::Seconds,
            metrics.attempt_duration.clone(),
        );
        metrics
    }

    /// The edge side's handles for `method` (`package.Service/Method`, or [`OTHER_METHOD`])
    /// served over `protocol` (`grpc`).
    pub(crate) fn server_method(&self, method: &str, protocol: &'static str) -> ServerMethod {
        let labels: Labels = vec![
            ("rpc_system_name", "grpc".into()),
            ("rpc_method", method.into()),
            ("protocol", protocol.into()),
        ];
        ServerMethod {
            calls: ByStatus::new(self.server_duration.clone(), labels.clone()),
            active: self.server_active.get_or_create_owned(&labels),
            request_size: self.server_request_size.get_or_create_owned(&labels),
            response_size: self.server_response_size.get_or_create_owned(&labels),
            own: self.server_own.get_or_create_owned(&labels),
        }
    }

    /// Gives at most `max` consumers their own series.
    pub(crate) fn limit_consumers(&self, max: usize) {
        self.consumers
            .max
            .store(max, std::sync::atomic::Ordering::Relaxed);
    }

    /// Handles for calls by `consumer` on `plan` to the API `api`.
    pub(crate) fn consumer_calls(
        &self,
        consumer: &Arc<str>,
        plan: Option<&Arc<str>>,
        api: &str,
    ) -> Arc<ByStatus> {
        let calls = &self.consumers;
        let mut series = calls
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let max = calls.max.load(std::sync::atomic::Ordering::Relaxed);
        let (consumer, plan) = if series.named.contains(consumer) {
            (Arc::clone(consumer), plan.cloned())
        } else if series.named.len() < max {
            series.named.insert(Arc::clone(consumer));
            (Arc::clone(consumer), plan.cloned())
        } else {
            (Arc::from(OTHER_CONSUMER), None)
        };
        let key = (consumer, plan, Arc::from(api));
        if let Some(found) = series.by_key.get(&key) {
            return Arc::clone(found);
        }
        let labels: Labels = vec![
            ("consumer", Arc::clone(&key.0)),
            ("plan", key.1.clone().unwrap_or_else(|| Arc::from(""))),
            ("api", Arc::clone(&key.2)),
        ];
        let made = Arc::new(ByStatus::new(calls.family.clone(), labels));
        series.by_key.insert(key, Arc::clone(&made));
        made
    }

    /// Handles for the call step `step` of the edge method `method`.
    pub(crate) fn step(&self, method: &str, step: &str) -> ByStatus {
        ByStatus::new(
            self.step_duration.clone(),
            vec![("rpc_method", method.into()), ("step", step.into())],
        )
    }

    /// Handles for calls from the gateway to `method` on `upstream`.
    pub(crate) fn client_method(&self, upstream: &str, method: &str) -> ByStatus {
        ByStatus::new(
            self.client_duration.clone(),
            vec![
                ("rpc_system_name", "grpc".into()),
                ("rpc_method", method.into()),
                ("upstream", upstream.into()),
            ],
        )
    }

    /// Handles for attempts sent to one endpoint (`host:port`) of `upstream`.
    pub(crate) fn endpoint_attempts(&self, upstream: &str, endpoint: &str) -> ByStatus {
        ByStatus::new(
            self.attempt_duration.clone(),
            vec![
                ("rpc_system_name", "grpc".into()),
                ("upstream", upstream.into()),
                ("endpoint", endpoint.into()),
            ],
        )
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

// === impl ByStatus ===

impl ByStatus {
    fn new(family: Histograms, labels: Labels) -> Self {
        Self {
            family,
            labels,
            slots: Default::default(),
        }
    }

    /// Histograms registered nowhere: what parts built outside a gateway (unit tests) record
    /// into.
    pub(crate) fn detached() -> Self {
        Self::new(Family::new_with_constructor(duration_histogram), Vec::new())
    }

    /// Records `duration` for a call that ended with gRPC status `code` (an unknown code
    /// counts as `UNKNOWN`, as gRPC clients treat it).
    pub(crate) fn observe(&self, code: i32, duration: Duration) {
        let index = usize::try_from(code)
            .ok()
            .filter(|index| *index < CODE_NAMES.len())
            .unwrap_or(2);
        self.slots[index]
            .get_or_init(|| {
                let mut labels = self.labels.clone();
                labels.push(("rpc_status_code", CODE_NAMES[index].into()));
                self.family.get_or_create_owned(&labels)
            })
            .observe_duration(duration);
    }
}

impl std::fmt::Debug for ByStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByStatus")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServerMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMethod")
            .field("labels", &self.calls.labels)
            .finish_non_exhaustive()
    }
}

/// Reads the gRPC message boundaries of a body as its data frames pass, without copying or
/// decoding: each 5-byte prefix (flag, big-endian length) gives one message's size. Written by
/// hand because it is twenty lines over bytes already in hand; a codec would buffer messages.
#[derive(Debug, Default)]
pub(crate) struct MessageSizes {
    /// Prefix bytes read so far of the next message.
    prefix: [u8; 5],
    prefix_len: usize,
    /// Payload bytes of the current message still to come.
    remaining: u64,
}

impl MessageSizes {
    /// Feeds one data frame; calls `each` with the size of every message whose prefix it
    /// completes.
    pub(crate) fn feed(&mut self, mut data: &[u8], mut each: impl FnMut(u64)) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let skip = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.remaining -= skip as u64;
                data = &data[skip..];
                continue;
            }
            let take = (5 - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&data[..take]);
            self.prefix_len += take;
            data = &data[take..];
            if self.prefix_len == 5 {
                self.prefix_len = 0;
                let [_, a, b, c, d] = self.prefix;
                let size = u64::from(u32::from_be_bytes([a, b, c, d]));
                each(size);
                self.remaining = size;
            }
        }
    }
}

/// A caller's request body as the edge hands it over, its message sizes recorded.
pub(crate) type CallerBody = MeteredBody<crate::grpc::body::CallerStream>;

/// A request body that records the size of each gRPC message as it streams past.
#[derive(Debug)]
pub(crate) struct MeteredBody<B> {
    inner: B,
    sizes: MessageSizes,
    histogram: Option<Histogram>,
    /// Every data byte, when something (the access log) wants the total.
    bytes: Option<Arc<AtomicU64>>,
    /// The largest message let through, and where an oversized one is recorded.
    limit: Option<Arc<MessageLimit>>,
}

/// The largest request message one call may send, and the first one over it.
#[derive(Debug)]
pub(crate) struct MessageLimit {
    pub(crate) max: u64,
    /// The size the first oversized message declared; 0 while none was.
    pub(crate) exceeded: AtomicU64,
}

impl MessageLimit {
    pub(crate) fn new(max: u64) -> Arc<Self> {
        Arc::new(Self {
            max,
            exceeded: AtomicU64::new(0),
        })
    }

    /// The size of the oversized message, if one was sent.
    pub(crate) fn exceeded(&self) -> Option<u64> {
        Some(self.exceeded.load(Ordering::Relaxed)).filter(|size| *size > 0)
    }
}

/// The error a request body ends with once a message declares more than the limit.
#[derive(Debug, thiserror::Error)]
#[error("a request message of {size} bytes is over the limit of {max} bytes")]
pub(crate) struct MessageTooLarge {
    size: u64,
    max: u64,
}

impl<B> MeteredBody<B> {
    /// Records `inner`'s message sizes into `histogram` (`None`: records nothing).
    pub(crate) fn new(inner: B, histogram: Option<Histogram>) -> Self {
        Self {
            inner,
            sizes: MessageSizes::default(),
            histogram,
            bytes: None,
            limit: None,
        }
    }

    /// Ends the body with an error at the first message over `limit`, recording its size.
    pub(crate) fn limited(mut self, limit: Option<Arc<MessageLimit>>) -> Self {
        self.limit = limit;
        self
    }

    /// Also adds every data byte to `bytes`.
    pub(crate) fn counting(mut self, bytes: Option<Arc<AtomicU64>>) -> Self {
        self.bytes = bytes;
        self
    }
}

impl<B> http_body::Body for MeteredBody<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: From<MessageTooLarge>,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, B::Error>>> {
        let this = &mut *self;
        let frame = std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            if this.histogram.is_some() || this.limit.is_some() {
                let (histogram, limit) = (&this.histogram, &this.limit);
                let mut over = None;
                this.sizes.feed(data, |size| {
                    if let Some(histogram) = histogram {
                        histogram.observe(size);
                    }
                    if let Some(limit) = limit
                        && size > limit.max
                        && over.is_none()
                    {
                        over = Some(size);
                    }
                });
                if let (Some(size), Some(limit)) = (over, limit) {
                    let _ = limit.exceeded.compare_exchange(
                        0,
                        size,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    let max = limit.max;
                    return std::task::Poll::Ready(Some(Err(MessageTooLarge { size, max }.into())));
                }
            }
            if let Some(bytes) = &this.bytes {
                bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(size: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&size.to_be_bytes());
        bytes.extend(std::iter::repeat_n(7u8, size as usize));
        bytes
    }

    #[test]
    fn message_sizes_are_read_across_any_framing() {
        let stream: Vec<u8> = [message(3), message(0), message(70_000), message(1)].concat();
        // Whole, byte by byte, and in uneven chunks: the same four sizes.
        for chunk in [stream.len(), 1, 4, 6, 4096] {
            let mut sizes = MessageSizes::default();
            let mut seen = Vec::new();
            for frame in stream.chunks(chunk) {
                sizes.feed(frame, |size| seen.push(size));
            }
            assert_eq!(seen, [3, 0, 70_000, 1], "chunks of {chunk}");
        }
    }

    #[test]
    fn histograms_export_cumulative_buckets_in_seconds() {
        let mut registry = Registry::default();
        let histogram = duration_histogram();
        registry.register("d", "help", histogram.clone());
        for micros in [50, 100, 120, 3_000, 20_000_000] {
            histogram.observe_duration(Duration::from_micros(micros));
        }
        assert_eq!(histogram.count(), 5);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "d_bucket{le=\"0.0001\"} 2",  // 50 µs and exactly 100 µs
            "d_bucket{le=\"0.00025\"} 3", // 120 µs
            "d_bucket{le=\"0.005\"} 4",   // 3 ms
            "d_bucket{le=\"10.0\"} 4",
            "d_bucket{le=\"+Inf\"} 5", // 20 s
            "d_count 5",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        let sum: f64 = text
            .lines()
            .find_map(|line| line.strip_prefix("d_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 20.00327).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn observations_from_every_thread_are_counted_once() {
        let histogram = size_histogram();
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    for size in 0..1000 {
                        histogram.observe(size);
                    }
                });
            }
        });
        assert_eq!(histogram.count(), 6000);
        // Sizes 0..=16 fall in the first bucket, 17..=64 in the second.
        assert_eq!(histogram.bucket(0), 6 * 17);
        assert_eq!(histogram.bucket(1), 6 * 48);
    }

    #[test]
    fn statuses_get_their_own_series_and_unknown_codes_count_as_unknown() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let calls = metrics.client_method("users", "demo.users.v1.UserService/GetUser");
        calls.observe(0, Duration::from_millis(1));
        calls.observe(0, Duration::from_millis(2));
        calls.observe(14, Duration::from_millis(500));
        calls.observe(99, Duration::from_millis(100));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let count = |status: &str| {
            text.lines()
                .find(|line| {
                    line.starts_with("rpc_client_call_duration_seconds_count")
                        && line.contains(&format!("rpc_status_code=\"{status}\""))
                })
                .and_then(|line| line.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(count("OK").as_deref(), Some("2"), "{text}");
        assert_eq!(count("UNAVAILABLE").as_deref(), Some("1"));
        assert_eq!(count("UNKNOWN").as_deref(), Some("1"));
        assert_eq!(
            count("CANCELLED"),
            None,
            "no series for a status never seen"
        );
    }
}
