//! [`InheritedSockets`]: the listening sockets systemd hands the master (socket activation,
//! `sd_listen_fds(3)`): when `LISTEN_PID` names this process, descriptors 3 to
//! 3 + `LISTEN_FDS` - 1 are listening sockets, named by `LISTEN_FDNAMES` (`a:b:…`). The master
//! serves an address on the inherited socket bound to it, or on the one named `NAME` for the
//! address `fd:NAME`, instead of binding; an address with no inherited socket is bound as
//! usual. TCP and Unix stream sockets are served (`unix:PATH` takes the Unix socket at that
//! path); another kind of socket is left alone, and said so. The descriptors are made
//! close-on-exec and the variables are not passed to workers, so nothing the master starts
//! sees them.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use clustered_ipc::ListenAddr;

/// The variables of socket activation; workers do not inherit them.
pub(crate) const LISTEN_VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;

/// The most descriptors taken from `LISTEN_FDS` (a larger count is an operator's mistake).
const MOST: usize = 1024;

/// The prefix of an address that names an inherited socket: `fd:http`.
const BY_NAME: &str = "fd:";

/// The sockets systemd handed over and not yet taken.
#[derive(Debug, Default)]
pub(crate) struct InheritedSockets {
    sockets: Vec<Inherited>,
}

#[derive(Debug)]
struct Inherited {
    listener: OwnedFd,
    name: String,
    address: ListenAddr,
}

impl InheritedSockets {
    /// The sockets `LISTEN_FDS` hands this process (none when `LISTEN_PID` names another one,
    /// or is unset).
    ///
    /// A master an upgrade started (`CLUSTER_UPGRADE_FD` set) takes them whatever
    /// `LISTEN_PID` says: the old master cannot know the new one's pid before it runs, and
    /// names each socket by its listen key, escaped (`127.0.0.1%3A3000`).
    pub(crate) fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let upgrade = lookup(crate::env::UPGRADE_FD).is_some();
        let listen_pid = match upgrade {
            true => Some(std::process::id().to_string()),
            false => lookup("LISTEN_PID"),
        };
        let Some(count) = handed_to(
            listen_pid.as_deref(),
            lookup("LISTEN_FDS").as_deref(),
            std::process::id(),
        ) else {
            return Self::default();
        };
        let from = match upgrade {
            true => "the old master",
            false => "systemd",
        };
        let names = lookup("LISTEN_FDNAMES").unwrap_or_default();
        let mut names = names.split(':').map(crate::master::handover::unescape_name);
        let mut sockets = Vec::new();
        for index in 0..count {
            let fd = FIRST_FD.saturating_add(i32::try_from(index).unwrap_or(i32::MAX));
            let name = names.next().unwrap_or_else(|| "unknown".into());
            match take(fd) {
                Ok((listener, address)) => {
                    tracing::info!(fd, %name, %address, "serving a socket {from} handed over");
                    sockets.push(Inherited {
                        listener,
                        name,
                        address,
                    });
                }
                Err(why) => {
                    tracing::warn!(fd, %name, "an inherited descriptor is not served: {why}")
                }
            }
        }
        Self { sockets }
    }

    /// The inherited socket named `name` (the admin or control socket an old master handed
    /// over), taken.
    pub(crate) fn take_named(&mut self, name: &str) -> Option<OwnedFd> {
        let index = self.sockets.iter().position(|socket| socket.name == name)?;
        Some(self.sockets.swap_remove(index).listener)
    }

    /// The inherited socket for `address` (named so by an old master; `fd:NAME`;
    /// `unix:PATH`; or the TCP address it is bound to) and the address it is bound to, taken.
    pub(crate) fn take(&mut self, address: &str) -> Option<(OwnedFd, ListenAddr)> {
        let same_key = self
            .sockets
            .iter()
            .position(|socket| socket.name == address);
        let index = match same_key {
            Some(index) => index,
            None => self.by_address(address)?,
        };
        let taken = self.sockets.swap_remove(index);
        Some((taken.listener, taken.address))
    }

    /// Where the socket for `address` is, by its `fd:NAME` or the address it is bound to.
    fn by_address(&self, address: &str) -> Option<usize> {
        match address.strip_prefix(BY_NAME) {
            Some(name) => self.sockets.iter().position(|socket| socket.name == name),
            None => {
                let address = match address.strip_prefix(ListenAddr::UNIX_PREFIX) {
                    Some(path) => ListenAddr::Unix(path.into()),
                    None => ListenAddr::Tcp(address.parse().ok()?),
                };
                self.sockets
                    .iter()
                    .position(|socket| socket.address == address)
            }
        }
    }
}

/// How many descriptors `LISTEN_FDS` hands the process `pid`, if `LISTEN_PID` names it.
fn handed_to(listen_pid: Option<&str>, listen_fds: Option<&str>, pid: u32) -> Option<usize> {
    let for_us = listen_pid?.trim().parse::<u32>().ok()? == pid;
    let count: usize = listen_fds?.trim().parse().ok()?;
    (for_us && count > 0).then_some(count.min(MOST))
}

/// Descriptor `fd` as a listening TCP or Unix stream socket, non-blocking and close-on-exec,
/// with the address it is bound to; why not otherwise.
fn take(fd: i32) -> Result<(OwnedFd, ListenAddr), &'static str> {
    // SAFETY: the number is only borrowed to ask the kernel about it; fcntl on a closed
    // number fails cleanly with EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_setfd(borrowed, rustix::io::FdFlags::CLOEXEC)
        .map_err(|_| "no such descriptor")?;
    let stream = rustix::net::sockopt::socket_type(borrowed).map_err(|_| "not a socket")?;
    let domain = rustix::net::sockopt::socket_domain(borrowed).map_err(|_| "not a socket")?;
    let tcp = matches!(
        domain,
        rustix::net::AddressFamily::INET | rustix::net::AddressFamily::INET6
    );
    let unix = domain == rustix::net::AddressFamily::UNIX;
    if stream != rustix::net::SocketType::STREAM || !(tcp || unix) {
        return Err("only TCP and Unix stream sockets are served");
    }
    if !rustix::net::sockopt::socket_acceptconn(borrowed).unwrap_or(false) {
        return Err("the socket is not listening");
    }
    // SAFETY: systemd handed this descriptor to this process, which owns it from here on;
    // nothing else in the process takes descriptors from 3 up by number.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::ioctl_fionbio(&owned, true).map_err(|_| "cannot make it non-blocking")?;
    if unix {
        let listener = std::os::unix::net::UnixListener::from(owned);
        let path = listener
            .local_addr()
            .map_err(|_| "the socket has no address")?
            .as_pathname()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        Ok((listener.into(), ListenAddr::Unix(path)))
    } else {
        let listener = std::net::TcpListener::from(owned);
        let address = listener
            .local_addr()
            .map_err(|_| "the socket has no address")?;
        Ok((listener.into(), ListenAddr::Tcp(address)))
    }
}

#[cfg(test)]
mod tests {
    use super::{InheritedSockets, handed_to};
    use clustered_ipc::ListenAddr;

    #[test]
    fn sockets_are_taken_only_when_listen_pid_names_this_process() {
        assert_eq!(handed_to(Some("42"), Some("2"), 42), Some(2));
        assert_eq!(
            handed_to(Some("41"), Some("2"), 42),
            None,
            "another process's"
        );
        assert_eq!(handed_to(None, Some("2"), 42), None);
        assert_eq!(handed_to(Some("42"), Some("0"), 42), None);
        assert_eq!(handed_to(Some("42"), Some("many"), 42), None);
        assert_eq!(
            handed_to(Some("42"), Some("99999"), 42),
            Some(1024),
            "bounded"
        );
    }

    #[test]
    fn an_address_takes_the_socket_bound_to_it_or_the_one_named_once() {
        let listen = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (web, admin) = (listen(), listen());
        let web_address = web.local_addr().unwrap();
        let directory = std::env::temp_dir().join(format!("inherited-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("app.sock");
        let _ = std::fs::remove_file(&path);
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut sockets = InheritedSockets {
            sockets: vec![
                super::Inherited {
                    address: ListenAddr::Tcp(web_address),
                    name: "web".into(),
                    listener: web.into(),
                },
                super::Inherited {
                    address: ListenAddr::Tcp(admin.local_addr().unwrap()),
                    name: "admin".into(),
                    listener: admin.into(),
                },
                super::Inherited {
                    address: ListenAddr::Unix(path.clone()),
                    name: "local".into(),
                    listener: unix.into(),
                },
            ],
        };
        assert!(sockets.take("127.0.0.1:1").is_none(), "bound as usual");
        assert!(
            sockets.take("unix:/elsewhere.sock").is_none(),
            "bound as usual"
        );
        assert!(sockets.take("fd:nothing").is_none());
        let (_, taken) = sockets
            .take(&web_address.to_string())
            .expect("by its address");
        assert_eq!(taken, ListenAddr::Tcp(web_address));
        assert!(sockets.take(&web_address.to_string()).is_none(), "once");
        let (_, taken) = sockets
            .take(&format!("unix:{}", path.display()))
            .expect("by its path");
        assert_eq!(taken, ListenAddr::Unix(path));
        assert!(sockets.take("fd:admin").is_some(), "by its name");
        let _ = std::fs::remove_dir_all(&directory);
    }
}
