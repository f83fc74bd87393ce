//! The admin listener: liveness, readiness, metrics and the gateway's live state.
//!
//! It is a separate socket so that it can stay private while the edge listener is public, and so
//! that a saturated edge listener does not make the gateway look dead.
//!
//! - `GET /`: a short page linking the others.
//! - `GET /healthz`: 200 while the process serves at all.
//! - `GET /ready`: 200 while accepting calls, 503 once shutdown has begun, so a load balancer
//!   stops sending new calls while in-flight ones drain.
//! - `GET /metrics`: every metric in the Prometheus text format (0.0.4), or in OpenMetrics when
//!   the scraper's `Accept` asks for `application/openmetrics-text`.
//! - `GET /upstreams`: JSON; each upstream's limit and its endpoints' breaker state, load
//!   estimate, calls in flight and breaker transitions.
//! - `GET /routes`: JSON; every gRPC service the edge answers and who serves it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::Upstream;

/// What the admin endpoints read.
pub(crate) struct AdminState {
    pub(crate) registry: Registry,
    pub(crate) upstreams: Vec<Arc<Upstream>>,
    /// gRPC service → who serves it (`upstream `users``, `a service hosted in the gateway`).
    pub(crate) routes: BTreeMap<String, String>,
}

const INDEX: &str = "<!doctype html><title>Mosaic admin</title><h1>Mosaic admin</h1><ul>\
<li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\
<li><a href=\"/upstreams\">/upstreams</a>: endpoints, breakers, load (JSON)</li>\
<li><a href=\"/routes\">/routes</a>: the gRPC services served (JSON)</li>\
<li><a href=\"/healthz\">/healthz</a>: liveness</li>\
<li><a href=\"/ready\">/ready</a>: readiness (503 while draining)</li></ul>\n";

/// Serves admin requests until the task is aborted.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    draining: watch::Receiver<bool>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "admin listener: accepting a connection failed");
                continue;
            }
        };
        let draining = draining.clone();
        let state = Arc::clone(&state);
        let service = service_fn(move |request| {
            let response = respond(&request, &state, *draining.borrow());
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
}

fn respond(
    request: &Request<Incoming>,
    state: &AdminState,
    draining: bool,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "admin endpoints accept GET only\n".into(),
        );
    }
    match request.uri().path() {
        "/" => with_type(StatusCode::OK, INDEX.into(), "text/html; charset=utf-8"),
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/ready" if draining => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n".into()),
        "/ready" => text(StatusCode::OK, "ready\n".into()),
        "/metrics" => metrics(request, state),
        "/upstreams" => json_answer(&upstreams(state)),
        "/routes" => json_answer(&json!({ "grpc_services": state.routes })),
        _ => text(
            StatusCode::NOT_FOUND,
            "unknown admin path; see / for the list\n".into(),
        ),
    }
}

fn metrics(request: &Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    let openmetrics = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let mut out = String::with_capacity(16 * 1024);
    let (encoded, content_type) = if openmetrics {
        (
            prometheus_client::encoding::text::encode(&mut out, &state.registry),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            prometheus_client::encoding::prometheus_text::encode(&mut out, &state.registry),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    match encoded {
        Ok(()) => with_type(StatusCode::OK, out.into(), content_type),
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the metrics failed: {error}\n").into(),
        ),
    }
}

fn upstreams(state: &AdminState) -> serde_json::Value {
    let now = Instant::now();
    let upstreams: Vec<_> = state
        .upstreams
        .iter()
        .map(|upstream| {
            let endpoints: Vec<_> = upstream
                .balancer()
                .endpoints()
                .iter()
                .map(|endpoint| {
                    let load = endpoint.load(now);
                    let transitions = &endpoint.transitions;
                    json!({
                        "address": endpoint.addr().connect,
                        "authority": endpoint.addr().authority.as_str(),
                        "breaker": if endpoint.open.load(Ordering::Acquire) { "open" } else { "closed" },
                        "load_estimate_ms": load.estimate_ns / 1e6,
                        "measured": load.measured,
                        "in_flight": load.pending,
                        "ejections": transitions.ejected.load(Ordering::Relaxed),
                        "probe_failures": transitions.reopened.load(Ordering::Relaxed),
                        "breaker_closes": transitions.closed.load(Ordering::Relaxed),
                    })
                })
                .collect();
            json!({
                "name": upstream.name().as_ref(),
                "concurrency": {
                    "in_use": upstream.limit().in_flight(),
                    "limit": upstream.limit().max(),
                    "shed": upstream.limit().shed(),
                },
                "ready": upstream.balancer().has_ready_endpoint(),
                "endpoints": endpoints,
            })
        })
        .collect();
    json!({ "upstreams": upstreams })
}

fn json_answer(value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    with_type(StatusCode::OK, body.into(), "application/json")
}

fn text(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    with_type(status, body, "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
