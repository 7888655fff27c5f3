//! [`Connection`]: one client's connection in a worker, over TCP or a Unix socket, and
//! [`OwnListener`], a listening socket a worker accepts on itself (`shared`, `reuseport`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// One client's connection, as [`crate::Listener::accept`] yields it: TCP, or a Unix socket
/// when the address is `unix:PATH` (or a Unix socket systemd handed over). Reads and writes
/// like the stream inside; match on it for what only one kind has.
#[derive(Debug)]
pub enum Connection {
    /// A TCP connection (with `TCP_NODELAY` set, from its listener).
    Tcp(TcpStream),
    /// A Unix socket connection; its client has no address (shown as `0.0.0.0:0`).
    Unix(UnixStream),
}

impl Connection {
    /// The TCP stream, for a TCP connection.
    pub fn as_tcp(&self) -> Option<&TcpStream> {
        match self {
            Connection::Tcp(stream) => Some(stream),
            Connection::Unix(_) => None,
        }
    }

    /// A connection the master handed over, of the kind its listener is, with no syscall
    /// but its registration with the runtime: the master accepted it non-blocking
    /// (`accept4(SOCK_NONBLOCK)`; the flag belongs to the open socket, which the handed copy
    /// shares), and a TCP one has `TCP_NODELAY` from its listener (`crate::bind::set_nodelay`).
    /// Tokio's `from_std` asks whether the socket is non-blocking only in debug builds.
    pub(crate) fn from_handoff(fd: OwnedFd, unix: bool) -> io::Result<Self> {
        if unix {
            let stream = std::os::unix::net::UnixStream::from(fd);
            return UnixStream::from_std(stream).map(Connection::Unix);
        }
        let stream = std::net::TcpStream::from(fd);
        TcpStream::from_std(stream).map(Connection::Tcp)
    }
}

impl From<TcpStream> for Connection {
    fn from(stream: TcpStream) -> Self {
        Connection::Tcp(stream)
    }
}

impl From<UnixStream> for Connection {
    fn from(stream: UnixStream) -> Self {
        Connection::Unix(stream)
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Connection::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Connection::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Tcp(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Connection::Unix(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Tcp(stream) => stream.is_write_vectored(),
            Connection::Unix(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Connection::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Connection::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

/// A listening socket this worker accepts on itself: a copy of the master's (`shared`, TCP or
/// Unix) or its own (`reuseport`, TCP).
#[derive(Debug)]
pub(crate) enum OwnListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl OwnListener {
    /// The master's listening socket, copied to this worker, of the kind its address is.
    pub(crate) fn shared(fd: OwnedFd, unix: bool) -> io::Result<Self> {
        if unix {
            let listener = std::os::unix::net::UnixListener::from(fd);
            listener.set_nonblocking(true)?;
            return UnixListener::from_std(listener).map(OwnListener::Unix);
        }
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener).map(OwnListener::Tcp)
    }

    /// The next connection and its client's address (`0.0.0.0:0` over a Unix socket).
    pub(crate) async fn accept(&self) -> io::Result<(Connection, SocketAddr)> {
        match self {
            OwnListener::Tcp(listener) => {
                // `TCP_NODELAY` comes from the listener (`crate::bind::set_nodelay`).
                let (stream, peer) = listener.accept().await?;
                Ok((Connection::Tcp(stream), peer))
            }
            OwnListener::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok((Connection::Unix(stream), UNIX_PEER))
            }
        }
    }
}

/// What a Unix socket's client shows as where an IP address is wanted: it has none.
pub(crate) const UNIX_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{SocketFlags, acceptfrom_with};

    // As the master accepts (`driver/sockets.rs`) and the worker takes the handoff: the
    // connection is non-blocking (tokio's `from_std` asserts it in debug builds) and has
    // `TCP_NODELAY` with neither set by the worker.
    #[tokio::test]
    async fn a_handed_off_connection_is_nonblocking_with_nodelay() {
        let listener = crate::bind::listen("127.0.0.1:0").await.unwrap();
        let listener = listener.into_std().unwrap();
        // Blocking, so `accept4` waits for the client: its flag alone makes the connection
        // non-blocking.
        listener.set_nonblocking(false).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (fd, _) =
            acceptfrom_with(&listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC).unwrap();
        let connection = Connection::from_handoff(fd, false).unwrap();
        let stream = connection.as_tcp().unwrap();
        assert!(stream.nodelay().unwrap());
        assert!(
            rustix::fs::fcntl_getfl(stream)
                .unwrap()
                .contains(rustix::fs::OFlags::NONBLOCK)
        );
    }
}
