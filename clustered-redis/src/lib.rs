//! The cluster beyond one host: a fleet of masters sharing one Redis.
//!
//! A [`Fleet`] is one master's connection to the fleet's Redis, through the `redis` crate's
//! RESP3 connection manager (it reconnects by itself, and resubscribes; a probe of this
//! crate's own checks that the subscriptions really are back after each reconnect). On it:
//!
//! - **broadcasts** ([`Fleet::publish`], [`Fleet::messages`]): pub/sub on one channel of the
//!   namespace, each message heard once by every other member, in the order its sender sent
//!   them (a member never hears its own);
//! - **messages to one member** ([`Fleet::send_to`], [`Fleet::inbox`]);
//! - **exact counters** ([`Fleet::counter_add`], [`Fleet::counter_get`],
//!   [`Fleet::counter_updates`]): `INCRBY` and `GET` in Redis, each change published;
//! - **a lease** ([`Fleet::lease`]): one holder at a time, `SET NX PX`, renewed by a script that
//!   checks the holder, a fencing token from `INCR` on each acquisition;
//! - **heartbeats** ([`Fleet::announce`], [`Fleet::list_masters`]): a key per member with a TTL.
//!
//! Every operation fails at once with a [`FleetError`] while Redis is unreachable; nothing is
//! counted or queued locally to be sent later.

mod config;
mod error;
mod fleet;
mod heartbeat;
mod host;
mod hub;
mod keys;
mod lease;
mod messages;
mod numbers;
mod probe;
mod subscription;

pub use config::{ENV_NAMESPACE, ENV_URL, FleetConfig};
pub use error::FleetError;
pub use fleet::Fleet;
pub use heartbeat::MasterInfo;
pub use lease::{LeaseHolder, LeaseWatch};
pub use messages::{CounterUpdate, FleetMessage};
pub use subscription::Subscription;
