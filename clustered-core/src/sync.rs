//! Small synchronisation helpers.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex. A panic elsewhere while it was held does not break the state it guards (each
/// critical section here is a single map or flag update), so poisoning is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
