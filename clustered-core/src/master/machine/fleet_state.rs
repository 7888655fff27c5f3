//! [`FleetState`]: what the machine knows of the fleet's Redis (plain data).

use std::collections::HashMap;

use super::counters::MAX_COUNTERS;

/// Whether Redis is reachable, and the latest fleet-wide counter values heard (only to push
/// to subscribers: every answer to a worker comes from Redis itself).
#[derive(Debug, Default)]
pub(super) struct FleetState {
    pub(super) up: bool,
    /// The fleet's lease, held by this master with this fencing token: its agent runs here.
    pub(super) lease: Option<u64>,
    heard: HashMap<String, i64>,
}

impl FleetState {
    /// Notes the latest value of `name` (at most [`MAX_COUNTERS`] names are kept).
    pub(super) fn heard(&mut self, name: &str, value: i64) {
        if self.heard.len() >= MAX_COUNTERS && !self.heard.contains_key(name) {
            return;
        }
        self.heard.insert(name.to_owned(), value);
    }

    /// The latest value heard of `name`.
    pub(super) fn value(&self, name: &str) -> Option<i64> {
        self.heard.get(name).copied()
    }
}
