//! The worker side: join the master, ask it for listeners, receive connections, drain.

pub mod agent;
pub mod certificates;
mod connection;
mod heartbeat;
pub mod ipc;
mod link;
mod listener;
pub mod load;
mod mailbox;
mod output;
mod sentinel;
pub mod ticket_keys;

use crate::env;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clustered_ipc::{Channel, Message, PROTOCOL_VERSION};

pub use self::connection::Connection;
use self::link::install;
pub(crate) use self::link::{Link, installed_link};
pub use self::listener::Listener;
pub(crate) use self::mailbox::{Asked, Letter, mailbox};
use crate::error::{Error, IpcError};
use crate::handoff_acks::AckRing;
use crate::role::{WorkerEnv, WorkerInfo, forget_cluster_env};
use crate::shared_metrics::{Region, RegionRecorder};

/// This process's membership in the cluster, handed to the worker's main function by
/// [`crate::Cluster::run`].
#[derive(Debug, Clone)]
pub struct Worker {
    info: WorkerInfo,
    link: Arc<Link>,
}

impl Worker {
    /// Takes over the inherited IPC socket and announces this worker to the master.
    pub(crate) async fn join(env: WorkerEnv) -> Result<Worker, Error> {
        if env.master_batched {
            crate::scheduling::restore_worker();
        }
        let channel = Channel::from_std(take_ipc_socket(env.ipc_fd)?.into())?;
        let acks = env.metrics_fd.and_then(record_metrics).map(AckRing::new);
        forget_cluster_env();
        ask_for_parent_death_signal();
        if let Err(error) = sentinel::start(channel.as_fd()) {
            tracing::warn!(%error, "cannot start the sentinel: this worker's output is not protected from a slow or gone master, and it is not ended when the master dies");
        }
        let (sender, receiver) = channel.split();
        let link = Link::start(sender, receiver, acks);
        tokio::spawn(heartbeat::report(Arc::downgrade(&link)));
        install(Arc::clone(&link));
        let online = Message::Online {
            version: PROTOCOL_VERSION,
            pid: env.info.pid,
        };
        link.send(&online).await?;
        tracing::debug!(worker = env.info.id, "joined the master");
        Ok(Worker {
            info: env.info,
            link,
        })
    }

    /// This worker's slot (1-based) and process id.
    pub fn info(&self) -> WorkerInfo {
        self.info
    }

    /// This worker's slot, from 1 to the worker count.
    pub fn id(&self) -> usize {
        self.info.id
    }

    /// Says this worker has warmed up (PM2's `process.send('ready')`). When the cluster waits
    /// for readiness ([`crate::Cluster::wait_ready`]), the worker gets no connection before
    /// this, and a reload waits for it; otherwise it changes nothing. Once per process; later
    /// calls do nothing.
    pub async fn ready(&self) -> Result<(), IpcError> {
        self.link.declare_ready().await
    }

    /// Asks the master for connections accepted on `address` (it binds the address once for
    /// the whole cluster) and returns the stream of connections handed to this worker.
    pub async fn listen(&self, address: &str) -> Result<Listener, Error> {
        self.link.listen(address).await
    }

    /// Resolves once this worker should stop: the master asked it to disconnect, or the master
    /// is gone. Listeners stop yielding connections at the same moment.
    pub async fn draining(&self) {
        listener::drained(&mut self.link.draining()).await;
    }

    /// Whether this worker has been asked to stop.
    pub fn is_draining(&self) -> bool {
        *self.link.draining().borrow()
    }
}

/// On Linux, asks the kernel for SIGTERM (which drains the worker) when the master dies; the IPC
/// channel closing does the same everywhere, this is a second line.
fn ask_for_parent_death_signal() {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
    {
        tracing::debug!(%error, "PR_SET_PDEATHSIG failed; relying on the IPC channel");
    }
}

/// Installs the cluster's metrics recorder over the region the master gave this worker (once:
/// the caller took the IPC socket first), and returns the region (which also holds its
/// handoff acknowledgements). Without it, the worker's metrics are not seen.
fn record_metrics(fd: RawFd) -> Option<Arc<Region>> {
    // SAFETY: the number is only borrowed to map it; `fstat` on a number that is not open
    // fails cleanly.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    match Region::open(borrowed) {
        Ok(region) => {
            // SAFETY: the master gave this descriptor to this worker for its metrics, it is
            // open (it was just mapped) and this runs once per process: its only owner. Closed
            // here; the mapping stays.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            let region = Arc::new(region);
            if !RegionRecorder::new(Arc::clone(&region)).install() {
                tracing::warn!(
                    "a metrics recorder was installed before the cluster's: the master will not see this worker's metrics"
                );
            }
            Some(region)
        }
        Err(error) => {
            tracing::warn!(
                %error,
                "cannot map the metrics region; this worker's metrics are not recorded"
            );
            None
        }
    }
}

/// Takes ownership of the inherited IPC descriptor, once per process, after checking that it
/// is a socket.
fn take_ipc_socket(fd: i32) -> Result<OwnedFd, Error> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    let invalid = |reason: &str| Error::Env {
        var: env::IPC_FD,
        value: fd.to_string(),
        reason: reason.to_owned(),
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(invalid("this process has already joined the master"));
    }
    // SAFETY: the descriptor number is only borrowed to ask the kernel about it; fstat on a
    // closed number fails cleanly with EBADF.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let stat = rustix::fs::fstat(borrowed).map_err(|_| {
        invalid("no such descriptor: was this process started by a cluster master?")
    })?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return Err(invalid("the descriptor is not a socket"));
    }
    let unix_stream = rustix::net::sockopt::socket_domain(borrowed)
        .is_ok_and(|domain| domain == rustix::net::AddressFamily::UNIX)
        && rustix::net::sockopt::socket_type(borrowed)
            .is_ok_and(|kind| kind == rustix::net::SocketType::STREAM);
    if !unix_stream {
        return Err(invalid("the descriptor is not a Unix stream socket"));
    }
    // SAFETY: the master mapped this descriptor into this process for the worker alone, it is
    // open (checked above) and the TAKEN guard makes this the only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // The descriptor was inherited without close-on-exec; keep it from this worker's children.
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)
        .map_err(|error| invalid(&error.to_string()))?;
    Ok(owned)
}
