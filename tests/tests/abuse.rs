//! The limits a public edge needs, attacked over raw sockets: silent and slow clients, oversized
//! heads, a connection flood, and the HTTP/2 attacks (rapid reset, CONTINUATION, PING and
//! SETTINGS floods). Each is refused as `[listener.limits]` says while a well-behaved client
//! on another connection keeps being served.

use std::net::SocketAddr;
use std::time::Duration;

use mosaic_demo::demo::inventory::v1::GetStockRequest;
use mosaic_demo::demo::inventory::v1::inventory_service_client::InventoryServiceClient;
use mosaic_demo_services::DemoService;
use mosaic_tests::curl::curl;
use mosaic_tests::{Stack, channel, serial};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

async fn start() -> Stack {
    let limits = "[listener.limits]\nmax_connections = 64\nheader_read_timeout = \"500ms\"\nidle_timeout = \"1s\"\nmax_header_bytes = 8192\nmax_headers = 50\nmax_message_bytes = 65536\n";
    Stack::start_with(|config| {
        config.replacen(
            "drain_timeout = \"5s\"\n",
            &format!("drain_timeout = \"5s\"\n\n{limits}"),
            1,
        )
    })
    .await
    .unwrap()
}

fn inventory_calls(stack: &Stack) -> u64 {
    stack
        .service(DemoService::Inventory)
        .faults()
        .stats()
        .calls_total
}

/// A well-behaved call on its own connection; how long it took.
async fn served(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    InventoryServiceClient::new(channel(addr))
        .get_stock(GetStockRequest { product_id: 7 })
        .await
        .expect("a well-behaved client is served");
    started.elapsed()
}

/// Reads until the peer closes the connection; the time that took, or `None` past `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = vec![0u8; 64 * 1024];
    timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

// --- HTTP/2 frames, written by hand so that each attack sends exactly what it means to ---

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// An HPACK block for `POST /demo.inventory.v1.InventoryService/GetStock` (literals without
/// indexing, so every block stands alone).
fn grpc_request_head() -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (indexed)
    // Literals without indexing, by static-table name: a 4-bit index prefix (15 and up
    // continue in the next byte), then the value's length and bytes.
    for (name, value) in [
        (
            &[0x04][..],
            &b"/demo.inventory.v1.InventoryService/GetStock"[..],
        ), // :path
        (&[0x01][..], &b"127.0.0.1"[..]),              // :authority
        (&[0x0f, 0x10][..], &b"application/grpc"[..]), // content-type (31)
    ] {
        block.extend_from_slice(name);
        block.push(value.len() as u8);
        block.extend_from_slice(value);
    }
    // te: trailers, a name not in the table.
    block.extend_from_slice(&[0x00, 2]);
    block.extend_from_slice(b"te");
    block.push(8);
    block.extend_from_slice(b"trailers");
    block
}

async fn h2_connection(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(PREFACE).await.unwrap();
    stream.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    stream
}

/// Reads frames until a GOAWAY or the end of the connection (or `within`); whether a GOAWAY
/// came.
async fn goaway_within(stream: &mut TcpStream, within: Duration) -> Option<bool> {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            let mut at = 0;
            while buffer.len() >= at + 9 {
                let len =
                    u32::from_be_bytes([0, buffer[at], buffer[at + 1], buffer[at + 2]]) as usize;
                if buffer[at + 3] == GOAWAY {
                    return true;
                }
                if buffer.len() < at + 9 + len {
                    break;
                }
                at += 9 + len;
            }
            buffer.drain(..at);
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn silent_slow_and_idle_clients_are_closed() {
    let _serial = serial().await;
    let stack = start().await;
    let addr = stack.gateway_addr();

    let opened = Instant::now();
    // Connects and says nothing.
    let silent = TcpStream::connect(addr).await.unwrap();
    // Sends half an HTTP/1.1 head, then stalls.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /v1/products/7 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // An HTTP/2 preface and nothing more.
    let h2_silent = h2_connection(addr).await;
    served(addr).await;
    let watch = |name: &'static str, mut stream: TcpStream| {
        tokio::spawn(async move {
            closed_within(&mut stream, Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("{name}: still open after 5 s"));
            (name, opened.elapsed())
        })
    };
    let watched = [
        watch("silent", silent),
        watch("slow head", slow),
        watch("h2 silent", h2_silent),
    ];
    for task in watched {
        let (name, closed) = task.await.unwrap();
        assert!(
            (Duration::from_millis(450)..Duration::from_secs(3)).contains(&closed),
            "{name}: closed {closed:?} after opening; the timeout is 500 ms"
        );
    }

    // Idle after a request: closed once the idle timeout passes with nothing in flight. (An
    // HTTP/1.1 keep-alive connection waiting for its next head is bounded by the header read
    // timeout already, so this is an HTTP/2 connection.)
    let mut idle = h2_connection(addr).await;
    idle.write_all(&frame(HEADERS, END_HEADERS, 1, &grpc_request_head()))
        .await
        .unwrap();
    // GetStockRequest { product_id: 7 }, gRPC-framed, ending the stream.
    idle.write_all(&frame(DATA, END_STREAM, 1, &[0, 0, 0, 0, 2, 0x08, 0x07]))
        .await
        .unwrap();
    let closed = closed_within(&mut idle, Duration::from_secs(5))
        .await
        .expect("idle connection closed");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&closed),
        "closed {closed:?} after its request; the idle timeout is 1 s"
    );

    // A client that takes a response head and then never opens its flow-control window (a
    // zero initial window): its call stays in flight, but stuck, so the connection is closed
    // once the idle timeout passes.
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    stuck.write_all(PREFACE).await.unwrap();
    stuck
        .write_all(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]))
        .await
        .unwrap();
    stuck
        .write_all(&frame(HEADERS, END_HEADERS, 1, &grpc_request_head()))
        .await
        .unwrap();
    stuck
        .write_all(&frame(DATA, END_STREAM, 1, &[0, 0, 0, 0, 2, 0x08, 0x07]))
        .await
        .unwrap();
    let closed = closed_within(&mut stuck, Duration::from_secs(6))
        .await
        .expect("a connection whose only call is stuck on a zero window is closed");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&closed),
        "closed {closed:?} after its request; the idle timeout is 1 s"
    );
    served(addr).await;
}

#[tokio::test]
async fn oversized_heads_and_connection_floods_are_refused() {
    let _serial = serial().await;
    let stack = start().await;
    let addr = stack.gateway_addr();
    let inventory = || inventory_calls(&stack);
    let before = inventory();
    let url = format!("http://{addr}/v1/products/7/stock");
    let big = format!("x-big: {}", "a".repeat(10_000));
    let http1 = curl(&["-H", &big, &url]).await;
    assert_eq!(http1.status, 431, "HTTP/1.1 head over max_header_bytes");
    let mut many: Vec<String> = Vec::new();
    for i in 0..60 {
        many.push("-H".into());
        many.push(format!("x-h{i}: v"));
    }
    many.push(url.clone());
    let args: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(curl(&args).await.status, 431, "more than max_headers");
    let h2 = curl(&["--http2-prior-knowledge", "-H", &big, &url]).await;
    assert!(
        matches!(h2.status, 0 | 431),
        "HTTP/2 header list over the limit: {}",
        h2.status
    );
    assert_eq!(inventory(), before, "no oversized request went anywhere");

    // A gRPC message over max_message_bytes, passed through and composed alike.
    let users = || {
        stack
            .service(DemoService::Users)
            .faults()
            .stats()
            .calls_total
    };
    let users_before = users();
    for path in [
        "/demo.users.v1.UserService/GetUser",
        "/demo.storefront.v1.Storefront/GetUserProfile",
    ] {
        // Field 15 (unknown to the request message), 100,000 bytes long.
        let mut message = vec![0x7a];
        let mut length = 100_000u32;
        while length >= 0x80 {
            message.push((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        message.push(length as u8);
        message.resize(message.len() + 100_000, b'x');
        let body = mosaic_tests::raw::frame(&[message]);
        let mut raw = mosaic_tests::raw::RawConnection::open(addr).await.unwrap();
        let response = raw.call(path, body, &[]).await.unwrap();
        let trailers = response.trailers.as_ref().unwrap_or(&response.headers);
        let status = tonic::Status::from_header_map(trailers).expect("a gRPC status");
        assert_eq!(
            status.code(),
            tonic::Code::ResourceExhausted,
            "{path}: {status:?}"
        );
        assert_eq!(
            status.message(),
            "a request message of 100004 bytes is larger than this gateway's limit of 65536 bytes",
            "{path}"
        );
    }
    assert_eq!(
        users(),
        users_before,
        "no oversized message was answered by a service"
    );

    // 64 connections are allowed; the 65th and later are closed at once.
    let mut held = Vec::new();
    for _ in 0..64 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let closed = closed_within(&mut extra, Duration::from_millis(300)).await;
    assert!(
        closed.is_some(),
        "a connection past max_connections is closed at once"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    served(addr).await;
}

#[tokio::test]
async fn http2_floods_end_in_goaway_while_others_are_served() {
    let _serial = serial().await;
    let stack = start().await;
    let addr = stack.gateway_addr();
    let inventory = || inventory_calls(&stack);
    let rss_before = rss_kib();

    // Rapid reset: a request opened and cancelled at once, 5,000 times, without waiting.
    let before = inventory();
    let mut attacker = h2_connection(addr).await;
    let head = grpc_request_head();
    let mut burst = Vec::new();
    for i in 0..5_000u32 {
        let id = 2 * i + 1;
        burst.extend(frame(HEADERS, END_HEADERS, id, &head));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let _ = attacker.write_all(&burst).await;
    let during = served(addr).await;
    let ended = goaway_within(&mut attacker, Duration::from_secs(10)).await;
    assert!(ended.is_some(), "the rapid-reset connection is ended");
    let reached = inventory() - before;
    println!(
        "RAPID RESET: 5000 streams opened and reset; {reached} reached the service; GOAWAY {ended:?}; a concurrent call took {during:?}"
    );
    assert!(
        reached < 5_000,
        "resets stop work: {reached} calls reached the service"
    );

    // CONTINUATION flood: one header block that never ends.
    let mut attacker = h2_connection(addr).await;
    let _ = attacker
        .write_all(&frame(HEADERS, END_STREAM, 1, &grpc_request_head()))
        .await;
    let piece = vec![0x00u8; 16_000];
    let mut sent = 0usize;
    for _ in 0..2_000 {
        if attacker
            .write_all(&frame(CONTINUATION, 0, 1, &piece))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let ended = goaway_within(&mut attacker, Duration::from_secs(10)).await;
    assert!(
        ended.is_some(),
        "the CONTINUATION flood is ended (sent {sent} frames)"
    );
    assert!(
        sent < 2_000,
        "the connection was closed before 32 MB of header block arrived"
    );

    // PING and SETTINGS floods, sent without reading a single answer.
    for (name, one) in [
        ("PING", frame(PING, 0, 0, &[7u8; 8])),
        ("SETTINGS", frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])),
    ] {
        let mut attacker = h2_connection(addr).await;
        let many: Vec<u8> = std::iter::repeat_n(one, 20_000).flatten().collect();
        let write = timeout(Duration::from_secs(10), attacker.write_all(&many)).await;
        let during = served(addr).await;
        let ended = goaway_within(&mut attacker, Duration::from_secs(10)).await;
        println!(
            "{name} FLOOD: write {:?}; ended {ended:?}; a concurrent call took {during:?}",
            write.is_ok()
        );
        assert!(
            during < Duration::from_secs(2),
            "{name}: others are served promptly"
        );
    }
    let grown = rss_kib().saturating_sub(rss_before);
    println!("RSS grew {grown} KiB over the attacks");
    assert!(
        grown < 64 * 1024,
        "the attacks cost at most 64 MiB: {grown} KiB"
    );
    served(addr).await;
}

/// Reads frames until one matches `wanted` or `within` passes: `(type, flags, stream, payload)`.
async fn frame_within(
    stream: &mut TcpStream,
    within: Duration,
    wanted: impl Fn(u8, u32, &[u8]) -> bool,
) -> Option<(u8, u32, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    timeout(within, async {
        loop {
            while buffer.len() >= 9 {
                let len = u32::from_be_bytes([0, buffer[0], buffer[1], buffer[2]]) as usize;
                if buffer.len() < 9 + len {
                    break;
                }
                let kind = buffer[3];
                let id =
                    u32::from_be_bytes([buffer[5], buffer[6], buffer[7], buffer[8]]) & 0x7fff_ffff;
                let payload = buffer[9..9 + len].to_vec();
                buffer.drain(..9 + len);
                if wanted(kind, id, &payload) {
                    return Some((kind, id, payload));
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn streams_past_the_concurrency_setting_are_refused() {
    let _serial = serial().await;
    let stack = Stack::start_with(|config| {
        config.replacen(
            "drain_timeout = \"5s\"\n",
            "drain_timeout = \"5s\"\n\n[listener.limits]\nmax_concurrent_streams = 2\n",
            1,
        )
    })
    .await
    .unwrap();
    let addr = stack.gateway_addr();
    let mut client = h2_connection(addr).await;
    // The server's SETTINGS name the limit; acknowledging them puts it in force.
    let settings = frame_within(&mut client, Duration::from_secs(5), |kind, _, payload| {
        kind == SETTINGS && !payload.is_empty()
    })
    .await
    .expect("the server's SETTINGS");
    let advertised = settings
        .2
        .chunks_exact(6)
        .find(|setting| setting[..2] == [0, 3])
        .map(|setting| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]));
    assert_eq!(advertised, Some(2), "SETTINGS_MAX_CONCURRENT_STREAMS");
    client
        .write_all(&frame(SETTINGS, 0x1, 0, &[]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Three calls that stay open (their request streams never end).
    for id in [1u32, 3, 5] {
        client
            .write_all(&frame(HEADERS, END_HEADERS, id, &grpc_request_head()))
            .await
            .unwrap();
    }
    let reset = frame_within(&mut client, Duration::from_secs(5), |kind, _, _| {
        kind == RST_STREAM
    })
    .await
    .expect("a stream past the limit is reset");
    assert_eq!(reset.1, 5, "the third stream is the one refused");
    assert_eq!(reset.2, 7u32.to_be_bytes(), "REFUSED_STREAM");
    served(addr).await;
}
