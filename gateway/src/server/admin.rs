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
//! - `GET /apis`: every published API for people (`apis.rs`).
//! - `GET /openapi.json`: the OpenAPI 3.1 document of every HTTP/JSON binding.
//! - `GET /routes`: JSON; every gRPC service the edge answers and who serves it, and every
//!   HTTP/JSON binding (method, path template, gRPC method, and whether it comes from an
//!   annotation or `gateway.toml`).
//! - `GET /config`: JSON; the configuration in force, every default filled in.
//! - `POST /reload`: reads `gateway.toml` again and applies it (`reload.rs`); 200 with what
//!   changed, 422 with every problem when nothing changed, 409 when there is no file.

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

use super::reload::{ReloadError, Reloader};
use super::snapshot::Snapshot;

/// What the admin endpoints read.
pub(crate) struct AdminState {
    pub(crate) registry: Registry,
    /// The snapshot in force, and reloads.
    pub(crate) reloader: Arc<Reloader>,
    /// The edge listener's address, for the examples of `/apis`.
    pub(crate) edge: Option<std::net::SocketAddr>,
}

const INDEX: &str = "<!doctype html><title>Mosaic admin</title><h1>Mosaic admin</h1><ul>\
<li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\
<li><a href=\"/upstreams\">/upstreams</a>: endpoints, breakers, load (JSON)</li>\
<li><a href=\"/routes\">/routes</a>: the gRPC services and HTTP routes served (JSON)</li>\
<li><a href=\"/apis\">/apis</a>: the published APIs, for people</li>\
<li><a href=\"/openapi.json\">/openapi.json</a>: the HTTP/JSON API, OpenAPI 3.1</li>\
<li><a href=\"/config\">/config</a>: the configuration in force (JSON)</li>\
<li>POST /reload: read gateway.toml again and apply it (JSON)</li>\
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
            let state = Arc::clone(&state);
            let draining = *draining.borrow();
            async move { Ok::<_, Infallible>(respond(&request, &state, draining).await) }
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

async fn respond(
    request: &Request<Incoming>,
    state: &AdminState,
    draining: bool,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path == "/reload" {
        return if request.method() == Method::POST {
            reload(state).await
        } else {
            not_allowed("POST")
        };
    }
    if request.method() != Method::GET {
        return not_allowed("GET");
    }
    let snapshot = state.reloader.current();
    match path {
        "/" => with_type(StatusCode::OK, INDEX.into(), "text/html; charset=utf-8"),
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/ready" if draining => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n".into()),
        "/ready" => text(StatusCode::OK, "ready\n".into()),
        "/metrics" => metrics(request, state),
        "/upstreams" => json_answer(StatusCode::OK, &upstreams(&snapshot)),
        "/routes" => json_answer(
            StatusCode::OK,
            &json!({
                "generation": snapshot.generation,
                "grpc_services": snapshot.routes,
                "http_routes": snapshot.router.http_routes(),
            }),
        ),
        "/config" => json_answer(StatusCode::OK, &super::effective::config(&snapshot)),
        "/apis" => with_type(
            StatusCode::OK,
            super::apis::page(&snapshot, state.edge).into(),
            "text/html; charset=utf-8",
        ),
        "/openapi.json" => json_answer(
            StatusCode::OK,
            &snapshot
                .router
                .openapi(snapshot.config.http.json.proto_field_names),
        ),
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

async fn reload(state: &AdminState) -> Response<Full<Bytes>> {
    match state.reloader.reload().await {
        Ok(applied) => json_answer(
            StatusCode::OK,
            &json!({ "applied": true, "generation": applied.generation, "upstreams": applied.upstreams }),
        ),
        Err(ReloadError::NoFile) => {
            json_answer(StatusCode::CONFLICT, &ReloadError::NoFile.to_json())
        }
        Err(error) => json_answer(StatusCode::UNPROCESSABLE_ENTITY, &error.to_json()),
    }
}

fn not_allowed(allowed: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("this admin path accepts {allowed} only\n").into(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

fn upstreams(snapshot: &Snapshot) -> serde_json::Value {
    let now = Instant::now();
    let upstreams: Vec<_> = snapshot
        .upstreams
        .iter()
        .map(|(upstream, built)| {
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
                "stack_generation": built,
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
    json!({ "generation": snapshot.generation, "upstreams": upstreams })
}

fn json_answer(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    with_type(status, body.into(), "application/json")
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
