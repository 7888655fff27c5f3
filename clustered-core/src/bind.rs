//! The sockets the cluster listens on: the master's (`rr`, `least`, `sticky`, `shared`), and
//! for `reuseport` the master's reservation of the port and each worker's own listener.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpSocket};

/// The listen backlog asked for (Gunicorn's default; Node asks for 511, the standard library
/// for 128). The kernel caps it at `net.core.somaxconn`. A master that accepts for the whole
/// cluster meets bursts of connections alone: with 128, a burst of connects from a fast client
/// overflowed it and each dropped SYN cost that client a one-second retransmission.
pub(crate) const LISTEN_BACKLOG: u32 = 2048;

/// A listener on `address` (the first of its resolved addresses that binds), with
/// `SO_REUSEADDR` and [`LISTEN_BACKLOG`].
pub(crate) async fn listen(address: &str) -> io::Result<TcpListener> {
    let mut last_error = None;
    for resolved in tokio::net::lookup_host(address).await? {
        let bound = socket_for(resolved).and_then(|socket| {
            socket.set_reuseaddr(true)?;
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

/// A socket bound to `address` with `SO_REUSEPORT` (and `SO_REUSEADDR`), not listening.
pub(crate) async fn reuseport_socket(address: &str) -> io::Result<TcpSocket> {
    let resolved = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(resolves_to_nothing)?;
    let socket = socket_for(resolved)?;
    socket.set_reuseaddr(true)?;
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

fn socket_for(address: SocketAddr) -> io::Result<TcpSocket> {
    match address {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
}

fn resolves_to_nothing() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address")
}
