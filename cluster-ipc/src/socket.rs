//! A Unix stream socket that sends and receives bytes with file descriptors attached.
//!
//! Every read is a `recvmsg` with room for [`MAX_FDS_PER_SEND`] descriptors and
//! `MSG_CMSG_CLOEXEC`; a plain `read()` would make the kernel close any descriptor that rides on
//! the bytes read. Readiness comes from tokio (`async_io`), so a would-block registers a wake-up.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

use crate::IpcError;

/// The most descriptors one `sendmsg` can carry on Linux (`SCM_MAX_FD`).
pub const MAX_FDS_PER_SEND: usize = 253;

const CONTROL_SPACE: usize = rustix::cmsg_space!(ScmRights(MAX_FDS_PER_SEND));

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

    /// Reads some bytes into `buf`, appending any descriptors that arrived to `fds`.
    /// Returns 0 at end of stream.
    pub(crate) async fn recv(
        &self,
        buf: &mut [u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, IpcError> {
        let (len, truncated) = self
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
                for message in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(arrived) = message {
                        fds.extend(arrived);
                    }
                }
                Ok((received.bytes, received.flags.contains(ReturnFlags::CTRUNC)))
            })
            .await?;
        if truncated {
            return Err(IpcError::ControlTruncated);
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
