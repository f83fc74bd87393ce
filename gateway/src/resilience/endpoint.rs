//! One endpoint of an upstream: its HTTP/2 connections and its health (load, breaker).
//!
//! Each endpoint keeps a small pool of HTTP/2 connections, opened lazily and reopened when one
//! closes. A single HTTP/2 connection multiplexes every call, but all of its frames go through
//! one connection task, so under load one connection caps throughput at what one core can frame;
//! two or more connections spread that work. Calls take the connections in turn.
//!
//! Connections are made *before* a request is handed over, and requests are sent with hyper's
//! `try_send_request`, which gives the request back when it never reached the connection. So a
//! refused connection or a connection that closed under us never loses a request: the balancer
//! tries it on another endpoint (gRFC A6's transparent retry), which is what makes the
//! pass-through path, whose request body streams and cannot be replayed, survive an endpoint
//! going away.
//!
//! We drive hyper's connection API directly rather than `hyper_util`'s pooled client because
//! that client consumes the request on every failure, and because it has one pool for all hosts
//! where the balancer needs per-endpoint state next to each pool.
//!
//! An endpoint of an `https://` upstream speaks TLS ([`EndpointTls`]): the TCP connection is
//! wrapped in a rustls client session (the configuration, with its roots, client certificate
//! and ALPN `h2`, is prepared once by whoever builds the upstream) before the same HTTP/2
//! handshake. TCP connect and TLS handshake share `connect_timeout`, and a server that does
//! not pick `h2` over ALPN is refused, since gRPC needs HTTP/2. A failed handshake is a failed
//! connect like a refused one: the request was not sent, and its error says why (`invalid
//! peer certificate: UnknownIssuer`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::breaker::{Breaker, BreakerPolicy};
use super::deadline::EdgeCallId;
use super::ewma::PeakEwma;
use crate::telemetry::metrics::ByStatus;

/// The request body every upstream call carries: tonic's for typed calls, the caller's
/// streamed body (boxed into tonic's type) for pass-through.
pub(crate) type RequestBody = tonic::body::Body;

/// How long an idle HTTP/2 connection waits between pings, and how long for the answer: dead
/// peers (a host that vanished without closing its sockets) are found within half a minute.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an endpoint's connections go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointAddr {
    /// What to connect to: `ip:port`, or `host:port` resolved at each connect.
    pub connect: String,
    /// The `:authority` requests carry (the configured `host:port`).
    pub authority: Authority,
}

/// TLS to an upstream's endpoints, prepared once when the upstream is built and shared by
/// all of them.
#[derive(Debug)]
pub(crate) struct EndpointTls {
    /// The rustls client configuration: the roots the endpoint's certificate must chain to,
    /// the client certificate to present (mutual TLS), TLS 1.2+, ALPN `h2` only.
    pub(crate) config: Arc<rustls::ClientConfig>,
    /// The name the endpoint's certificate must carry, also sent as SNI; `None`: the host of
    /// the endpoint's configured `host:port`.
    pub(crate) server_name: Option<ServerName<'static>>,
}

/// One endpoint, shared by every call the balancer sends to it.
#[derive(Debug)]
pub struct Endpoint {
    addr: EndpointAddr,
    connect_timeout: Duration,
    /// TLS on its connections; plain text (h2c) without it.
    tls: Option<Arc<EndpointTls>>,
    slots: Box<[Slot]>,
    next_slot: AtomicUsize,
    /// Calls sent and not yet finished (response body done or dropped).
    pub(crate) in_flight: AtomicUsize,
    /// Mirrors `health.breaker.is_open()`, so picking need not lock closed endpoints.
    pub(crate) open: AtomicBool,
    pub(crate) health: Mutex<Health>,
    /// Breaker transitions, read by the metrics collector.
    pub(crate) transitions: Transitions,
    /// Every attempt sent here, by status (`mosaic_client_attempt_duration_seconds`).
    pub(crate) attempts: ByStatus,
}

/// How often an endpoint's breaker changed state.
#[derive(Debug, Default)]
pub(crate) struct Transitions {
    /// Closed → open: the endpoint was ejected.
    pub(crate) ejected: AtomicU64,
    /// Probing → open: a probe failed and the backoff grew.
    pub(crate) reopened: AtomicU64,
    /// Open → closed: a probe succeeded.
    pub(crate) closed: AtomicU64,
}

/// An endpoint's load as the balancer sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub(crate) estimate_ns: f64,
    pub(crate) measured: bool,
    pub(crate) pending: usize,
}

/// The load and breaker state, updated together under one lock.
#[derive(Debug)]
pub(crate) struct Health {
    /// Latency estimate.
    pub ewma: PeakEwma,
    /// Circuit breaker.
    pub breaker: Breaker,
    /// The edge calls whose expiry on this endpoint was last counted (a small ring: the
    /// calls of one edge call expire together, so the last few suffice).
    expired: [Option<EdgeCallId>; RECENT_EXPIRIES],
    next_expired: usize,
}

const RECENT_EXPIRIES: usize = 8;

#[derive(Debug, Default)]
struct Slot {
    sender: Mutex<Option<SendRequest<RequestBody>>>,
    /// Held while connecting, so concurrent callers share one attempt instead of racing.
    connecting: tokio::sync::Mutex<()>,
}

/// Why a call could not be sent, with the request when it never left.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made; the request was not sent.
    Connect {
        /// The request, untouched.
        request: Request<RequestBody>,
        /// Why connecting failed.
        error: tower::BoxError,
    },
    /// The connection closed before the request reached it; the request was not sent.
    NotSent {
        /// The request, untouched.
        request: Request<RequestBody>,
        /// The connection's error.
        error: hyper::Error,
    },
    /// The request was (at least partly) sent and then the exchange failed.
    Failed(hyper::Error),
}

// === impl Endpoint ===

impl Endpoint {
    /// An endpoint with `connections` lazily opened connections (at least one).
    pub fn new(
        addr: EndpointAddr,
        connections: usize,
        connect_timeout: Duration,
        breaker: &BreakerPolicy,
    ) -> Self {
        let now = Instant::now();
        Self {
            addr,
            connect_timeout,
            tls: None,
            slots: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            next_slot: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            health: Mutex::new(Health {
                ewma: PeakEwma::new(now),
                breaker: Breaker::new(breaker, now),
                expired: [None; RECENT_EXPIRIES],
                next_expired: 0,
            }),
            transitions: Transitions::default(),
            attempts: ByStatus::detached(),
        }
    }

    /// Records this endpoint's attempts into `attempts` (by default they are counted nowhere).
    pub(crate) fn with_attempts(mut self, attempts: ByStatus) -> Self {
        self.attempts = attempts;
        self
    }

    /// `http://host:port`, or `https://` over TLS: how messages, metrics and the access log
    /// name the endpoint.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr.connect)
    }

    /// Makes this endpoint's connections TLS (by default they are plain text, h2c).
    pub(crate) fn with_tls(mut self, tls: Arc<EndpointTls>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Where it connects.
    pub fn addr(&self) -> &EndpointAddr {
        &self.addr
    }

    /// Locks the health state; a poisoned lock (a panic elsewhere) still holds valid data.
    pub(crate) fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the balancer weighs: the latency estimate (and whether it was measured or is the
    /// starting guess) and the calls outstanding.
    pub(crate) fn load(&self, now: Instant) -> Load {
        let health = self.health();
        Load {
            estimate_ns: health.ewma.estimate_ns(now),
            measured: health.ewma.measured(),
            pending: self.in_flight.load(Ordering::Relaxed),
        }
    }

    /// Sends one request on one of the endpoint's connections, connecting first if needed.
    pub async fn send(
        &self,
        mut request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let slot = &self.slots[self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let mut sender = match self.connection(slot).await {
            Ok(sender) => sender,
            Err(error) => return Err(SendError::Connect { request, error }),
        };
        let mut parts = std::mem::take(request.uri_mut()).into_parts();
        parts.scheme = Some(match self.tls {
            Some(_) => http::uri::Scheme::HTTPS,
            None => http::uri::Scheme::HTTP,
        });
        parts.authority = Some(self.addr.authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        // Scheme, authority and a path make a valid absolute URI, so this cannot fail; if it
        // ever did, the request would go out with an empty URI and fail upstream, not panic.
        *request.uri_mut() = http::Uri::from_parts(parts).unwrap_or_default();
        *request.version_mut() = http::Version::HTTP_2;
        match sender.try_send_request(request).await {
            Ok(response) => Ok(response),
            Err(mut error) => match error.take_message() {
                Some(request) => {
                    slot.forget_if_closed();
                    Err(SendError::NotSent {
                        request,
                        error: error.into_error(),
                    })
                }
                None => Err(SendError::Failed(error.into_error())),
            },
        }
    }

    async fn connection(&self, slot: &Slot) -> Result<SendRequest<RequestBody>, tower::BoxError> {
        if let Some(sender) = slot.live() {
            return Ok(sender);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(sender) = slot.live() {
            return Ok(sender);
        }
        let sender = self.connect().await?;
        *slot.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }

    async fn connect(&self) -> Result<SendRequest<RequestBody>, tower::BoxError> {
        let connecting = async {
            let stream = TcpStream::connect(&self.addr.connect).await?;
            stream.set_nodelay(true)?;
            Ok::<_, tower::BoxError>(match &self.tls {
                None => Connected::Plain(stream),
                Some(tls) => Connected::Tls(Box::new(self.tls_handshake(tls, stream).await?)),
            })
        };
        let connected = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(connected) => connected?,
            Err(_) => {
                let what = match self.tls {
                    Some(_) => "connect and TLS handshake",
                    None => "connect",
                };
                return Err(format!(
                    "{what} timed out after {}",
                    humantime::format_duration(self.connect_timeout)
                )
                .into());
            }
        };
        let sender = match connected {
            Connected::Plain(stream) => self.handshake(stream).await?,
            Connected::Tls(stream) => self.handshake(*stream).await?,
        };
        tracing::debug!(endpoint = %self.addr.connect, tls = self.tls.is_some(), "upstream connection established");
        Ok(sender)
    }

    /// The TLS handshake on a connected stream: the name verified (and sent as SNI) is the
    /// configured `server_name`, else the endpoint's host; the server must pick `h2`.
    async fn tls_handshake(
        &self,
        tls: &EndpointTls,
        stream: TcpStream,
    ) -> Result<TlsStream<TcpStream>, tower::BoxError> {
        let server_name = match &tls.server_name {
            Some(name) => name.clone(),
            None => {
                let host = self.addr.authority.host();
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                ServerName::try_from(bare.to_owned()).map_err(|error| {
                    format!(
                        "the host `{host}` is not a name TLS can verify ({error}); set the \
                         upstream's `tls.server_name`"
                    )
                })?
            }
        };
        let name = server_name.to_str().into_owned();
        let stream = TlsConnector::from(Arc::clone(&tls.config))
            .connect(server_name, stream)
            .await
            .map_err(|error| format!("TLS handshake with `{name}` failed: {error}"))?;
        let alpn = stream.get_ref().1.alpn_protocol();
        if alpn != Some(b"h2".as_slice()) {
            let chosen = match alpn {
                Some(protocol) => format!("it chose `{}`", String::from_utf8_lossy(protocol)),
                None => "it chose no protocol".to_owned(),
            };
            return Err(format!(
                "TLS with `{name}` did not negotiate HTTP/2 over ALPN ({chosen}); gRPC needs \
                 the upstream to offer `h2`"
            )
            .into());
        }
        Ok(stream)
    }

    /// The HTTP/2 handshake on a connected (and, for TLS, secured) stream; the connection is
    /// then driven by its own task.
    async fn handshake<S>(&self, stream: S) -> Result<SendRequest<RequestBody>, tower::BoxError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .handshake(TokioIo::new(stream))
            .await?;
        let endpoint = self.addr.connect.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%endpoint, %error, "upstream connection closed with an error");
            }
        });
        Ok(sender)
    }
}

/// A connection made within `connect_timeout`, before its HTTP/2 handshake.
enum Connected {
    /// h2c.
    Plain(TcpStream),
    /// TLS, `h2` negotiated (boxed: the session state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

// === impl Health ===

impl Health {
    /// Whether this is the first expiry on this endpoint of a call made for `origin`; records
    /// it, so the edge call's other calls that expire with it are not counted again.
    pub(crate) fn first_expiry_of(&mut self, origin: EdgeCallId) -> bool {
        if self.expired.contains(&Some(origin)) {
            return false;
        }
        self.expired[self.next_expired] = Some(origin);
        self.next_expired = (self.next_expired + 1) % RECENT_EXPIRIES;
        true
    }
}

// === impl Slot ===

impl Slot {
    fn live(&self) -> Option<SendRequest<RequestBody>> {
        let guard = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().filter(|sender| !sender.is_closed()).cloned()
    }

    fn forget_if_closed(&self) {
        let mut guard = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.as_ref().is_some_and(SendRequest::is_closed) {
            *guard = None;
        }
    }
}
