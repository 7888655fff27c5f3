//! The floors a cluster's designs are measured against, shared by the benchmark references
//! (`hyper_reuseport`, and `tls_baseline` with `PROCESSES` or `HANDOFF=1`): a bare parent and
//! `PROCESSES` serving processes of the same binary, each one tokio `current_thread` runtime.
//!
//! - Without `HANDOFF`, each serving process has its own `SO_REUSEPORT` listener on the port and
//!   the kernel spreads connections: the floor of the `reuseport` policy (no master on the path).
//! - With `HANDOFF=1`, the parent accepts every connection with a blocking `accept4` on a thread
//!   of its own and sends each, round robin, to a serving process with one `sendmsg` over a Unix
//!   socket pair — no event loop, no protocol, no acknowledgement, no copy held: the floor of
//!   the `rr` policy (a master that accepts every connection).
//! - With `HANDOFF=epoll`, the same parent accepts on its tokio `current_thread` event loop
//!   instead (readiness from `epoll`, `accept4` until `EAGAIN`, the same `sendmsg`): what
//!   waking through `epoll` costs a parent that does nothing else, the floor of a master built
//!   on an event loop.
//!
//! The parent prints `listening on SCHEME://ADDR` once every serving process is ready; SIGTERM
//! or SIGINT stops them all, and a serving process dies with its parent.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Set in a serving process; with `HANDOFF=1`, the number of its end of the socket pair the
/// parent hands connections over, else empty.
const CHILD: &str = "BENCH_FLOOR_CHILD";

/// Whether this run asks for a handoff floor (`HANDOFF=1` or `HANDOFF=epoll`).
pub(crate) fn handoff_asked() -> bool {
    matches!(std::env::var("HANDOFF").as_deref(), Ok("1" | "epoll"))
}

/// How many serving processes `PROCESSES` asks for, if it is set.
pub(crate) fn processes_asked() -> Option<usize> {
    std::env::var("PROCESSES").ok().and_then(|n| n.parse().ok())
}

/// Whether this process is one of a floor's serving processes.
pub(crate) fn is_serving_process() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// A listener on `address` in the port's `SO_REUSEPORT` group (not listening yet).
pub(crate) fn reuseport_socket(address: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(address)?;
    Ok(socket)
}

/// The parent: holds the port (bound, not listening, so the kernel gives it no connection),
/// starts `processes` serving processes on it and stops them on SIGTERM or SIGINT. With
/// `handoff` it listens itself instead, and hands each connection to the next process.
pub(crate) async fn supervise(
    address: SocketAddr,
    processes: usize,
    handoff: bool,
    scheme: &str,
) -> std::io::Result<()> {
    let holder = reuseport_socket(address)?;
    let address = holder.local_addr()?;
    let mut children: Vec<Child> = Vec::new();
    let mut handed_to = Vec::new();
    for _ in 0..processes {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env("HOST", address.ip().to_string())
            .env("PORT", address.port().to_string())
            .stdout(Stdio::piped());
        let theirs = if handoff {
            let (ours, theirs) = UnixStream::pair()?;
            // Inherited by the child (the pair is made close-on-exec).
            rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty())?;
            command.env(CHILD, theirs.as_raw_fd().to_string());
            handed_to.push(ours);
            Some(theirs)
        } else {
            command.env(CHILD, "");
            None
        };
        children.push(command.spawn()?);
        drop(theirs);
    }
    for child in &mut children {
        // Each child says `ready` once it serves.
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        }
    }
    if handoff {
        let listener = holder.listen(1024)?.into_std()?;
        if std::env::var("HANDOFF").as_deref() == Ok("epoll") {
            tokio::spawn(hand_off_on_event_loop(listener, handed_to));
        } else {
            listener.set_nonblocking(false)?;
            std::thread::spawn(move || hand_off(listener, handed_to));
        }
    }
    println!("listening on {scheme}://{address}");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(())
}

/// Accepts every connection and sends it to the next of `processes`, until an error.
fn hand_off(listener: std::net::TcpListener, processes: Vec<UnixStream>) -> std::io::Result<()> {
    for next in (0..processes.len()).cycle() {
        // Non-blocking already, as the serving process's runtime needs it.
        let connection =
            rustix::net::accept_with(&listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
        send_connection(&processes[next], connection.as_fd())?;
    }
    Ok(())
}

/// [`hand_off`] on the event loop: accepts, until `EAGAIN`, whenever `epoll` says the listener
/// is readable. The accepted sockets are not registered with `epoll` (as the master's are
/// not: tokio's `TcpListener::accept` would add and remove each).
async fn hand_off_on_event_loop(
    listener: std::net::TcpListener,
    processes: Vec<UnixStream>,
) -> std::io::Result<()> {
    // SAFETY: the `OwnedFd` stays open and the same for as long as the `AsyncFd` owns it.
    let listener =
        unsafe { AsyncFd::register_with_interest(OwnedFd::from(listener), Interest::READABLE) }
            .map_err(|error| error.into_parts().1)?;
    let mut next = (0..processes.len()).cycle();
    loop {
        let mut ready = listener.readable().await?;
        loop {
            match rustix::net::accept_with(
                ready.get_inner(),
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            ) {
                Ok(connection) => {
                    let to = next.next().unwrap_or_default();
                    send_connection(&processes[to], connection.as_fd())?;
                }
                Err(rustix::io::Errno::AGAIN) => {
                    ready.clear_ready();
                    break;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// Sends `connection` to a serving process: one byte and the descriptor, one `sendmsg`.
fn send_connection(to: &UnixStream, connection: BorrowedFd<'_>) -> std::io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [connection];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(to, &[IoSlice::new(&[0])], &mut control, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Where a process's connections come from.
pub(crate) enum Connections {
    /// Its own listener: the one process, or a serving process of the `SO_REUSEPORT` floor.
    Listener(TcpListener),
    /// The parent's socket, for a serving process of the handoff floor.
    Parent(tokio::net::UnixStream),
}

impl Connections {
    /// In a serving process (inside its runtime): its connections, on `address`'s port or from
    /// the parent; it says `ready` to the parent and dies with it.
    pub(crate) fn of_serving_process(address: SocketAddr) -> std::io::Result<Self> {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        let fd = std::env::var(CHILD).unwrap_or_default();
        let connections = if fd.is_empty() {
            Connections::Listener(reuseport_socket(address)?.listen(1024)?)
        } else {
            let fd: i32 = fd.parse().map_err(std::io::Error::other)?;
            // SAFETY: the parent passed this descriptor, open, for this process alone.
            let parent = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
            parent.set_nonblocking(true)?;
            Connections::Parent(tokio::net::UnixStream::from_std(parent)?)
        };
        println!("ready");
        Ok(connections)
    }

    /// The next connection; `None` once the parent is gone.
    pub(crate) async fn next(&self) -> std::io::Result<Option<TcpStream>> {
        let socket = match self {
            Connections::Listener(listener) => return Ok(Some(listener.accept().await?.0)),
            Connections::Parent(socket) => socket,
        };
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
        fd.map(|fd| TcpStream::from_std(std::net::TcpStream::from(fd)))
            .transpose()
    }
}
