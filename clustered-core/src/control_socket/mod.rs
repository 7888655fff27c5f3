//! The master's control socket, for `clusterctl` (PM2's `pm2 ls`, `pm2 reload`…).
//!
//! Opt-in: `CLUSTER_CONTROL_SOCKET=PATH` or [`crate::Cluster::control_socket`]. The master
//! listens on a Unix socket at PATH, mode 0600, answers only peers of its own user (checked with
//! `SO_PEERCRED`), and removes the file when it exits. A file left by a master that is gone is
//! replaced; one a running master answers on is refused with an error naming the path.
//!
//! # Wire format
//!
//! Each message is a frame of tokio-util's `LengthDelimitedCodec` (a big-endian `u32` length,
//! then the payload; a request at most 1 MiB, a reply 16 MiB) holding one JSON object. A request names its protocol
//! version and its command:
//!
//! ```text
//! {"version":1,"command":"ls"}
//! {"version":1,"command":"reload"}
//! {"version":1,"command":"stop"}
//! {"version":1,"command":"scale","to":4}
//! {"version":1,"command":"scale","by":-1}
//! {"version":1,"command":"show","id":2}
//! {"version":1,"command":"kill","id":2}
//! {"version":1,"command":"logs","id":2,"lines":50,"follow":true}
//! {"version":1,"command":"metrics"}
//! ```
//!
//! Each request gets one reply: `{"version":1,"ok":true,…}` with `workers` (for `ls` and
//! `show`), `metrics` (Prometheus text, for `metrics`), `lines` (for `logs`; a following `logs` gets one such reply per batch of new lines
//! until it hangs up) or `message`, or `{"version":1,"ok":false,"error":"…"}`. A request of another version, or one
//! that is not understood, gets an error reply, and the connection stays open for the next.

mod client;
mod protocol;
pub(crate) mod server;

pub use self::client::{follow, request};
pub use self::protocol::{
    CONTROL_PROTOCOL_VERSION, ControlCommand, ControlReply, ControlRequest, WorkerRow,
};
