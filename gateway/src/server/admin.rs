//! The admin listener: liveness and readiness for orchestrators and load balancers.
//!
//! It is a separate socket so that it can stay private while the edge listener is public, and so
//! that a saturated edge listener does not make the gateway look dead.
//!
//! - `GET /healthz`: 200 while the process serves at all.
//! - `GET /ready`: 200 while accepting calls, 503 once shutdown has begun, so a load balancer
//!   stops sending new calls while in-flight ones drain.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves admin requests until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, draining: watch::Receiver<bool>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "admin listener: accepting a connection failed");
                continue;
            }
        };
        let draining = draining.clone();
        let service = service_fn(move |request| {
            let response = respond(&request, *draining.borrow());
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

fn respond(request: &Request<Incoming>, draining: bool) -> Response<Full<Bytes>> {
    let (status, text) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => (StatusCode::OK, "ok\n"),
        (&Method::GET, "/ready") if draining => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        (&Method::GET, "/ready") => (StatusCode::OK, "ready\n"),
        (&Method::GET, _) => (
            StatusCode::NOT_FOUND,
            "unknown admin path; try /healthz or /ready\n",
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "admin endpoints accept GET only\n",
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
