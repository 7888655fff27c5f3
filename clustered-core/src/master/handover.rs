//! The handover between a master and the new master an upgrade starts (`kill -USR2`,
//! `clusterctl upgrade`): what they say to each other on the socketpair the old one gives the
//! new one (`CLUSTER_UPGRADE_FD`), and how.
//!
//! The listening sockets (and the control and admin sockets) travel as systemd hands sockets
//! over: descriptors from 3 up, named by `LISTEN_FDS`/`LISTEN_FDNAMES`
//! (read by `inherited.rs`), so one code path takes sockets from systemd and from an old
//! master. What else moves travels here, as frames of a `u32` big-endian length and a JSON
//! object (tokio-util's `LengthDelimitedCodec`, at most [`MAX_FRAME`] bytes):
//!
//! ```text
//! new → old  {"kind":"hello","version":1,"pid":4790}     at once
//! new → old  {"kind":"serving"}                          once every worker of it serves
//! old → new  {"kind":"state","counters":{…},"restarts":{…},"metrics":[…]}
//!                                                        the old one stops accepting; its
//!                                                        state is the new one's from here
//! old → new  {"kind":"counter","id":7,"name":"hits","op":{"add":1}}
//! new → old  {"kind":"counterDone","id":7,"outcome":{"ok":1001}}
//!                                                        a draining old worker's counter
//!                                                        operation, applied by the new one
//! old → new  {"kind":"final","metrics":[…]}              the old one's last totals, as it exits
//! ```
//!
//! Versioned: a new master of another [`HANDOVER_VERSION`] is refused by the old one with a
//! reason before anything moves, and the old master keeps serving. Unknown fields are ignored
//! and missing ones default, so a version can grow without a new number.

use std::collections::BTreeMap;

use clustered_ipc::{CounterOp, Outcome};
use serde::{Deserialize, Serialize};

use crate::shared_metrics::MetricTotal;

/// The version of the handover this build speaks.
pub(crate) const HANDOVER_VERSION: u32 = 1;

/// The largest handover frame: the state of every counter and metric series fits many times.
pub(crate) const MAX_FRAME: usize = 64 * 1024 * 1024;

/// The name of the admin (metrics) socket among the handed-over sockets.
pub(crate) const ADMIN_SOCKET: &str = "cluster-admin";
/// The name of the control socket among the handed-over sockets.
pub(crate) const CONTROL_SOCKET: &str = "cluster-control";

/// One handover message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(crate) enum HandoverMessage {
    /// New → old, first: the handover version it speaks and its pid.
    Hello {
        /// Its [`HANDOVER_VERSION`].
        version: u32,
        /// Its process id.
        pid: u32,
    },
    /// New → old: every worker of the new master serves.
    Serving,
    /// Old → new: the old master's state, once it has stopped accepting.
    State {
        /// Every shared counter's value, by name.
        #[serde(default)]
        counters: BTreeMap<String, i64>,
        /// Each slot's restart count, as (slot, count) pairs (a map's number keys do not
        /// survive serde's tagged enums).
        #[serde(default)]
        restarts: Vec<(usize, u64)>,
        /// The totals of every counter and histogram series, over all of the old master's
        /// processes, dead and alive.
        #[serde(default)]
        metrics: Vec<MetricTotal>,
        /// Connections the old master handed to its workers.
        #[serde(default)]
        handoffs: u64,
        /// The TLS session-ticket keys, so sessions resume across the upgrade.
        #[serde(default)]
        ticket_keys: Option<clustered_ipc::TicketKeys>,
        /// The files of the Unix sockets the old master bound (and handed over): the new one
        /// removes them when it stops.
        #[serde(default)]
        socket_files: Vec<std::path::PathBuf>,
    },
    /// Old → new: a counter operation of one of the old master's draining workers.
    Counter {
        /// Matches the answer.
        id: u64,
        /// The counter.
        name: String,
        /// What to do.
        op: CounterOp,
    },
    /// New → old: what became of counter operation `id`.
    CounterDone {
        /// The `id` of the [`HandoverMessage::Counter`] answered.
        id: u64,
        /// The value, or why not.
        outcome: Outcome,
    },
    /// Old → new: the old master's totals as it exits (its drained workers' last counts).
    Final {
        /// As in [`HandoverMessage::State`].
        #[serde(default)]
        metrics: Vec<MetricTotal>,
    },
}

/// The encoded frame body of `message`.
pub(crate) fn encode(message: &HandoverMessage) -> bytes::Bytes {
    // Serializing these types cannot fail: every map key is a string or a number.
    serde_json::to_vec(message).unwrap_or_default().into()
}

/// The message in one frame body; why not, in one line.
pub(crate) fn decode(frame: &[u8]) -> Result<HandoverMessage, String> {
    serde_json::from_slice(frame).map_err(|error| format!("a malformed handover frame: {error}"))
}

/// The frames' codec: a `u32` length, then the body, at most [`MAX_FRAME`] bytes.
pub(crate) fn codec() -> tokio_util::codec::LengthDelimitedCodec {
    tokio_util::codec::LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// Why a new master speaking `version` cannot take over from this one, if it cannot.
pub(crate) fn refuse_version(version: u32) -> Option<String> {
    (version != HANDOVER_VERSION).then(|| {
        format!(
            "the new master speaks handover version {version}, this one {HANDOVER_VERSION}: upgrade by a full restart"
        )
    })
}

/// Escapes `name` for `LISTEN_FDNAMES`, whose names are `:`-separated: `%` and `:` as `%25`
/// and `%3A` (a listen key is an address, `127.0.0.1:3000`).
pub(crate) fn escape_name(name: &str) -> String {
    name.replace('%', "%25").replace(':', "%3A")
}

/// The name [`escape_name`] escaped.
pub(crate) fn unescape_name(name: &str) -> String {
    name.replace("%3A", ":")
        .replace("%3a", ":")
        .replace("%25", "%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_survives_the_wire() {
        let messages = [
            HandoverMessage::Hello {
                version: HANDOVER_VERSION,
                pid: 4790,
            },
            HandoverMessage::Serving,
            HandoverMessage::State {
                counters: BTreeMap::from([("hits".into(), 1000)]),
                restarts: vec![(1, 3)],
                metrics: Vec::new(),
                handoffs: 12,
                ticket_keys: None,
                socket_files: vec!["/run/app.sock".into()],
            },
            HandoverMessage::Counter {
                id: 7,
                name: "hits".into(),
                op: CounterOp::Add(1),
            },
            HandoverMessage::CounterDone {
                id: 7,
                outcome: Outcome::Ok(1001.into()),
            },
            HandoverMessage::Final {
                metrics: Vec::new(),
            },
        ];
        for message in messages {
            assert_eq!(decode(&encode(&message)), Ok(message));
        }
    }

    #[test]
    fn a_state_of_a_later_version_with_more_fields_is_still_read() {
        let frame = br#"{"kind":"state","counters":{"hits":5},"sessions":[1,2]}"#;
        let Ok(HandoverMessage::State { counters, .. }) = decode(frame) else {
            panic!("a state");
        };
        assert_eq!(counters["hits"], 5);
        assert!(decode(b"{\"kind\":\"nonsense\"}").is_err());
        assert!(decode(b"\xff").is_err());
    }

    #[test]
    fn only_the_same_version_takes_over() {
        assert_eq!(refuse_version(HANDOVER_VERSION), None);
        let refused = refuse_version(HANDOVER_VERSION + 1).unwrap();
        assert!(refused.contains("full restart"), "{refused}");
    }

    #[test]
    fn names_with_colons_pass_through_listen_fdnames() {
        for name in [
            "127.0.0.1:3000",
            "[::1]:80",
            "unix:/run/a%b.sock",
            "fd:http",
        ] {
            let escaped = escape_name(name);
            assert!(!escaped.contains(':'), "{escaped}");
            assert_eq!(unescape_name(&escaped), name);
        }
    }
}
