//! Standard, non-Rust gRPC clients against the gateway.
//!
//! Python's grpcio discovers the demo services through the gateway's reflection (its client
//! speaks only v1alpha), builds message types from the descriptors it receives and calls them.
//! It needs `python3` with `grpcio`, `grpcio-reflection` and `grpcio-health-checking`, so it is
//! ignored by default; `.ci/run` installs them and runs it with `--ignored`.

use mosaic_tests::Stack;

#[tokio::test]
#[ignore = "needs python3 with grpcio, grpcio-reflection and grpcio-health-checking (.ci/run installs them)"]
async fn python_grpcio_discovers_and_calls_the_demo_through_reflection() {
    let stack = Stack::start().await.unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/clients/grpcio_reflection_client.py"
    );
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(stack.gateway_addr().to_string())
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "grpcio client failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
}
