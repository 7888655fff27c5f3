//! [`Counters`]: the cluster-wide counters workers change with `ipc::counter`.

use std::collections::HashMap;

use cluster_ipc::CounterOp;

/// Every counter ever touched, by name; exact, since only the master changes them.
#[derive(Debug, Default)]
pub(super) struct Counters {
    values: HashMap<String, i64>,
}

impl Counters {
    /// Applies `op` to `name` (created at 0) and returns the value after it; additions
    /// saturate instead of overflowing.
    pub(super) fn apply(&mut self, name: &str, op: CounterOp) -> i64 {
        let value = match self.values.get_mut(name) {
            Some(value) => value,
            None => self.values.entry(name.to_owned()).or_insert(0),
        };
        if let CounterOp::Add(by) = op {
            *value = value.saturating_add(by);
        }
        *value
    }

    /// The value of `name` (0 if never touched).
    pub(super) fn get(&self, name: &str) -> i64 {
        self.values.get(name).copied().unwrap_or(0)
    }
}
