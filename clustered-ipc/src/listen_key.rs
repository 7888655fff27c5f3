//! [`ListenKey`], which names a listening address across the cluster, and [`Policy`], how
//! its connections reach the workers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Names one listening address across the cluster: the address as the worker asked for it.
///
/// ```
/// use clustered_ipc::ListenKey;
/// let key = ListenKey::from("127.0.0.1:3000");
/// assert_eq!(key.as_str(), "127.0.0.1:3000");
/// ```
///
/// Cloning one is cheap (a shared string): the master copies the key into every handoff.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListenKey(Arc<str>);

impl ListenKey {
    /// The address text this key stands for.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ListenKey {
    fn from(address: &str) -> Self {
        ListenKey(Arc::from(address))
    }
}

impl From<String> for ListenKey {
    fn from(address: String) -> Self {
        ListenKey(Arc::from(address))
    }
}

impl std::fmt::Display for ListenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How connections for a listen key reach the workers (`CLUSTER_SCHED_POLICY`).
///
/// ```
/// use clustered_ipc::Policy;
/// assert_eq!("sticky".parse::<Policy>(), Ok(Policy::Sticky));
/// assert!("fifo".parse::<Policy>().unwrap_err().contains("rr, sticky"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Policy {
    /// The master accepts and hands each connection to the next worker in turn (pipelined).
    Rr,
    /// The master accepts and hands each connection to a worker chosen by the client's IP,
    /// so a client keeps reaching the same worker while it lives.
    Sticky,
    /// The master sends the listening socket itself; workers accept (Node's `SCHED_NONE`).
    Shared,
    /// Each worker binds its own socket with `SO_REUSEPORT`; the kernel balances.
    Reuseport,
    /// The master accepts and hands each connection to the worker with the fewest open
    /// connections and in-flight requests (from the workers' heartbeats).
    Least,
}

impl Policy {
    /// Every policy, by the name `CLUSTER_SCHED_POLICY` takes.
    pub const ALL: &'static [(&'static str, Policy)] = &[
        ("rr", Policy::Rr),
        ("sticky", Policy::Sticky),
        ("shared", Policy::Shared),
        ("reuseport", Policy::Reuseport),
        ("least", Policy::Least),
    ];

    /// Whether the master accepts connections and hands them over (else workers accept).
    pub fn master_accepts(self) -> bool {
        matches!(self, Policy::Rr | Policy::Sticky | Policy::Least)
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(name: &str) -> Result<Policy, String> {
        Policy::ALL
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name.trim()))
            .map(|(_, policy)| *policy)
            .ok_or_else(|| {
                let names: Vec<&str> = Policy::ALL.iter().map(|(known, _)| *known).collect();
                format!(
                    "unknown policy `{name}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}
