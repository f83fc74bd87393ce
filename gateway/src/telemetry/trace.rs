//! Traces: OpenTelemetry spans exported over OTLP/gRPC, and W3C trace context carried to every
//! downstream call.
//!
//! Each edge call gets a server span (its parent taken from the caller's `traceparent` and
//! `tracestate`), each call step of a composed call a span under it, and each attempt sent to a
//! downstream endpoint a client span under that (retries and hedges carry their attempt
//! number); the attempt's own context goes out as `traceparent`/`tracestate`, pass-through
//! included, so the downstream's spans hang under it. The gateway's own decisions (a call shed,
//! no ready endpoint, the deadline passing) are events on the span they happen in.
//!
//! Spans are made with the OpenTelemetry API directly rather than through `tracing` and
//! `tracing-opentelemetry`: that bridge routes every span through the one process-wide
//! subscriber, while each gateway (a process may run several, as the tests do) has its own
//! exporter, sampler and resource, and the call path should not pay for a subscriber's span
//! bookkeeping.
//!
//! The edge call's trace context travels as a task-local ([`Scope`]), like its own-time record
//! (`own_time.rs`), so the layers that start steps and attempts find it without being handed
//! it. With `[tracing]` absent nothing is made or exported; a caller's `traceparent` is then
//! still sent on to every downstream call unchanged, so a trace started elsewhere is not cut.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::{Resource, runtime};
use tonic::Code;

use crate::grpc::headers::{TRACEPARENT, TRACESTATE};
use crate::telemetry::metrics::CODE_NAMES;

/// `[tracing]`: OpenTelemetry spans exported over OTLP/gRPC; off when the table is absent.
#[derive(Clone, Debug, PartialEq)]
pub struct TracingConfig {
    /// The collector's OTLP/gRPC endpoint, `http://host:4317`.
    pub endpoint: http::Uri,
    /// The share of traces started here that are sampled (0 to 1); a caller's sampling
    /// decision, in its `traceparent`, is always followed (parent-based).
    pub sampling: f64,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// More resource attributes (`deployment.environment = "prod"`).
    pub resource: BTreeMap<String, String>,
    /// How often finished spans are sent in a batch.
    pub export_interval: Duration,
}

tokio::task_local! {
    static CURRENT: Scope;
}

/// One gateway's tracer and exporter.
pub(crate) struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    /// The share of traces started here that are sampled.
    sampling: f64,
}

/// An edge call's trace context, as the task-local carries it.
#[derive(Clone)]
pub(crate) struct Scope {
    tracing: Option<Arc<Tracing>>,
    /// The span new spans hang under (the server span, or a step's).
    cx: Context,
    /// With tracing off, the caller's own trace context, passed on unchanged.
    incoming: Option<(HeaderValue, Option<HeaderValue>)>,
}

/// A span that ends, with the call's status, when [`finish`](OpenSpan::finish) is called or it
/// is dropped (as cancelled).
#[derive(Debug)]
pub(crate) struct OpenSpan {
    cx: Context,
    /// Server spans count only server-side codes as errors, as the conventions say.
    server: bool,
    finished: bool,
}

impl Tracing {
    /// Builds the exporter and tracer for `config`; needs a Tokio runtime (the batch exporter
    /// runs as one of its tasks).
    pub(crate) fn start(config: &TracingConfig) -> Result<Arc<Tracing>, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.endpoint.to_string())
            .build()
            .map_err(|error| error.to_string())?;
        let batch = BatchSpanProcessor::builder(exporter, runtime::Tokio)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(config.export_interval)
                    .with_max_queue_size(8192)
                    .build(),
            )
            .build();
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attributes(
                config
                    .resource
                    .iter()
                    .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
            )
            .build();
        // The sampling decision is taken once per edge call, before any span is made
        // (`Scope::server`): an unsampled call then costs what an untraced one does. Every span
        // that is made belongs to a sampled call, so the SDK keeps them all.
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_sampler(Sampler::AlwaysOn)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("mosaic-gateway");
        Ok(Arc::new(Tracing {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
            sampling: config.sampling,
        }))
    }

    /// Sends the spans still queued and stops the exporter (at shutdown, after the drain).
    pub(crate) fn shutdown(&self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "the last spans could not all be exported");
        }
    }
}

impl Scope {
    /// The scope of an edge call to `method` (`pkg.Svc/Method`) from `peer`, and its server
    /// span; `None` when there is nothing to trace or pass on.
    pub(crate) fn server(
        tracing: Option<&Arc<Tracing>>,
        headers: &HeaderMap,
        method: &str,
        peer: Option<SocketAddr>,
    ) -> Option<(Scope, Option<OpenSpan>)> {
        let incoming = headers.get(TRACEPARENT);
        // Parent-based: a caller's decision (its `sampled` flag) is followed; a call without a
        // valid parent starts a trace with the configured probability.
        let sampled = tracing.is_some_and(|tracing| match incoming.and_then(sampled_flag) {
            Some(sampled) => sampled,
            None => rand::random::<f64>() < tracing.sampling,
        });
        let Some(tracing) = tracing.filter(|_| sampled) else {
            let scope = Scope {
                tracing: None,
                cx: Context::new(),
                incoming: Some((incoming?.clone(), headers.get(TRACESTATE).cloned())),
            };
            return Some((scope, None));
        };
        let parent = tracing.propagator.extract(&Headers(headers));
        let mut attributes = vec![
            KeyValue::new("rpc.system.name", "grpc"),
            KeyValue::new("rpc.method", method.to_owned()),
        ];
        if let Some(peer) = peer {
            attributes.push(KeyValue::new("network.peer.address", peer.ip().to_string()));
            attributes.push(KeyValue::new("network.peer.port", i64::from(peer.port())));
        }
        let span = tracing
            .tracer
            .span_builder(method.to_owned())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&tracing.tracer, &parent);
        let cx = parent.with_span(span);
        let scope = Scope {
            tracing: Some(Arc::clone(tracing)),
            cx: cx.clone(),
            incoming: None,
        };
        Some((scope, Some(OpenSpan::new(cx, true))))
    }

    /// Runs `future` in `scope` (or as it is, without one).
    pub(crate) fn run<F: Future>(
        scope: Option<Scope>,
        future: F,
    ) -> impl Future<Output = F::Output> {
        match scope {
            Some(scope) => Either::Left(CURRENT.scope(scope, future)),
            None => Either::Right(future),
        }
    }

    /// `future`, carrying the current scope along when it is spawned on another task.
    pub(crate) fn propagate<F: Future>(future: F) -> impl Future<Output = F::Output> {
        Self::run(CURRENT.try_with(Clone::clone).ok(), future)
    }

    /// A span for call step `step` (calling `method`) of the current edge call, and the scope
    /// its attempts run in; `None` when the call is not traced.
    pub(crate) fn step(step: &str, method: &str) -> Option<(Scope, OpenSpan)> {
        CURRENT
            .try_with(|current| current.step_in(step, method))
            .ok()
            .flatten()
    }

    fn step_in(&self, step: &str, method: &str) -> Option<(Scope, OpenSpan)> {
        let current = self;
        let tracing = current.tracing.as_ref()?;
        let name = if step.is_empty() { method } else { step };
        let span = tracing
            .tracer
            .span_builder(name.to_owned())
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new("mosaic.step", step.to_owned()),
                KeyValue::new("rpc.method", method.to_owned()),
            ])
            .start_with_context(&tracing.tracer, &current.cx);
        let cx = current.cx.with_span(span);
        let scope = Scope {
            tracing: current.tracing.clone(),
            cx: cx.clone(),
            incoming: None,
        };
        Some((scope, OpenSpan::new(cx, false)))
    }

    /// Starts the client span of an attempt about to be sent with `headers`, and writes the
    /// trace context the downstream is to continue into them.
    pub(crate) fn attempt<B>(
        request: &mut http::Request<B>,
        upstream: &str,
        endpoint: &str,
    ) -> Option<OpenSpan> {
        CURRENT
            .try_with(|current| current.attempt_in(request, upstream, endpoint))
            .ok()
            .flatten()
    }

    fn attempt_in<B>(
        &self,
        request: &mut http::Request<B>,
        upstream: &str,
        endpoint: &str,
    ) -> Option<OpenSpan> {
        let current = self;
        let Some(tracing) = &current.tracing else {
            let headers = request.headers_mut();
            // Not traced here: the caller's context goes on (typed calls do not carry it).
            if let Some((traceparent, tracestate)) = &current.incoming
                && !headers.contains_key(TRACEPARENT)
            {
                headers.insert(HeaderName::from_static(TRACEPARENT), traceparent.clone());
                if let Some(tracestate) = tracestate {
                    headers.insert(HeaderName::from_static(TRACESTATE), tracestate.clone());
                }
            }
            return None;
        };
        let method = request.uri().path().trim_start_matches('/').to_owned();
        let headers = request.headers_mut();
        let previous = headers
            .get(crate::grpc::headers::PREVIOUS_ATTEMPTS)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<i64>().ok())
            .unwrap_or(0);
        let span = tracing
            .tracer
            .span_builder(method.clone())
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("rpc.system.name", "grpc"),
                KeyValue::new("rpc.method", method),
                KeyValue::new("mosaic.upstream", upstream.to_owned()),
                KeyValue::new("server.address", endpoint.to_owned()),
                KeyValue::new("mosaic.previous_attempts", previous),
            ])
            .start_with_context(&tracing.tracer, &current.cx);
        let cx = current.cx.with_span(span);
        headers.remove(TRACEPARENT);
        headers.remove(TRACESTATE);
        tracing
            .propagator
            .inject_context(&cx, &mut HeadersMut(headers));
        Some(OpenSpan::new(cx, false))
    }

    /// Records one of the gateway's own decisions on the current span.
    pub(crate) fn event(name: &'static str, attributes: Vec<KeyValue>) {
        let _ = CURRENT.try_with(|current| {
            if current.tracing.is_some() {
                current.cx.span().add_event(name, attributes);
            }
        });
    }
}

impl OpenSpan {
    fn new(cx: Context, server: bool) -> Self {
        Self {
            cx,
            server,
            finished: false,
        }
    }

    /// Records one of the gateway's own decisions on this span.
    pub(crate) fn event(&self, name: &'static str, attributes: Vec<KeyValue>) {
        self.cx.span().add_event(name, attributes);
    }

    /// Ends the span with the call's status.
    pub(crate) fn finish(mut self, code: Code, message: Option<&str>) {
        self.end(code, message);
    }

    fn end(&mut self, code: Code, message: Option<&str>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let span = self.cx.span();
        let name = CODE_NAMES.get(code as usize).copied().unwrap_or("UNKNOWN");
        span.set_attribute(KeyValue::new("rpc.status_code", name));
        let error = if self.server {
            matches!(
                code,
                Code::Unknown
                    | Code::DeadlineExceeded
                    | Code::Unimplemented
                    | Code::Internal
                    | Code::Unavailable
                    | Code::DataLoss
            )
        } else {
            code != Code::Ok
        };
        if error {
            span.set_attribute(KeyValue::new("error.type", name));
            span.set_status(Status::error(Cow::Owned(
                message.unwrap_or(name).to_owned(),
            )));
        }
        span.end();
    }
}

impl Drop for OpenSpan {
    fn drop(&mut self) {
        self.end(Code::Cancelled, None);
    }
}

/// The `sampled` flag of a well-formed `traceparent`; `None` for anything else.
fn sampled_flag(traceparent: &HeaderValue) -> Option<bool> {
    parse_traceparent(traceparent.to_str().ok()?).map(|(_, sampled)| sampled)
}

/// The trace id and `sampled` flag of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
/// when it is well formed and its ids are not all zeros; anything else is to be treated as
/// absent, as the Trace Context spec says.
pub(crate) fn parse_traceparent(text: &str) -> Option<(&str, bool)> {
    let mut parts = text.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    let flags = u8::from_str_radix(flags, 16).ok()?;
    valid.then_some((trace, flags & 1 == 1))
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampled_flag_is_read_only_from_valid_traceparents() {
        let value = |text: &str| HeaderValue::from_str(text).unwrap();
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            sampled_flag(&value(&format!("00-{id}-00f067aa0ba902b7-01"))),
            Some(true)
        );
        assert_eq!(
            sampled_flag(&value(&format!("00-{id}-00f067aa0ba902b7-00"))),
            Some(false)
        );
        assert_eq!(
            sampled_flag(&value(&format!("00-{id}-00f067aa0ba902b7-03"))),
            Some(true)
        );
        for bad in [
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("ff-{id}-00f067aa0ba902b7-01"),
            format!("00-{id}-00f067aa0ba902b7"),
            format!("00-{id}-00f067aa0ba902b7-01-extra"),
            "garbage".to_owned(),
        ] {
            assert_eq!(sampled_flag(&value(&bad)), None, "{bad}");
        }
    }
}
