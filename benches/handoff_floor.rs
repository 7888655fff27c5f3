//! The floor of the `rr` policy's design, shared by the benchmark references that measure it
//! (`hyper_reuseport` and `tls_baseline`, each with `HANDOFF=1`): a bare parent that accepts
//! every connection with a blocking `accept4` on a thread of its own and sends each, round
//! robin, to a serving process with one `sendmsg` over a Unix socket pair — no event loop, no
//! protocol, no acknowledgement, no copy held. A serving process reads one descriptor per
//! message.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Command;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags,
};
use tokio::io::Interest;

/// In a serving process: the number of its end of the socket pair the parent hands
/// connections over.
const HANDOFF_FD: &str = "BENCH_HANDOFF_FD";

/// Whether this run asks for the handoff floor (`HANDOFF=1`).
pub(crate) fn asked() -> bool {
    std::env::var("HANDOFF").as_deref() == Ok("1")
}

/// Gives the process `command` will start the far end of a new socket pair (named in its
/// environment); returns the parent's end. Drop the far end after the spawn.
pub(crate) fn connect_child(command: &mut Command) -> std::io::Result<(UnixStream, UnixStream)> {
    let (ours, theirs) = UnixStream::pair()?;
    // Inherited by the child (the pair is made close-on-exec).
    rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty())?;
    command.env(HANDOFF_FD, theirs.as_raw_fd().to_string());
    Ok((ours, theirs))
}

/// In a serving process: the parent's socket, when the parent hands connections over.
pub(crate) fn parent() -> Option<std::io::Result<Parent>> {
    let fd = std::env::var(HANDOFF_FD).ok()?;
    Some((|| {
        let fd: i32 = fd.parse().map_err(std::io::Error::other)?;
        // SAFETY: the parent passed this descriptor, open, for this process alone.
        let parent = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
        parent.set_nonblocking(true)?;
        Ok(Parent(tokio::net::UnixStream::from_std(parent)?))
    })())
}

/// Accepts every connection and sends it to the next of `processes`, until an error.
pub(crate) fn hand_off(
    listener: std::net::TcpListener,
    processes: Vec<UnixStream>,
) -> std::io::Result<()> {
    for next in (0..processes.len()).cycle() {
        // Non-blocking already, as the serving process's runtime needs it.
        let connection =
            rustix::net::accept_with(&listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [connection.as_fd()];
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &processes[next],
            &[IoSlice::new(&[0])],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
    }
    Ok(())
}

/// A serving process's end of its socket pair with the parent.
pub(crate) struct Parent(tokio::net::UnixStream);

impl Parent {
    /// The next connection the parent hands over; `None` once the parent is gone.
    pub(crate) async fn next_connection(&self) -> std::io::Result<Option<tokio::net::TcpStream>> {
        let socket = &self.0;
        let fd = socket
            .async_io(Interest::READABLE, || {
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let mut byte = [0];
                let received = rustix::net::recvmsg(
                    socket,
                    &mut [std::io::IoSliceMut::new(&mut byte)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )?;
                if received.bytes == 0 {
                    return Ok(None);
                }
                Ok(control.drain().find_map(|message| match message {
                    RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                    _ => None,
                }))
            })
            .await?;
        fd.map(|fd| tokio::net::TcpStream::from_std(std::net::TcpStream::from(fd)))
            .transpose()
    }
}
