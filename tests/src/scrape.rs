//! The gateway's admin endpoints as a monitoring system reads them: `GET` over HTTP/1.1, and
//! `/metrics` parsed by a Prometheus text-format parser (`prometheus-parse`), not by the
//! gateway's own code.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use prometheus_parse::Value;

/// `GET path` on the admin listener: the HTTP status, content type and body.
pub async fn get(admin: SocketAddr, path: &str) -> anyhow::Result<(u16, String, String)> {
    request(admin, http::Method::GET, path).await
}

/// `POST path` (no body) on the admin listener: the HTTP status, content type and body.
pub async fn post(admin: SocketAddr, path: &str) -> anyhow::Result<(u16, String, String)> {
    request(admin, http::Method::POST, path).await
}

async fn request(
    admin: SocketAddr,
    method: http::Method,
    path: &str,
) -> anyhow::Result<(u16, String, String)> {
    let stream = tokio::net::TcpStream::connect(admin).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{admin}{path}"))
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, content_type, String::from_utf8(body.to_vec())?))
}

/// One scrape of `/metrics`.
pub struct Scrape {
    parsed: prometheus_parse::Scrape,
    /// The text as served, for failure messages.
    pub text: String,
}

impl Scrape {
    /// Scrapes the gateway whose admin listener is at `admin`.
    pub async fn fetch(admin: SocketAddr) -> anyhow::Result<Scrape> {
        let (status, content_type, text) = get(admin, "/metrics").await?;
        anyhow::ensure!(status == 200, "GET /metrics answered {status}: {text}");
        anyhow::ensure!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "the Prometheus text format, not {content_type:?}"
        );
        let parsed = prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
            .context("parsing /metrics")?;
        Ok(Scrape { parsed, text })
    }

    /// The sum of the samples named `metric` whose labels include every one of `labels`
    /// (0 when none matches: a series never created reads as zero, as Prometheus treats it).
    pub fn sum(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(metric, labels).sum()
    }

    /// How many samples named `metric` carry every one of `labels`.
    pub fn series(&self, metric: &str, labels: &[(&str, &str)]) -> usize {
        self.matching(metric, labels).count()
    }

    fn matching<'a>(
        &'a self,
        metric: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = f64> + 'a {
        self.parsed
            .samples
            .iter()
            .filter(move |sample| {
                sample.metric == metric
                    && labels
                        .iter()
                        .all(|(name, value)| sample.labels.get(name) == Some(*value))
            })
            .filter_map(|sample| match sample.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                Value::Histogram(_) | Value::Summary(_) => None,
            })
    }
}
