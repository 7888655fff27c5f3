//! The control socket's requests and replies (see the module documentation for the framing).

use serde::{Deserialize, Serialize};

use crate::master::command::Answer;
pub use crate::master::command::Replacement;
use crate::master::logs::LogLine;

/// The version of the control protocol this build speaks (2: replies carry `from`/`to` for a
/// scale and `replaced` for a reload or a kill).
pub const CONTROL_PROTOCOL_VERSION: u32 = 2;

/// The largest request, in bytes.
pub(crate) const MAX_REQUEST: usize = 1024 * 1024;

/// The largest reply, in bytes (a large cluster's metrics fit).
pub(crate) const MAX_REPLY: usize = 16 * 1024 * 1024;

/// One request to the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// The sender's [`CONTROL_PROTOCOL_VERSION`].
    pub version: u32,
    /// What to do.
    #[serde(flatten)]
    pub command: ControlCommand,
}

impl ControlRequest {
    /// `command`, in this build's protocol version.
    pub fn new(command: ControlCommand) -> Self {
        Self {
            version: CONTROL_PROTOCOL_VERSION,
            command,
        }
    }
}

/// What a request asks the master to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "camelCase")]
#[non_exhaustive]
pub enum ControlCommand {
    /// Every live worker, one [`WorkerRow`] each.
    Ls,
    /// A rolling reload; the reply comes once it has finished or failed (refused while the
    /// cluster starts or stops).
    Reload,
    /// A graceful stop; the reply comes once it has begun.
    Stop,
    /// The workers' last `lines` lines of output (of slot `id` only, when given); with
    /// `follow`, then every new line, one reply per batch, until the peer hangs up.
    Logs {
        /// Only this slot's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<usize>,
        /// How many recent lines.
        #[serde(default = "default_log_lines")]
        lines: usize,
        /// Keep sending new lines.
        #[serde(default)]
        follow: bool,
    },
    /// Everything about the workers of slot `id` (two during its reload), with the slot's last
    /// exit.
    Show {
        /// The slot.
        id: usize,
    },
    /// Replaces the worker of slot `id`: it drains and exits, and the master starts another in
    /// its slot at once (Gunicorn's `kill -TERM <worker>`), without counting a crash; the
    /// reply comes once the new one serves (refused when no worker serves the slot, or during
    /// a reload).
    Kill {
        /// The slot.
        id: usize,
    },
    /// Change the worker count: to `to`, or by `by` (one of the two); the reply comes once
    /// the new count of workers serves (refused during a reload).
    Scale {
        /// The count wanted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<usize>,
        /// How many more (fewer, when negative).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<i64>,
    },
    /// The whole cluster's metrics, as the metrics endpoint serves them.
    Metrics,
    /// Every worker loads its TLS certificate again (`clusterctl tls reload`).
    TlsReload,
    /// Upgrade the master itself: start a new one from the executable on disk, which takes
    /// the sockets and the state; the reply comes once it serves (`old_pid`, `new_pid`) or
    /// the upgrade failed (the old master serves on).
    Upgrade,
}

/// The master's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlReply {
    /// The master's [`CONTROL_PROTOCOL_VERSION`].
    pub version: u32,
    /// Whether the command succeeded.
    pub ok: bool,
    /// It was refused and nothing changed (rather than begun and failed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub refused: bool,
    /// Why it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What happened, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The workers, for `ls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<WorkerRow>>,
    /// Lines of output, for `logs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LogLine>>,
    /// The cluster's metrics in Prometheus text format, for `metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// The worker count before a `scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<usize>,
    /// The worker count after a `scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<usize>,
    /// The workers a `reload` (each slot's) or a `kill` (one) replaced, in the order they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<Vec<Replacement>>,
    /// The master an `upgrade` replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_pid: Option<u32>,
    /// The master that serves after an `upgrade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_pid: Option<u32>,
}

fn default_log_lines() -> usize {
    20
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The master's answer to a command, as a reply: done is `ok` with its message, refused and
/// failed are errors (refused says so).
impl From<Answer> for ControlReply {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Done(done) => ControlReply {
                from: done.scaled.map(|(from, _)| from),
                to: done.scaled.map(|(_, to)| to),
                replaced: (!done.replaced.is_empty()).then_some(done.replaced),
                old_pid: done.upgraded.map(|(old, _)| old),
                new_pid: done.upgraded.map(|(_, new)| new),
                ..ControlReply::done(done.message)
            },
            Answer::Refused(reason) => ControlReply {
                refused: true,
                ..ControlReply::failed(reason)
            },
            Answer::Failed(reason) => ControlReply::failed(reason),
        }
    }
}

impl ControlReply {
    /// A success saying `message`.
    pub fn done(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::empty(true)
        }
    }

    /// A failure saying why.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::empty(false)
        }
    }

    /// Lines of output.
    pub fn lines(lines: Vec<LogLine>) -> Self {
        Self {
            lines: Some(lines),
            ..Self::empty(true)
        }
    }

    /// The answer to `metrics`.
    pub fn metrics(text: String) -> Self {
        Self {
            metrics: Some(text),
            ..Self::empty(true)
        }
    }

    /// The answer to `ls`.
    pub fn workers(workers: Vec<WorkerRow>) -> Self {
        Self {
            workers: Some(workers),
            ..Self::empty(true)
        }
    }

    fn empty(ok: bool) -> Self {
        Self {
            version: CONTROL_PROTOCOL_VERSION,
            ok,
            refused: false,
            error: None,
            message: None,
            workers: None,
            lines: None,
            metrics: None,
            from: None,
            to: None,
            replaced: None,
            old_pid: None,
            new_pid: None,
        }
    }
}

/// One worker, as `clusterctl ls` shows it (PM2's columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRow {
    /// Its slot.
    pub id: usize,
    /// Its process id.
    pub pid: u32,
    /// `starting`, `online`, `listening`, `draining` or `dead`.
    pub status: String,
    /// Seconds since it was started.
    pub uptime_secs: u64,
    /// Workers restarted in its slot after dying on their own.
    pub restarts: u32,
    /// Open connections, from its last heartbeat.
    pub connections: u64,
    /// Requests in flight, from its last heartbeat.
    pub inflight: u64,
    /// Requests it has finished, from its last heartbeat.
    pub requests: u64,
    /// CPU use over the last 200 ms, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// Why the slot's last worker to exit ended (an [`crate::ExitReason`]: `unexpected`,
    /// `stopped`, `requested`, `hung`, `boot-timeout`, `protocol`, …), if one has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_have_the_documented_shape() {
        let request = serde_json::to_string(&ControlRequest::new(ControlCommand::Ls)).unwrap();
        assert_eq!(request, r#"{"version":2,"command":"ls"}"#);
        let reply = serde_json::to_string(&ControlReply::failed("no")).unwrap();
        assert_eq!(reply, r#"{"version":2,"ok":false,"error":"no"}"#);
        let parsed: ControlRequest =
            serde_json::from_str(r#"{"command":"reload","version":2}"#).unwrap();
        assert_eq!(parsed.command, ControlCommand::Reload);
        let scaled = ControlReply {
            from: Some(2),
            to: Some(3),
            ..ControlReply::done("scaled from 2 to 3 workers")
        };
        assert_eq!(
            serde_json::to_string(&scaled).unwrap(),
            r#"{"version":2,"ok":true,"message":"scaled from 2 to 3 workers","from":2,"to":3}"#
        );
        let killed = ControlReply {
            replaced: Some(vec![Replacement {
                id: 2,
                old_pid: Some(10),
                new_pid: 11,
            }]),
            ..ControlReply::done("worker 2 replaced: pid 10 -> 11")
        };
        let json = serde_json::to_string(&killed).unwrap();
        assert!(
            json.ends_with(r#""replaced":[{"id":2,"old_pid":10,"new_pid":11}]}"#),
            "{json}"
        );
    }
}
