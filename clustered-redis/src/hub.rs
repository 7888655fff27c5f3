//! [`Hub`]: the push messages Redis sends this member, each to the subscriptions of its
//! channel (the connection manager calls [`Hub::dispatch`] from its reader, so it never blocks).

use redis::{PushInfo, PushKind, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::keys::Keys;
use crate::messages::{CounterUpdate, FleetMessage};
use crate::numbers;

/// Items a subscription keeps before it drops the oldest.
const CAPACITY: usize = 4096;

/// What travels on the broadcast and inbox channels.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) from: String,
    pub(crate) data: serde_json::Value,
}

/// The channels this member listens on, and who hears each.
#[derive(Debug)]
pub(crate) struct Hub {
    id: String,
    broadcast_channel: String,
    inbox_channel: String,
    counters_channel: String,
    probe_channel: String,
    pub(crate) messages: broadcast::Sender<FleetMessage>,
    pub(crate) inbox: broadcast::Sender<FleetMessage>,
    pub(crate) counters: broadcast::Sender<CounterUpdate>,
    pub(crate) probes: broadcast::Sender<String>,
    pub(crate) disconnections: broadcast::Sender<()>,
}

impl Hub {
    pub(crate) fn new(id: &str, keys: &Keys) -> Self {
        Self {
            id: id.to_owned(),
            broadcast_channel: keys.broadcast(),
            inbox_channel: keys.inbox(id),
            counters_channel: keys.counter_updates(),
            probe_channel: keys.probe(id),
            messages: broadcast::channel(CAPACITY).0,
            inbox: broadcast::channel(CAPACITY).0,
            counters: broadcast::channel(CAPACITY).0,
            probes: broadcast::channel(16).0,
            disconnections: broadcast::channel(16).0,
        }
    }

    /// Every channel this member subscribes to.
    pub(crate) fn channels(&self) -> [String; 4] {
        [
            self.broadcast_channel.clone(),
            self.inbox_channel.clone(),
            self.counters_channel.clone(),
            self.probe_channel.clone(),
        ]
    }

    /// Hands one push to the subscriptions of its channel; what cannot be read is dropped
    /// (logged), never a panic.
    pub(crate) fn dispatch(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {}
            PushKind::Disconnection => {
                let _ = self.disconnections.send(());
                return;
            }
            _ => return,
        }
        let [channel, payload] = push.data.as_slice() else {
            return;
        };
        let (Some(channel), Some(payload)) = (numbers::text(channel), payload_text(payload)) else {
            return;
        };
        if channel == self.probe_channel {
            let _ = self.probes.send(payload);
        } else if channel == self.counters_channel {
            match serde_json::from_str::<CounterUpdate>(&payload) {
                Ok(update) => {
                    let _ = self.counters.send(update);
                }
                Err(error) => tracing::debug!(%error, "a counter update that is not one, dropped"),
            }
        } else if channel == self.broadcast_channel || channel == self.inbox_channel {
            let envelope = match serde_json::from_str::<Envelope>(&payload) {
                Ok(envelope) => envelope,
                Err(error) => {
                    tracing::debug!(%error, %channel, "a fleet message that is not one, dropped");
                    return;
                }
            };
            let message = FleetMessage {
                from: envelope.from,
                data: envelope.data,
            };
            if channel == self.inbox_channel {
                let _ = self.inbox.send(message);
            } else if message.from != self.id {
                let _ = self.messages.send(message);
            }
        }
    }
}

fn payload_text(value: &Value) -> Option<String> {
    numbers::text(value)
}
