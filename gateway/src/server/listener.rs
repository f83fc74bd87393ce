//! The edge listener's accept loop.
//!
//! Each accepted connection is served by hyper's automatic HTTP/1.1 / HTTP/2 detection and
//! registered with a graceful-shutdown watcher, so that shutdown can stop accepting at once and
//! then let in-flight calls finish (HTTP/2 connections receive GOAWAY, HTTP/1.1 connections close
//! after their current response). When the drain timeout passes, [`Connections::cut`] closes
//! every connection still open, which cancels its calls: the gateway may be embedded in a
//! process that goes on running, so leaving them to the process's exit is not enough.
//!
//! `[listener.limits]` bounds what one client can take: connections beyond `max_connections`
//! are closed when accepted; a connection that starts no request within `header_read_timeout`
//! (a slow or silent client) is closed, as is one with no request in flight for
//! `idle_timeout` (an HTTP/1.1 keep-alive connection waiting for its next head is held to the
//! header read timeout by hyper already); heads are bounded in size (and, on HTTP/1.1, in count and in time). The
//! HTTP/2 attacks are bounded by `h2` and set here on purpose rather than left to defaults:
//! streams a client resets before the server accepts them (rapid reset) are capped at
//! [`MAX_PENDING_RESETS`], streams the server must reset at [`MAX_LOCAL_RESETS`] (past it the
//! connection gets GOAWAY), and a header block is capped in size however many CONTINUATION
//! frames carry it. `tests/tests/abuse.rs` sends each attack.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ListenerLimits;

use arc_swap::ArcSwap;

use super::snapshot::Snapshot;
use super::tls::HANDSHAKE_TIMEOUT;
use crate::access::{Peer, PeerIdentity};
use tokio_rustls::TlsAcceptor;

/// What a connection's calls tell its watchdog.
#[derive(Debug)]
struct Activity {
    /// Requests whose response body has not ended yet.
    in_flight: AtomicUsize,
    /// Of those, the ones whose body handed hyper a frame that hyper has not come back for:
    /// it waits for the client to open its flow-control window.
    stalled: AtomicUsize,
    /// Requests started since the connection was accepted.
    started: AtomicU64,
    /// When the last request started, a response body was last polled, or a response
    /// ended, in ms since `accepted`.
    last_ms: AtomicU64,
    accepted: Instant,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            stalled: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            accepted: Instant::now(),
        })
    }

    fn touch(&self) {
        let now = self.accepted.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Counts a request in until the returned guard (kept by its response body) drops.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight {
            activity: Arc::clone(self),
            stalled: false,
        }
    }

    /// Why the connection should close now, if it should.
    fn verdict(&self, limits: &ListenerLimits) -> Option<&'static str> {
        let since_last = || {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            self.accepted.elapsed().saturating_sub(last)
        };
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        if in_flight > 0 {
            // Calls in flight keep the connection, unless every one of them is stuck on a
            // client that stopped reading (a zero window held open to pin the connection).
            let stuck = self.stalled.load(Ordering::Relaxed) >= in_flight;
            return (stuck && since_last() >= limits.idle_timeout)
                .then_some("every response stalled on the client's flow control");
        }
        if self.started.load(Ordering::Relaxed) == 0 {
            return (self.accepted.elapsed() >= limits.header_read_timeout)
                .then_some("no request within the header read timeout");
        }
        (since_last() >= limits.idle_timeout).then_some("idle for the idle timeout")
    }
}

/// One request in flight; dropped with its response body.
#[derive(Debug)]
struct InFlight {
    activity: Arc<Activity>,
    /// Whether the body's last poll handed out a frame (see `Activity::stalled`).
    stalled: bool,
}

impl InFlight {
    fn stall(&mut self, stalled: bool) {
        if stalled != self.stalled {
            self.stalled = stalled;
            if stalled {
                self.activity.stalled.fetch_add(1, Ordering::Relaxed);
            } else {
                self.activity.stalled.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stall(false);
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.activity.touch();
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until it ends.
    struct Tracked<B> {
        #[pin]
        inner: B,
        in_flight: InFlight,
    }
}

impl<B: http_body::Body> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        this.in_flight.stall(false);
        this.in_flight.activity.touch();
        let polled = this.inner.poll_frame(cx);
        // hyper polls again only once the client's window has room for what it was handed.
        if matches!(polled, std::task::Poll::Ready(Some(Ok(_)))) {
            this.in_flight.stall(true);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What watches one connection: the drain's cut, its activity, its place in the count.
struct Watched {
    cut_signal: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
    activity: Arc<Activity>,
    limits: ListenerLimits,
    /// Counted against `max_connections` until the connection ends.
    _open: Open,
}

impl Watched {
    /// Serves the connection until it ends, is cut at the drain timeout, or its watchdog
    /// closes it (no first request in time, or idle).
    async fn run<E>(mut self, connection: impl Future<Output = Result<(), E>>)
    where
        E: std::fmt::Display,
    {
        let peer = self.peer;
        let period = (self
            .limits
            .header_read_timeout
            .min(self.limits.idle_timeout)
            / 4)
        .max(Duration::from_millis(10));
        let (activity, limits) = (&self.activity, &self.limits);
        let watchdog = async {
            loop {
                tokio::time::sleep(period).await;
                if let Some(reason) = activity.verdict(limits) {
                    return reason;
                }
            }
        };
        tokio::select! {
            ended = connection => if let Err(error) = ended {
                tracing::debug!(%peer, %error, "connection ended with an error");
            },
            // Dropping the connection closes it; its calls' tasks see the reset and stop.
            _ = self.cut_signal.wait_for(|cut| *cut) => {
                tracing::debug!(%peer, "connection cut at the drain timeout");
            }
            reason = watchdog => {
                tracing::debug!(%peer, reason, "connection closed");
            }
        }
    }
}

/// Streams a client may reset before the server accepts them, per connection (rapid reset,
/// CVE-2023-44487); past it the connection gets GOAWAY.
pub(crate) const MAX_PENDING_RESETS: usize = 20;
/// Streams the server may reset because of the client's errors, per connection; past it the
/// connection gets GOAWAY.
pub(crate) const MAX_LOCAL_RESETS: usize = 1024;
/// Pause after a failed `accept` (such as running out of file descriptors), so that the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// One open connection, counted against `max_connections` until dropped.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn count(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(open))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connections still open when the listener stopped accepting.
pub(crate) struct Connections {
    graceful: GracefulShutdown,
    cut: watch::Sender<bool>,
}

impl Connections {
    /// Asks every connection to finish its calls and close (GOAWAY); completes once all have.
    pub(crate) async fn drain(&mut self) {
        let graceful = std::mem::replace(&mut self.graceful, GracefulShutdown::new());
        graceful.shutdown().await;
    }

    /// Closes every connection still open, cancelling its calls.
    pub(crate) fn cut(&self) {
        self.cut.send_replace(true);
    }
}

/// Serves connections from `listener` until `signal` completes; returns the live connections so
/// the caller can drain them.
pub(crate) async fn serve(
    listener: TcpListener,
    current: Arc<ArcSwap<Snapshot>>,
    signal: impl Future<Output = ()> + Send,
    tls: Option<TlsAcceptor>,
    limits: ListenerLimits,
) -> Connections {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size((limits.max_header_bytes as usize).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        // Clients size their connection pools from it, so it is set, never left to defaults.
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(MAX_LOCAL_RESETS);
    let open = Arc::new(AtomicUsize::new(0));
    let connections = GracefulShutdown::new();
    let (cut, cut_signal) = watch::channel(false);
    let mut signal = std::pin::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            tracing::debug!(%peer, limit = limits.max_connections, "connection refused: at max_connections");
            drop(stream);
            continue;
        }
        let counted = Open::count(&open);
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let activity = Activity::new();
        let current = Arc::clone(&current);
        // Each call takes the routing table in force when it arrives, so a long-lived
        // connection follows reloads.
        let tracked = Arc::clone(&activity);
        let service = move |connection: Arc<Peer>| {
            service_fn(move |request| {
                let in_flight = tracked.begin();
                let answer =
                    Arc::clone(&current.load().router).handle(request, Arc::clone(&connection));
                async move {
                    let response = answer.await?;
                    Ok::<_, std::convert::Infallible>(
                        response.map(|inner| Tracked { inner, in_flight }),
                    )
                }
            })
        };
        let watcher = connections.watcher();
        let watched = Watched {
            cut_signal: cut_signal.clone(),
            peer,
            activity,
            limits: limits.clone(),
            _open: counted,
        };
        match &tls {
            None => {
                let service = service(Arc::new(Peer {
                    addr: Some(peer),
                    identity: None,
                }));
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                tokio::spawn(watched.run(watcher.watch(connection)));
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                let handshake_timeout = HANDSHAKE_TIMEOUT.min(limits.header_read_timeout);
                let builder = builder.clone();
                tokio::spawn(async move {
                    let mut cut = watched.cut_signal.clone();
                    let stream = tokio::select! {
                        done = tokio::time::timeout(handshake_timeout, handshake) => match done {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        _ = cut.wait_for(|cut| *cut) => return,
                    };
                    // Verified by rustls already; read once for every call on the connection.
                    let identity = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| PeerIdentity::of_certificate(leaf))
                        .map(Arc::new);
                    let service = service(Arc::new(Peer {
                        addr: Some(peer),
                        identity,
                    }));
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    watched.run(watcher.watch(connection)).await;
                });
            }
        }
    }
    Connections {
        graceful: connections,
        cut,
    }
}
