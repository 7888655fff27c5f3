//! [`ListenKey`], which names a listening address across the cluster, [`ListenAddr`], the
//! socket bound for it, and [`ListenMode`], how a worker gets its connections.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Names one listening address across the cluster: the address as the worker asked for it.
///
/// ```
/// use clustered_ipc::ListenKey;
/// let key = ListenKey::from("127.0.0.1:3000");
/// assert_eq!(key.as_str(), "127.0.0.1:3000");
/// ```
///
/// Cloning one is cheap (a shared string): the master copies the key into every handoff.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListenKey(Arc<str>);

impl ListenKey {
    /// The address text this key stands for.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ListenKey {
    fn from(address: &str) -> Self {
        ListenKey(Arc::from(address))
    }
}

impl From<String> for ListenKey {
    fn from(address: String) -> Self {
        ListenKey(Arc::from(address))
    }
}

impl std::fmt::Display for ListenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The socket bound for a listen key: a TCP address (with the real port when port 0 was asked
/// for) or the path of a Unix socket.
///
/// Shown as the address itself, or as `unix:PATH`, the form that asks for it:
///
/// ```
/// use clustered_ipc::ListenAddr;
/// let tcp = ListenAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 3000)));
/// assert_eq!(tcp.to_string(), "127.0.0.1:3000");
/// let unix = ListenAddr::Unix("/run/app.sock".into());
/// assert_eq!(unix.to_string(), "unix:/run/app.sock");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenAddr {
    /// A TCP socket bound to this address.
    Tcp(SocketAddr),
    /// A Unix stream socket at this path (empty for an unnamed or abstract one).
    Unix(PathBuf),
}

impl ListenAddr {
    /// The prefix of an address that asks for a Unix socket: `unix:/run/app.sock`.
    pub const UNIX_PREFIX: &'static str = "unix:";

    /// The TCP address, for a TCP socket.
    pub fn as_tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(address) => Some(*address),
            ListenAddr::Unix(_) => None,
        }
    }

    /// The path, for a Unix socket.
    pub fn as_unix_path(&self) -> Option<&Path> {
        match self {
            ListenAddr::Tcp(_) => None,
            ListenAddr::Unix(path) => Some(path),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(address: SocketAddr) -> Self {
        ListenAddr::Tcp(address)
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(address) => address.fmt(f),
            ListenAddr::Unix(path) => write!(f, "{}{}", Self::UNIX_PREFIX, path.display()),
        }
    }
}

/// How a worker gets the connections of one listen key, as the master tells it in
/// [`crate::Message::ServerAck`]: the worker needs to know only this, not the master's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenMode {
    /// The master accepts and hands each connection over (`rr`, `sticky`, `least`).
    Delivered,
    /// The worker accepts on a copy of the master's listening socket (`shared`).
    Shared,
    /// The worker binds and listens on a socket of its own with `SO_REUSEPORT` (`reuseport`).
    Reuseport,
}
