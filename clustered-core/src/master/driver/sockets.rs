//! The master's sockets: bound once per address. How depends on the policy:
//!
//! - `rr`, `sticky`, `least`: listening, with an accept task feeding connections to the driver.
//! - `shared`: listening, not accepted from here: each worker gets a copy and accepts.
//! - `reuseport`: bound with `SO_REUSEPORT` but not listening, which resolves port 0 and
//!   reserves the port; each worker binds and listens on its own socket, the kernel balances.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use std::os::fd::{AsFd, OwnedFd};

use crate::Policy;
use clustered_ipc::{ListenAddr, ListenKey};
use rustix::io::Errno;
use rustix::net::{SocketFlags, acceptfrom_with};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::report::{Accepted, Opened, Report};
use crate::bind::{SocketFile, listen, listen_unix, reuseport_socket};
use crate::limits::{AcceptErrors, connection_budget};

/// Every address the master listens on.
pub(crate) struct ListeningSockets {
    bound: HashMap<ListenKey, BoundSocket>,
    reports: mpsc::Sender<Report>,
    unacknowledged: Arc<Semaphore>,
    /// The files of the Unix sockets bound here, removed once the sockets close.
    files: Vec<SocketFile>,
    /// Whether the accept tasks accept yet: a master an upgrade started accepts only once its
    /// workers serve (until then its predecessor takes the connections, and a new master
    /// that fails loses none).
    accepting: tokio::sync::watch::Sender<bool>,
    /// Closed for good: a socket bound since is dropped at once.
    closed: bool,
}

/// What the master holds for one address.
enum BoundSocket {
    /// Its accept task, and a copy of the socket for an upgrade to hand over.
    Accepting(JoinHandle<()>, OwnedFd),
    Shared(OwnedFd),
    Reserved {
        _port: TcpSocket,
    },
}

/// Binds `address` as `policy` wants (`unix:PATH` for a Unix socket, with its file), or
/// serves the socket systemd handed over for it (`inherited`); returns the bound address (the
/// real port when port 0 was asked for). Runs as a task of its own: resolving a name may take
/// a while, and the master must not wait for it.
pub(crate) async fn open(
    policy: Policy,
    address: &str,
    inherited: Option<(OwnedFd, ListenAddr)>,
) -> io::Result<(ListenAddr, Opened, Option<SocketFile>)> {
    if let Some((listener, bound)) = inherited {
        if let ListenAddr::Tcp(_) = bound {
            // Its connections inherit it, as those of the sockets bound here do.
            crate::bind::set_nodelay(&listener);
        }
        let opened = listening(policy, listener, "a socket handed over by systemd")?;
        return Ok((bound, opened, None));
    }
    if let Some(name) = address.strip_prefix("fd:") {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no socket named {name:?} was handed over (systemd's LISTEN_FDNAMES)"),
        ));
    }
    if let Some(path) = address.strip_prefix(ListenAddr::UNIX_PREFIX) {
        let (listener, file) = listen_unix(Path::new(path))?;
        let opened = listening(policy, listener.into(), "a Unix socket")?;
        return Ok((ListenAddr::Unix(path.into()), opened, Some(file)));
    }
    let (bound, opened) = match policy {
        Policy::Reuseport => {
            let socket = reuseport_socket(address).await?;
            (socket.local_addr()?, Opened::Reserved(socket))
        }
        Policy::Shared | Policy::Rr | Policy::Sticky | Policy::Least => {
            let listener = listen(address).await?.into_std()?;
            let bound = listener.local_addr()?;
            (bound, listening(policy, listener.into(), "a TCP socket")?)
        }
    };
    Ok((bound.into(), opened, None))
}

/// A listening socket served as `policy` wants; `what` it is says why not under `reuseport`,
/// where each worker binds a TCP socket of its own and the master's cannot be shared.
fn listening(policy: Policy, listener: OwnedFd, what: &str) -> io::Result<Opened> {
    match policy {
        Policy::Shared => Ok(Opened::Shared(listener)),
        Policy::Rr | Policy::Sticky | Policy::Least => Ok(Opened::Listening(listener)),
        Policy::Reuseport => Err(io::Error::other(format!(
            "{what} cannot be served under reuseport (each worker binds a TCP socket of its own): use rr, sticky, least or shared"
        ))),
    }
}

impl ListeningSockets {
    /// The master's sockets, accepted on at once, or (`hold`) once [`Self::accept`] is called.
    pub(crate) fn new(reports: mpsc::Sender<Report>, hold: bool) -> Self {
        Self {
            accepting: tokio::sync::watch::Sender::new(!hold),
            bound: HashMap::new(),
            reports,
            // Connections held and not yet acknowledged, across the cluster: past this the
            // master stops accepting and the kernel's listen backlog holds new clients.
            unacknowledged: Arc::new(Semaphore::new(connection_budget())),
            files: Vec::new(),
            closed: false,
        }
    }

    /// Keeps the socket bound for `address` (accepting on it when the master accepts); drops
    /// it when the listeners are closed already.
    pub(crate) fn install(
        &mut self,
        address: &str,
        opened: Opened,
        file: Option<SocketFile>,
    ) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.files.extend(file);
        let key = ListenKey::from(address);
        let socket = match opened {
            Opened::Listening(listener) => {
                let copy = listener.try_clone()?;
                // SAFETY: the `OwnedFd` stays open and the same for as long as the `AsyncFd`
                // owns it.
                match unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) } {
                    Ok(listener) => BoundSocket::Accepting(
                        tokio::spawn(accept_loop(
                            key.clone(),
                            listener,
                            self.reports.clone(),
                            Arc::clone(&self.unacknowledged),
                            self.accepting.subscribe(),
                        )),
                        copy,
                    ),
                    Err(error) => return Err(error.into_parts().1),
                }
            }
            Opened::Shared(listener) => BoundSocket::Shared(listener),
            Opened::Reserved(socket) => BoundSocket::Reserved { _port: socket },
        };
        self.bound.insert(key, socket);
        Ok(())
    }

    /// Starts accepting, if held.
    pub(crate) fn accept(&self) {
        self.accepting.send_replace(true);
    }

    /// A copy of the listening socket of `key` for a worker, under the `shared` policy.
    pub(crate) fn share(&self, key: &ListenKey) -> io::Result<Option<OwnedFd>> {
        match self.bound.get(key) {
            Some(BoundSocket::Shared(listener)) => listener.as_fd().try_clone_to_owned().map(Some),
            _ => Ok(None),
        }
    }

    /// A copy of every listening socket, by its key, for an upgrade's new master; an error
    /// under `reuseport`, whose workers bind sockets of their own.
    pub(crate) fn handover_fds(&self) -> io::Result<Vec<(ListenKey, OwnedFd)>> {
        self.bound
            .iter()
            .map(|(key, socket)| match socket {
                BoundSocket::Accepting(_, fd) => Ok((key.clone(), fd.try_clone()?)),
                BoundSocket::Shared(fd) => Ok((key.clone(), fd.try_clone()?)),
                BoundSocket::Reserved { .. } => Err(io::Error::other(
                    "under reuseport each worker binds its own socket, which cannot be handed over: upgrade by a full restart, or use rr",
                )),
            })
            .collect()
    }

    /// The Unix socket files bound here (which an upgrade's new master is to remove).
    pub(crate) fn file_paths(&self) -> Vec<std::path::PathBuf> {
        self.files
            .iter()
            .filter_map(|file| file.path().map(ToOwned::to_owned))
            .collect()
    }

    /// The old master's Unix socket files, whose sockets it handed over: removed by this
    /// master when its sockets close, as if it had bound them.
    pub(crate) fn adopt_files(&mut self, paths: Vec<std::path::PathBuf>) {
        self.files.extend(paths.into_iter().map(SocketFile::adopt));
    }

    /// The Unix socket files bound here are the new master's now: they stay when the sockets
    /// close.
    pub(crate) fn keep_files(&mut self) {
        self.files.drain(..).for_each(SocketFile::keep);
    }

    /// Stops accepting and closes the master's sockets, for good: under `rr`, `sticky` and
    /// `least` new clients are refused from now on (under `shared` and `reuseport` once the
    /// workers close theirs).
    pub(crate) fn close(&mut self) {
        self.closed = true;
        for (_, socket) in self.bound.drain() {
            if let BoundSocket::Accepting(accept_task, _) = socket {
                accept_task.abort();
            }
        }
        self.files.clear();
    }
}

impl Drop for ListeningSockets {
    fn drop(&mut self) {
        self.close();
    }
}

/// Connections one wake-up of an accept task hands to the driver at most.
const ACCEPT_BATCH: usize = 64;

/// Accepts, whenever the listener is readable, every connection waiting (up to
/// [`ACCEPT_BATCH`] and the cluster-wide bound), and reports them together. Accepted sockets
/// are never registered with the master's event loop: the master only holds and hands them on.
async fn accept_loop(
    key: ListenKey,
    listener: AsyncFd<OwnedFd>,
    reports: mpsc::Sender<Report>,
    unacknowledged: Arc<Semaphore>,
    mut accepting: tokio::sync::watch::Receiver<bool>,
) {
    if accepting.wait_for(|accepting| *accepting).await.is_err() {
        return;
    }
    let what = key.as_str();
    let mut errors = AcceptErrors::new();
    // Given back when descriptors run out, so the master can go on (copy a handoff, start a
    // worker) while it waits for room; taken again once it accepts.
    let mut reserve = reserve_descriptor();
    loop {
        let Ok(first) = Arc::clone(&unacknowledged).acquire_owned().await else {
            return;
        };
        let Ok(mut ready) = listener.readable().await else {
            return;
        };
        let mut permit = Some(first);
        let mut batch = Vec::with_capacity(16);
        let mut failure = None;
        while batch.len() < ACCEPT_BATCH {
            let Some(slot) = permit
                .take()
                .or_else(|| Arc::clone(&unacknowledged).try_acquire_owned().ok())
            else {
                break;
            };
            match acceptfrom_with(
                ready.get_inner(),
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            ) {
                Ok((fd, peer)) => batch.push(Accepted {
                    key: key.clone(),
                    fd,
                    peer: peer
                        .and_then(|peer| SocketAddr::try_from(peer).ok())
                        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                    permit: slot,
                }),
                Err(Errno::AGAIN) => {
                    ready.clear_ready();
                    break;
                }
                Err(Errno::INTR) => permit = Some(slot),
                Err(error) => {
                    failure = Some(io::Error::from(error));
                    break;
                }
            }
        }
        drop(ready);
        if !batch.is_empty() {
            errors.succeeded(what);
            if reserve.is_none() {
                reserve = reserve_descriptor();
            }
            if reports.send(Report::Accepted(batch)).await.is_err() {
                return;
            }
        }
        if let Some(error) = failure {
            let delay = errors.after(&error, what);
            if errors.is_exhausted() {
                reserve = None;
            }
            tokio::time::sleep(delay).await;
        }
    }
}

/// A descriptor kept in reserve (`/dev/null`), if one can be had.
fn reserve_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}
