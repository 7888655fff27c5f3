//! [`TrackedIo`]: a served connection's socket, counted for as long as anything holds it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use clustered_core::load::ConnectionGuard;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::connection::ConnectionState;

pin_project! {
    /// The socket of one served connection. While it lives, the worker counts the connection
    /// as open and waits for it before it exits; that includes a connection the application
    /// took over through an upgrade (hyper hands this very socket to it). Its connection's
    /// state holds the worker's [`crate::Drain`], which the worker also waits for.
    #[derive(Debug)]
    pub(crate) struct TrackedIo<T> {
        #[pin]
        inner: T,
        state: Arc<ConnectionState>,
        _open: ConnectionGuard,
    }
}

impl<T> TrackedIo<T> {
    pub(crate) fn new(inner: T, state: Arc<ConnectionState>, open: ConnectionGuard) -> Self {
        Self {
            inner,
            state,
            _open: open,
        }
    }
}

impl<T: AsyncRead> AsyncRead for TrackedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.note_read();
        }
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
