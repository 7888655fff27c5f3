//! [`SharedTickets`]: TLS session tickets sealed with the cluster's keys, which the master
//! makes, rotates and gives every worker ([`clustered_core::ticket_keys`]), so a client that
//! got a ticket from one worker resumes its session on any other, across reloads, recycling
//! and a rotation (the key before still opens the tickets it sealed).
//!
//! A ticket is the key's 16-byte name, a 12-byte random nonce, and the session state sealed
//! with ChaCha20-Poly1305 under that key, the name as associated data. Until the master has
//! given keys (a program run outside a cluster), no tickets are issued.

use clustered_core::ticket_keys::{TicketKey, TicketKeys};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::watch;

/// Bytes of a key's name at the start of a ticket.
const NAME_LEN: usize = 16;

/// Seals and opens tickets with the cluster's current keys.
#[derive(Debug)]
pub(crate) struct SharedTickets {
    keys: watch::Receiver<Option<TicketKeys>>,
    random: SystemRandom,
}

impl SharedTickets {
    pub(crate) fn new() -> Self {
        Self {
            keys: clustered_core::ticket_keys::subscribe(),
            random: SystemRandom::new(),
        }
    }
}

/// `key` as ring's AEAD key.
fn aead(key: &TicketKey) -> Option<LessSafeKey> {
    UnboundKey::new(&CHACHA20_POLY1305, &key.secret)
        .ok()
        .map(LessSafeKey::new)
}

impl rustls::server::ProducesTickets for SharedTickets {
    fn enabled(&self) -> bool {
        self.keys.borrow().is_some()
    }

    fn lifetime(&self) -> u32 {
        self.keys
            .borrow()
            .as_ref()
            .map_or(0, |keys| keys.lifetime_secs)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let keys = self.keys.borrow();
        let key = &keys.as_ref()?.current;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        // Sealed in place in the ticket itself: no second buffer.
        let mut sealed = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + 16);
        sealed.extend_from_slice(&key.name);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plain);
        let tag = aead(key)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.name),
                &mut sealed[NAME_LEN + NONCE_LEN..],
            )
            .ok()?;
        sealed.extend_from_slice(tag.as_ref());
        Some(sealed)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let name = cipher.get(..NAME_LEN)?;
        let nonce: [u8; NONCE_LEN] = cipher
            .get(NAME_LEN..NAME_LEN + NONCE_LEN)?
            .try_into()
            .ok()?;
        let mut body = cipher.get(NAME_LEN + NONCE_LEN..)?.to_vec();
        let keys = self.keys.borrow();
        let keys = keys.as_ref()?;
        let key = [Some(&keys.current), keys.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| key.name == name)?;
        let plain = aead(key)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.name),
                &mut body,
            )
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;

    fn key(byte: u8) -> TicketKey {
        TicketKey {
            name: [byte; 16],
            secret: [byte; 32],
        }
    }

    fn tickets(keys: Option<TicketKeys>) -> SharedTickets {
        SharedTickets {
            keys: watch::Sender::new(keys).subscribe(),
            random: SystemRandom::new(),
        }
    }

    #[test]
    fn a_ticket_opens_under_its_key_current_or_previous_and_nothing_else() {
        let before = tickets(Some(TicketKeys {
            current: key(1),
            previous: None,
            lifetime_secs: 60,
        }));
        let ticket = before.encrypt(b"session state").unwrap();
        assert_ne!(&ticket[NAME_LEN + NONCE_LEN..], b"session state");
        // Another worker with the same keys opens it.
        assert_eq!(before.decrypt(&ticket).unwrap(), b"session state");
        // After a rotation, the key before still opens it.
        let rotated = tickets(Some(TicketKeys {
            current: key(2),
            previous: Some(key(1)),
            lifetime_secs: 60,
        }));
        assert_eq!(rotated.decrypt(&ticket).unwrap(), b"session state");
        // Two rotations on, it does not.
        let later = tickets(Some(TicketKeys {
            current: key(3),
            previous: Some(key(2)),
            lifetime_secs: 60,
        }));
        assert_eq!(later.decrypt(&ticket), None);
        // Tampered with, cut short, or made up: nothing, no panic.
        let mut tampered = ticket.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(before.decrypt(&tampered), None);
        assert_eq!(before.decrypt(&ticket[..10]), None);
        assert_eq!(before.decrypt(&[]), None);
    }

    #[test]
    fn without_keys_no_ticket_is_issued() {
        let none = tickets(None);
        assert!(!none.enabled());
        assert_eq!(none.encrypt(b"x"), None);
        assert_eq!(none.decrypt(&[0; 64]), None);
    }
}
