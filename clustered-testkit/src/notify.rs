//! [`NotifySocket`]: a test as systemd's service manager for the notification protocol: its
//! own `NOTIFY_SOCKET`, a Unix datagram socket that learns each sender's pid (`SO_PASSCRED`).

use std::io::IoSliceMut;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::process::{WaitId, WaitIdOptions, waitid};

/// How long [`NotifySocket::until`] waits for a note.
const NOTE_TIMEOUT: Duration = Duration::from_secs(20);

/// One notification: who sent it, and what it said.
#[derive(Debug, Clone)]
pub struct Note {
    /// The sender's pid, as the kernel vouches for it.
    pub pid: u32,
    /// The datagram, as text.
    pub text: String,
}

/// The service manager's end: every datagram, with its sender's pid.
pub struct NotifySocket {
    notes: mpsc::Receiver<Note>,
    path: Option<PathBuf>,
    address: String,
}

impl NotifySocket {
    /// Listens at `address` (a path, or `@name` for an abstract socket).
    pub fn listen(address: &str) -> NotifySocket {
        let socket = UnixDatagram::bind_addr(&socket_address(address).expect("an address"))
            .expect("a socket in the temporary directory, or an abstract one");
        rustix::net::sockopt::set_socket_passcred(socket.as_fd(), true).expect("SO_PASSCRED");
        let (sender, notes) = mpsc::channel();
        std::thread::spawn(move || {
            loop {
                let mut buffer = [0u8; 4096];
                let mut space =
                    [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
                let mut ancillary = RecvAncillaryBuffer::new(&mut space);
                let Ok(received) = rustix::net::recvmsg(
                    socket.as_fd(),
                    &mut [IoSliceMut::new(&mut buffer)],
                    &mut ancillary,
                    RecvFlags::empty(),
                ) else {
                    return;
                };
                let pid = ancillary
                    .drain()
                    .find_map(|message| match message {
                        RecvAncillaryMessage::ScmCredentials(credentials) => {
                            Some(credentials.pid.as_raw_nonzero().get() as u32)
                        }
                        _ => None,
                    })
                    .unwrap_or(0);
                let text = String::from_utf8_lossy(&buffer[..received.bytes]).into_owned();
                if sender.send(Note { pid, text }).is_err() {
                    return;
                }
            }
        });
        let path = (!address.starts_with('@')).then(|| PathBuf::from(address));
        NotifySocket {
            notes,
            path,
            address: address.to_owned(),
        }
    }

    /// Its address, for `NOTIFY_SOCKET`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The next note that `wanted` picks, from whichever process, skipping others (bounded).
    pub fn next(&self, wanted: impl Fn(&Note) -> bool) -> Note {
        let deadline = Instant::now() + NOTE_TIMEOUT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let note = self.notes.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no such note within {NOTE_TIMEOUT:?}; skipped {skipped:?}")
            });
            if wanted(&note) {
                return note;
            }
            skipped.push(note);
        }
    }

    /// Every note received and not taken yet, without waiting.
    pub fn pending(&self) -> Vec<Note> {
        self.notes.try_iter().collect()
    }

    /// Sends a note of the test's own, [`exit_note`]`(pid)`, once this process's child `pid`
    /// has exited (it stays to be reaped as usual). The kernel queues datagrams in the order
    /// they are sent and the note is sent after the exit, so a note read after it was sent
    /// after that exit: a check that the exit note comes later never fails wrongly (it may
    /// miss a note sent in the moment between the exit and the note). Panics if `pid` is not
    /// a child of this process.
    pub fn note_exit_of(&self, pid: u32) {
        let child = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
        waitid(WaitId::Pid(child), options | WaitIdOptions::NOHANG)
            .unwrap_or_else(|error| panic!("{pid} is not a child of this process: {error}"));
        let address = self.address.clone();
        std::thread::spawn(move || {
            while let Err(rustix::io::Errno::INTR) = waitid(WaitId::Pid(child), options) {}
            let Ok(socket) = UnixDatagram::unbound() else {
                return;
            };
            let note = exit_note(pid);
            // Nobody to tell once the test is over.
            let _ = socket_address(&address)
                .and_then(|address| socket.send_to_addr(note.as_bytes(), &address));
        });
    }

    /// The next note's text that `wanted` picks, skipping others, each checked to come from
    /// `pid` (bounded).
    pub fn until(&self, pid: u32, wanted: impl Fn(&str) -> bool) -> String {
        self.next(|note| {
            assert_eq!(note.pid, pid, "only the master speaks to systemd: {note:?}");
            wanted(&note.text)
        })
        .text
    }
}

/// The socket address `NOTIFY_SOCKET` names: a path, or `@name` for an abstract socket.
fn socket_address(address: &str) -> std::io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match address.strip_prefix('@') {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name),
        None => std::os::unix::net::SocketAddr::from_pathname(address),
    }
}

/// The note [`NotifySocket::note_exit_of`] sends once `pid` has exited.
pub fn exit_note(pid: u32) -> String {
    format!("TEST_EXITED={pid}")
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}
