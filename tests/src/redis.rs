//! A real `redis-server` (Debian's `redis-server` package) on a loopback port, for the shared
//! rate-limit tests; killed when dropped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// One running server.
pub struct RedisServer {
    child: Child,
    addr: SocketAddr,
}

impl RedisServer {
    /// Starts a server with no persistence on a free loopback port and waits until it answers
    /// `PING`.
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot start redis-server ({error}); install Debian's `redis-server`"
                )
            })?;
        let server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let started = tokio::time::Instant::now();
        while !server.ping().await {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer PING within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Whether the server answers `PING` with `PONG`.
    pub async fn ping(&self) -> bool {
        let Ok(mut stream) = tokio::net::TcpStream::connect(self.addr).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut answer = [0u8; 7];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut answer)).await,
            Ok(Ok(_)) if &answer == b"+PONG\r\n"
        )
    }

    /// The server's process id, for reading its CPU time.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}
