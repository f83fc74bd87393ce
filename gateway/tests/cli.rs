//! The `mosaic-gateway` binary refuses a bad configuration: it exits non-zero, names each bad
//! key, and never starts serving.

// A test reports failure by panicking.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn run(config: &str) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("mosaic-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.toml", config.len()));
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_mosaic-gateway"))
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

#[test]
fn a_bad_config_exits_non_zero_naming_the_keys() {
    let output = run(
        "[listener]\naddress = \"127.0.0.1:0\"\n\n[upstreams.users]\nendpoints = [\"http://127.0.0.1\"]\nservices = [\"Users\"]\n",
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("upstreams.users.endpoints[0]"), "{stderr}");
    assert!(stderr.contains("no port"), "{stderr}");
    assert!(stderr.contains("upstreams.users.services[0]"), "{stderr}");
    assert!(!stderr.contains("gateway serving"), "{stderr}");
}

#[test]
fn a_missing_file_exits_non_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_mosaic-gateway"))
        .args(["--config", "/nonexistent/gateway.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the file"), "{stderr}");
}

#[test]
fn check_accepts_a_good_config_without_serving() {
    let dir = std::env::temp_dir().join(format!("mosaic-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        "[listener]\naddress = \"127.0.0.1:0\"\n\n[upstreams.users]\nendpoints = [\"http://127.0.0.1:1\"]\nservices = [\"demo.users.v1.UserService\"]\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mosaic-gateway"))
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(": ok\n"));
}

/// A loopback port free a moment ago (the gateway binary is given fixed ports so the test
/// knows where its admin listener is).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.1 on a fresh connection: the status and body, or `None` while
/// nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

fn config_with(listener: u16, admin: u16, extra: &str) -> String {
    format!(
        "[listener]\naddress = \"127.0.0.1:{listener}\"\n\n[admin]\naddress = \"127.0.0.1:{admin}\"\n\n\
         [upstreams.users]\nendpoints = [\"http://127.0.0.1:1\"]\nservices = [\"demo.users.v1.UserService\"]\n{extra}"
    )
}

#[test]
fn sighup_reloads_the_file_and_json_logs_say_so() {
    let dir = std::env::temp_dir().join(format!("mosaic-cli-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    let (listener, admin) = (free_port(), free_port());
    let logging = "\n[logging]\nformat = \"json\"\n";
    std::fs::write(&path, config_with(listener, admin, logging)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mosaic-gateway"))
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while get(admin, "/ready").is_none_or(|(status, _)| status != 200) {
        assert!(
            started.elapsed().as_secs() < 20,
            "the gateway never became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let routes = |port| get(port, "/routes").unwrap().1;
    assert!(
        routes(admin).contains("\"generation\": 1"),
        "{}",
        routes(admin)
    );

    // A second upstream, then SIGHUP (sent by the shell's own `kill`, always present).
    let catalog = "\n[upstreams.catalog]\nendpoints = [\"http://127.0.0.1:2\"]\nservices = [\"demo.catalog.v1.CatalogService\"]\n";
    std::fs::write(
        &path,
        config_with(listener, admin, &format!("{logging}{catalog}")),
    )
    .unwrap();
    let hup = Command::new("sh")
        .args(["-c", &format!("kill -HUP {}", child.id())])
        .status()
        .unwrap();
    assert!(hup.success());
    let reloading = std::time::Instant::now();
    while !routes(admin).contains("demo.catalog.v1.CatalogService") {
        assert!(
            reloading.elapsed().as_secs() < 10,
            "SIGHUP did not reload: {}",
            routes(admin)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(routes(admin).contains("\"generation\": 2"));

    let _ = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Every line is a JSON object; the reload is one of them.
    let mut reloaded = false;
    for line in stderr.lines().filter(|line| !line.is_empty()) {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "a JSON line: {line}"
        );
        reloaded |= line.contains("configuration reloaded");
    }
    assert!(reloaded, "{stderr}");
}
