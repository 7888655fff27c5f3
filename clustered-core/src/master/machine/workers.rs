//! [`WorkerState`]: what the master knows of one worker process, as plain data.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clustered_ipc::ListenKey;

use super::conn::Conn;
use crate::master::handle::WorkerStatus;
use crate::master::ids::WorkerKey;
use crate::master::process_exit::ExitReason;
use crate::role::AGENT_ID;

/// Handoffs a worker may have unacknowledged at once: the master never waits one round trip
/// per connection, and a stuck worker cannot hoard connections. Far below the IPC send queue
/// (1024 frames), so control messages always find room; as many as the slots of the
/// worker's acknowledgement ring, so that no two handoffs in flight share a slot.
pub(super) const HANDOFF_WINDOW: usize = crate::handoff_acks::RING_SLOTS;

/// Every worker process the master has started and not yet seen exit, by key (in start order).
pub(super) type Workers = BTreeMap<WorkerKey, WorkerState>;

/// Why a worker was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// One of the first workers: failing to start it stops the cluster.
    Initial,
    /// The replacement of a worker that died on its own.
    Restart,
    /// A rolling reload's replacement.
    Reload,
}

/// One worker process.
#[derive(Debug)]
pub(super) struct WorkerState {
    /// Its slot, 1 to the worker count.
    pub(super) slot: usize,
    pub(super) origin: Origin,
    /// Known once the process is started.
    pub(super) pid: Option<u32>,
    pub(super) started: Instant,
    /// Its IPC channel is open.
    pub(super) connected: bool,
    /// It was busy (refused a handoff, or its queue was full): no handoff until it has rested.
    pub(super) resting: bool,
    /// The master asked it to stop (or gave up on it): its exit is intended.
    pub(super) disconnecting: bool,
    /// User code stopped it through its handle: its exit is intended.
    pub(super) released: bool,
    /// It joined (`online`): from then on it must be heard from every heartbeat period.
    pub(super) online: bool,
    /// When it was last heard from (any message).
    pub(super) last_heard: Instant,
    /// Silent for too long: no handoff until it is heard from again.
    pub(super) suspect: bool,
    /// The master killed it, and why.
    pub(super) killed_for: Option<ExitReason>,
    /// Why it is being replaced, when that is not a plain stop: a limit it passed
    /// (recycling), or a stop asked from outside.
    pub(super) stopped_for: Option<ExitReason>,
    /// Requests it has served, from its last heartbeat.
    pub(super) served: u64,
    /// Its resident memory in bytes, from its last heartbeat (`None` before the first).
    pub(super) rss: Option<u64>,
    /// It said it is ready (`ready`).
    pub(super) ready: bool,
    /// The listen keys it takes connections for.
    pub(super) listening: BTreeSet<ListenKey>,
    /// What its handle says (`clusterctl ls`).
    pub(super) status: WorkerStatus,
    unacknowledged: BTreeMap<u64, Conn>,
    /// Since when it has had handoffs to answer (the last answer, or the first handoff after
    /// none was outstanding); `None` while none is outstanding.
    answer_due_since: Option<Instant>,
    next_seq: u64,
    /// Open connections plus in-flight requests, from its last heartbeat.
    reported_load: u64,
}

impl WorkerState {
    pub(super) fn new(slot: usize, origin: Origin, now: Instant) -> Self {
        Self {
            slot,
            origin,
            pid: None,
            started: now,
            connected: true,
            resting: false,
            disconnecting: false,
            released: false,
            online: false,
            last_heard: now,
            suspect: false,
            killed_for: None,
            stopped_for: None,
            served: 0,
            rss: None,
            ready: false,
            listening: BTreeSet::new(),
            status: WorkerStatus::Starting,
            unacknowledged: BTreeMap::new(),
            answer_due_since: None,
            next_seq: 1,
            reported_load: 0,
        }
    }

    /// Its pid, or 0 before it is known.
    pub(super) fn pid(&self) -> u32 {
        self.pid.unwrap_or(0)
    }

    /// How long it has been up.
    pub(super) fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// Whether it exits because it was asked to (it is then not replaced).
    pub(super) fn exit_is_intended(&self) -> bool {
        self.disconnecting || self.released
    }

    /// Whether it is on its way out (asked to stop, or killed): nothing is routed to it, and
    /// it serves no slot, whatever it says meanwhile.
    pub(super) fn is_leaving(&self) -> bool {
        self.disconnecting || self.killed_for.is_some()
    }

    /// Why it exits, once it has.
    pub(super) fn exit_reason(&self) -> ExitReason {
        match self.killed_for.or(self.stopped_for) {
            Some(reason) => reason,
            None if self.exit_is_intended() => ExitReason::Stopped,
            None => ExitReason::Unexpected,
        }
    }

    /// Whether it serves: it listens on all `bound` addresses and, when the master waits for
    /// readiness, said it is ready; and the master has not killed it.
    /// The agent listens on nothing: it serves once it has joined (and said it is ready).
    pub(super) fn serves(&self, bound: usize, wait_ready: bool) -> bool {
        let listens = if self.is_agent() {
            self.online
        } else {
            self.listening.len() >= bound
        };
        listens && (self.ready || !wait_ready) && self.killed_for.is_none()
    }

    /// Whether this is the agent (slot 0), not a worker serving connections.
    pub(super) fn is_agent(&self) -> bool {
        self.slot == AGENT_ID
    }

    /// Whether a connection may be handed to it now.
    pub(super) fn has_room(&self) -> bool {
        self.connected
            && !self.resting
            && !self.suspect
            && !self.is_leaving()
            && self.unacknowledged.len() < HANDOFF_WINDOW
    }

    /// Records a handoff of `conn` made at `now`; returns its `seq`.
    pub(super) fn hand(&mut self, conn: Conn, now: Instant) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        self.unacknowledged.insert(seq, conn);
        self.answer_due_since.get_or_insert(now);
        seq
    }

    /// The handoff `seq`, answered at `now` (`None` if there is no such handoff).
    pub(super) fn acknowledge(&mut self, seq: u64, now: Instant) -> Option<Conn> {
        let conn = self.unacknowledged.remove(&seq)?;
        self.answer_due_since = (!self.unacknowledged.is_empty()).then_some(now);
        Some(conn)
    }

    /// The handoffs it has not acknowledged yet.
    pub(super) fn unacknowledged_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.unacknowledged.keys().copied()
    }

    /// Since when it has owed an answer to a handoff without giving any, if it owes one.
    pub(super) fn answer_due_since(&self) -> Option<Instant> {
        self.answer_due_since
    }

    /// How long it has owed an answer to a handoff without giving any, at `now`.
    pub(super) fn unanswered_for(&self, now: Instant) -> Duration {
        self.answer_due_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// Every handoff not yet acknowledged, in the order they were made, to give to others.
    pub(super) fn take_unacknowledged(&mut self) -> Vec<Conn> {
        self.answer_due_since = None;
        std::mem::take(&mut self.unacknowledged)
            .into_values()
            .collect()
    }

    /// Records a heartbeat's open connections and in-flight requests.
    pub(super) fn report_load(&mut self, connections: u64, requests: u64) {
        self.reported_load = connections.saturating_add(requests);
    }

    /// The load the `least` policy compares: the last report plus the handoffs not yet
    /// acknowledged (which no report can include yet).
    pub(super) fn estimated_load(&self) -> u64 {
        let unacknowledged = u64::try_from(self.unacknowledged.len()).unwrap_or(u64::MAX);
        self.reported_load.saturating_add(unacknowledged)
    }
}
