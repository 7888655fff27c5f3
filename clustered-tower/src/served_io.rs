//! [`ServedIo`]: what hyper reads and writes for one served connection: the counted socket, or
//! a TLS session over it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use clustered_core::Connection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tracked::TrackedIo;

/// One served connection's bytes: plain, or TLS over the same counted socket (the socket is
/// counted beneath TLS, so the watchdogs see the handshake's bytes too).
#[derive(Debug)]
pub(crate) enum ServedIo {
    Plain(TrackedIo<Connection>),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TrackedIo<Connection>>>),
}

macro_rules! each {
    ($io:expr, $inner:ident => $body:expr) => {
        match $io {
            ServedIo::Plain($inner) => $body,
            #[cfg(feature = "tls")]
            ServedIo::Tls($inner) => $body,
        }
    };
}

impl AsyncRead for ServedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), io => Pin::new(io).poll_read(cx, buf))
    }
}

impl AsyncWrite for ServedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, io => io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), io => Pin::new(io).poll_shutdown(cx))
    }
}
