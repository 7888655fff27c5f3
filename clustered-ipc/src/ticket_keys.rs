//! [`TicketKeys`]: the TLS session-ticket keys the master gives every worker, so that a ticket
//! one worker issued resumes on any other.

use serde::{Deserialize, Serialize};

/// One session-ticket key: its name (sent in every ticket it seals, to find the key again)
/// and its secret. Its `Debug` shows the name only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketKey {
    /// Names the key in the tickets it seals.
    pub name: [u8; 16],
    /// The AEAD key (256 bits).
    pub secret: [u8; 32],
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKey")
            .field("name", &self.name)
            .field("secret", &"…")
            .finish()
    }
}

/// The keys in use: `current` seals new tickets; `previous`, the one before the last rotation,
/// still opens the tickets it sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketKeys {
    /// Seals new tickets, and opens them.
    pub current: TicketKey,
    /// Opens tickets sealed before the last rotation.
    pub previous: Option<TicketKey>,
    /// How long a ticket sealed now stays good, in seconds (the rotation period: one sealed
    /// just before a rotation opens until the next).
    #[serde(default)]
    pub lifetime_secs: u32,
}

#[cfg(test)]
mod tests {
    use super::TicketKey;

    #[test]
    fn a_key_s_debug_never_shows_its_secret() {
        let key = TicketKey {
            name: [1; 16],
            secret: [0xab; 32],
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("171"), "{shown}");
    }
}
