//! [`TicketKeyring`]: the TLS session-ticket keys of the whole cluster, made and rotated by the
//! master (from the kernel's random source, never written anywhere) and given to every worker
//! when it joins and at each rotation, so a ticket one worker issued resumes on any other,
//! across reloads and recycling. After a rotation the key before stays good for the tickets
//! it sealed, so a ticket from just before a rotation still resumes.

use std::time::Duration;

use clustered_ipc::{TicketKey, TicketKeys};

/// The cluster's ticket keys and when they turn.
pub(crate) struct TicketKeyring {
    keys: TicketKeys,
    rotation: tokio::time::Interval,
}

impl TicketKeyring {
    /// Fresh keys, turned every `period`; an error when the kernel gives no random bytes.
    pub(crate) fn new(period: Duration) -> std::io::Result<Self> {
        let start = tokio::time::Instant::now() + period;
        let mut rotation = tokio::time::interval_at(start, period);
        rotation.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            keys: TicketKeys {
                current: fresh_key()?,
                previous: None,
                lifetime_secs: u32::try_from(period.as_secs()).unwrap_or(u32::MAX),
            },
            rotation,
        })
    }

    /// The keys in use.
    pub(crate) fn keys(&self) -> &TicketKeys {
        &self.keys
    }

    /// Takes the keys an upgrade's old master handed over (with this master's lifetime).
    pub(crate) fn adopt(&mut self, keys: TicketKeys) {
        let lifetime_secs = self.keys.lifetime_secs;
        self.keys = TicketKeys {
            lifetime_secs,
            ..keys
        };
    }

    /// Waits for the next rotation, makes a new current key (the current one becomes the
    /// previous), and returns the keys.
    pub(crate) async fn rotate(&mut self) -> &TicketKeys {
        self.rotation.tick().await;
        match fresh_key() {
            Ok(key) => {
                let previous = std::mem::replace(&mut self.keys.current, key);
                self.keys.previous = Some(previous);
                tracing::info!("rotated the TLS session-ticket keys");
            }
            Err(error) => {
                tracing::error!(%error, "cannot make a new TLS session-ticket key; the current one stays");
            }
        }
        &self.keys
    }
}

/// A key from the kernel's random source.
fn fresh_key() -> std::io::Result<TicketKey> {
    let mut key = TicketKey {
        name: [0; 16],
        secret: [0; 32],
    };
    fill_random(&mut key.name)?;
    fill_random(&mut key.secret)?;
    Ok(key)
}

/// `bytes`, filled from `getrandom(2)` (which blocks only before the kernel's pool is ready,
/// at boot).
fn fill_random(bytes: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(count) => filled += count,
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TicketKeyring;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_rotation_makes_a_new_key_and_keeps_the_one_before() {
        let mut keyring = TicketKeyring::new(Duration::from_secs(3600)).unwrap();
        let first = keyring.keys().clone();
        assert!(first.previous.is_none());
        assert_ne!(first.current.secret, [0; 32]);
        let after = keyring.rotate().await.clone();
        assert_eq!(after.previous.as_ref(), Some(&first.current));
        assert_ne!(after.current, first.current);
        assert_ne!(after.current.name, first.current.name);
    }
}
