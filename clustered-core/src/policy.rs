//! [`Policy`]: how a listening address's connections reach the workers (`CLUSTER_SCHED_POLICY`).

use clustered_ipc::ListenMode;

/// How connections for a listen key reach the workers (`CLUSTER_SCHED_POLICY`).
///
/// ```
/// use clustered_core::Policy;
/// assert_eq!("sticky".parse::<Policy>(), Ok(Policy::Sticky));
/// assert!("fifo".parse::<Policy>().unwrap_err().contains("rr, sticky"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        self.listen_mode() == ListenMode::Delivered
    }

    /// How a worker under this policy gets its connections: what the master tells it.
    pub(crate) fn listen_mode(self) -> ListenMode {
        match self {
            Policy::Rr | Policy::Sticky | Policy::Least => ListenMode::Delivered,
            Policy::Shared => ListenMode::Shared,
            Policy::Reuseport => ListenMode::Reuseport,
        }
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
