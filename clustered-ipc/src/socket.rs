//! A Unix stream socket that sends and receives bytes with file descriptors attached.
//!
//! Every read is a `recvmsg` with room for [`MAX_FDS_PER_SEND`] descriptors and
//! `MSG_CMSG_CLOEXEC`; a plain `read()` would make the kernel close any descriptor that rides on
//! the bytes read. Readiness comes from tokio (`async_io`), so a would-block registers a wake-up.
//! What arrives with one read is one [`FdGroup`] (see [`crate::fd_groups`]).

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

use crate::WireError;
use crate::fd_groups::FdGroup;

/// The most descriptors one `sendmsg` can carry on Linux (`SCM_MAX_FD`).
pub const MAX_FDS_PER_SEND: usize = 253;

const CONTROL_SPACE: usize = rustix::cmsg_space!(ScmRights(MAX_FDS_PER_SEND));

/// Says that the kernel dropped descriptors for want of room in this process: at the 1st,
/// 2nd, 4th, 8th… time, so a long shortage is told without flooding the log.
fn note_lost_descriptors() {
    static TIMES: AtomicU64 = AtomicU64::new(0);
    let times = TIMES.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    if times.is_power_of_two() {
        tracing::warn!(
            times,
            "out of file descriptors: descriptors sent over IPC were lost (MSG_CTRUNC); \
             their frames are refused"
        );
    }
}

/// The socket under a [`crate::Channel`]; shared by its reader and its single writer.
#[derive(Debug)]
pub(crate) struct FdSocket {
    stream: UnixStream,
}

impl FdSocket {
    pub(crate) fn new(stream: UnixStream) -> Self {
        Self { stream }
    }

    /// Sends some of `data`, with every descriptor of `fds` riding on the first byte sent.
    /// Returns how many bytes went out; the descriptors went out if that is more than zero.
    pub(crate) async fn send(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        if fds.len() > MAX_FDS_PER_SEND {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many descriptors for one sendmsg",
            ));
        }
        self.stream
            .async_io(Interest::WRITABLE, || {
                let mut space = [MaybeUninit::uninit(); CONTROL_SPACE];
                let mut control = SendAncillaryBuffer::new(&mut space);
                if !fds.is_empty() {
                    let pushed = control.push(SendAncillaryMessage::ScmRights(fds));
                    debug_assert!(pushed, "control space is sized for MAX_FDS_PER_SEND");
                }
                let iov = [IoSlice::new(data)];
                Ok(rustix::net::sendmsg(
                    &self.stream,
                    &iov,
                    &mut control,
                    SendFlags::NOSIGNAL,
                )?)
            })
            .await
    }

    /// Reads some bytes into `buf`, queueing the descriptors that arrived with them (and
    /// whether the kernel dropped some: `MSG_CTRUNC`) as one group. Returns 0 at end of stream.
    pub(crate) async fn recv(
        &self,
        buf: &mut [u8],
        groups: &mut VecDeque<FdGroup>,
    ) -> Result<usize, WireError> {
        let (len, group) = self
            .stream
            .async_io(Interest::READABLE, || {
                let mut space = [MaybeUninit::uninit(); CONTROL_SPACE];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let mut iov = [IoSliceMut::new(buf)];
                let received = rustix::net::recvmsg(
                    &self.stream,
                    &mut iov,
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )?;
                let mut fds = Vec::new();
                for message in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(arrived) = message {
                        fds.extend(arrived);
                    }
                }
                let truncated = received.flags.contains(ReturnFlags::CTRUNC);
                let group = (truncated || !fds.is_empty()).then_some(FdGroup { fds, truncated });
                Ok((received.bytes, group))
            })
            .await?;
        if let Some(group) = group {
            if group.truncated {
                note_lost_descriptors();
            }
            groups.push_back(group);
        }
        Ok(len)
    }

    /// Shuts both directions down, so the peer sees end of stream at once.
    pub(crate) fn shutdown(&self) {
        // The socket may already be gone on the other side; nothing is left to do then.
        let _ = rustix::net::shutdown(&self.stream, rustix::net::Shutdown::Both);
    }

    pub(crate) fn as_stream(&self) -> &UnixStream {
        &self.stream
    }
}
