//! A small closed-loop load generator for benchmarks: `concurrency` workers each issue calls
//! back to back for a fixed time, and every latency is kept (bounded by the run's length), so
//! percentiles are exact rather than estimated.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// What one load run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Successful call latencies, sorted ascending.
    latencies: Vec<Duration>,
}

impl LoadReport {
    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0..=1) of successful calls.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[rank]
    }

    /// One line: throughput, p50, p99, failures.
    pub fn summary(&self) -> String {
        format!(
            "{:>9.0} calls/s  p50 {:>7.1} µs  p99 {:>7.1} µs  ({} ok, {} failed)",
            self.throughput(),
            self.quantile(0.50).as_secs_f64() * 1e6,
            self.quantile(0.99).as_secs_f64() * 1e6,
            self.ok,
            self.failed,
        )
    }
}

/// Runs `call` from `concurrency` workers: `warmup` unmeasured, then `measure` measured.
/// `make_call` builds one worker's call function (each worker owns its client clone).
pub async fn run<M, C, F>(
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
    mut make_call: M,
) -> LoadReport
where
    M: FnMut() -> C,
    C: FnMut() -> F + Send + 'static,
    F: Future<Output = bool> + Send,
{
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + measure;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut call = make_call();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut ok, mut failed) = (0u64, 0u64);
            loop {
                let began = Instant::now();
                if began >= stop_at {
                    break;
                }
                let success = call().await;
                if began >= measure_from {
                    if success {
                        ok += 1;
                        latencies.push(began.elapsed());
                    } else {
                        failed += 1;
                    }
                }
            }
            (latencies, ok, failed)
        }));
    }
    let mut report = LoadReport {
        ok: 0,
        failed: 0,
        elapsed: measure,
        latencies: Vec::new(),
    };
    for worker in workers {
        if let Ok((latencies, ok, failed)) = worker.await {
            report.latencies.extend(latencies);
            report.ok += ok;
            report.failed += failed;
        }
    }
    report.latencies.sort_unstable();
    report
}

/// The median of several values (for repeated runs).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// CPU time this process has used (user + system), from `/proc/self/stat`, in clock ticks of
/// 10 ms (Linux's `USER_HZ` is 100 on every mainstream architecture).
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it do not. `utime` and `stime` are
    // fields 14 and 15, the 12th and 13th after the name.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The process CPU time used from `warmup` to `warmup + measure` from now: run it beside a
/// [`run`] with the same phases to get the CPU of its measured phase.
pub async fn cpu_during(warmup: Duration, measure: Duration) -> Option<Duration> {
    tokio::time::sleep(warmup).await;
    let start = process_cpu();
    tokio::time::sleep(measure).await;
    process_cpu()?.checked_sub(start?)
}
