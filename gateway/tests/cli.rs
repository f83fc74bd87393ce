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
