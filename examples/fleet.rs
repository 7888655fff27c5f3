//! A fleet: several masters (on several hosts, or on one host on several ports) sharing one
//! Redis. Broadcasts reach every worker of every master, counters are exact fleet-wide, and
//! the agent answers for the whole fleet.
//!
//! ```sh
//! redis-server --port 6379 &
//! CLUSTER_REDIS_URL=redis://127.0.0.1:6379 PORT=3000 cargo run --features redis --example fleet &
//! CLUSTER_REDIS_URL=redis://127.0.0.1:6379 PORT=3001 cargo run --features redis --example fleet &
//! curl localhost:3000/hit; curl localhost:3001/hit     # 1, then 2
//! curl 'localhost:3000/say?msg=hello'; curl localhost:3001/heard
//! curl localhost:3001/agent                             # {"pid":…,"host":…,"port":…,"token":…}
//! ```
//!
//! `GET /hit` adds 1 to the counter `hits` and answers its new value; `GET /hits` answers the
//! value; `GET /say?msg=M` broadcasts `M` (503 while Redis is unreachable); `GET /heard` lists
//! what this worker heard, one a line; `GET /agent` is answered by the agent as JSON. Without
//! `CLUSTER_REDIS_URL` it is one cluster on one host. `FLEET_AGENT_LOG=FILE` makes the agent
//! append `token millis` to FILE every 50 ms (the tests check that no two agents overlap).
//! Environment as for `hello`: `CLUSTER_WORKERS`, `HOST`, `PORT`.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Router, response::IntoResponse};
use clustered::{Cluster, ClusterLayer, Exit, ServeHttp, Worker, agent, env, ipc};
use serde::Deserialize;
use serde_json::{Value, json};

/// What this worker heard, in order.
static HEARD: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn unavailable(error: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n"))
}

async fn hit() -> Result<String, (StatusCode, String)> {
    let value = ipc::counter("hits").add(1).await.map_err(unavailable)?;
    Ok(format!("{value}\n"))
}

async fn hits() -> Result<String, (StatusCode, String)> {
    let value = ipc::counter("hits").get().await.map_err(unavailable)?;
    Ok(format!("{value}\n"))
}

#[derive(Deserialize)]
struct Say {
    msg: String,
}

async fn say(Query(say): Query<Say>) -> Result<&'static str, (StatusCode, String)> {
    ipc::broadcast(say.msg).map_err(unavailable)?;
    Ok("sent\n")
}

async fn heard() -> String {
    let heard = HEARD.lock().map(|h| h.clone()).unwrap_or_default();
    heard.iter().map(|line| format!("{line}\n")).collect()
}

async fn ask_agent() -> impl IntoResponse {
    let answer: Result<Value, _> = agent::request("who").await;
    match answer {
        Ok(answer) => Ok((
            [("content-type", "application/json")],
            format!("{answer}\n"),
        )),
        Err(error) => Err(unavailable(error)),
    }
}

/// A worker's part: remember every broadcast.
async fn listen() {
    let Ok(mut messages) = ipc::messages() else {
        return;
    };
    while let Some(message) = messages.recv().await {
        if let (Ok(text), Ok(mut heard)) = (message.parse::<String>(), HEARD.lock()) {
            heard.push(text);
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The agent: answers who it is, with its lease's fencing token (none on one host).
async fn run_agent(agent: Worker) -> Result<(), clustered::Error> {
    let token: Option<u64> = std::env::var(env::AGENT_TOKEN)
        .ok()
        .and_then(|t| t.parse().ok());
    if let Ok(path) = std::env::var("FLEET_AGENT_LOG") {
        tokio::spawn(log_token(path, token));
    }
    let port: Option<u16> = std::env::var("PORT").ok().and_then(|p| p.parse().ok());
    let mut requests = agent::requests()?;
    while let Some(request) = requests.recv().await {
        let answer = json!({
            "pid": agent.info().pid,
            "host": host_name(),
            "port": port,
            "token": token,
        });
        request.reply(answer)?;
    }
    Ok(())
}

/// Appends `token millis` to `path` every 50 ms, for as long as this agent runs.
async fn log_token(path: String, token: Option<u64>) {
    let mut every = tokio::time::interval(Duration::from_millis(50));
    loop {
        every.tick().await;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let line = format!("{} {millis}\n", token.unwrap_or(0));
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
        {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

#[clustered::main]
async fn main() -> Exit {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let app = Router::new()
        .route("/hit", get(hit))
        .route("/hits", get(hits))
        .route("/say", get(say))
        .route("/heard", get(heard))
        .route("/agent", get(ask_agent))
        .layer(ClusterLayer::new());
    Cluster::new()
        .agent(run_agent)
        .on_worker(|_worker| listen())
        .on_ready(|addresses| println!("listening on http://{}", addresses[0]))
        .serve(format!("{host}:{port}"), app)
        .await
        .into()
}
