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
//! {"version":2,"command":"ls"}
//! {"version":2,"command":"reload"}
//! {"version":2,"command":"stop"}
//! {"version":2,"command":"scale","to":4}
//! {"version":2,"command":"scale","by":-1}
//! {"version":2,"command":"show","id":2}
//! {"version":2,"command":"kill","id":2}
//! {"version":2,"command":"logs","id":2,"lines":50,"follow":true}
//! {"version":2,"command":"metrics"}
//! ```
//!
//! Each request gets one reply: `{"version":2,"ok":true,…}` with a done command's `message`
//! and its data: `workers` (for `ls` and `show`), `from` and `to` (for `scale`), `replaced`
//! (for `reload` and `kill`: `[{"id":2,"old_pid":4711,"new_pid":4790}]`), `metrics`
//! (Prometheus text) or `lines` (for `logs`; a following `logs` gets one such reply per batch
//! of new lines until it hangs up); or `{"version":2,"ok":false,"error":"…"}`, with
//! `"refused":true` when nothing changed. A request of another version, or one that is not
//! understood, gets an error reply, and the connection stays open for the next.

mod client;
mod protocol;
pub(crate) mod server;

pub use self::client::{follow, request};
pub use self::protocol::{
    CONTROL_PROTOCOL_VERSION, ControlCommand, ControlReply, ControlRequest, Replacement, WorkerRow,
};
