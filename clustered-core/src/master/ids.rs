//! Identities every part of the master shares: a worker process, a connection it holds.

/// One worker process for its whole life: a replacement in the same slot gets a new key, so
/// late news of a dead worker never touches its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct WorkerKey(pub(crate) u64);

/// One accepted connection, held by the master until a worker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(pub(crate) u64);
