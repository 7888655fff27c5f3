//! [`BoundAddresses`]: the addresses the cluster listens on, and the workers waiting for one to be
//! bound. The sockets themselves are the driver's.

use clustered_ipc::ListenAddr;
use std::collections::{BTreeMap, HashMap};

use clustered_ipc::ListenKey;

use crate::master::ids::WorkerKey;

/// A worker's `queryServer` waiting for its address: the worker and the query's `seq`.
pub(super) type Waiter = (WorkerKey, u64);

/// What to do about a worker's wish to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Wish {
    /// Bound already: answer at once.
    Bound(ListenAddr),
    /// Nobody asked before: bind it (the waiter is answered once it is).
    Bind,
    /// Being bound: the waiter is answered with the others.
    Wait,
}

/// Bound addresses by key, and pending binds.
#[derive(Debug, Default)]
pub(super) struct BoundAddresses {
    bound: BTreeMap<ListenKey, ListenAddr>,
    binding: HashMap<ListenKey, Vec<Waiter>>,
}

impl BoundAddresses {
    /// Files a wish to listen on `key` (with no waiter for the master's own start-up binds).
    pub(super) fn wish(&mut self, key: ListenKey, waiter: Option<Waiter>) -> Wish {
        if let Some(address) = self.bound.get(&key) {
            return Wish::Bound(address.clone());
        }
        let first = !self.binding.contains_key(&key);
        self.binding.entry(key).or_default().extend(waiter);
        if first { Wish::Bind } else { Wish::Wait }
    }

    /// `key` is bound at `address`; returns who waited for it.
    pub(super) fn bound(&mut self, key: ListenKey, address: ListenAddr) -> Vec<Waiter> {
        let waiters = self.binding.remove(&key).unwrap_or_default();
        self.bound.insert(key, address);
        waiters
    }

    /// `key` cannot be bound; returns who waited for it.
    pub(super) fn failed(&mut self, key: &ListenKey) -> Vec<Waiter> {
        self.binding.remove(key).unwrap_or_default()
    }

    /// Whether every one of `addresses` is bound.
    pub(super) fn all_bound(&self, addresses: &[String]) -> bool {
        addresses
            .iter()
            .all(|address| self.bound.contains_key(&ListenKey::from(address.as_str())))
    }

    /// The bound address of `key`.
    pub(super) fn address_of(&self, key: &ListenKey) -> Option<ListenAddr> {
        self.bound.get(key).cloned()
    }

    /// How many addresses are bound.
    pub(super) fn len(&self) -> usize {
        self.bound.len()
    }

    /// Every bound address, in key order.
    pub(super) fn addresses(&self) -> Vec<ListenAddr> {
        self.bound.values().cloned().collect()
    }
}
