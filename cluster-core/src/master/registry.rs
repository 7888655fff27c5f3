//! [`Registry`]: what the master publishes for user code to read at any time: the live workers'
//! handles and the counters' values.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::handle::WorkerHandle;
use super::ids::WorkerKey;
use crate::sync::lock;

/// The master's published state.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    workers: Mutex<BTreeMap<WorkerKey, WorkerHandle>>,
    counters: Mutex<HashMap<String, i64>>,
}

impl Registry {
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

    /// The value of the counter `name` (0 if never touched).
    pub(crate) fn counter(&self, name: &str) -> i64 {
        lock(&self.counters).get(name).copied().unwrap_or(0)
    }

    pub(crate) fn set_counter(&self, name: String, value: i64) {
        lock(&self.counters).insert(name, value);
    }
}
