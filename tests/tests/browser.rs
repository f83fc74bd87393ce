//! The gateway in a real browser: headless Chromium loads a page from one origin whose script
//! calls the gateway on another, over gRPC-Web and HTTP/JSON, through CORS; a page from an
//! origin the configuration does not list is refused by the browser. Then Chromium renders
//! the admin listener's `/apis` page and takes a screenshot of it.
//!
//! Needs Debian's `chromium` package; `.ci/run` installs it and runs these.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mosaic_demo::demo::users::v1::GetUserRequest;
use mosaic_demo::demo::users::v1::user_service_client::UserServiceClient;
use mosaic_demo_services::DemoService;
use mosaic_tests::{Stack, scratch_file};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The script the page runs: a gRPC-Web call framed by hand (no bundler, no build step), an
/// error whose `grpc-status` header the script must be allowed to read, and an HTTP/JSON GET.
const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>shop</title><pre id="result">pending</pre>
<script>
const gateway = "GATEWAY";
function frames(buf) {
  const messages = []; let trailers = ""; let i = 0;
  while (i + 5 <= buf.length) {
    const flag = buf[i];
    const len = (buf[i + 1] << 24) | (buf[i + 2] << 16) | (buf[i + 3] << 8) | buf[i + 4];
    const payload = buf.slice(i + 5, i + 5 + len);
    if (flag & 0x80) trailers = new TextDecoder().decode(payload); else messages.push(payload);
    i += 5 + len;
  }
  return { messages, trailers };
}
async function grpcWeb(body) {
  return fetch(gateway + "/demo.users.v1.UserService/GetUser", {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
    body: new Uint8Array(body),
  });
}
async function run() {
  const out = {};
  const ok = await grpcWeb([0, 0, 0, 0, 2, 8, 5]);  // GetUserRequest { id: 5 }
  const { messages, trailers } = frames(new Uint8Array(await ok.arrayBuffer()));
  out.grpcWeb = { status: ok.status, messages: messages.length, bytes: messages[0] ? Array.from(messages[0]) : [], trailers };
  const missing = await grpcWeb([0, 0, 0, 0, 4, 8, 0xbf, 0x84, 0x3d]);  // id 999999
  out.errorStatus = missing.headers.get("grpc-status");
  out.errorMessage = missing.headers.get("grpc-message");
  const json = await fetch(gateway + "/v1/users/5");
  out.json = (await json.json()).user.displayName;
  document.getElementById("result").textContent = JSON.stringify(out);
}
run().catch((e) => { document.getElementById("result").textContent = JSON.stringify({ failed: String(e) }); });
</script>"#;

/// Serves `PAGE` (calling `gateway`) on `listener` until the test ends.
fn serve_page(listener: TcpListener, gateway: SocketAddr) {
    let page = Bytes::from(PAGE.replace("GATEWAY", &format!("http://{gateway}")));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let page = page.clone();
                    async move {
                        let mut response = hyper::Response::new(Full::new(page));
                        response
                            .headers_mut()
                            .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// The DOM of `url` once its scripts have run, from headless Chromium.
async fn dump_dom(url: String) -> String {
    tokio::task::spawn_blocking(move || {
        let profile = scratch_file("chromium-profile");
        let output = std::process::Command::new("chromium")
            .args(chromium_args(&profile))
            .args(["--virtual-time-budget=15000", "--dump-dom", &url])
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run chromium ({error}): apt-get install -y chromium")
            });
        std::fs::remove_dir_all(&profile).ok();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap()
}

fn result_of(dom: &str) -> Value {
    let start =
        dom.find("<pre id=\"result\">").expect("the result element") + "<pre id=\"result\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("the page did not finish: {text}"))
}

#[tokio::test]
#[ignore = "needs Debian's chromium (installed by .ci/run)"]
async fn a_page_on_another_origin_calls_over_grpc_web_and_json() {
    let allowed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let foreign = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed_addr = allowed.local_addr().unwrap();
    let foreign_addr = foreign.local_addr().unwrap();
    let cors = format!("\n[http.cors]\nallow_origins = [\"http://{allowed_addr}\"]\n");
    let stack = Stack::start_with(|config| config + &cors).await.unwrap();
    serve_page(allowed, stack.gateway_addr());
    serve_page(foreign, stack.gateway_addr());
    let user = UserServiceClient::new(stack.direct(DemoService::Users))
        .get_user(GetUserRequest { id: 5 })
        .await
        .unwrap()
        .into_inner();
    let expected_bytes: Vec<u8> = prost::Message::encode_to_vec(&user);

    let result = result_of(&dump_dom(format!("http://{allowed_addr}/")).await);
    assert_eq!(result["grpcWeb"]["status"], json!(200), "{result}");
    assert_eq!(result["grpcWeb"]["messages"], json!(1));
    assert_eq!(
        result["grpcWeb"]["bytes"],
        json!(expected_bytes),
        "the message, byte for byte"
    );
    assert!(
        result["grpcWeb"]["trailers"]
            .as_str()
            .unwrap()
            .contains("grpc-status: 0"),
        "{result}"
    );
    assert_eq!(
        result["errorStatus"],
        json!("5"),
        "grpc-status is exposed to the script"
    );
    assert_eq!(result["errorMessage"], json!("user%20999999%20not%20found"));
    assert_eq!(result["json"], json!(user.user.unwrap().display_name));

    // The same page from an origin the configuration does not list: the browser refuses.
    let refused = result_of(&dump_dom(format!("http://{foreign_addr}/")).await);
    assert!(
        refused["failed"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "{refused}"
    );
}

#[tokio::test]
#[ignore = "needs Debian's chromium (installed by .ci/run)"]
async fn the_apis_page_renders_in_a_browser() {
    let stack = Stack::start().await.unwrap();
    let url = format!("http://{}/apis", stack.admin_addr());
    let dom = dump_dom(url.clone()).await;
    for expected in [
        "demo.storefront.v1.Storefront",
        "GetProductPage",
        "GET /v1/products/{product_id}/page",
        "curl -s 'http://",
        "buf curl --protocol grpc",
        "demo.catalog.v1.Product",
        "href=\"/openapi.json\"",
    ] {
        assert!(
            dom.contains(&expected.replace('\'', "&#39;")) || dom.contains(expected),
            "`{expected}` missing from /apis"
        );
    }
    let screenshot = std::env::temp_dir().join("mosaic-apis.png");
    let shot = tokio::task::spawn_blocking({
        let screenshot = screenshot.clone();
        move || {
            let profile = scratch_file("chromium-profile");
            let output = std::process::Command::new("chromium")
                .args(chromium_args(&profile))
                .args([
                    &format!("--screenshot={}", screenshot.display()),
                    "--window-size=1280,1600",
                    &url,
                ])
                .output()
                .unwrap();
            std::fs::remove_dir_all(&profile).ok();
            output
        }
    })
    .await
    .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    println!(
        "screenshot of /apis: {} ({} bytes)",
        screenshot.display(),
        png.len()
    );
}
