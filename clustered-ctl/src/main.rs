//! `clusterctl`: look at and steer a running cluster through its master's control socket
//! (`CLUSTER_CONTROL_SOCKET`), as `pm2 ls` / `pm2 reload` do.
//!
//! ```sh
//! CLUSTER_CONTROL_SOCKET=/tmp/app.sock cargo run --example hello &
//! clusterctl --socket /tmp/app.sock ls          # one row per worker
//! clusterctl --socket /tmp/app.sock ls --json   # the same, for scripts
//! clusterctl --socket /tmp/app.sock reload      # rolling reload; returns once it is done
//! clusterctl --socket /tmp/app.sock scale +1    # one worker more (scale 4, scale -1…)
//! clusterctl --socket /tmp/app.sock metrics     # the whole cluster's metrics
//! ```
//!
//! Every command gets the master's answer: done (what it did), refused (why; nothing changed:
//! a scale during a reload, say), or failed (why: a reload aborted). Exit status: 0 when done,
//! 1 when refused or failed (the reason is printed), 2 when the master could not be reached.

#![forbid(unsafe_code)]

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
    /// Print the master's answer as JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// One row per worker: id, pid, status, uptime, restarts, connections, requests, CPU, memory.
    Ls,
    /// A rolling reload, one worker at a time; returns once it has finished (exit 1 if it was
    /// aborted, saying why).
    Reload,
    /// A graceful stop: the workers drain, then the master exits.
    Stop,
    /// The workers' recent output (`ID|out | line`); `-f` follows new lines until Ctrl-C.
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
    let cli = Cli::parse();
    let Some(socket) = cli.socket else {
        eprintln!(
            "error: no control socket: pass --socket PATH or set {} (the master must run with it set)",
            clustered::env::CONTROL_SOCKET
        );
        return ExitCode::from(2);
    };
    let detailed = matches!(cli.verb, Verb::Show { .. });
    let command = match cli.verb {
        Verb::Ls => ControlCommand::Ls,
        Verb::Reload => ControlCommand::Reload,
        Verb::Stop => ControlCommand::Stop,
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
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::from(2);
        }
    };
    if let ControlCommand::Logs { follow: true, .. } = command {
        let json = cli.json;
        let followed = runtime.block_on(follow(&socket, command, |reply| {
            print_reply(&reply, json, false);
            reply.ok
        }));
        return match followed {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        };
    }
    let reply = match runtime.block_on(request(&socket, command)) {
        Ok(reply) => reply,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    print_reply(&reply, cli.json, detailed);
    if reply.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_reply(reply: &ControlReply, json: bool, detailed: bool) {
    if json {
        let value = match (&reply.workers, &reply.lines) {
            (Some(workers), _) if reply.ok => serde_json::to_string_pretty(workers),
            _ if reply.ok && reply.metrics.is_some() => {
                serde_json::to_string_pretty(&metrics_json(reply.metrics.as_deref()))
            }
            // One compact line per line of output, so a follower's stream is line-delimited.
            (_, Some(lines)) if reply.ok => {
                lines
                    .iter()
                    .filter_map(|line| serde_json::to_string(line).ok())
                    .for_each(|line| println!("{line}"));
                return;
            }
            _ => serde_json::to_string_pretty(reply),
        };
        println!("{}", value.unwrap_or_default());
        return;
    }
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

/// The samples of a metrics text, or the reason it does not parse.
fn metrics_json(text: Option<&str>) -> serde_json::Value {
    match parse_exposition(text.unwrap_or_default()) {
        Ok(samples) => samples
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
                    "value": sample.value.to_string(),
                })
            })
            .collect(),
        Err(error) => {
            serde_json::json!({ "error": format!("the master's metrics do not parse: {error}") })
        }
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
