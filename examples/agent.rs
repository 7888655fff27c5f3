//! The agent (egg's master/agent/worker model): one process that serves no connections and
//! does what only one process should do — here, count ticks every 100 ms.
//!
//! ```sh
//! cargo run --example agent     # then: curl localhost:3000/agent; curl localhost:3000/whoami
//! ```
//!
//! The master starts the agent first and the workers once it is ready; `GET /agent` asks the
//! agent (request/reply through the master) and answers `{"agent_pid": P, "ticks": N}`;
//! `GET /whoami` is `hello`'s. Every second the agent also broadcasts its ticks to the workers
//! (`ipc::broadcast`); `GET /heard` shows the last count this worker heard. Kill the agent (`kill -9 <agent_pid>`): a new one starts at
//! once, the workers keep serving, and `/agent` answers 503 saying so until it is back.
//! Environment as for `hello`: `CLUSTER_WORKERS`, `HOST`, `PORT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::{Extension, Router};
use clustered::{Cluster, ClusterLayer, Exit, ServeHttp, Worker, WorkerInfo, agent, ipc};
use serde_json::{Value, json};

/// The last tick count this worker heard from the agent's broadcast.
static HEARD: AtomicU64 = AtomicU64::new(0);

/// The agent: ticks every 100 ms and tells the workers every 10 ticks; answers `ticks` with
/// its pid and count.
async fn run_agent(agent: Worker) -> Result<(), clustered::Error> {
    let ticks = Arc::new(AtomicU64::new(0));
    let counting = Arc::clone(&ticks);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        loop {
            every.tick().await;
            let count = counting.fetch_add(1, Ordering::Relaxed) + 1;
            if count.is_multiple_of(10) {
                let _ = ipc::broadcast(count);
            }
        }
    });
    let mut requests = agent::requests()?;
    while let Some(request) = requests.recv().await {
        let answer = json!({
            "agent_pid": agent.info().pid,
            "ticks": ticks.load(Ordering::Relaxed),
        });
        request.reply(answer)?;
    }
    Ok(())
}

async fn ask_agent()
-> Result<([(axum::http::HeaderName, &'static str); 1], String), (StatusCode, String)> {
    let answer: Value = agent::request("ticks")
        .await
        .map_err(|error| (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")))?;
    Ok(([(CONTENT_TYPE, "application/json")], format!("{answer}\n")))
}

/// A worker's part: remember the agent's last broadcast.
async fn listen_to_agent() {
    let Ok(mut messages) = ipc::messages() else {
        return;
    };
    while let Some(message) = messages.recv().await {
        if let Ok(count) = message.parse::<u64>() {
            HEARD.store(count, Ordering::Relaxed);
        }
    }
}

async fn heard() -> String {
    format!("{}\n", HEARD.load(Ordering::Relaxed))
}

async fn whoami(Extension(worker): Extension<WorkerInfo>) -> String {
    format!("worker {} pid {}\n", worker.id, worker.pid)
}

#[clustered::main]
async fn main() -> Exit {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let app = Router::new()
        .route("/agent", get(ask_agent))
        .route("/whoami", get(whoami))
        .route("/heard", get(heard))
        .layer(ClusterLayer::new());
    Cluster::new()
        .agent(run_agent)
        .on_worker(|_worker| listen_to_agent())
        .on_ready(|addresses| println!("listening on http://{}", addresses[0]))
        .serve(format!("{host}:{port}"), app)
        .await
        .into()
}
