//! `demo.faults.v1.FaultControl`: the knobs over gRPC, and conversions to and from the protos.
//!
//! The proto shape is the wire contract for other processes (the `demo-service faults`
//! command, tests in another language, grpcurl); [`FaultConfig`] is the Rust mirror the server
//! works with. Conversion from the proto is where untrusted input gets checked, so errors name
//! the offending field by its proto path and come back as INVALID_ARGUMENT.

use std::time::Duration;

use tonic::{Code, Request, Response, Status};

use super::config::FaultConfig;
use super::handle::{FaultHandle, FaultStats};
use super::latency::{Latency, MAX_LATENCY};
use crate::pb::faults::v1 as pb;
use crate::pb::faults::v1::fault_control_server::FaultControl;
use crate::pb::faults::v1::latency::Distribution;

/// Serves FaultControl for one server's [`FaultHandle`].
#[derive(Clone, Debug)]
pub(crate) struct FaultControlService {
    handle: FaultHandle,
}

impl FaultControlService {
    pub(crate) fn new(handle: FaultHandle) -> Self {
        Self { handle }
    }

    fn state(&self) -> pb::FaultState {
        fault_state(&self.handle.get(), self.handle.stats())
    }
}

#[tonic::async_trait]
impl FaultControl for FaultControlService {
    async fn get_faults(
        &self,
        _request: Request<pb::GetFaultsRequest>,
    ) -> Result<Response<pb::FaultState>, Status> {
        Ok(Response::new(self.state()))
    }

    async fn set_faults(
        &self,
        request: Request<pb::SetFaultsRequest>,
    ) -> Result<Response<pb::FaultState>, Status> {
        let config = request.into_inner().config.unwrap_or_default();
        let config = FaultConfig::try_from(config)
            .map_err(|message| Status::invalid_argument(format!("config.{message}")))?;
        self.handle
            .set(config)
            .map_err(|message| Status::invalid_argument(format!("config.{message}")))?;
        Ok(Response::new(self.state()))
    }

    async fn reset_stats(
        &self,
        _request: Request<pb::ResetStatsRequest>,
    ) -> Result<Response<pb::FaultState>, Status> {
        self.handle.reset_stats();
        Ok(Response::new(self.state()))
    }
}

/// The proto form of a configuration and its counters.
pub(crate) fn fault_state(config: &FaultConfig, stats: FaultStats) -> pb::FaultState {
    pb::FaultState {
        config: Some(pb::FaultConfig::from(config)),
        calls_total: stats.calls_total,
        calls_failed_injected: stats.calls_failed_injected,
        calls_hung: stats.calls_hung,
    }
}

impl From<&FaultConfig> for pb::FaultConfig {
    fn from(config: &FaultConfig) -> Self {
        pb::FaultConfig {
            latency: latency_to_proto(config.latency),
            error_rate: config.error_rate,
            error_code: match config.error_code {
                // Unrepresentable on purpose (0 is UNSPECIFIED); a validated config never has it.
                Code::Ok => pb::ErrorCode::Unspecified.into(),
                code => i32::from(code),
            },
            hang_rate: config.hang_rate,
        }
    }
}

impl TryFrom<pb::FaultConfig> for FaultConfig {
    /// What is wrong, starting with the field's path inside `FaultConfig`.
    type Error = String;

    fn try_from(config: pb::FaultConfig) -> Result<Self, String> {
        let latency = match config.latency.and_then(|l| l.distribution) {
            None => Latency::None,
            Some(Distribution::Fixed(fixed)) => {
                Latency::Fixed(duration("latency.fixed.delay", fixed.delay)?)
            }
            Some(Distribution::Uniform(uniform)) => Latency::Uniform {
                min: duration("latency.uniform.min", uniform.min)?,
                max: duration("latency.uniform.max", uniform.max)?,
            },
            Some(Distribution::Exponential(exp)) => Latency::Exponential {
                mean: duration("latency.exponential.mean", exp.mean)?,
            },
            Some(Distribution::Normal(normal)) => Latency::Normal {
                mean: duration("latency.normal.mean", normal.mean)?,
                stddev: duration("latency.normal.stddev", normal.stddev)?,
            },
        };
        let error_code = match config.error_code {
            0 => Code::Unavailable,
            n @ 1..=16 => Code::from_i32(n),
            n => return Err(format!("error_code {n} is not a known ErrorCode")),
        };
        let config = FaultConfig {
            latency,
            error_rate: config.error_rate,
            error_code,
            hang_rate: config.hang_rate,
        };
        config.validate()?;
        Ok(config)
    }
}

fn latency_to_proto(latency: Latency) -> Option<pb::Latency> {
    let distribution = match latency {
        Latency::None => return None,
        Latency::Fixed(delay) => Distribution::Fixed(pb::FixedLatency {
            delay: Some(duration_to_proto(delay)),
        }),
        Latency::Uniform { min, max } => Distribution::Uniform(pb::UniformLatency {
            min: Some(duration_to_proto(min)),
            max: Some(duration_to_proto(max)),
        }),
        Latency::Exponential { mean } => Distribution::Exponential(pb::ExponentialLatency {
            mean: Some(duration_to_proto(mean)),
        }),
        Latency::Normal { mean, stddev } => Distribution::Normal(pb::NormalLatency {
            mean: Some(duration_to_proto(mean)),
            stddev: Some(duration_to_proto(stddev)),
        }),
    };
    Some(pb::Latency {
        distribution: Some(distribution),
    })
}

/// A proto duration as a std one; unset means zero.
fn duration(field: &str, value: Option<prost_types::Duration>) -> Result<Duration, String> {
    let Some(value) = value else {
        return Ok(Duration::ZERO);
    };
    if value.seconds < 0 || value.nanos < 0 {
        return Err(format!("{field} must not be negative"));
    }
    let nanos = u32::try_from(value.nanos)
        .ok()
        .filter(|&n| n < 1_000_000_000)
        .ok_or_else(|| format!("{field} has nanos out of range: {}", value.nanos))?;
    let seconds = u64::try_from(value.seconds).unwrap_or(u64::MAX);
    if seconds > MAX_LATENCY.as_secs() {
        return Err(format!(
            "{field} must be at most {}s, got {seconds}s",
            MAX_LATENCY.as_secs()
        ));
    }
    Ok(Duration::new(seconds, nanos))
}

fn duration_to_proto(value: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(value.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(value.subsec_nanos()).unwrap_or(0),
    }
}

impl From<&pb::FaultState> for FaultStats {
    fn from(state: &pb::FaultState) -> Self {
        FaultStats {
            calls_total: state.calls_total,
            calls_failed_injected: state.calls_failed_injected,
            calls_hung: state.calls_hung,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn configs_round_trip_through_the_proto() {
        for latency in [
            Latency::None,
            Latency::Fixed(ms(20)),
            Latency::Uniform {
                min: ms(5),
                max: Duration::from_micros(20_500),
            },
            Latency::Exponential { mean: ms(10) },
            Latency::Normal {
                mean: ms(10),
                stddev: ms(2),
            },
        ] {
            let config = FaultConfig {
                latency,
                error_rate: 0.25,
                error_code: Code::DeadlineExceeded,
                hang_rate: 0.01,
            };
            let proto = pb::FaultConfig::from(&config);
            assert_eq!(FaultConfig::try_from(proto), Ok(config));
        }
    }

    #[test]
    fn unspecified_proto_means_no_faults() {
        assert_eq!(
            FaultConfig::try_from(pb::FaultConfig::default()),
            Ok(FaultConfig::default())
        );
    }

    #[test]
    fn bad_protos_name_the_field() {
        let negative = pb::FaultConfig {
            latency: Some(pb::Latency {
                distribution: Some(Distribution::Uniform(pb::UniformLatency {
                    min: Some(prost_types::Duration {
                        seconds: -1,
                        nanos: 0,
                    }),
                    max: None,
                })),
            }),
            ..Default::default()
        };
        assert_eq!(
            FaultConfig::try_from(negative),
            Err("latency.uniform.min must not be negative".to_owned())
        );
        let code = pb::FaultConfig {
            error_code: 99,
            ..Default::default()
        };
        assert_eq!(
            FaultConfig::try_from(code),
            Err("error_code 99 is not a known ErrorCode".to_owned())
        );
        let rate = pb::FaultConfig {
            error_rate: 3.0,
            ..Default::default()
        };
        assert_eq!(
            FaultConfig::try_from(rate),
            Err("error_rate must be between 0 and 1, got 3".to_owned())
        );
        let huge = pb::FaultConfig {
            latency: Some(pb::Latency {
                distribution: Some(Distribution::Fixed(pb::FixedLatency {
                    delay: Some(prost_types::Duration {
                        seconds: i64::MAX,
                        nanos: 0,
                    }),
                })),
            }),
            ..Default::default()
        };
        let message = FaultConfig::try_from(huge).expect_err("too long");
        assert!(
            message.starts_with("latency.fixed.delay must be at most"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn set_faults_rejects_with_invalid_argument_and_keeps_state() {
        let handle = FaultHandle::default();
        let control = FaultControlService::new(handle.clone());
        let status = control
            .set_faults(Request::new(pb::SetFaultsRequest {
                config: Some(pb::FaultConfig {
                    hang_rate: 1.5,
                    ..Default::default()
                }),
            }))
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "config.hang_rate must be between 0 and 1, got 1.5"
        );
        assert_eq!(handle.get(), FaultConfig::default());

        let state = control
            .set_faults(Request::new(pb::SetFaultsRequest {
                config: Some(pb::FaultConfig {
                    error_rate: 0.5,
                    error_code: pb::ErrorCode::Internal.into(),
                    ..Default::default()
                }),
            }))
            .await
            .expect("valid")
            .into_inner();
        let stats = FaultStats::from(&state);
        let config = FaultConfig::try_from(state.config.unwrap_or_default()).expect("valid");
        assert_eq!(config.error_code, Code::Internal);
        assert_eq!(config.error_rate, 0.5);
        assert_eq!(stats, FaultStats::default());
        assert_eq!(handle.get(), config);
    }
}
