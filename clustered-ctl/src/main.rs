//! `clusterctl`: look at and steer a running cluster through its master's control socket
//! (`CLUSTER_CONTROL_SOCKET`), as `pm2 ls` / `pm2 reload` do.
//!
//! ```sh
//! CLUSTER_CONTROL_SOCKET=/tmp/app.sock cargo run --example hello &
//! clusterctl --socket /tmp/app.sock ls          # one row per worker
//! clusterctl --socket /tmp/app.sock ls --json   # the same, for scripts
//! clusterctl --socket /tmp/app.sock reload      # rolling reload; returns once it is done
//! clusterctl --socket /tmp/app.sock upgrade     # a new master from the binary on disk
//! clusterctl --socket /tmp/app.sock scale +1    # one worker more (scale 4, scale -1…)
//! clusterctl --socket /tmp/app.sock metrics     # the whole cluster's metrics
//! clusterctl fleet --redis redis://127.0.0.1:6379 --namespace hello   # every master
//! ```
//!
//! Every command gets the master's answer: done (what it did), refused (why; nothing changed:
//! a scale during a reload, say), or failed (why: a reload aborted). Exit status: 0 when done,
//! 1 when refused or failed (the reason is printed), 2 when the master could not be reached.
//!
//! With `--json` every verb prints one JSON object: `{"ok":true,…}` with its data as fields
//! (`ls`/`show`: `workers`; `scale`: `from`, `to`; `reload`/`kill`: `replaced`, each
//! `{id, old_pid, new_pid}`; `upgrade`: `old_pid`, `new_pid`; `logs`: `lines`; `metrics`: `metrics`, one object per sample), or
//! `{"ok":false,"error":"…","refused":…}` (the master unreachable included, exit 2 still).
//! `logs -f --json` prints one compact object per line of output.

#![forbid(unsafe_code)]

mod fleet;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clustered::control_socket::{ControlCommand, ControlReply, WorkerRow, follow, request};
use clustered::shared_metrics::parse_exposition;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

/// Look at and steer a running cluster (PM2's verbs) through its master's control socket.
#[derive(Debug, Parser)]
#[command(name = "clusterctl", version)]
struct Cli {
    /// The master's control socket.
    #[arg(long, env = clustered::env::CONTROL_SOCKET, global = true)]
    socket: Option<PathBuf>,
    /// Print the answer as one JSON object, for scripts: `{"ok":true,…its data…}` or
    /// `{"ok":false,"error":"…","refused":…}` (`logs -f`: one object per line of output).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum TlsAction {
    /// Every worker loads its certificate again.
    Reload,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// One row per worker: id, pid, status, uptime, restarts, connections, requests, CPU, memory.
    Ls,
    /// One row per master of the fleet (host, pid, port, workers, uptime, agent), from their
    /// heartbeats in the fleet's Redis (`CLUSTER_REDIS_URL`; no control socket needed).
    Fleet {
        /// The fleet's Redis.
        #[arg(long, env = clustered::env::REDIS_URL)]
        redis: String,
        /// The fleet's namespace (default: the program's name, as the masters use).
        #[arg(long, env = clustered::env::REDIS_NAMESPACE)]
        namespace: String,
    },
    /// A rolling reload, one worker at a time; returns once it has finished (exit 1 if it was
    /// aborted, saying why).
    Reload,
    /// A graceful stop: the workers drain, then the master exits.
    Stop,
    /// Upgrade the master itself (as `kill -USR2`): a new master from the executable on disk
    /// takes the sockets, counters, metrics and restart counts; returns once it serves,
    /// printing both pids (exit 1 if it failed: the old master serves on, and says why).
    Upgrade,
    /// TLS: `tls reload` makes every worker load its certificate again from its files (new
    /// handshakes get it, the session-ticket keys stay); answered once every worker has
    /// tried: a bad file fails it (exit 1) naming each worker that refused and the file, and
    /// the certificate before keeps serving there.
    Tls {
        #[command(subcommand)]
        action: TlsAction,
    },
    /// The workers' recent output (`ID|out | line`); `-f` follows new lines until Ctrl-C
    /// (with `--json`, one JSON object per line: `{"ok":true,"id":…,"stream":…,"line":…}`).
    Logs {
        /// Only this worker's (its slot).
        id: Option<usize>,
        /// Follow: print new lines as they come.
        #[arg(short, long)]
        follow: bool,
        /// How many recent lines.
        #[arg(long, default_value_t = 20)]
        lines: usize,
    },
    /// Everything about worker ID (its slot), including why its slot's last worker exited.
    Show {
        /// The worker's slot.
        id: usize,
    },
    /// Replaces worker ID: it drains and exits (SIGTERM) and another starts in its slot;
    /// returns once that one listens.
    Kill {
        /// The worker's slot.
        id: usize,
    },
    /// The whole cluster's metrics in Prometheus text format, as the master's `/metrics`
    /// serves them (`--json`: one object per sample, its value a string as Prometheus's API
    /// gives it).
    Metrics,
    /// Change the worker count: `scale 4`, `scale +2`, `scale -1` (the highest slots drain);
    /// returns once the new count listens.
    Scale {
        /// The count wanted, or `+N` / `-N` for a change.
        #[arg(allow_hyphen_values = true, value_parser = parse_scale)]
        count: ControlCommand,
    },
}

/// `4` → to 4; `+2` → by 2; `-1` → by -1.
fn parse_scale(count: &str) -> Result<ControlCommand, String> {
    let invalid = |_| format!("{count:?} is not a count: use N, +N or -N");
    let command = match count.strip_prefix('+') {
        Some(more) => ControlCommand::Scale {
            to: None,
            by: Some(more.parse().map_err(invalid)?),
        },
        None if count.starts_with('-') => ControlCommand::Scale {
            to: None,
            by: Some(count.parse().map_err(invalid)?),
        },
        None => ControlCommand::Scale {
            to: Some(count.parse().map_err(invalid)?),
            by: None,
        },
    };
    Ok(command)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Scripts asking for JSON get it even for a command line clap refuses.
        Err(error) if error.use_stderr() && std::env::args_os().any(|arg| arg == "--json") => {
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            print_json(
                &failure(first.strip_prefix("error: ").unwrap_or(first), false),
                false,
            );
            return ExitCode::from(2);
        }
        Err(error) => error.exit(),
    };
    let json = cli.json;
    // A follower's JSON is one object a line, its errors too.
    let following = matches!(cli.verb, Verb::Logs { follow: true, .. });
    let unreachable = |error: &dyn std::fmt::Display| {
        match json {
            true => print_json(&failure(&error.to_string(), false), following),
            false => eprintln!("error: {error}"),
        }
        ExitCode::from(2)
    };
    if let Verb::Fleet { redis, namespace } = &cli.verb {
        return fleet::list(redis, namespace, json);
    }
    let Some(socket) = cli.socket else {
        return unreachable(&format!(
            "no control socket: pass --socket PATH or set {} (the master must run with it set)",
            clustered::env::CONTROL_SOCKET
        ));
    };
    let detailed = matches!(cli.verb, Verb::Show { .. });
    let command = match cli.verb {
        Verb::Ls | Verb::Fleet { .. } => ControlCommand::Ls,
        Verb::Reload => ControlCommand::Reload,
        Verb::Stop => ControlCommand::Stop,
        Verb::Upgrade => ControlCommand::Upgrade,
        Verb::Tls {
            action: TlsAction::Reload,
        } => ControlCommand::TlsReload,
        Verb::Scale { count } => count,
        Verb::Show { id } => ControlCommand::Show { id },
        Verb::Logs { id, follow, lines } => ControlCommand::Logs { id, lines, follow },
        Verb::Kill { id } => ControlCommand::Kill { id },
        Verb::Metrics => ControlCommand::Metrics,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return unreachable(&format!("cannot start: {error}")),
    };
    if let ControlCommand::Logs { follow: true, .. } = command {
        let mut failed = false;
        let followed = runtime.block_on(follow(&socket, command, |reply| {
            match json {
                true => print_followed_json(&reply),
                false => print_reply(&reply, false),
            }
            failed = !reply.ok;
            reply.ok
        }));
        return match followed {
            Ok(()) if failed => ExitCode::FAILURE,
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => unreachable(&error),
        };
    }
    let reply = match runtime.block_on(request(&socket, command)) {
        Ok(reply) => reply,
        Err(error) => return unreachable(&error),
    };
    let ok = match json {
        true => {
            let output = json_reply(&reply);
            print_json(&output, false);
            output["ok"] == true
        }
        false => {
            print_reply(&reply, detailed);
            reply.ok
        }
    };
    match ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

/// Prints `value` as JSON on stdout: pretty, or on one line.
fn print_json(value: &serde_json::Value, one_line: bool) {
    let text = match one_line {
        true => serde_json::to_string(value),
        false => serde_json::to_string_pretty(value),
    };
    println!("{}", text.unwrap_or_default());
}

/// `{"ok": false, "error": …, "refused": …}`.
fn failure(error: &str, refused: bool) -> serde_json::Value {
    serde_json::json!({ "ok": false, "error": error, "refused": refused })
}

/// The reply as `--json` prints it: `{"ok": true, …its data…}` (the metrics as samples), or a
/// [`failure`].
fn json_reply(reply: &ControlReply) -> serde_json::Value {
    if !reply.ok {
        return failure(reply.error.as_deref().unwrap_or("failed"), reply.refused);
    }
    let mut output = match serde_json::to_value(reply) {
        Ok(serde_json::Value::Object(output)) => output,
        _ => return failure("cannot print the master's answer as JSON", false),
    };
    output.remove("version");
    if let Some(text) = &reply.metrics {
        match metrics_json(text) {
            Ok(samples) => output.insert("metrics".into(), samples),
            Err(error) => return failure(&error, false),
        };
    }
    serde_json::Value::Object(output)
}

/// A following `logs --json` reply: one compact line per line of output,
/// `{"ok":true,"id":…,"stream":…,"line":…}`, or one [`failure`] line.
fn print_followed_json(reply: &ControlReply) {
    if !reply.ok {
        return print_json(&json_reply(reply), true);
    }
    for line in reply.lines.iter().flatten() {
        if let Ok(serde_json::Value::Object(mut line)) = serde_json::to_value(line) {
            line.insert("ok".into(), true.into());
            println!("{}", serde_json::Value::Object(line));
        }
    }
}

/// The reply as people read it: data on stdout, a refusal or failure on stderr.
fn print_reply(reply: &ControlReply, detailed: bool) {
    for line in reply.lines.iter().flatten() {
        println!("{}|{} | {}", line.id, line.stream, line.line);
    }
    if let Some(error) = &reply.error {
        match reply.refused {
            true => eprintln!("refused: {error}"),
            false => eprintln!("error: {error}"),
        }
    }
    if let Some(message) = &reply.message {
        println!("{message}");
    }
    if let Some(metrics) = &reply.metrics {
        print!("{metrics}");
    }
    match &reply.workers {
        Some(workers) if detailed => workers.iter().for_each(print_details),
        Some(workers) => println!("{}", table(workers)),
        None => {}
    }
}

/// The samples of a metrics text, each `{"name", "labels", "value"}`, or why it does not parse.
fn metrics_json(text: &str) -> Result<serde_json::Value, String> {
    let samples = parse_exposition(text)
        .map_err(|error| format!("the master's metrics do not parse: {error}"))?;
    let samples = samples
        .into_iter()
        .map(|sample| {
            let labels: serde_json::Map<String, serde_json::Value> = sample
                .labels
                .into_iter()
                .map(|(label, value)| (label, value.into()))
                .collect();
            serde_json::json!({
                "name": sample.name,
                "labels": labels,
                "value": prometheus_number(sample.value),
            })
        })
        .collect();
    Ok(samples)
}

/// A sample's value as Prometheus's HTTP API writes it: `+Inf`, `-Inf` and `NaN` for the
/// values that are not finite.
fn prometheus_number(value: f64) -> String {
    match value {
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        value if value.is_nan() => "NaN".into(),
        value => value.to_string(),
    }
}

/// One worker as `key value` lines (PM2's `show`).
fn print_details(worker: &WorkerRow) {
    let lines = [
        ("id", worker.id.to_string()),
        ("pid", worker.pid.to_string()),
        ("status", worker.status.clone()),
        ("uptime", duration(worker.uptime_secs)),
        ("restarts", worker.restarts.to_string()),
        ("connections", worker.connections.to_string()),
        ("in flight", worker.inflight.to_string()),
        ("requests", worker.requests.to_string()),
        ("cpu", format!("{:.1}%", worker.cpu_percent)),
        ("memory", bytes(worker.rss_bytes)),
        (
            "last exit",
            worker.last_exit.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    for (key, value) in lines {
        println!("{key:<12}{value}");
    }
    println!();
}

/// The `ls` table, at most 80 columns wide.
fn table(workers: &[WorkerRow]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(80)
        .set_header([
            "id", "pid", "status", "uptime", "↺", "conns", "inflight", "requests", "cpu", "mem",
        ]);
    for worker in workers {
        table.add_row([
            worker.id.to_string(),
            worker.pid.to_string(),
            worker.status.clone(),
            duration(worker.uptime_secs),
            worker.restarts.to_string(),
            worker.connections.to_string(),
            worker.inflight.to_string(),
            worker.requests.to_string(),
            format!("{:.1}%", worker.cpu_percent),
            bytes(worker.rss_bytes),
        ]);
    }
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        if index != 2 {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// `45s`, `12m`, `3h`, `2d`, as PM2 shows uptime.
fn duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

/// `812.0kb`, `12.3mb`, `1.1gb`.
fn bytes(count: u64) -> String {
    let count = count as f64;
    match count {
        ..1e6 => format!("{:.1}kb", count / 1e3),
        ..1e9 => format!("{:.1}mb", count / 1e6),
        _ => format!("{:.1}gb", count / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clustered::Answer;
    use serde_json::json;

    #[test]
    fn values_that_are_not_finite_are_written_as_prometheus_writes_them() {
        let written: Vec<String> = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 2.5]
            .into_iter()
            .map(prometheus_number)
            .collect();
        assert_eq!(written, ["+Inf", "-Inf", "NaN", "2.5"]);
    }

    #[test]
    fn json_replies_have_one_shape() {
        assert_eq!(
            json_reply(&ControlReply::done("stopping")),
            json!({"ok": true, "message": "stopping"}),
            "no protocol version"
        );
        assert_eq!(
            json_reply(&ControlReply::failed("no worker 9")),
            json!({"ok": false, "error": "no worker 9", "refused": false})
        );
        assert_eq!(
            json_reply(&Answer::Refused("busy".into()).into()),
            json!({"ok": false, "error": "busy", "refused": true})
        );
        assert_eq!(
            json_reply(&ControlReply::metrics(
                "# TYPE visits_total counter\nvisits_total{worker=\"1\"} 3\n".into()
            )),
            json!({"ok": true, "metrics": [
                {"name": "visits_total", "labels": {"worker": "1"}, "value": "3"}
            ]})
        );
        let garbled = json_reply(&ControlReply::metrics("visits_total{ 3\n".into()));
        assert_eq!(garbled["ok"], false, "{garbled}");
        assert!(
            garbled["error"]
                .as_str()
                .is_some_and(|error| error.contains("do not parse")),
            "{garbled}"
        );
    }
}
