//! Sockets for the `reuseport` policy: the master reserves the port with one, each worker
//! listens on its own.

use std::net::SocketAddr;

use tokio::net::TcpSocket;

/// A socket bound to `address` with `SO_REUSEPORT` (and `SO_REUSEADDR`), not listening.
pub(crate) async fn reuseport_socket(address: &str) -> std::io::Result<TcpSocket> {
    let resolved = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the name resolves to no address",
            )
        })?;
    let socket = match resolved {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(resolved)?;
    Ok(socket)
}
