//! The upstreams' part of `/metrics`, read from their live state at scrape time.
//!
//! Counters are the atomics each layer keeps (`client/stats.rs`, the limit's sheds, each
//! endpoint's breaker transitions); gauges are read from the state itself (the limit's permits,
//! each endpoint's breaker, load estimate and calls in flight). Nothing here runs on a call's
//! path, and endpoints that discovery replaced disappear from the scrape with the endpoints
//! themselves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use tokio::time::Instant;

use arc_swap::ArcSwap;

use super::access_log::AccessLog;
use super::reload::Reloader;
use super::snapshot::Snapshot;
use crate::client::Upstream;
use crate::resilience::endpoint::Endpoint;

/// Reads every upstream's state at scrape time.
#[derive(Debug)]
pub(crate) struct UpstreamCollector {
    /// The upstreams of the snapshot in force are the ones reported.
    pub(crate) current: Arc<ArcSwap<Snapshot>>,
}

type Labels<'a> = [(&'static str, &'a str); 1];
type EndpointLabels<'a> = [(&'static str, &'a str); 2];

impl UpstreamCollector {
    fn upstream_counter(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        value: impl Fn(&Upstream) -> u64,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (upstream, _) in &self.current.load().upstreams {
            let labels: Labels<'_> = [("upstream", upstream.name())];
            ConstCounter::new(value(upstream)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn upstream_gauge(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        value: impl Fn(&Upstream) -> i64,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (upstream, _) in &self.current.load().upstreams {
            let labels: Labels<'_> = [("upstream", upstream.name())];
            ConstGauge::new(value(upstream)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn endpoint_metric<N>(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        (name, help, unit, kind): (&str, &str, Option<&Unit>, MetricType),
        value: impl Fn(&Endpoint, Instant) -> N,
        encode: impl Fn(N, prometheus_client::encoding::MetricEncoder<'_>) -> std::fmt::Result,
    ) -> Result<(), std::fmt::Error> {
        let now = Instant::now();
        let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
        for (upstream, _) in &self.current.load().upstreams {
            for endpoint in upstream.balancer().endpoints().iter() {
                let labels: EndpointLabels<'_> = [
                    ("upstream", upstream.name()),
                    ("endpoint", &endpoint.addr().connect),
                ];
                encode(value(endpoint, now), family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

fn counter(
    value: u64,
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
) -> std::fmt::Result {
    ConstCounter::new(value).encode(encoder)
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue>(
    value: N,
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
) -> std::fmt::Result {
    ConstGauge::new(value).encode(encoder)
}

fn as_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for UpstreamCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        self.upstream_counter(
            e,
            "mosaic_upstream_shed_calls",
            "Calls shed by the upstream's concurrency limit (RESOURCE_EXHAUSTED)",
            |u| u.limit().shed(),
        )?;
        self.upstream_counter(
            e,
            "mosaic_upstream_unready_calls",
            "Calls failed because no endpoint was ready (every breaker open, or none known)",
            |u| u.balancer().unready_failures.load(Ordering::Relaxed),
        )?;
        self.upstream_counter(
            e,
            "mosaic_client_retries",
            "Retries sent after a failed attempt",
            |u| u.stats().retries.load(Ordering::Relaxed),
        )?;
        self.upstream_counter(
            e,
            "mosaic_client_hedges",
            "Hedged attempts sent beyond a call's first",
            |u| u.stats().hedges.load(Ordering::Relaxed),
        )?;
        self.upstream_counter(
            e,
            "mosaic_client_hedges_won",
            "Calls answered by a hedged attempt rather than the first",
            |u| u.stats().hedges_won.load(Ordering::Relaxed),
        )?;
        self.upstream_counter(
            e,
            "mosaic_client_hedges_cancelled",
            "Attempts cancelled because another attempt of the same call answered",
            |u| u.stats().hedges_cancelled.load(Ordering::Relaxed),
        )?;
        self.upstream_counter(
            e,
            "mosaic_client_retry_budget_exhausted",
            "Retries and hedges not sent because the upstream's retry budget was spent",
            |u| u.stats().budget_exhausted.load(Ordering::Relaxed),
        )?;
        self.upstream_gauge(
            e,
            "mosaic_upstream_concurrency_in_use",
            "Calls admitted by the upstream's concurrency limit and not yet finished",
            |u| as_i64(u.limit().in_flight()),
        )?;
        self.upstream_gauge(
            e,
            "mosaic_upstream_concurrency_limit",
            "The upstream's concurrency limit",
            |u| as_i64(u.limit().max()),
        )?;
        self.endpoint_metric(
            e,
            (
                "mosaic_endpoint_breaker_open",
                "1 while the endpoint's circuit breaker is open or probing, else 0",
                None,
                MetricType::Gauge,
            ),
            |endpoint, _| i64::from(endpoint.open.load(Ordering::Acquire)),
            gauge,
        )?;
        self.endpoint_metric(
            e,
            (
                "mosaic_endpoint_ejections",
                "Times the endpoint's breaker opened from closed (the endpoint was ejected)",
                None,
                MetricType::Counter,
            ),
            |endpoint, _| endpoint.transitions.ejected.load(Ordering::Relaxed),
            counter,
        )?;
        self.endpoint_metric(
            e,
            (
                "mosaic_endpoint_probe_failures",
                "Probes that failed and reopened the endpoint's breaker for a longer backoff",
                None,
                MetricType::Counter,
            ),
            |endpoint, _| endpoint.transitions.reopened.load(Ordering::Relaxed),
            counter,
        )?;
        self.endpoint_metric(
            e,
            (
                "mosaic_endpoint_breaker_closes",
                "Times the endpoint's breaker closed after a successful probe",
                None,
                MetricType::Counter,
            ),
            |endpoint, _| endpoint.transitions.closed.load(Ordering::Relaxed),
            counter,
        )?;
        self.endpoint_metric(
            e,
            (
                "mosaic_endpoint_in_flight",
                "Calls sent to the endpoint and not yet finished",
                None,
                MetricType::Gauge,
            ),
            |endpoint, _| as_i64(endpoint.in_flight.load(Ordering::Relaxed)),
            gauge,
        )?;
        self.endpoint_metric(
            e,
            (
                "mosaic_endpoint_load_estimate",
                "The balancer's peak-EWMA latency estimate of the endpoint",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            ),
            |endpoint, now| endpoint.load(now).estimate_ns / 1e9,
            gauge,
        )?;
        Ok(())
    }
}

/// The access log's dropped lines.
#[derive(Debug)]
pub(crate) struct AccessLogCollector {
    pub(crate) log: Arc<AccessLog>,
}

impl Collector for AccessLogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let family = encoder.encode_descriptor(
            "mosaic_access_log_dropped_lines",
            "Access-log lines dropped because the writer was behind",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.log.dropped()).encode(family)
    }
}

/// Reloads: how many were applied and rejected, and the generation in force.
#[derive(Debug)]
pub(crate) struct ReloadCollector {
    pub(crate) reloader: Arc<Reloader>,
}

impl Collector for ReloadCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "mosaic_config_reloads",
            "Configuration reloads, by result (applied, or rejected and nothing changed)",
            None,
            MetricType::Counter,
        )?;
        for (result, count) in [
            ("applied", &self.reloader.applied),
            ("rejected", &self.reloader.rejected),
        ] {
            let labels = [("result", result)];
            ConstCounter::new(count.load(Ordering::Relaxed))
                .encode(family.encode_family(&labels)?)?;
        }
        let family = encoder.encode_descriptor(
            "mosaic_config_generation",
            "The generation of the configuration in force: 1 at start, one more per reload applied",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(self.reloader.current().generation).unwrap_or(i64::MAX))
            .encode(family)
    }
}
