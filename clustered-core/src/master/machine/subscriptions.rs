//! Which workers follow which counters, and which counters changed since the last push.
//! Pushes are coalesced: at most one per counter per [`PUSH_INTERVAL`], with the latest value.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::master::ids::WorkerKey;

/// How often changed counters are pushed to their subscribers, at most.
pub(super) const PUSH_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    subscribers: HashMap<String, HashSet<WorkerKey>>,
    changed: HashSet<String>,
}

impl Subscriptions {
    pub(super) fn subscribe(&mut self, name: &str, worker: WorkerKey) {
        self.subscribers
            .entry(name.to_owned())
            .or_default()
            .insert(worker);
    }

    /// Notes that `name` changed; `true` when a push must be scheduled (the first change
    /// since the last push of a counter someone follows).
    pub(super) fn changed(&mut self, name: String) -> bool {
        if !self.subscribers.contains_key(&name) {
            return false;
        }
        let first = self.changed.is_empty();
        self.changed.insert(name);
        first
    }

    /// The changed counters and who follows them; clears the changes.
    pub(super) fn take_changed(&mut self) -> Vec<(String, HashSet<WorkerKey>)> {
        self.changed
            .drain()
            .filter_map(|name| {
                let subscribers = self.subscribers.get(&name)?.clone();
                Some((name, subscribers))
            })
            .collect()
    }

    /// A worker that is gone follows nothing.
    pub(super) fn forget(&mut self, worker: WorkerKey) {
        for subscribers in self.subscribers.values_mut() {
            subscribers.remove(&worker);
        }
        self.subscribers
            .retain(|_, subscribers| !subscribers.is_empty());
    }
}
