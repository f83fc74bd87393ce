//! `curl` as the HTTP client of the HTTP/JSON tests: a real, independent client over HTTP/1.1
//! or h2c, whose requests look like those users send by hand.

use std::process::Stdio;

/// What `curl -i` printed, split up.
#[derive(Debug)]
pub struct CurlResponse {
    /// `1.1` or `2`.
    pub version: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl CurlResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics, showing the body, when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs `curl -sS -i <args>` and parses its output.
pub async fn curl(args: &[&str]) -> CurlResponse {
    run(args, false).await
}

/// Like [`curl`], for a response that does not end (a stream left open): `--max-time` in
/// `args` stops curl, and what arrived until then is returned.
pub async fn curl_until_timeout(args: &[&str]) -> CurlResponse {
    run(args, true).await
}

/// POSTs `body` (bytes as they are, from a scratch file) to `url` over HTTP/2 with prior
/// knowledge when `h2`, HTTP/1.1 otherwise, with `content-type` and the `headers` given.
pub async fn post_bytes(
    url: &str,
    content_type: &str,
    headers: &[&str],
    body: &[u8],
    h2: bool,
) -> CurlResponse {
    let file = crate::scratch_file("curl-body");
    std::fs::write(&file, body).expect("write the request body");
    let content_type = format!("content-type: {content_type}");
    let data = format!("@{}", file.display());
    let version = if h2 {
        "--http2-prior-knowledge"
    } else {
        "--http1.1"
    };
    let mut args = vec![version, "-H", &content_type];
    for header in headers {
        args.extend(["-H", header]);
    }
    args.extend(["--data-binary", &data, url]);
    let answer = curl(&args).await;
    std::fs::remove_file(&file).ok();
    answer
}

/// curl's exit status when `--max-time` stopped it.
const TIMED_OUT: i32 = 28;

async fn run(args: &[&str], until_timeout: bool) -> CurlResponse {
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "-i"])
        .args(if until_timeout {
            &[][..]
        } else {
            &["--max-time", "20"][..]
        })
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!("cannot run curl ({error}); install it: apt-get install -y curl")
        });
    let timed_out = output.status.code() == Some(TIMED_OUT);
    assert!(
        output.status.success() && !until_timeout || timed_out && until_timeout,
        "curl {args:?} ended with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&output.stdout)
}

fn parse(out: &[u8]) -> CurlResponse {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let body = out[split + 4..].to_vec();
    let mut lines = head.lines();
    let status_line = lines.next().expect("a status line");
    let mut parts = status_line.split_whitespace();
    let version = parts
        .next()
        .and_then(|v| v.strip_prefix("HTTP/"))
        .expect("HTTP/x")
        .to_owned();
    let status = parts.next().and_then(|s| s.parse().ok()).expect("a status");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    CurlResponse {
        version,
        status,
        headers,
        body,
    }
}
