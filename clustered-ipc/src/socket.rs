//! A Unix stream socket that sends and receives bytes with file descriptors attached.
//!
//! Every read is a `recvmsg` with room for [`MAX_FDS_PER_SEND`] descriptors and
//! `MSG_CMSG_CLOEXEC`; a plain `read()` would make the kernel close any descriptor that rides on
//! the bytes read. Readiness comes from tokio (`async_io`), so a would-block registers a wake-up.
//! What arrives with one read is one [`FdGroup`] (see [`crate::fd_groups`]).
//!
//! The socket is registered with the runtime for reading only. Registered for writing too,
//! edge-triggered, every read of the peer's would wake this process for room it does not need
//! (a master handing a worker one connection at a time was woken once per connection for it).
//! A send that finds the socket full waits for room through a registration of its own, of a
//! duplicate of the descriptor, made for that wait and dropped after it.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

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

/// `stream` registered with the runtime for `interest`.
#[allow(unsafe_code)]
fn register(stream: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    // SAFETY: the `UnixStream` owns its descriptor, which stays open and the same for as long
    // as the `AsyncFd` owns it.
    unsafe { AsyncFd::register_with_interest(stream, interest) }.map_err(io::Error::from)
}

/// The socket under a [`crate::Channel`]; shared by its reader and its writers (the writer
/// task, and a sender that writes a small frame itself when nothing is queued).
#[derive(Debug)]
pub(crate) struct FdSocket {
    stream: AsyncFd<UnixStream>,
    /// Held for each `sendmsg`, so that two writers never interleave their bytes.
    sending: Mutex<()>,
}

impl FdSocket {
    /// Registers `stream` (non-blocking) with the runtime, for reading. Must be called inside
    /// a tokio runtime.
    pub(crate) fn new(stream: UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            stream: register(stream, Interest::READABLE)?,
            sending: Mutex::new(()),
        })
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
        match self.try_send(data, fds) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            sent => return sent,
        }
        // Full: the peer reads slowly. Wait for room on a registration for writing, of a
        // duplicate (the socket itself is registered already, for reading).
        let duplicate = register(self.stream.get_ref().try_clone()?, Interest::WRITABLE)?;
        loop {
            let mut room = duplicate.writable().await?;
            if let Ok(sent) = room.try_io(|_| self.try_send(data, fds)) {
                return sent;
            }
        }
    }

    /// One `sendmsg` of `data` with `fds`, without waiting: `WouldBlock` when the socket is full.
    fn try_send(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        let _one_writer = self.hold_for_sending();
        self.sendmsg(data, fds)
    }

    /// [`FdSocket::try_send`], made only if `may_send` says yes once this writer holds the
    /// socket (no other `sendmsg` can start or be half-done in between): `None` when it says no.
    pub(crate) fn try_send_if(
        &self,
        data: &[u8],
        fds: &[BorrowedFd<'_>],
        may_send: impl FnOnce() -> bool,
    ) -> Option<io::Result<usize>> {
        let _one_writer = self.hold_for_sending();
        may_send().then(|| self.sendmsg(data, fds))
    }

    /// The socket for one `sendmsg`, to this writer alone.
    fn hold_for_sending(&self) -> MutexGuard<'_, ()> {
        // A panic while held cannot leave a half-made `sendmsg` behind: nothing to repair.
        self.sending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sendmsg(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        let mut space = [MaybeUninit::uninit(); CONTROL_SPACE];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            let pushed = control.push(SendAncillaryMessage::ScmRights(fds));
            debug_assert!(pushed, "control space is sized for MAX_FDS_PER_SEND");
        }
        let iov = [IoSlice::new(data)];
        Ok(rustix::net::sendmsg(
            self.stream.get_ref(),
            &iov,
            &mut control,
            SendFlags::NOSIGNAL,
        )?)
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
            .async_io(Interest::READABLE, |stream| {
                let mut space = [MaybeUninit::uninit(); CONTROL_SPACE];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let mut iov = [IoSliceMut::new(buf)];
                let received =
                    rustix::net::recvmsg(stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
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
        let _ = rustix::net::shutdown(self.stream.get_ref(), rustix::net::Shutdown::Both);
    }

    /// The socket's descriptor.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.get_ref().as_fd()
    }
}
