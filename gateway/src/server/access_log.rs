//! The access log: one JSON line per edge gRPC call, off unless `[access_log]` is configured.
//!
//! A call's line is built when its record ends (`record.rs`) and handed to a writer task
//! through a bounded channel; the task writes to stdout or appends to a file and flushes when
//! it has nothing more to write. When the writer falls behind (a full disk, a blocked pipe)
//! lines are dropped and counted (`mosaic_access_log_dropped_lines_total`) rather than queued
//! without bound or held up the calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, watch};
use tonic::Code;

use crate::config::{AccessLogConfig, AccessLogField, AccessLogTarget};
use crate::telemetry::metrics::CODE_NAMES;

/// Lines waiting for the writer; more are dropped.
const QUEUE: usize = 8192;

/// Where finished calls' lines go.
#[derive(Debug)]
pub(crate) struct AccessLog {
    fields: Vec<AccessLogField>,
    lines: mpsc::Sender<String>,
    dropped: AtomicU64,
    /// Tells the writer to write what is queued and end (the gateway has drained).
    finish: watch::Sender<bool>,
}

/// What a call's line says, gathered while the call runs.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) started: SystemTime,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) method: String,
    pub(crate) trace_id: Option<String>,
    /// Who the call was admitted as, when `[auth]` identified it.
    pub(crate) consumer: Option<(Arc<str>, Option<Arc<str>>)>,
    pub(crate) upstream: Option<Arc<str>>,
    pub(crate) endpoint: Option<String>,
}

/// How a call ended.
#[derive(Debug)]
pub(crate) struct Ending {
    pub(crate) code: Code,
    pub(crate) duration: Duration,
    pub(crate) attempts: u32,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
}

impl AccessLog {
    /// Opens the target and starts the writer task; `None` when the log is off.
    pub(crate) async fn start(
        config: &AccessLogConfig,
    ) -> std::io::Result<(Arc<AccessLog>, tokio::task::JoinHandle<()>)> {
        let out: Box<dyn AsyncWrite + Send + Unpin> = match &config.target {
            AccessLogTarget::Stdout => Box::new(tokio::io::stdout()),
            AccessLogTarget::File(path) => Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await?,
            ),
        };
        let (lines, receiver) = mpsc::channel(QUEUE);
        let (finish, finished) = watch::channel(false);
        let task = tokio::spawn(write_lines(receiver, finished, BufWriter::new(out)));
        let log = AccessLog {
            fields: config.fields.clone(),
            lines,
            dropped: AtomicU64::new(0),
            finish,
        };
        Ok((Arc::new(log), task))
    }

    /// Lets the writer write the lines queued so far and end.
    pub(crate) fn finish(&self) {
        let _ = self.finish.send(true);
    }

    /// Lines dropped because the writer was behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues the line of a finished call.
    pub(crate) fn write(&self, entry: &Entry, ending: &Ending) {
        // Written by hand rather than through a map, so the fields keep the configured order;
        // the values are serialized by serde_json (escaping included), the keys are fixed
        // identifiers.
        let mut text = String::with_capacity(64 * self.fields.len());
        text.push('{');
        for (index, field) in self.fields.iter().enumerate() {
            let value = match field {
                AccessLogField::Time => {
                    Value::from(humantime::format_rfc3339_micros(entry.started).to_string())
                }
                AccessLogField::Peer => entry
                    .peer
                    .map_or(Value::Null, |peer| Value::from(peer.to_string())),
                AccessLogField::Protocol => Value::from("grpc"),
                AccessLogField::Method => Value::from(entry.method.as_str()),
                AccessLogField::Status => Value::from(
                    CODE_NAMES
                        .get(ending.code as usize)
                        .copied()
                        .unwrap_or("UNKNOWN"),
                ),
                AccessLogField::DurationUs => {
                    Value::from(u64::try_from(ending.duration.as_micros()).unwrap_or(u64::MAX))
                }
                AccessLogField::Upstream => {
                    entry.upstream.as_deref().map_or(Value::Null, Value::from)
                }
                AccessLogField::Endpoint => {
                    entry.endpoint.as_deref().map_or(Value::Null, Value::from)
                }
                AccessLogField::Attempts => Value::from(ending.attempts),
                AccessLogField::RequestBytes => Value::from(ending.request_bytes),
                AccessLogField::ResponseBytes => Value::from(ending.response_bytes),
                AccessLogField::Consumer => entry
                    .consumer
                    .as_ref()
                    .map_or(Value::Null, |(consumer, _)| Value::from(&**consumer)),
                AccessLogField::Plan => entry
                    .consumer
                    .as_ref()
                    .and_then(|(_, plan)| plan.as_deref())
                    .map_or(Value::Null, Value::from),
                AccessLogField::TraceId => {
                    entry.trace_id.as_deref().map_or(Value::Null, Value::from)
                }
            };
            if index > 0 {
                text.push(',');
            }
            text.push('"');
            text.push_str(field.name());
            text.push_str("\":");
            text.push_str(&value.to_string());
        }
        text.push_str("}\n");
        if self.lines.try_send(text).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write_lines(
    mut lines: mpsc::Receiver<String>,
    mut finished: watch::Receiver<bool>,
    mut out: BufWriter<Box<dyn AsyncWrite + Send + Unpin>>,
) {
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            _ = finished.changed() => {
                // Whatever was queued before the signal is still written.
                lines.close();
                lines.recv().await
            }
        };
        let Some(line) = line else { break };
        if let Err(error) = out.write_all(line.as_bytes()).await {
            tracing::warn!(%error, "the access log cannot be written; lines are lost");
        }
        if lines.is_empty()
            && let Err(error) = out.flush().await
        {
            tracing::warn!(%error, "the access log cannot be flushed");
        }
    }
    let _ = out.flush().await;
}

/// The trace id of a W3C `traceparent` header, when it is well formed.
pub(crate) fn trace_id(traceparent: &str) -> Option<&str> {
    crate::telemetry::trace::parse_traceparent(traceparent).map(|(trace, _)| trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_only_from_well_formed_traceparents() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id(&format!("00-{id}-00f067aa0ba902b7-01")), Some(id));
        for bad in [
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{id}-0000000000000000-01"),
            format!("ff-{id}-00f067aa0ba902b7-01"),
            format!("00-{id}-00f067aa0ba902b7-01-extra"),
            format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase()),
            "00-abc-def-01".to_owned(),
            String::new(),
        ] {
            assert_eq!(trace_id(&bad), None, "{bad}");
        }
    }
}
