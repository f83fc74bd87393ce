//! The edge listener's accept loop.
//!
//! Each accepted connection is served by hyper's automatic HTTP/1.1 / HTTP/2 detection and
//! registered with a graceful-shutdown watcher, so that shutdown can stop accepting at once and
//! then let in-flight calls finish (HTTP/2 connections receive GOAWAY, HTTP/1.1 connections close
//! after their current response).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::router::Router;

/// Upper bound on concurrent streams per HTTP/2 connection. Set on purpose rather than left to
/// the library default, because clients size their connection pools from it.
const MAX_CONCURRENT_STREAMS: u32 = 1024;
/// Pause after a failed `accept` (such as running out of file descriptors), so that the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves connections from `listener` until `signal` completes; returns the live connections so
/// the caller can drain them.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Arc<Router>,
    signal: impl Future<Output = ()> + Send,
) -> GracefulShutdown {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let connections = GracefulShutdown::new();
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
        let router = Arc::clone(&router);
        let service = service_fn(move |request| Arc::clone(&router).handle(request));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    connections
}
