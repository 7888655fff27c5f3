//! [`Counters`]: the cluster-wide counters workers change with `ipc::counter`, bounded: a
//! worker chooses the names, so the names one worker may create, their length and their number
//! in all are limited, and the master's memory with them.

use std::collections::HashMap;

use clustered_ipc::CounterOp;

use crate::master::ids::WorkerKey;

/// The longest counter name, in bytes.
pub(super) const MAX_NAME_LEN: usize = 256;
/// Counters one worker process may create.
pub(super) const MAX_CREATED_PER_WORKER: usize = 1024;
/// Counters the cluster holds in all (they outlive the workers that created them).
pub(super) const MAX_COUNTERS: usize = 65_536;

/// Every counter ever created, by name; exact, since only the master changes them.
#[derive(Debug, Default)]
pub(super) struct Counters {
    values: HashMap<String, i64>,
    created_by: HashMap<WorkerKey, usize>,
}

impl Counters {
    /// Applies `op` from `worker` to `name` and returns the value after it (additions
    /// saturate). `add` and `subscribe` create a counter at 0; past a limit that is an error
    /// saying which. `get` of a counter never created is 0 and creates nothing.
    pub(super) fn apply(
        &mut self,
        worker: WorkerKey,
        name: &str,
        op: CounterOp,
    ) -> Result<i64, String> {
        if op == CounterOp::Get {
            return Ok(self.get(name));
        }
        if !self.values.contains_key(name) {
            self.create(worker, name)?;
        }
        let value = self.values.entry(name.to_owned()).or_insert(0);
        if let CounterOp::Add(by) = op {
            *value = value.saturating_add(by);
        }
        Ok(*value)
    }

    fn create(&mut self, worker: WorkerKey, name: &str) -> Result<(), String> {
        if name.len() > MAX_NAME_LEN {
            return Err(format!(
                "a counter name is at most {MAX_NAME_LEN} bytes, this one {}",
                name.len()
            ));
        }
        let created = self.created_by.entry(worker).or_default();
        if *created >= MAX_CREATED_PER_WORKER {
            return Err(format!(
                "this worker created {MAX_CREATED_PER_WORKER} counters, the most one worker may"
            ));
        }
        if self.values.len() >= MAX_COUNTERS {
            return Err(format!(
                "the cluster holds {MAX_COUNTERS} counters, the most it may"
            ));
        }
        *created += 1;
        self.values.insert(name.to_owned(), 0);
        Ok(())
    }

    /// The value of `name` (0 if never created).
    pub(super) fn get(&self, name: &str) -> i64 {
        self.values.get(name).copied().unwrap_or(0)
    }

    /// Every counter's value, by name (for an upgrade to hand on).
    pub(super) fn values(&self) -> std::collections::BTreeMap<String, i64> {
        self.values
            .iter()
            .map(|(name, value)| (name.clone(), *value))
            .collect()
    }

    /// Takes the values an upgrade's old master handed over (at most [`MAX_COUNTERS`] of
    /// them, a longer name left out, as if created here).
    pub(super) fn restore(&mut self, values: std::collections::BTreeMap<String, i64>) {
        for (name, value) in values {
            if name.len() > MAX_NAME_LEN {
                continue;
            }
            if self.values.len() >= MAX_COUNTERS && !self.values.contains_key(&name) {
                tracing::warn!(
                    "the handed-over counters exceed {MAX_COUNTERS}; the rest are left out"
                );
                return;
            }
            self.values.insert(name, value);
        }
    }

    /// A worker that is gone creates nothing more (its counters stay).
    pub(super) fn forget(&mut self, worker: WorkerKey) {
        self.created_by.remove(&worker);
    }
}
