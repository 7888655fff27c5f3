//! The sockets the cluster listens on: the master's (`rr`, `least`, `sticky`, `shared`), and
//! for `reuseport` the master's reservation of the port and each worker's own listener.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpSocket};

/// The listen backlog asked for (Gunicorn's default; Node asks for 511, the standard library
/// for 128). The kernel caps it at `net.core.somaxconn`. A master that accepts for the whole
/// cluster meets bursts of connections alone: with 128, a burst of connects from a fast client
/// overflowed it and each dropped SYN cost that client a one-second retransmission.
pub(crate) const LISTEN_BACKLOG: u32 = 2048;

/// A listener on `address` (the first of its resolved addresses that binds), with
/// `SO_REUSEADDR`, [`LISTEN_BACKLOG`] and `TCP_NODELAY` (see [`set_nodelay`]).
pub(crate) async fn listen(address: &str) -> io::Result<TcpListener> {
    let mut last_error = None;
    for resolved in tokio::net::lookup_host(address).await? {
        let bound = socket_for(resolved).and_then(|socket| {
            socket.set_reuseaddr(true)?;
            set_nodelay(&socket);
            socket.bind(resolved)?;
            socket.listen(LISTEN_BACKLOG)
        });
        match bound {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(resolves_to_nothing))
}

/// A socket bound to `address` with `SO_REUSEPORT` (and `SO_REUSEADDR`, and `TCP_NODELAY`
/// for the connections of a worker's listener: see [`set_nodelay`]), not listening.
pub(crate) async fn reuseport_socket(address: &str) -> io::Result<TcpSocket> {
    let resolved = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(resolves_to_nothing)?;
    let socket = socket_for(resolved)?;
    socket.set_reuseaddr(true)?;
    set_nodelay(&socket);
    socket.set_reuseport(true)?;
    socket.bind(resolved)?;
    Ok(socket)
}

/// A Unix stream socket listening at `path` (non-blocking, close-on-exec), with
/// [`LISTEN_BACKLOG`], and its file, removed when dropped; a socket file left by a process
/// that is gone is replaced first.
pub(crate) fn listen_unix(
    path: &Path,
) -> io::Result<(std::os::unix::net::UnixListener, SocketFile)> {
    replace_stale_socket(path)?;
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    let file = SocketFile(Some(path.to_owned()));
    listener.set_nonblocking(true)?;
    rustix::net::listen(&listener, LISTEN_BACKLOG.try_into().unwrap_or(i32::MAX))?;
    Ok((listener, file))
}

/// The file of a Unix socket this process bound: removed when dropped, so a stopped master
/// leaves no socket file behind (one systemd handed over is systemd's, and never removed).
#[derive(Debug)]
pub(crate) struct SocketFile(Option<PathBuf>);

impl SocketFile {
    /// The file at `path`, which an old master bound and handed over with its socket in an
    /// upgrade: this master removes it when its sockets close.
    pub(crate) fn adopt(path: PathBuf) -> Self {
        Self(Some(path))
    }

    /// Its path, while this process is to remove it.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.0.as_deref()
    }

    /// Leaves the file in place (another process serves the socket now).
    pub(crate) fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes the socket file at `path` when no process answers on it any more (one left by a
/// process that died); refuses, as address-in-use, one that a running process answers on.
/// Returns whether a stale file was removed.
pub(crate) fn replace_stale_socket(path: &Path) -> io::Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "a running process answers on it; stop it or choose another path",
        ));
    }
    std::fs::remove_file(path).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot replace the stale socket: {error}"),
        )
    })?;
    Ok(true)
}

/// Sets `TCP_NODELAY` on a TCP listening socket (or one about to listen), so small responses
/// do not wait for Nagle. Linux copies it to every connection the socket accepts, so no
/// connection needs a `setsockopt` of its own, in the master or in the worker it is handed
/// to. Failing to set it is harmless (the connections wait for Nagle), so it is only logged.
pub(crate) fn set_nodelay(socket: &impl AsFd) {
    if let Err(error) = rustix::net::sockopt::set_tcp_nodelay(socket, true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on a listening socket");
    }
}

fn socket_for(address: SocketAddr) -> io::Result<TcpSocket> {
    match address {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
}

fn resolves_to_nothing() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the connection `listener` accepts has `TCP_NODELAY`, with none set on it.
    fn accepted_has_nodelay(listener: std::net::TcpListener) -> bool {
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.nodelay().unwrap()
    }

    // The workers set no `TCP_NODELAY` on the connections they are handed: the kernel copies
    // it from the listener.
    #[tokio::test]
    async fn connections_inherit_nodelay_from_the_master_listener() {
        let listener = listen("127.0.0.1:0").await.unwrap().into_std().unwrap();
        listener.set_nonblocking(false).unwrap();
        assert!(accepted_has_nodelay(listener));
    }

    #[tokio::test]
    async fn connections_inherit_nodelay_from_a_reuseport_listener() {
        let socket = reuseport_socket("127.0.0.1:0").await.unwrap();
        let listener = socket.listen(8).unwrap().into_std().unwrap();
        listener.set_nonblocking(false).unwrap();
        assert!(accepted_has_nodelay(listener));
    }

    #[test]
    fn without_it_on_the_listener_a_connection_has_none() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!accepted_has_nodelay(listener));
    }
}
