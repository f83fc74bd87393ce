//! Upstreams: the downstream services a gateway forwards calls to.
//!
//! An [`Upstream`] owns one HTTP/2 (h2c) client shared by every call to it. A pass-through call
//! is forwarded as raw HTTP/2: headers, message frames and trailers go through as they are, and
//! the messages are never decoded. That keeps the sidecar path lean and makes it correct for any
//! method, streaming of any kind included, without knowing its types.
//!
//! Endpoints are taken in turn. This is the simplest fair choice and is deliberately all there is
//! here: load-aware balancing, per-endpoint breakers, limits and shedding are layered around this
//! forwarder by the resilience stack, not built into it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version, header};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::UpstreamConfig;
use crate::status::LocalError;

/// A named downstream service with one or more endpoints.
#[derive(Debug)]
pub struct Upstream {
    name: Arc<str>,
    endpoints: Box<[Endpoint]>,
    next: AtomicUsize,
    client: Client<HttpConnector, Incoming>,
}

#[derive(Debug)]
struct Endpoint {
    authority: Authority,
    uri: Uri,
}

/// Headers that describe one HTTP/1 connection rather than the request; never forwarded.
const HOP_BY_HOP: [header::HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

// === impl Upstream ===

impl Upstream {
    /// Builds the client for an upstream. Connections are opened lazily, on the first call, so
    /// a gateway starts even while its upstreams are still coming up.
    pub fn new(config: &UpstreamConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        let endpoints = config
            .endpoints
            .iter()
            .filter_map(|uri| {
                Some(Endpoint {
                    authority: uri.authority()?.clone(),
                    uri: uri.clone(),
                })
            })
            .collect();
        Self {
            name: config.name.as_str().into(),
            endpoints,
            next: AtomicUsize::new(0),
            client,
        }
    }

    /// The upstream's name from `gateway.toml`.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Forwards one call unchanged and returns the upstream's response head and streaming body.
    pub(crate) async fn forward(
        &self,
        mut request: Request<Incoming>,
    ) -> Result<Response<Incoming>, LocalError> {
        let Some(endpoint) = self.pick() else {
            return Err(LocalError::NoEndpoints {
                upstream: self.name.to_string(),
            });
        };
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(endpoint.authority.clone());
        parts.path_and_query = Some(path);
        *request.uri_mut() = Uri::from_parts(parts).map_err(|err| LocalError::UpstreamFailed {
            upstream: self.name.to_string(),
            source: err.into(),
        })?;
        *request.version_mut() = Version::HTTP_2;
        let headers = request.headers_mut();
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
        // HTTP/1 callers name the host in `Host`; HTTP/2 carries it as `:authority`.
        headers.remove(header::HOST);

        self.client.request(request).await.map_err(|err| {
            if err.is_connect() {
                LocalError::Unreachable {
                    upstream: self.name.to_string(),
                    endpoint: endpoint.uri.to_string().trim_end_matches('/').to_owned(),
                    source: err.into(),
                }
            } else {
                LocalError::UpstreamFailed {
                    upstream: self.name.to_string(),
                    source: err.into(),
                }
            }
        })
    }

    fn pick(&self) -> Option<&Endpoint> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.endpoints.get(i.checked_rem(self.endpoints.len())?)
    }
}
