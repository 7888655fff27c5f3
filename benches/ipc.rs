//! IPC throughput between real processes (`cargo bench --bench ipc`): the bench is itself a
//! cluster; it re-executes as its workers.
//!
//! 1. worker → master: every worker sends `IPC_MESSAGES` small messages (`ipc::send_wait`)
//!    as fast as it can; the master counts them in its inbox.
//! 2. master → all workers: the master broadcasts `IPC_MESSAGES` messages in rounds of 500,
//!    each round ending when every worker reports it received the round's last message.
//!
//! Prints messages per second for each, as a Markdown table. `CLUSTER_WORKERS` (default 2),
//! `IPC_MESSAGES` (default 200000). Under `cargo test` (no `--bench` argument) it runs with
//! 2000 messages and fails if the run takes over a minute: the master checks it counted every
//! message, so a lost one hangs it and fails the tests loudly.

use std::time::{Duration, Instant};

use clustered::{Cluster, ClusterControl, Exit, InboxItem, WorkerInfo, ipc};

const ROUND: u64 = 500;

/// How long a run may take under `cargo test`.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Whether `cargo bench` runs this (else `cargo test` does).
fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

fn messages_per_run() -> u64 {
    let default = if benchmarking() { 200_000 } else { 2_000 };
    std::env::var("IPC_MESSAGES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn measure_in_master(control: ClusterControl, workers: u64) {
    let mut inbox = control.inbox().expect("the master's inbox");
    let total = messages_per_run();
    // Phase 1: count what the workers send; the clock starts with the first message.
    let mut received = 0;
    let mut started = None;
    while received < total * workers {
        match inbox.recv().await {
            Some(InboxItem::Message { .. }) => {
                started.get_or_insert_with(Instant::now);
                received += 1;
            }
            Some(_) => {}
            None => return,
        }
    }
    let elapsed = started.map_or(Duration::ZERO, |started| started.elapsed());
    let to_master = received as f64 / elapsed.as_secs_f64();

    // Phase 2: broadcast in rounds; each worker reports the end of every round.
    let started = Instant::now();
    for round_start in (0..total).step_by(ROUND as usize) {
        for message in round_start..(round_start + ROUND).min(total) {
            control.broadcast(message).expect("a number encodes");
        }
        let mut reports = 0;
        while reports < workers {
            if let Some(InboxItem::Message { .. }) = inbox.recv().await {
                reports += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let deliveries = (total * workers) as f64 / elapsed.as_secs_f64();
    println!("| direction | workers | messages | messages/s |");
    println!("|---|---|---|---|");
    println!(
        "| worker → master | {workers} | {} | {to_master:.0} |",
        total * workers
    );
    println!(
        "| master → all workers (rounds of {ROUND}) | {workers} | {} delivered | {deliveries:.0} |",
        total * workers
    );
    control.shutdown();
}

async fn work_in_worker() -> Result<(), clustered::Error> {
    let mut messages = ipc::messages().expect("the worker's messages");
    let total = messages_per_run();
    for message in 0..total {
        ipc::send_wait(message).await?;
    }
    while let Some(message) = messages.recv().await {
        let value: u64 = message.parse()?;
        if value % ROUND == ROUND - 1 || value == total - 1 {
            ipc::send_wait("round").await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Exit {
    let cluster = Cluster::new();
    let workers = cluster.worker_count().map_or(2, |count| count as u64);
    let control = cluster.control();
    if WorkerInfo::current().is_none() {
        tokio::spawn(measure_in_master(control, workers));
        if !benchmarking() {
            tokio::spawn(async {
                tokio::time::sleep(TEST_LIMIT).await;
                eprintln!(
                    "error: the IPC run did not finish within {TEST_LIMIT:?}: messages were lost"
                );
                std::process::exit(1);
            });
        }
    }
    cluster
        .run(|worker| async move {
            tokio::select! {
                result = work_in_worker() => result,
                () = worker.draining() => Ok(()),
            }
        })
        .await
        .into()
}
