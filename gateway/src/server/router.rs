//! Routing of edge calls by gRPC service name.
//!
//! A gRPC call's path is `/package.Service/Method`; the service part selects a [`Route`]: a
//! service hosted in the gateway (health, reflection, generated composition handlers) or an
//! upstream the call is passed through to. The table is built once at start and never changes
//! while serving, so a lookup is one hash probe with no locking.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;
use tokio::time::Instant;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use super::access_log::{self, AccessLog, Entry};
use super::body::{CallLog, GatewayBody};
use super::record::{EdgeBody, ServerCall};
use crate::access::{Access, Caller, Peer};
use crate::client::Upstream;
use crate::grpc::body::CallerStream;
use crate::grpc::headers::TRACEPARENT;
use crate::grpc::status::LocalError;
use crate::telemetry::metrics::{
    ByStatus, CallerBody, MessageLimit, MeteredBody, Metrics, OTHER_METHOD, ServerMethod,
};
use crate::telemetry::own_time::OwnTime;
use crate::telemetry::trace::{Scope, Tracing};
use crate::transcode::CorsConfig;
use crate::transcode::connect::{self, ConnectCall, ConnectMethods};
use crate::transcode::grpc_web::{self, WebMode};
use crate::transcode::{HttpRoutes, Prepared};

/// The `protocol` label of calls made over gRPC.
const PROTOCOL_GRPC: &str = "grpc";
/// The `protocol` label of calls made over the Connect protocol.
const PROTOCOL_CONNECT: &str = "connect";
/// The `protocol` label of calls made over gRPC-Web.
const PROTOCOL_GRPC_WEB: &str = "grpc-web";
/// The `protocol` label of calls made over HTTP/JSON (`google.api.http`).
const PROTOCOL_HTTP: &str = "http";

/// A gRPC service hosted inside the gateway process.
pub(super) type LocalService =
    BoxCloneSyncService<Request<tonic::body::Body>, Response<tonic::body::Body>, Infallible>;

/// Where calls to one gRPC service go.
#[derive(Clone)]
pub(super) enum Route {
    /// Served in process.
    Local(LocalService),
    /// Forwarded unchanged to an upstream.
    Upstream(Arc<Upstream>),
}

/// The routing table of one gateway.
#[derive(Clone)]
pub(super) struct Router {
    routes: HashMap<Box<str>, Route>,
    /// What each method's calls are recorded into, by path; built once with the routes.
    methods: HashMap<Box<str>, Recorded>,
    /// CORS for gRPC-Web and HTTP/JSON, when `[http.cors]` is configured.
    cors: Option<Arc<CorsConfig>>,
    /// The methods Connect's JSON codec converts.
    connect: Arc<ConnectMethods>,
    /// What each method's Connect calls are recorded into, by path.
    connect_methods: HashMap<Box<str>, Recorded>,
    /// What each method's gRPC-Web calls are recorded into, by path.
    web_methods: HashMap<Box<str>, Recorded>,
    /// The largest request body read whole (gRPC-Web text, HTTP/JSON).
    max_request_bytes: usize,
    /// The HTTP/JSON routes, when any method has a binding.
    http: Option<Arc<HttpRoutes>>,
    /// What each method's HTTP/JSON calls are recorded into, by gRPC path.
    http_methods: HashMap<Box<str>, Recorded>,
    /// Where calls to methods no descriptor names are recorded (`_OTHER`).
    other: Option<Arc<ServerMethod>>,
    /// Where each call's line goes, when the access log is on.
    access_log: Option<Arc<AccessLog>>,
    /// The tracer, when calls are traced.
    tracing: Option<Arc<Tracing>>,
    /// Authentication, policies and rate limits, with `[auth]` or `[rate_limits]`.
    access: Option<Arc<Access>>,
    /// Where per-consumer series are made, when calls are recorded.
    metrics: Option<Metrics>,
    /// The largest request message a call may send.
    max_message_bytes: u64,
}

/// The handles one method's calls are recorded into.
#[derive(Clone)]
struct Recorded {
    server: Arc<ServerMethod>,
    /// For a pass-through method, the client side of its upstream.
    client: Option<Arc<ByStatus>>,
}

// === impl Router ===

impl Default for Router {
    fn default() -> Self {
        Self {
            routes: HashMap::new(),
            methods: HashMap::new(),
            web_methods: HashMap::new(),
            connect: Arc::default(),
            connect_methods: HashMap::new(),
            cors: None,
            max_request_bytes: crate::transcode::DEFAULT_MAX_REQUEST_BYTES,
            http: None,
            http_methods: HashMap::new(),
            other: None,
            access_log: None,
            tracing: None,
            access: None,
            metrics: None,
            max_message_bytes: u64::from(
                crate::config::ListenerLimits::default().max_message_bytes,
            ),
        }
    }
}

impl Router {
    /// Adds a route; returns the route it replaced, if the service was already routed.
    pub(super) fn insert(&mut self, service: &str, route: Route) -> Option<Route> {
        self.routes.insert(service.into(), route)
    }

    /// Records calls into `metrics`: each of `paths` (`/pkg.Svc/Method`) under its own name,
    /// every other under `_OTHER`.
    pub(super) fn record_into(&mut self, metrics: &Metrics, paths: &[String]) {
        let methods = paths
            .iter()
            .map(|path| {
                let recorded = Recorded {
                    server: Arc::new(metrics.server_method(&path[1..], PROTOCOL_GRPC)),
                    client: self.upstream_calls(path),
                };
                (path.as_str().into(), recorded)
            })
            .collect();
        self.methods = methods;
        self.metrics = Some(metrics.clone());
        self.web_methods = self.recorded(metrics, paths, PROTOCOL_GRPC_WEB);
        self.connect_methods = self.recorded(metrics, paths, PROTOCOL_CONNECT);
        self.other = Some(Arc::new(metrics.server_method(OTHER_METHOD, PROTOCOL_GRPC)));
        let http_paths: Vec<Arc<str>> = self
            .http
            .iter()
            .flat_map(|http| http.routes())
            .map(|route| Arc::clone(&route.grpc_path))
            .collect();
        let mut http_methods = HashMap::new();
        for path in http_paths {
            let recorded = Recorded {
                server: Arc::new(metrics.server_method(&path[1..], PROTOCOL_HTTP)),
                client: self.upstream_calls(&path),
            };
            http_methods.entry(Box::from(&*path)).or_insert(recorded);
        }
        self.http_methods = http_methods;
    }

    /// Answers preflights and adds CORS headers by `cors`.
    pub(super) fn cors_by(&mut self, cors: CorsConfig) {
        self.cors = Some(Arc::new(cors));
    }

    /// Each of `paths` recorded under its name, with `protocol`.
    fn recorded(
        &self,
        metrics: &Metrics,
        paths: &[String],
        protocol: &'static str,
    ) -> HashMap<Box<str>, Recorded> {
        paths
            .iter()
            .map(|path| {
                let recorded = Recorded {
                    server: Arc::new(metrics.server_method(&path[1..], protocol)),
                    client: self.upstream_calls(path),
                };
                (path.as_str().into(), recorded)
            })
            .collect()
    }

    /// Converts Connect's JSON for `methods`.
    pub(super) fn connect_with(&mut self, methods: ConnectMethods) {
        self.connect = Arc::new(methods);
    }

    /// Fails calls whose request messages are larger than `limit` bytes.
    pub(super) fn limit_messages_to(&mut self, limit: u32) {
        self.max_message_bytes = u64::from(limit);
    }

    /// Reads request bodies that must be read whole up to `limit` bytes.
    pub(super) fn limit_requests_to(&mut self, limit: usize) {
        self.max_request_bytes = limit;
    }

    /// Serves HTTP/JSON requests by `routes`.
    pub(super) fn transcode_with(&mut self, routes: Arc<HttpRoutes>) {
        self.http = Some(routes);
    }

    /// The access checks in force, if any.
    pub(super) fn access(&self) -> Option<&Arc<Access>> {
        self.access.as_ref()
    }

    /// Admits every call through `access` before routing it.
    pub(super) fn guard_with(&mut self, access: Arc<Access>) {
        self.access = Some(access);
    }

    /// Traces every gRPC call with `tracing`.
    pub(super) fn trace_with(&mut self, tracing: Arc<Tracing>) {
        self.tracing = Some(tracing);
    }

    /// Writes a line per gRPC call to `log` (calls are recorded only when metrics are on).
    pub(super) fn log_to(&mut self, log: Arc<AccessLog>) {
        self.access_log = Some(log);
    }

    /// Every HTTP/JSON binding, for `/routes`.
    pub(super) fn http_routes(&self) -> Vec<serde_json::Value> {
        self.http
            .iter()
            .flat_map(|http| http.routes())
            .map(|route| {
                serde_json::json!({
                    "method": route.binding.method.as_str(),
                    "path": route.binding.path,
                    "grpc": &route.grpc_path[1..],
                    "origin": route.origin,
                })
            })
            .collect()
    }

    /// Every routed method a descriptor describes, sorted by service and declaration order.
    pub(super) fn described_methods(&self) -> Vec<prost_reflect::MethodDescriptor> {
        let mut methods: Vec<_> = self.connect.methods().cloned().collect();
        methods.sort_by(|a, b| {
            (a.parent_service().full_name(), a.index())
                .cmp(&(b.parent_service().full_name(), b.index()))
        });
        methods
    }

    /// The HTTP bindings of the method at `grpc_path` (`/pkg.Svc/Method`).
    pub(super) fn bindings_of(&self, grpc_path: &str) -> Vec<(String, String)> {
        self.http
            .iter()
            .flat_map(|http| http.routes())
            .filter(|route| &*route.grpc_path == grpc_path)
            .map(|route| {
                (
                    route.binding.method.as_str().to_owned(),
                    route.binding.path.clone(),
                )
            })
            .collect()
    }

    /// The OpenAPI 3.1 document of every HTTP/JSON binding.
    pub(super) fn openapi(&self, proto_field_names: bool) -> serde_json::Value {
        let operations: Vec<_> = self
            .http
            .iter()
            .flat_map(|http| http.routes())
            .map(|route| (route.method.clone(), route.binding.clone()))
            .collect();
        let options = mosaic_http_rule::openapi::Options {
            title: "Mosaic gateway".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            proto_field_names,
        };
        mosaic_http_rule::openapi::document(&operations, &options)
    }

    /// Every routed service name, sorted.
    pub(super) fn services(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.routes.keys().map(AsRef::as_ref).collect();
        names.sort_unstable();
        names
    }

    /// Answers one request received on the edge listener.
    pub(crate) async fn handle(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        peer: Arc<Peer>,
    ) -> Result<Response<EdgeBody>, Infallible> {
        let peer = &*peer;
        // gRPC first: the pass-through hot path pays one content-type check, nothing more.
        if is_grpc(&request) {
            if request.version() < Version::HTTP_2 {
                return Ok(plain(
                    StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                    "gRPC requires HTTP/2; connect with HTTP/2 (h2c prior knowledge)\n",
                )
                .map(EdgeBody::plain));
            }
            let recorded = self.methods.get(request.uri().path());
            return Ok(self
                .call(recorded, request.map(CallerStream::from), peer)
                .await);
        }
        if let Some(access) = &self.access
            && let Some((parameter, header)) = access.key_query()
        {
            crate::access::key_from_query(&mut request, parameter, header);
        }
        if let Some(cors) = &self.cors
            && let Some(answer) = cors.preflight(request.method(), request.headers())
        {
            return Ok(answer.map(|body| EdgeBody::plain(GatewayBody::Http { body })));
        }
        let origin = self
            .cors
            .as_ref()
            .and_then(|_| request.headers().get(header::ORIGIN).cloned());
        let mut response = if let Some(mode) = WebMode::of(request.headers()) {
            self.grpc_web(request, mode, peer).await
        } else if let Some(call) = ConnectCall::of(&request) {
            self.connect(request, call, peer).await
        } else {
            match &self.http {
                Some(http) if !looks_like_grpc(&request) => {
                    self.transcoded(http, request, peer).await
                }
                _ => not_grpc(&request).map(EdgeBody::plain),
            }
        };
        if let Some(cors) = &self.cors {
            cors.decorate(origin.as_ref(), response.headers_mut());
        }
        Ok(response)
    }

    /// Answers an HTTP/JSON request through the gRPC route of the method it binds.
    async fn transcoded(
        &self,
        http: &HttpRoutes,
        request: Request<Incoming>,
        peer: &Peer,
    ) -> Response<EdgeBody> {
        let (request, reply) = match http.prepare(request).await {
            Prepared::Call { request, reply } => (request, reply),
            Prepared::Answer(response) => {
                return response.map(|body| EdgeBody::plain(GatewayBody::Http { body }));
            }
        };
        let recorded = self.http_methods.get(reply.grpc_path());
        let response = self.call(recorded, request, peer).await;
        reply
            .respond(response)
            .await
            .map(|body| EdgeBody::plain(GatewayBody::Http { body }))
    }

    /// Answers a gRPC-Web call: the same gRPC route, with the trailers in the body.
    async fn grpc_web(
        &self,
        request: Request<Incoming>,
        mode: WebMode,
        peer: &Peer,
    ) -> Response<EdgeBody> {
        let call = match grpc_web::request(request, mode, self.max_request_bytes).await {
            Ok(call) => call,
            Err(refused) => return refused.map(|body| EdgeBody::plain(GatewayBody::Http { body })),
        };
        let recorded = self.web_methods.get(call.uri().path());
        let response = self.call(recorded, call, peer).await;
        grpc_web::response(response, mode).map(|body| EdgeBody::plain(GatewayBody::Http { body }))
    }

    /// Answers a Connect call through the gRPC route of its path.
    async fn connect(
        &self,
        request: Request<Incoming>,
        call: ConnectCall,
        peer: &Peer,
    ) -> Response<EdgeBody> {
        let (grpc, reply) =
            match connect::request(request, call, &self.connect, self.max_request_bytes).await {
                Ok(prepared) => prepared,
                Err(refused) => {
                    return refused.map(|body| EdgeBody::plain(GatewayBody::Http { body }));
                }
            };
        let recorded = self.connect_methods.get(grpc.uri().path());
        let response = self.call(recorded, grpc, peer).await;
        reply
            .respond(response)
            .await
            .map(|body| EdgeBody::plain(GatewayBody::Http { body }))
    }

    /// Routes one gRPC call (from the wire or transcoded), recording it into `recorded` (or
    /// `_OTHER`), with its trace scope and access-log line. With `[auth]`, the call is admitted
    /// (or refused) first, before anything is sent anywhere.
    async fn call(
        &self,
        recorded: Option<&Recorded>,
        mut request: Request<CallerStream>,
        peer: &Peer,
    ) -> Response<EdgeBody> {
        let (caller, admitted) = match &self.access {
            None => (None, Ok(())),
            Some(access) => {
                let (mut parts, body) = request.into_parts();
                let admitted = access
                    .admit(parts.uri.path(), &mut parts.headers, peer)
                    .await;
                request = Request::from_parts(parts, body);
                admitted
            }
        };
        let path = request.uri().path();
        let (server, client) = match (recorded, &self.other) {
            (Some(recorded), _) => (&recorded.server, recorded.client.clone()),
            // A method no descriptor names: rare, so its upstream is looked up here.
            (None, Some(other)) => (other, self.upstream_calls(path)),
            (None, None) => {
                // Nothing recorded; a caller's trace context still reaches typed calls.
                let scope = Scope::server(None, request.headers(), "", peer.addr).map(|(s, _)| s);
                let limit = MessageLimit::new(self.max_message_bytes);
                let request = request
                    .map(|body| MeteredBody::new(body, None).limited(Some(Arc::clone(&limit))));
                let response = match admitted {
                    Ok(()) => {
                        let response =
                            Scope::run(scope, self.route(with_caller(request, caller))).await;
                        over_limit(&limit, response)
                    }
                    Err(refusal) => refusal.into_response(),
                };
                return response.map(EdgeBody::plain);
            }
        };
        let mut call = ServerCall::start(Arc::clone(server));
        call.passed_to(client);
        let (scope, span) = Scope::server(
            self.tracing.as_ref(),
            request.headers(),
            path.trim_start_matches('/'),
            peer.addr,
        )
        .unzip();
        call.traced(span.flatten());
        let request_bytes = self.access_log.as_ref().map(|log| {
            let trace_id = request
                .headers()
                .get(TRACEPARENT)
                .and_then(|value| value.to_str().ok())
                .and_then(access_log::trace_id)
                .map(str::to_owned);
            let entry = Entry {
                started: SystemTime::now(),
                peer: peer.addr,
                method: path.to_owned(),
                trace_id,
                consumer: None,
                upstream: None,
                endpoint: None,
            };
            call.log_to(Arc::clone(log), entry)
        });
        if let Some(caller) = &caller {
            let series = self.metrics.as_ref().map(|metrics| {
                let api = service_of(path).unwrap_or(path);
                metrics.consumer_calls(&caller.consumer, caller.plan.as_ref(), api)
            });
            call.admitted_as(&caller.consumer, caller.plan.as_ref(), series);
        }
        if let Err(refusal) = admitted {
            tracing::debug!(path, %refusal, "call refused");
            let (head, body) = refusal.into_response::<GatewayBody>().into_parts();
            let body = EdgeBody::recorded(&head.headers, body, call);
            return Response::from_parts(head, body);
        }
        let histogram = server.request_size.clone();
        let limit = MessageLimit::new(self.max_message_bytes);
        let request = request.map(|body| {
            MeteredBody::new(body, Some(histogram))
                .counting(request_bytes)
                .limited(Some(Arc::clone(&limit)))
        });
        let request = with_caller(request, caller);
        let response =
            Scope::run(scope, OwnTime::scope(call.own_time(), self.route(request))).await;
        let response = over_limit(&limit, response);
        let (head, body) = response.into_parts();
        let body = EdgeBody::recorded(&head.headers, body, call);
        Response::from_parts(head, body)
    }

    /// The client-side record of a call to `path` passed through to an upstream.
    fn upstream_calls(&self, path: &str) -> Option<Arc<ByStatus>> {
        match service_of(path).and_then(|service| self.routes.get(service)) {
            Some(Route::Upstream(upstream)) => upstream.client_calls(path).cloned(),
            _ => None,
        }
    }

    /// Answers one gRPC call.
    async fn route(&self, request: Request<CallerBody>) -> Response<GatewayBody> {
        let Some(service) = service_of(request.uri().path()) else {
            return LocalError::MalformedPath {
                path: request.uri().path().to_owned(),
            }
            .into_response();
        };
        let Some(route) = self.routes.get(service) else {
            return LocalError::UnknownService {
                service: service.to_owned(),
            }
            .into_response();
        };
        let log = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            Box::new(CallLog {
                path: request.uri().path().to_owned(),
                started: Instant::now(),
            })
        });
        match route {
            Route::Upstream(upstream) => match upstream.forward(request).await {
                Ok(response) => response
                    .map(|body| GatewayBody::upstream(body, Arc::clone(upstream.name()), log)),
                Err(error) => {
                    tracing::debug!(upstream = %upstream.name(), %error, "pass-through call failed");
                    error.into_response()
                }
            },
            Route::Local(service) => {
                let context = request
                    .extensions()
                    .get::<Caller>()
                    .map(|caller| Arc::clone(&caller.context));
                let answer = service.clone().oneshot(request.map(tonic::body::Body::new));
                let response = crate::grpc::context::scope(context, answer).await;
                if let Some(log) = log {
                    tracing::debug!(path = %log.path, elapsed_us = log.started.elapsed().as_micros() as u64, "local call answered");
                }
                response
                    .map(|response| response.map(GatewayBody::from))
                    .unwrap_or_else(|never| match never {})
            }
        }
    }
}

/// `response`, or the gateway's own answer when the request sent a message over `limit`
/// (whatever the handler or upstream made of the broken request stream).
fn over_limit(limit: &MessageLimit, response: Response<GatewayBody>) -> Response<GatewayBody> {
    match limit.exceeded() {
        None => response,
        Some(size) => {
            tracing::debug!(size, limit = limit.max, "request message over the limit");
            LocalError::MessageTooLarge {
                size,
                limit: limit.max,
            }
            .into_response()
        }
    }
}

/// `request`, carrying `caller` in its extensions for the handler that serves it.
fn with_caller<B>(mut request: Request<B>, caller: Option<Caller>) -> Request<B> {
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    request
}

/// The service part of `/package.Service/Method`, if the path has that shape.
fn service_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    let well_formed = !service.is_empty() && !method.is_empty() && !method.contains('/');
    well_formed.then_some(service)
}

fn is_grpc<B>(request: &Request<B>) -> bool {
    let Some(content_type) = request.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let bytes = content_type.as_bytes();
    // `application/grpc`, `application/grpc+proto`, `application/grpc;charset=..`; but not
    // `application/grpc-web`, which is a different wire format.
    bytes
        .strip_prefix(b"application/grpc")
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'+' || rest[0] == b';')
}

/// A gRPC-flavoured content type this listener does not speak (yet): answered as before,
/// rather than as an HTTP/JSON request without a route.
fn looks_like_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

fn not_grpc<B>(request: &Request<B>) -> Response<GatewayBody> {
    if request.method() == Method::POST {
        plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "this listener serves gRPC: send `content-type: application/grpc` over HTTP/2\n",
        )
    } else {
        plain(
            StatusCode::NOT_FOUND,
            "no HTTP route here: this listener serves gRPC over HTTP/2\n",
        )
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::text(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_come_from_well_formed_paths() {
        assert_eq!(
            service_of("/demo.users.v1.UserService/GetUser"),
            Some("demo.users.v1.UserService")
        );
        assert_eq!(service_of("/a.B/"), None);
        assert_eq!(service_of("//M"), None);
        assert_eq!(service_of("/a.B/M/extra"), None);
        assert_eq!(service_of("a.B/M"), None);
        assert_eq!(service_of("/"), None);
    }

    #[test]
    fn grpc_is_recognised_by_content_type() {
        let with = |ct: &'static str| {
            Request::builder()
                .header(header::CONTENT_TYPE, ct)
                .body(())
                .unwrap()
        };
        assert!(is_grpc(&with("application/grpc")));
        assert!(is_grpc(&with("application/grpc+proto")));
        assert!(is_grpc(&with("application/grpc;charset=utf-8")));
        assert!(!is_grpc(&with("application/grpc-web")));
        assert!(!is_grpc(&with("application/json")));
        assert!(!is_grpc(&Request::new(())));
    }
}
