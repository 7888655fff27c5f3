//! [`Report`]: what the driver's tasks (binders, worker readers, reapers) tell the driver.

use std::io;

use clustered_ipc::ListenAddr;
use std::os::fd::OwnedFd;

use tokio::net::TcpSocket;

use crate::bind::SocketFile;
use crate::master::machine::Input;

/// One report from a task of the driver.
#[derive(Debug)]
pub(crate) enum Report {
    /// A bind task is done: the driver keeps the socket and tells the machine.
    Bound {
        address: String,
        result: io::Result<(ListenAddr, Opened, Option<SocketFile>)>,
    },
    /// An upgrade's old master handed over its state (the metrics and restarts taken
    /// already): the driver opens the control and admin sockets and tells the machine.
    Adopted {
        counters: std::collections::BTreeMap<String, i64>,
        ticket_keys: Option<clustered_ipc::TicketKeys>,
        /// The old master's Unix socket files, this master's to remove now.
        socket_files: Vec<std::path::PathBuf>,
    },
    /// Something the machine hears of as it is.
    Input(Input),
}

/// A socket bound for one address, as the policy wants it.
#[derive(Debug)]
pub(crate) enum Opened {
    /// A TCP or Unix socket listening (non-blocking); the master accepts (rr, sticky, least).
    Listening(OwnedFd),
    /// A TCP or Unix socket listening; the workers accept on copies of it (shared).
    Shared(OwnedFd),
    /// Bound, not listening: keeps the port for the workers' own sockets (reuseport).
    Reserved(TcpSocket),
}
