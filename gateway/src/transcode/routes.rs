//! The HTTP routes of one configuration, built once at start (and at each reload), and the
//! step from a matched HTTP request to a gRPC call.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use mosaic_http_rule::{Lookup, Matcher, Rule};
use prost::Message as _;
use prost_reflect::{DescriptorPool, Kind};
use tonic::Code;

use super::read::{ReadError, read_limited};
use super::request::{self, Parts, Rejection};
use super::response::{self, Framing, HttpBody};
use super::route::HttpRoute;
use super::status::GrpcStatus;
use super::{HttpConfig, Shared};
use crate::grpc::body::CallerStream;

/// Every HTTP route of a configuration.
#[derive(Debug)]
pub(crate) struct HttpRoutes {
    matcher: Matcher<Arc<HttpRoute>>,
    shared: Arc<Shared>,
}

/// What to do with one HTTP request.
pub(crate) enum Prepared {
    /// Make this gRPC call, then answer with [`Reply::respond`].
    Call {
        request: Request<CallerStream>,
        reply: Reply,
    },
    /// Answer now (no route, a refused request).
    Answer(Response<HttpBody>),
}

/// How to answer a transcoded call once the gRPC response is in.
pub(crate) struct Reply {
    route: Arc<HttpRoute>,
    shared: Arc<Shared>,
    framing: Framing,
}

const JSON_NAME: &str = "google.api.HttpBody";

fn is_http_body(kind: Kind) -> bool {
    matches!(kind, Kind::Message(message) if message.full_name() == JSON_NAME)
}

impl HttpRoutes {
    /// Builds the routes of the methods of every service `served` accepts, from `config`'s
    /// rules (which win) and the methods' annotations. `Err` lists every problem.
    pub(crate) fn build(
        pool: &DescriptorPool,
        served: impl Fn(&str) -> bool,
        config: &HttpConfig,
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let status = pool.get_message_by_name("google.rpc.Status");
        let Some(status) = status else {
            return Err(vec!["the descriptor pool lacks google.rpc.Status".into()]);
        };
        let mut configured: HashMap<&str, (usize, &Rule)> = HashMap::new();
        for (index, rule) in config.rules.iter().enumerate() {
            let selector = rule.selector.as_str();
            let method = selector.rsplit_once('.').and_then(|(service, method)| {
                let service = pool.get_service_by_name(service)?;
                served(service.full_name()).then_some(())?;
                service.methods().find(|m| m.name() == method)
            });
            if method.is_none() {
                problems.push(format!(
                    "http.rules[{index}]: selector `{selector}` names no method of a service the gateway serves (write `package.Service.Method`)"
                ));
            }
            if let Some((first, _)) = configured.insert(selector, (index, rule)) {
                problems.push(format!(
                    "http.rules[{index}]: `{selector}` already has a rule (http.rules[{first}])"
                ));
            }
        }
        let mut matcher = Matcher::default();
        for service in pool
            .services()
            .filter(|service| served(service.full_name()))
        {
            for method in service.methods() {
                let (rule, origin) = match configured.get(method.full_name()) {
                    Some((_, rule)) => ((*rule).clone(), "gateway.toml"),
                    None => match Rule::of_method(&method) {
                        Some(rule) => (rule, "annotation"),
                        None => continue,
                    },
                };
                let (bindings, errors) = rule.bindings(&method);
                for error in errors {
                    let which = match error.binding {
                        Some(index) => format!(" (additional_bindings[{index}])"),
                        None => String::new(),
                    };
                    problems.push(format!(
                        "`{}`{which}: {} ({origin})",
                        method.full_name(),
                        error.message
                    ));
                }
                for binding in bindings {
                    let input_is_raw = match &binding.body {
                        mosaic_http_rule::BodyRule::All => method.input().full_name() == JSON_NAME,
                        mosaic_http_rule::BodyRule::Field(field) => {
                            is_http_body(field.kind()) && !field.is_list()
                        }
                        mosaic_http_rule::BodyRule::None => false,
                    };
                    let output_is_raw = match &binding.response_body {
                        Some(field) => is_http_body(field.kind()) && !field.is_list(),
                        None => method.output().full_name() == JSON_NAME,
                    };
                    let route = Arc::new(HttpRoute {
                        grpc_path: format!("/{}/{}", service.full_name(), method.name()).into(),
                        method: method.clone(),
                        http_body_request: input_is_raw,
                        http_body_response: output_is_raw,
                        origin,
                        binding: binding.clone(),
                    });
                    if let Err(conflict) =
                        matcher.insert(binding.method.clone(), binding.template.clone(), route)
                    {
                        problems.push(format!(
                            "`{}` and `{}` both bind {}",
                            conflict.existing.method.full_name(),
                            method.full_name(),
                            conflict.shape
                        ));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            matcher,
            shared: Arc::new(Shared {
                config: config.clone(),
                status,
            }),
        })
    }

    /// The route and variable values for `method` and `path`, if one matches.
    #[cfg(test)]
    pub(super) fn find(&self, method: &str, path: &str) -> Option<(Arc<HttpRoute>, Vec<String>)> {
        match self.matcher.lookup(method, path) {
            Ok(Lookup::Found {
                value, captures, ..
            }) => Some((Arc::clone(value), captures)),
            _ => None,
        }
    }

    /// What every route of these shares.
    #[cfg(test)]
    pub(super) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Every route, in declaration order.
    pub(crate) fn routes(&self) -> impl Iterator<Item = &Arc<HttpRoute>> {
        self.matcher.values()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    /// Matches `request` and turns it into a gRPC call, or answers it.
    pub(crate) async fn prepare(&self, request: Request<hyper::body::Incoming>) -> Prepared {
        let (parts, body) = request.into_parts();
        let lookup = self.matcher.lookup(parts.method.as_str(), parts.uri.path());
        let (route, captures) = match lookup {
            Ok(Lookup::Found {
                value, captures, ..
            }) => (Arc::clone(value), captures),
            Ok(Lookup::NotFound) => {
                return self.refuse(
                    StatusCode::NOT_FOUND,
                    Code::NotFound,
                    format!("no route for {} {}", parts.method, parts.uri.path()),
                );
            }
            Ok(Lookup::MethodNotAllowed(allowed)) => {
                let allow = allowed.join(", ");
                let mut answer = self.refuse(
                    StatusCode::METHOD_NOT_ALLOWED,
                    Code::Unimplemented,
                    format!(
                        "{} {} is not routed; this path takes {allow}",
                        parts.method,
                        parts.uri.path()
                    ),
                );
                if let Prepared::Answer(response) = &mut answer
                    && let Ok(value) = HeaderValue::from_str(&allow)
                {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                return answer;
            }
            Err(message) => {
                return self.refuse(
                    StatusCode::BAD_REQUEST,
                    Code::InvalidArgument,
                    format!("path: {message}"),
                );
            }
        };
        if route.method.is_client_streaming() && route.method.is_server_streaming() {
            return self.refuse(
                StatusCode::NOT_IMPLEMENTED,
                Code::Unimplemented,
                format!(
                    "`{}` streams both ways, which plain HTTP cannot carry: call it over gRPC or gRPC-Web",
                    route.method.full_name()
                ),
            );
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        let limit = self.shared.config.max_request_bytes;
        let body = match read_body(body, &parts.headers, limit).await {
            Ok(body) => body,
            Err(rejection) => return self.rejected(rejection),
        };
        let messages = request::messages(
            &route,
            Parts {
                captures,
                query: parts.uri.query(),
                content_type,
                body,
            },
            &self.shared.config,
        );
        let messages = match messages {
            Ok(messages) => messages,
            Err(rejection) => return self.rejected(rejection),
        };
        let mut framed = BytesMut::new();
        for message in &messages {
            let length = message.encoded_len();
            framed.reserve(5 + length);
            framed.put_u8(0);
            framed.put_u32(length as u32);
            // Encoding into a buffer with room reserved cannot fail.
            let _ = message.encode(&mut framed);
        }
        let mut call = Request::new(CallerStream::Made(Full::new(framed.freeze())));
        *call.method_mut() = Method::POST;
        *call.version_mut() = http::Version::HTTP_2;
        *call.uri_mut() =
            http::Uri::from_maybe_shared(Bytes::copy_from_slice(route.grpc_path.as_bytes()))
                .unwrap_or_default();
        metadata(&parts.headers, call.headers_mut());
        let framing = Framing::negotiate(parts.headers.get(header::ACCEPT));
        Prepared::Call {
            request: call,
            reply: Reply {
                route,
                shared: Arc::clone(&self.shared),
                framing,
            },
        }
    }

    fn refuse(&self, http: StatusCode, code: Code, message: String) -> Prepared {
        let status = GrpcStatus::new(code, message);
        Prepared::Answer(
            status
                .response(&self.shared.status, Some(http))
                .map(HttpBody::full),
        )
    }

    fn rejected(&self, rejection: Rejection) -> Prepared {
        let code = match rejection.status {
            StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
            _ => Code::InvalidArgument,
        };
        self.refuse(rejection.status, code, rejection.message)
    }
}

impl Reply {
    /// The gRPC path of the call.
    pub(crate) fn grpc_path(&self) -> &str {
        &self.route.grpc_path
    }

    /// The HTTP response for the call's gRPC response.
    pub(crate) async fn respond<B>(self, response: Response<B>) -> Response<HttpBody>
    where
        B: http_body::Body<Data = Bytes, Error = tonic::Status> + Send + Unpin + 'static,
    {
        response::respond(self.route, self.shared, self.framing, response).await
    }
}

/// Reads the body whole, up to `limit` bytes (413 beyond).
async fn read_body(
    body: hyper::body::Incoming,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, Rejection> {
    match read_limited(body, headers, limit).await {
        Ok(body) => Ok(body),
        Err(ReadError::TooLarge) => Err(Rejection {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the request body is larger than the limit of {limit} bytes"),
        }),
        Err(ReadError::Broken(error)) => Err(Rejection::bad(format!(
            "reading the request body failed: {error}"
        ))),
    }
}

/// Request headers that do not pass as metadata.
fn is_withheld(name: &http::HeaderName) -> bool {
    use http::header::*;
    [
        HOST,
        CONTENT_TYPE,
        CONTENT_LENGTH,
        ACCEPT,
        ACCEPT_ENCODING,
        CONNECTION,
        TE,
        TRANSFER_ENCODING,
        UPGRADE,
        PROXY_AUTHORIZATION,
        PROXY_AUTHENTICATE,
        TRAILER,
        EXPECT,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "http2-settings"
        || (name.as_str().starts_with("grpc-") && name.as_str() != "grpc-timeout")
}

/// The call's metadata: the request's headers less the withheld ones, and gRPC's own.
fn metadata(from: &HeaderMap, into: &mut HeaderMap) {
    for (name, value) in from {
        if !is_withheld(name) {
            into.append(name.clone(), value.clone());
        }
    }
    into.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    into.insert(header::TE, HeaderValue::from_static("trailers"));
}
