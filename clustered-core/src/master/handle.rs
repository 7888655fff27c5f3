//! [`WorkerHandle`]: the master's view of one worker process, for user code.

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal as OsSignal};

use crate::signal::Signal;

use serde::Serialize;

use super::command::{Command, CommandSender, Target};
use super::ids::WorkerKey;
use crate::IpcError;
use crate::handoff_acks::{AckRing, LoadReport};
use crate::sync::lock;

/// One worker process, as Node's `cluster.workers[id]`: its slot, pid and state, and ways to
/// stop it. Cheap to clone; every clone sees the same live state.
///
/// A worker stopped through its handle ([`WorkerHandle::disconnect`], [`WorkerHandle::kill`])
/// exits "after disconnect" and is not replaced, as in Node; one that dies on its own is.
#[derive(Clone)]
pub struct WorkerHandle {
    inner: Arc<Inner>,
}

struct Inner {
    key: WorkerKey,
    id: usize,
    pid: u32,
    /// Names this very process even after it is reaped and its pid reused (Linux ≥ 5.3).
    pidfd: Option<OwnedFd>,
    connected: AtomicBool,
    dead: AtomicBool,
    exited_after_disconnect: AtomicBool,
    commands: CommandSender,
    started: Instant,
    /// A [`WorkerStatus`].
    status: AtomicU8,
    /// Where it says its heartbeats while it lives, when it has a region: its load is read
    /// there, live, once it has said one. Let go once it is dead (its last load kept below),
    /// so a handle user code keeps does not keep the region mapped.
    heartbeats: Mutex<Option<AckRing>>,
    /// From its last heartbeat frame, without a region (or once dead).
    connections: AtomicU64,
    in_flight: AtomicU64,
    served: AtomicU64,
}

/// Where a worker is in its life, as `clusterctl ls` shows it: the machine moves it on, in
/// this order, never back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum WorkerStatus {
    Starting,
    Online,
    Listening,
    Draining,
    Dead,
}

impl WorkerStatus {
    const ALL: [WorkerStatus; 5] = [
        WorkerStatus::Starting,
        WorkerStatus::Online,
        WorkerStatus::Listening,
        WorkerStatus::Draining,
        WorkerStatus::Dead,
    ];

    /// `starting`, `online`, `listening`, `draining`, `dead`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            WorkerStatus::Starting => "starting",
            WorkerStatus::Online => "online",
            WorkerStatus::Listening => "listening",
            WorkerStatus::Draining => "draining",
            WorkerStatus::Dead => "dead",
        }
    }
}

/// What a worker's last heartbeat said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ReportedLoad {
    pub(crate) connections: u64,
    pub(crate) in_flight: u64,
    pub(crate) served: u64,
}

/// Whether the worker said a heartbeat in its region (one that could not map it sends frames,
/// and the region's zeros say nothing).
fn said_any(heartbeats: &AckRing) -> bool {
    heartbeats.beats() > 0
}

/// The part of a heartbeat's report a handle shows.
impl From<LoadReport> for ReportedLoad {
    fn from(load: LoadReport) -> Self {
        ReportedLoad {
            connections: load.conns,
            in_flight: load.inflight,
            served: load.served,
        }
    }
}

impl WorkerHandle {
    pub(crate) fn new(
        key: WorkerKey,
        id: usize,
        pid: u32,
        pidfd: Option<OwnedFd>,
        commands: CommandSender,
        heartbeats: Option<AckRing>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                key,
                id,
                pid,
                pidfd,
                connected: AtomicBool::new(true),
                dead: AtomicBool::new(false),
                exited_after_disconnect: AtomicBool::new(false),
                commands,
                started: Instant::now(),
                status: AtomicU8::new(WorkerStatus::Starting as u8),
                heartbeats: Mutex::new(heartbeats),
                connections: AtomicU64::new(0),
                in_flight: AtomicU64::new(0),
                served: AtomicU64::new(0),
            }),
        }
    }

    /// The worker's slot, from 1 to the worker count (a replacement reuses the slot).
    pub fn id(&self) -> usize {
        self.inner.id
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Whether its IPC channel with the master is open.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst)
    }

    /// Whether the process has exited (and been reaped).
    pub fn is_dead(&self) -> bool {
        self.inner.dead.load(Ordering::SeqCst)
    }

    /// Whether it exited because the master or user code asked it to (it is then not replaced).
    pub fn exited_after_disconnect(&self) -> bool {
        self.inner.exited_after_disconnect.load(Ordering::SeqCst)
    }

    /// How long ago it was started.
    pub(crate) fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    pub(crate) fn status(&self) -> WorkerStatus {
        let status = self.inner.status.load(Ordering::Relaxed);
        WorkerStatus::ALL
            .into_iter()
            .find(|known| *known as u8 == status)
            .unwrap_or(WorkerStatus::Starting)
    }

    /// Sets its status, as the machine says; a dead one is not connected either.
    pub(crate) fn set_status(&self, status: WorkerStatus) {
        if status == WorkerStatus::Dead {
            self.inner.connected.store(false, Ordering::SeqCst);
            self.inner.dead.store(true, Ordering::SeqCst);
            let heartbeats = lock(&self.inner.heartbeats).take();
            if let Some(heartbeats) = heartbeats.filter(said_any) {
                self.set_load(heartbeats.last_load().into());
            }
        }
        self.inner.status.store(status as u8, Ordering::Relaxed);
    }

    /// What its last heartbeat said.
    pub(crate) fn load(&self) -> ReportedLoad {
        if let Some(heartbeats) = lock(&self.inner.heartbeats)
            .as_ref()
            .filter(|h| said_any(h))
        {
            return heartbeats.last_load().into();
        }
        ReportedLoad {
            connections: self.inner.connections.load(Ordering::Relaxed),
            in_flight: self.inner.in_flight.load(Ordering::Relaxed),
            served: self.inner.served.load(Ordering::Relaxed),
        }
    }

    /// Keeps what a heartbeat frame said (one said in the region is read there).
    pub(crate) fn set_load(&self, load: ReportedLoad) {
        self.inner
            .connections
            .store(load.connections, Ordering::Relaxed);
        self.inner
            .in_flight
            .store(load.in_flight, Ordering::Relaxed);
        self.inner.served.store(load.served, Ordering::Relaxed);
    }

    /// Sends `message` to this worker (its `ipc::messages()`).
    pub fn send(&self, message: impl Serialize) -> Result<(), IpcError> {
        if self.is_dead() {
            return Err(IpcError::Remote(format!("worker {} is dead", self.id())));
        }
        let data = serde_json::to_value(message)?;
        self.inner.commands.send(Command::Deliver {
            to: Target::One(self.inner.key),
            data,
        });
        Ok(())
    }

    /// Asks the worker to stop taking connections, finish its in-flight requests and exit; it
    /// is killed if it has not exited within the shutdown timeout.
    pub fn disconnect(&self) {
        self.inner
            .commands
            .send(Command::Disconnect(self.inner.key));
    }

    /// Sends `signal` to the worker process (no-op once it is dead). The worker is not
    /// replaced afterwards.
    pub fn kill(&self, signal: Signal) -> std::io::Result<()> {
        if self.is_dead() {
            return Ok(());
        }
        self.set_exited_after_disconnect();
        // Before the signal: the master hears of this before it can hear of the exit.
        self.inner.commands.send(Command::Release(self.inner.key));
        self.signal(signal.to_os())
    }

    /// Sends `signal` unless the process is dead, without changing whether it is replaced.
    /// Through the process's pidfd when there is one, so a signal never reaches another
    /// process that took over a reused pid.
    pub(crate) fn signal(&self, signal: OsSignal) -> std::io::Result<()> {
        if self.is_dead() {
            return Ok(());
        }
        if let Some(pidfd) = &self.inner.pidfd {
            return match rustix::process::pidfd_send_signal(pidfd, signal) {
                // It has exited already (not reaped yet, or reaped): nothing to signal.
                Err(rustix::io::Errno::SRCH) => Ok(()),
                result => Ok(result?),
            };
        }
        let pid = i32::try_from(self.inner.pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| std::io::Error::other("worker has no valid pid"))?;
        Ok(rustix::process::kill_process(pid, signal)?)
    }

    pub(crate) fn key(&self) -> WorkerKey {
        self.inner.key
    }

    pub(crate) fn set_disconnected(&self) {
        self.inner.connected.store(false, Ordering::SeqCst);
    }

    pub(crate) fn set_exited_after_disconnect(&self) {
        self.inner
            .exited_after_disconnect
            .store(true, Ordering::SeqCst);
    }
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("id", &self.id())
            .field("pid", &self.pid())
            .field("connected", &self.is_connected())
            .field("dead", &self.is_dead())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::command::CommandBus;
    use crate::shared_metrics::Region;

    #[test]
    fn a_handle_reads_the_load_live_then_keeps_the_last_and_lets_the_region_go() {
        let (master, fd) = Region::create().unwrap();
        let master = Arc::new(master);
        let worker = AckRing::new(Arc::new(Region::open(&fd).unwrap()));
        let bus = CommandBus::new();
        let ring = AckRing::new(Arc::clone(&master));
        let handle = WorkerHandle::new(WorkerKey(7), 1, 4242, None, bus.sender(), Some(ring));
        let framed = ReportedLoad {
            connections: 2,
            ..ReportedLoad::default()
        };
        handle.set_load(framed);
        assert_eq!(
            handle.load(),
            framed,
            "a region never said in hides no frame"
        );
        let busy = LoadReport {
            conns: 3,
            inflight: 1,
            served: 40,
            rss: 0,
        };
        worker.beat(busy);
        assert_eq!(handle.load(), busy.into(), "read where the worker said it");
        // A frame's report does not hide what the region says.
        handle.set_load(ReportedLoad::default());
        assert_eq!(handle.load(), busy.into());

        handle.set_status(WorkerStatus::Dead);
        assert_eq!(
            Arc::strong_count(&master),
            1,
            "the handle let the region go"
        );
        worker.beat(LoadReport::default());
        assert_eq!(handle.load(), busy.into(), "the last load it said alive");
    }
}
