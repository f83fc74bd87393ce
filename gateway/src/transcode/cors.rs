//! CORS for the browser-facing protocols (gRPC-Web and HTTP/JSON), from `[http.cors]`.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by the
//! gateway itself, before any route is looked up, so no upstream ever sees one: 204 with the
//! allowed methods and headers and `Access-Control-Max-Age` when the origin is allowed, 403
//! naming the origin when it is not. An actual request from an allowed origin gets
//! `Access-Control-Allow-Origin` (the origin itself, or `*` when every origin is allowed and no
//! credentials are), and `Access-Control-Expose-Headers` listing `grpc-status`,
//! `grpc-message`, `grpc-status-details-bin`, the configured names and every header the
//! response carries, so that scripts can read the metadata the API returns.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use super::response::HttpBody;

/// `[http.cors]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`), or `*` for any.
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    /// Request headers scripts may send (lower case).
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read, beyond gRPC's and the response's own.
    pub expose_headers: Vec<String>,
    pub max_age: Duration,
    pub allow_credentials: bool,
}

/// Request headers browsers' gRPC-Web and HTTP clients send, allowed unless configured away.
pub(crate) const DEFAULT_ALLOW_HEADERS: &[&str] = &[
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "connect-protocol-version",
    "connect-timeout-ms",
];

/// Methods allowed when the configuration names none.
pub(crate) const DEFAULT_ALLOW_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Response headers always exposed.
const GRPC_HEADERS: &[&str] = &["grpc-status", "grpc-message", "grpc-status-details-bin"];

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allow_origins: Vec::new(),
            allow_methods: DEFAULT_ALLOW_METHODS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
            allow_headers: DEFAULT_ALLOW_HEADERS
                .iter()
                .map(|h| (*h).to_owned())
                .collect(),
            expose_headers: Vec::new(),
            max_age: Duration::from_secs(600),
            allow_credentials: false,
        }
    }
}

impl CorsConfig {
    fn allows(&self, origin: &str) -> bool {
        self.allow_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }

    /// The `Access-Control-Allow-Origin` value for `origin`.
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        let any = self.allow_origins.iter().any(|o| o == "*");
        if any && !self.allow_credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// The answer to a preflight, or `None` when `method` and `headers` are not one.
    pub(crate) fn preflight(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Response<HttpBody>> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?;
        let origin_text = origin.to_str().unwrap_or_default();
        if !self.allows(origin_text) {
            let mut response = Response::new(HttpBody::full(format!(
                "origin `{origin_text}` is not allowed to call this API (see [http.cors] allow_origins)\n"
            )));
            *response.status_mut() = StatusCode::FORBIDDEN;
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("origin"));
            return Some(response);
        }
        let mut response = Response::new(HttpBody::Full(None));
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        out.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        );
        let join = |items: &[String]| HeaderValue::from_str(&items.join(", ")).ok();
        if let Some(methods) = join(&self.allow_methods) {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        if let Some(allowed) = join(&self.allow_headers) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(self.max_age.as_secs()),
        );
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        out.insert(header::VARY, HeaderValue::from_static("origin"));
        Some(response)
    }

    /// Adds the CORS headers of an actual request from `origin` to `response`'s headers.
    pub(crate) fn decorate(&self, origin: Option<&HeaderValue>, response: &mut HeaderMap) {
        let Some(origin) = origin else { return };
        if !self.allows(origin.to_str().unwrap_or_default()) {
            return;
        }
        let mut exposed: Vec<String> = GRPC_HEADERS.iter().map(|h| (*h).to_owned()).collect();
        exposed.extend(self.expose_headers.iter().cloned());
        for name in response.keys() {
            let name = name.as_str();
            if !exposed.iter().any(|e| e == name) && name != "content-type" {
                exposed.push(name.to_owned());
            }
        }
        if let Ok(value) = HeaderValue::from_str(&exposed.join(", ")) {
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
        }
        response.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        );
        if self.allow_credentials {
            response.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        response.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(origins: &[&str], credentials: bool) -> CorsConfig {
        CorsConfig {
            allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            allow_credentials: credentials,
            ..CorsConfig::default()
        }
    }

    fn preflight_headers(origin: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        headers.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        headers
    }

    #[test]
    fn preflights_from_allowed_origins_get_204() {
        let cors = config(&["https://app.test"], true);
        let answer = cors
            .preflight(&Method::OPTIONS, &preflight_headers("https://app.test"))
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        let headers = answer.headers();
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.test"
        );
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert!(
            headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("x-grpc-web")
        );
        let refused = cors
            .preflight(&Method::OPTIONS, &preflight_headers("https://evil.test"))
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(
            cors.preflight(&Method::GET, &preflight_headers("https://app.test"))
                .is_none()
        );
    }

    #[test]
    fn actual_responses_expose_grpc_and_api_headers() {
        let cors = config(&["*"], false);
        let mut response = HeaderMap::new();
        response.insert("x-request-cost", HeaderValue::from_static("3"));
        let origin = HeaderValue::from_static("https://app.test");
        cors.decorate(Some(&origin), &mut response);
        assert_eq!(response[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let exposed = response[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .unwrap();
        assert!(
            exposed.contains("grpc-status") && exposed.contains("x-request-cost"),
            "{exposed}"
        );
        let mut untouched = HeaderMap::new();
        config(&["https://a.test"], false).decorate(Some(&origin), &mut untouched);
        assert!(untouched.is_empty());
    }
}
