//! The writer task: the only writer of a channel's socket. It takes control frames before user
//! messages, and writes a burst of queued frames in one `sendmsg` that ends at the first frame
//! carrying descriptors (see `fd_groups`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::socket::FdSocket;

/// A burst of queued frames is written in one `sendmsg` up to this many bytes.
const BATCH_BYTES: usize = 64 * 1024;

/// An encoded frame and the descriptors that ride with it.
pub(crate) struct Outgoing {
    pub(crate) bytes: Bytes,
    pub(crate) fds: Vec<SendFd>,
    /// A user message's share of the channel's byte budget, given back once it is written.
    pub(crate) budget: Option<OwnedSemaphorePermit>,
}

/// A descriptor to send: the channel's own (closed once sent), or shared with the caller.
pub(crate) enum SendFd {
    Owned(OwnedFd),
    Shared(Arc<OwnedFd>),
}

impl AsFd for SendFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            SendFd::Owned(fd) => fd.as_fd(),
            SendFd::Shared(fd) => fd.as_fd(),
        }
    }
}

/// The writer task: the only writer of the socket. Control frames first; a batch ends at the
/// first frame that carries descriptors.
pub(crate) async fn write_loop(
    socket: Arc<FdSocket>,
    mut control: mpsc::Receiver<Outgoing>,
    mut data: mpsc::Receiver<Outgoing>,
) {
    let mut batch = BytesMut::new();
    let mut fds: Vec<SendFd> = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            Some(frame) = control.recv() => frame,
            Some(frame) = data.recv() => frame,
            else => break,
        };
        batch.extend_from_slice(&first.bytes);
        fds.extend(first.fds);
        while fds.is_empty() && batch.len() < BATCH_BYTES {
            let Ok(next) = control.try_recv().or_else(|_| data.try_recv()) else {
                break;
            };
            batch.extend_from_slice(&next.bytes);
            fds.extend(next.fds);
        }
        if let Err(error) = write_all(&socket, &batch, &fds).await {
            tracing::debug!(%error, "IPC writer stopped");
            socket.shutdown();
            break;
        }
        batch.clear();
        fds.clear();
    }
}

/// Writes all of `data`; the descriptors ride on the first `sendmsg` that sends anything.
async fn write_all(socket: &FdSocket, mut data: &[u8], fds: &[SendFd]) -> std::io::Result<()> {
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    let mut pending_fds: &[BorrowedFd<'_>] = &borrowed;
    while !data.is_empty() {
        let sent = socket.send(data, pending_fds).await?;
        if sent == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        pending_fds = &[];
        data = &data[sent..];
    }
    Ok(())
}
