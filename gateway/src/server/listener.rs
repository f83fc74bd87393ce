//! The edge listener's accept loop.
//!
//! Each accepted connection is served by hyper's automatic HTTP/1.1 / HTTP/2 detection and
//! registered with a graceful-shutdown watcher, so that shutdown can stop accepting at once and
//! then let in-flight calls finish (HTTP/2 connections receive GOAWAY, HTTP/1.1 connections close
//! after their current response). When the drain timeout passes, [`Connections::cut`] closes
//! every connection still open, which cancels its calls: the gateway may be embedded in a
//! process that goes on running, so leaving them to the process's exit is not enough.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use arc_swap::ArcSwap;

use super::snapshot::Snapshot;
use super::tls::HANDSHAKE_TIMEOUT;
use crate::access::{Peer, PeerIdentity};
use tokio_rustls::TlsAcceptor;

/// Serves one connection until it ends or is cut at the drain timeout.
async fn run<E>(
    connection: impl Future<Output = Result<(), E>>,
    mut cut_signal: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    E: std::fmt::Display,
{
    tokio::select! {
        ended = connection => if let Err(error) = ended {
            tracing::debug!(%peer, %error, "connection ended with an error");
        },
        // Dropping the connection closes it; its calls' tasks see the reset and stop.
        _ = cut_signal.wait_for(|cut| *cut) => {
            tracing::debug!(%peer, "connection cut at the drain timeout");
        }
    }
}

/// Upper bound on concurrent streams per HTTP/2 connection. Set on purpose rather than left to
/// the library default, because clients size their connection pools from it.
const MAX_CONCURRENT_STREAMS: u32 = 1024;
/// Pause after a failed `accept` (such as running out of file descriptors), so that the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

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
) -> Connections {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
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
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let current = Arc::clone(&current);
        // Each call takes the routing table in force when it arrives, so a long-lived
        // connection follows reloads.
        let service = move |connection: Arc<Peer>| {
            service_fn(move |request| {
                Arc::clone(&current.load().router).handle(request, Arc::clone(&connection))
            })
        };
        let watcher = connections.watcher();
        let cut_signal = cut_signal.clone();
        match &tls {
            None => {
                let service = service(Arc::new(Peer {
                    addr: Some(peer),
                    identity: None,
                }));
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                tokio::spawn(run(watcher.watch(connection), cut_signal, peer));
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                let builder = builder.clone();
                tokio::spawn(async move {
                    let mut cut = cut_signal.clone();
                    let stream = tokio::select! {
                        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake) => match done {
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
                    run(watcher.watch(connection), cut_signal, peer).await;
                });
            }
        }
    }
    Connections {
        graceful: connections,
        cut,
    }
}
