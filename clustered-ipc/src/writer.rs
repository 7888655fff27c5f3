//! The writer task, which writes what senders queue: it takes control frames before user
//! messages, and writes a burst of queued frames in one `sendmsg` that ends at the first frame
//! carrying descriptors (see `fd_groups`). A small control frame that finds nothing queued
//! before it is written by its sender at once instead ([`write_now`]: a handoff costs no hop
//! to another task); the [`Backlog`] of frames queued or in the writer's hands says when.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::socket::FdSocket;

/// A burst of queued frames is written in one `sendmsg` up to this many bytes.
const BATCH_BYTES: usize = 64 * 1024;

/// The largest frame a sender writes itself. Linux writes a stream socket's `sendmsg` of up
/// to half the send buffer less 64 bytes as one buffer, all of it or nothing (and the smallest
/// send buffer is 4,608 bytes): so a frame this small is never cut short, and a sender that
/// finds the socket full leaves nothing half-written behind it.
const WRITE_NOW_BYTES: usize = 1024;

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

/// How many frames are queued for the writer task or in its hands, not yet written. While
/// there are any, a sender may not write the socket itself: it would overtake them.
#[derive(Debug, Default)]
pub(crate) struct Backlog(AtomicUsize);

impl Backlog {
    /// A frame is about to be queued (counted before it is, so the writer never takes one
    /// that is not counted).
    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// `frames` were written. (A writer that stopped on an error leaves its frames counted:
    /// nobody writes the socket at once after that, and senders hear the channel is closed.)
    pub(crate) fn remove(&self, frames: usize) {
        self.0.fetch_sub(frames, Ordering::SeqCst);
    }

    fn is_empty(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
}

/// What the writer task and the senders that write at once share: the socket, and how many
/// frames wait for the writer.
#[derive(Debug)]
pub(crate) struct WriteSide {
    pub(crate) socket: Arc<FdSocket>,
    pub(crate) backlog: Backlog,
}

/// What became of a frame a sender offered to write itself.
pub(crate) enum WriteNow {
    /// It went out whole.
    Written,
    /// It is for the writer task: something is queued before it, the socket is full or
    /// failed (the writer meets the failure and stops the channel), or the frame is large.
    Queue(Outgoing),
}

/// Writes `outgoing` at once with one `sendmsg`, when it is small and nothing is queued
/// before it ([`WRITE_NOW_BYTES`]: all of it goes, or none).
pub(crate) fn write_now(side: &WriteSide, outgoing: Outgoing) -> WriteNow {
    let socket = &side.socket;
    if outgoing.bytes.len() > WRITE_NOW_BYTES {
        return WriteNow::Queue(outgoing);
    }
    // The backlog is looked at with the socket held: a frame the writer has begun (and waits
    // to finish) counts in it until its last byte is out, and one queued after the look
    // needs the socket to be written, so goes after this one.
    let nothing_queued = || side.backlog.is_empty();
    let sent = match outgoing.fds.as_slice() {
        // The hot path's handoff: one descriptor, no list made for it.
        [one] => socket.try_send_if(&outgoing.bytes, &[one.as_fd()], nothing_queued),
        many => {
            let fds: Vec<BorrowedFd<'_>> = many.iter().map(AsFd::as_fd).collect();
            socket.try_send_if(&outgoing.bytes, &fds, nothing_queued)
        }
    };
    let Some(sent) = sent else {
        return WriteNow::Queue(outgoing);
    };
    match sent {
        Ok(sent) if sent == outgoing.bytes.len() => WriteNow::Written,
        Ok(sent) => {
            // Not on Linux (see WRITE_NOW_BYTES); were it to happen, the stream is cut: the
            // peer sees a frame cut short and then its end, as after a writer's failure.
            tracing::error!(
                sent,
                frame = outgoing.bytes.len(),
                "IPC socket took part of a small frame; closing the channel"
            );
            socket.shutdown();
            WriteNow::Written
        }
        Err(_) => WriteNow::Queue(outgoing),
    }
}

/// The writer task: writes what is queued. Control frames first; a batch ends at the first
/// frame that carries descriptors.
pub(crate) async fn write_loop(
    side: Arc<WriteSide>,
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
        let mut frames = 1;
        while fds.is_empty() && batch.len() < BATCH_BYTES {
            let Ok(next) = control.try_recv().or_else(|_| data.try_recv()) else {
                break;
            };
            batch.extend_from_slice(&next.bytes);
            fds.extend(next.fds);
            frames += 1;
        }
        if let Err(error) = write_all(&side.socket, &batch, &fds).await {
            tracing::debug!(%error, "IPC writer stopped");
            side.socket.shutdown();
            break;
        }
        side.backlog.remove(frames);
        batch.clear();
        fds.clear();
    }
}

/// Writes all of `data`; the descriptors ride on the first `sendmsg` that sends anything.
async fn write_all(socket: &FdSocket, mut data: &[u8], fds: &[SendFd]) -> io::Result<()> {
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    let mut pending_fds: &[BorrowedFd<'_>] = &borrowed;
    while !data.is_empty() {
        let sent = socket.send(data, pending_fds).await?;
        if sent == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        pending_fds = &[];
        data = &data[sent..];
    }
    Ok(())
}
