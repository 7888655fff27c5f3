//! [`AgentRequests`]: workers' requests for the agent that it has not answered yet, by the
//! number the master gave each (the agent answers by it; the worker waits on its own `seq`).

use rustc_hash::FxHashMap;

use crate::master::ids::WorkerKey;

/// Requests the agent may owe at once; past this, more fail at once (the master holds each
/// until it is answered, so a slow agent must not make that unbounded).
pub(super) const MAX_UNANSWERED: usize = 4096;

/// One request on its way through the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    /// Who asked.
    pub(super) asker: Asker,
    /// The agent process asked.
    pub(super) agent: WorkerKey,
}

/// Who asked the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Asker {
    /// A worker of this master, and its request's `seq`.
    Worker { worker: WorkerKey, seq: u64 },
    /// Another master of the fleet (its fleet id), and its number for the request.
    Fleet { master: String, id: u64 },
}

/// Requests the agent has not answered.
#[derive(Debug, Default)]
pub(super) struct AgentRequests {
    pending: FxHashMap<u64, Pending>,
    next_id: u64,
}

impl AgentRequests {
    /// Whether the agent owes [`MAX_UNANSWERED`] answers already.
    pub(super) fn is_full(&self) -> bool {
        self.pending.len() >= MAX_UNANSWERED
    }

    /// Records a request; the number the agent answers it by.
    pub(super) fn add(&mut self, pending: Pending) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.pending.insert(id, pending);
        id
    }

    /// The request `id`, answered by `agent` (`None` if it is not that agent's to answer).
    pub(super) fn answer(&mut self, id: u64, agent: WorkerKey) -> Option<Pending> {
        let pending = self.pending.get(&id)?;
        if pending.agent != agent {
            return None;
        }
        self.pending.remove(&id)
    }

    /// Every request `agent` still owed an answer to.
    pub(super) fn take_unanswered(&mut self, agent: WorkerKey) -> Vec<Pending> {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.agent == agent)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .collect()
    }
}
