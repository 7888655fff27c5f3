//! [`Registry`]: what the master publishes for user code to read at any time: the live workers'
//! handles, the counters' values, each slot's restarts and last exit, and the handoff counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::handle::WorkerHandle;
use super::ids::WorkerKey;
use super::machine::NOT_STARTED;
use super::process_exit::ExitReason;
use crate::sync::lock;

/// The master's published state.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    workers: Mutex<BTreeMap<WorkerKey, WorkerHandle>>,
    counters: Mutex<HashMap<String, i64>>,
    slots: Mutex<HashMap<usize, SlotHistory>>,
    /// Connections handed to workers so far.
    handoffs: AtomicU64,
    /// Accepted connections waiting in the master for a worker with room.
    backlog: AtomicU64,
    /// Whether the cluster takes traffic, as the machine last said (`/readyz`).
    readiness: Mutex<Readiness>,
    /// The fleet's Redis, when the master has one: reachable, and reconnects so far.
    fleet: Mutex<Option<FleetStatus>>,
}

/// What the master knows of its fleet's Redis (`/metrics`, `ClusterControl::broadcast`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FleetStatus {
    /// Redis is reachable and the subscriptions are in place.
    pub(crate) up: bool,
    /// Times the connection came back after it was lost.
    pub(crate) reconnects: u64,
    /// The fleet's lease, while this master holds it: its fencing token, which the agent
    /// gets (`CLUSTER_AGENT_TOKEN`).
    pub(crate) agent_token: Option<u64>,
}

/// Whether the cluster takes traffic: `Ok`, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readiness(pub(crate) Result<(), &'static str>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Err(NOT_STARTED))
    }
}

/// What happened to one slot's workers so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SlotHistory {
    /// Workers restarted in it after dying on their own.
    pub(crate) restarts: u32,
    /// Why its last worker to exit ended.
    pub(crate) last_exit: Option<ExitReason>,
}

impl Registry {
    /// The fleet's status, as the driver's fleet task last saw it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn set_fleet(&self, status: FleetStatus) {
        *lock(&self.fleet) = Some(status);
    }

    /// The fleet's status (`None`: this master has no fleet).
    pub(crate) fn fleet(&self) -> Option<FleetStatus> {
        *lock(&self.fleet)
    }

    /// Every live worker, in slot order (during a reload a slot may have two, oldest first).
    pub(crate) fn workers(&self) -> Vec<WorkerHandle> {
        let mut workers: Vec<WorkerHandle> = lock(&self.workers).values().cloned().collect();
        workers.sort_by_key(|worker| (worker.id(), worker.key()));
        workers
    }

    pub(crate) fn add_worker(&self, worker: WorkerHandle) {
        lock(&self.workers).insert(worker.key(), worker);
    }

    pub(crate) fn remove_worker(&self, key: WorkerKey) {
        lock(&self.workers).remove(&key);
    }

    pub(crate) fn note_restart(&self, slot: usize) {
        let mut slots = lock(&self.slots);
        let history = slots.entry(slot).or_default();
        history.restarts = history.restarts.saturating_add(1);
    }

    pub(crate) fn note_exit(&self, slot: usize, reason: ExitReason) {
        lock(&self.slots).entry(slot).or_default().last_exit = Some(reason);
    }

    /// The history of `slot` (empty if nothing happened to it yet).
    pub(crate) fn slot(&self, slot: usize) -> SlotHistory {
        lock(&self.slots).get(&slot).copied().unwrap_or_default()
    }

    /// Each slot's restart count (slots that had any), for an upgrade to hand on.
    pub(crate) fn restarts(&self) -> BTreeMap<usize, u64> {
        lock(&self.slots)
            .iter()
            .filter(|(_, history)| history.restarts > 0)
            .map(|(slot, history)| (*slot, u64::from(history.restarts)))
            .collect()
    }

    /// Adds the restart counts an upgrade's old master handed over to each slot's.
    pub(crate) fn inherit_restarts(&self, restarts: Vec<(usize, u64)>) {
        let mut slots = lock(&self.slots);
        for (slot, count) in restarts {
            let history = slots.entry(slot).or_default();
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            history.restarts = history.restarts.saturating_add(count);
        }
    }

    /// Restarts of workers that died on their own, over every slot.
    pub(crate) fn total_restarts(&self) -> u64 {
        lock(&self.slots)
            .values()
            .map(|history| u64::from(history.restarts))
            .sum()
    }

    pub(crate) fn count_handoffs(&self, count: usize) {
        self.handoffs
            .fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Connections handed to workers so far.
    pub(crate) fn handoffs(&self) -> u64 {
        self.handoffs.load(Ordering::Relaxed)
    }

    /// Adds the handoffs an upgrade's old master made.
    pub(crate) fn inherit_handoffs(&self, handoffs: u64) {
        self.handoffs.fetch_add(handoffs, Ordering::Relaxed);
    }

    pub(crate) fn set_backlog(&self, queued: usize) {
        self.backlog.store(queued as u64, Ordering::Relaxed);
    }

    /// Accepted connections waiting for a worker.
    pub(crate) fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    pub(crate) fn set_readiness(&self, readiness: Result<(), &'static str>) {
        *lock(&self.readiness) = Readiness(readiness);
    }

    /// Whether the cluster takes traffic, or why not (what `/readyz` says).
    #[cfg(feature = "metrics-endpoint")]
    pub(crate) fn readiness(&self) -> Result<(), &'static str> {
        lock(&self.readiness).0
    }

    /// The value of the counter `name` (0 if never touched).
    pub(crate) fn counter(&self, name: &str) -> i64 {
        lock(&self.counters).get(name).copied().unwrap_or(0)
    }

    pub(crate) fn set_counter(&self, name: String, value: i64) {
        lock(&self.counters).insert(name, value);
    }
}
