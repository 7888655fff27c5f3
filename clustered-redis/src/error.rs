//! [`FleetError`]: what a fleet operation fails with, each saying what to do.

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The settings are wrong (the URL, the namespace).
    #[error("{0}")]
    Config(String),
    /// Redis cannot be reached right now; nothing was done.
    #[error(
        "Redis at {url} is unreachable ({reason}); nothing was sent: retry once it is back (the connection comes back by itself)"
    )]
    Down {
        /// The Redis URL.
        url: String,
        /// What the last attempt said.
        reason: String,
    },
    /// Redis answered with an error, or with something this crate does not understand.
    #[error("Redis refused the operation: {0}; check the server's log and version (6 or later)")]
    Redis(String),
    /// The member a message was sent to is not listening.
    #[error("no fleet member {0} is listening; list them with `clusterctl fleet`")]
    NoSuchMember(String),
    /// The fleet was shut down.
    #[error("the fleet connection was shut down")]
    Closed,
}
