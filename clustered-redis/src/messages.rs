//! What members hear from each other: [`FleetMessage`] and [`CounterUpdate`].

use serde::{Deserialize, Serialize};

/// A message from another member: who sent it, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetMessage {
    /// The sending member's id (`Fleet::id`).
    pub from: String,
    /// What it sent.
    pub data: serde_json::Value,
}

/// A counter's value after a change anywhere in the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterUpdate {
    /// The counter.
    pub name: String,
    /// Its value after the change.
    pub value: i64,
}
