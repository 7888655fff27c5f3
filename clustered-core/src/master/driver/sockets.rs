//! The master's sockets: bound once per address. How depends on the policy:
//!
//! - `rr`, `sticky`, `least`: listening, accepted on by the driver's loop ([`Acceptors`]).
//! - `shared`: listening, not accepted from here: each worker gets a copy and accepts.
//! - `reuseport`: bound with `SO_REUSEPORT` but not listening, which resolves port 0 and
//!   reserves the port; each worker binds and listens on its own socket, the kernel balances.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use std::os::fd::{AsFd, OwnedFd};

use crate::Policy;
use clustered_ipc::{ListenAddr, ListenKey};
use tokio::net::TcpSocket;

use super::acceptors::Acceptors;
use super::held_conns::Accepted;
use super::report::Opened;
use crate::bind::{SocketFile, listen, listen_unix, reuseport_socket};

/// Every address the master listens on.
pub(crate) struct ListeningSockets {
    bound: HashMap<ListenKey, BoundSocket>,
    /// The listening sockets of `rr`, `sticky` and `least`, which the master accepts on.
    acceptors: Acceptors,
    /// The files of the Unix sockets bound here, removed once the sockets close.
    files: Vec<SocketFile>,
    /// Closed for good: a socket bound since is dropped at once.
    closed: bool,
}

/// What the master holds for one address.
enum BoundSocket {
    /// Accepted on by the master ([`Acceptors`]): a copy of the socket for an upgrade to
    /// hand over.
    Accepting(OwnedFd),
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
    pub(crate) fn new(hold: bool) -> Self {
        Self {
            bound: HashMap::new(),
            acceptors: Acceptors::new(hold),
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
                self.acceptors.add(key.clone(), listener)?;
                BoundSocket::Accepting(copy)
            }
            Opened::Shared(listener) => BoundSocket::Shared(listener),
            Opened::Reserved(socket) => BoundSocket::Reserved { _port: socket },
        };
        self.bound.insert(key, socket);
        Ok(())
    }

    /// Starts accepting, if held.
    pub(crate) fn accept(&mut self) {
        self.acceptors.start();
    }

    /// Whether the master accepts on any socket now.
    pub(crate) fn is_accepting(&self) -> bool {
        self.acceptors.is_on()
    }

    /// The connections waiting once a listener is readable, `room` at most (see
    /// [`Acceptors::accepted`]).
    pub(crate) async fn accepted(&mut self, room: usize) -> Vec<Accepted> {
        self.acceptors.accepted(room).await
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
                BoundSocket::Accepting(fd) => Ok((key.clone(), fd.try_clone()?)),
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
        self.acceptors.close();
        self.bound.clear();
        self.files.clear();
    }
}

impl Drop for ListeningSockets {
    fn drop(&mut self) {
        self.close();
    }
}
