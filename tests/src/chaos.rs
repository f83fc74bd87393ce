//! A TCP proxy that can be killed, to take an endpoint away the way a crash does.
//!
//! Stopping a demo server gracefully would let the gateway drain it politely (GOAWAY, calls
//! finish); a crashed process instead drops every connection mid-call and refuses new ones.
//! [`KillableProxy`] sits in front of a real service and does exactly that on [`kill`]:
//! the listener closes (new connections are refused) and every open connection is cut.
//!
//! [`kill`]: KillableProxy::kill

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// A loopback TCP proxy to one target, until killed.
#[derive(Debug)]
pub struct KillableProxy {
    addr: SocketAddr,
    kill: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl KillableProxy {
    /// Listens on an ephemeral loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(crate::loopback()).await?;
        let addr = listener.local_addr()?;
        let (kill, mut killed) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut killed => break,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        connections.spawn(async move {
                            let Ok(mut outbound) = TcpStream::connect(target).await else {
                                return;
                            };
                            let _ = inbound.set_nodelay(true);
                            let _ = outbound.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        });
                    }
                }
            }
            // Dropping the listener refuses new connections; aborting the set cuts the open ones.
            drop(listener);
            connections.shutdown().await;
        });
        Ok(Self {
            addr,
            kill: Some(kill),
            task: Some(task),
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` URL of the proxy, for `gateway.toml`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Refuses new connections and cuts every open one.
    pub async fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
