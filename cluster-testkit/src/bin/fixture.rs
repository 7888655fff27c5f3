//! A clustered axum app with faults on demand, for the lifecycle tests.
//!
//! - The master prints `listening on http://ADDR` when ready and every cluster event as
//!   `event: <event>` on stdout.
//! - `FIXTURE_FAULT=crash-at-start`: every worker writes a line to stderr and exits with code 3
//!   before joining the master; `FIXTURE_FAULT=slow-start`: every worker waits a minute before
//!   it listens. `FIXTURE_FAULT_FILE=PATH`: the fault is read from that file when a worker
//!   starts (so a test can fault only the workers started after some point, e.g. a reload's).
//! - `FIXTURE_HANDLE_ACTION=disconnect:N`, `kill:N` or `send:N`: once ready, the master acts on
//!   worker N through its `WorkerHandle` (`disconnect()`, `kill(SIGTERM)`, or
//!   `send("from-master")`); every exit prints the handle's state as
//!   `handle: id=.. connected=.. dead=.. exited_after_disconnect=..`.
//! - Routes: `GET /` → `fixture`; `GET /panic` → the handler panics (the worker answers 500 and
//!   lives); `GET /crash` → the worker's main function panics (exit code 101, replaced);
//!   `GET /hang` → answers after 10 minutes (outlives any shutdown timeout).
//! - User IPC: `GET /ask?what=W` asks the master (`ipc::request`, 500 ms timeout; the master
//!   answers `echo` with `echo`, and never answers `ignore`); `GET /broadcast?tag=T`,
//!   `GET /send_to?worker=N&tag=T` send `T`; `GET /received` lists the tags this worker got;
//!   `GET /counter` adds 1 to the cluster-wide counter `hits`, which every worker follows
//!   (`GET /watched` shows the last value pushed to this worker); `GET /big` sends a 17 MiB
//!   message (refused); `GET /garbage` writes random bytes onto the worker's IPC socket.
//! - Restarts: 50 ms initial backoff, at most 3 early deaths (within 1 s) in a row.
//!   `FIXTURE_SHUTDOWN_MS` sets the shutdown timeout (default 5000); `FIXTURE_START_DELAY_MS`
//!   makes each worker wait that long before it listens (default 0);
//!   `FIXTURE_RELOAD_TIMEOUT_MS` bounds a reload step (default 30000).
//! - `FIXTURE_HEADER_TIMEOUT_MS`: how long a client may take to send its headers (default
//!   `HttpConfig`'s 30 s).
//! - Environment as for the examples: `CLUSTER_WORKERS`, `HOST`, `PORT`.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use cluster_core::{
    Cluster, ClusterControl, ClusterEvent, Error, Exit, RestartPolicy, Signal, WorkerInfo,
};
use cluster_tower::{ClusterLayer, HttpConfig, serve_connections};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::extract::Query;
use axum::http::StatusCode;
use cluster_core::ipc;
use tokio::sync::mpsc;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn millis_from_env(name: &str, default: u64) -> Duration {
    Duration::from_millis(env_or(name, "").parse().unwrap_or(default))
}

/// The HTTP settings: the defaults, with `FIXTURE_HEADER_TIMEOUT_MS` as the header-read timeout.
fn http_config() -> HttpConfig {
    let config = HttpConfig::default();
    match std::env::var("FIXTURE_HEADER_TIMEOUT_MS") {
        Ok(_) => config.header_read_timeout(Some(millis_from_env("FIXTURE_HEADER_TIMEOUT_MS", 0))),
        Err(_) => config,
    }
}

/// This worker's fault: `FIXTURE_FAULT`, else the content of `FIXTURE_FAULT_FILE`.
fn fault() -> String {
    let from_file = std::env::var("FIXTURE_FAULT_FILE")
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok());
    std::env::var("FIXTURE_FAULT")
        .ok()
        .or(from_file)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Acts on the worker named by `FIXTURE_HANDLE_ACTION` through its handle.
fn act_on_slot_from_env(control: &ClusterControl) {
    let Ok(spec) = std::env::var("FIXTURE_HANDLE_ACTION") else {
        return;
    };
    let Some((how, slot)) = spec.split_once(':') else {
        return;
    };
    let Some(worker) = control
        .workers()
        .into_iter()
        .find(|worker| worker.id().to_string() == slot)
    else {
        return;
    };
    match how {
        "disconnect" => worker.disconnect(),
        "kill" => worker.kill(Signal::TERM).expect("signal the worker"),
        "send" => worker.send("from-master").expect("a string encodes"),
        _ => {}
    }
}

/// Tags this worker received from `ipc::messages()`.
static RECEIVED: Mutex<Vec<String>> = Mutex::new(Vec::new());

type Params = Query<HashMap<String, String>>;
type Answer = (StatusCode, String);

fn param(params: &Params, name: &str) -> String {
    params.get(name).cloned().unwrap_or_default()
}

fn answer(result: Result<String, cluster_core::Error>) -> Answer {
    match result {
        Ok(text) => (StatusCode::OK, format!("{text}\n")),
        Err(error) => (StatusCode::BAD_GATEWAY, format!("{error}\n")),
    }
}

async fn ask(params: Params) -> Answer {
    let asked = ipc::request_timeout::<String>(param(&params, "what"), Duration::from_millis(500));
    answer(asked.await)
}

async fn broadcast(params: Params) -> Answer {
    answer(ipc::broadcast(param(&params, "tag")).map(|()| "sent".into()))
}

async fn send_to(params: Params) -> Answer {
    let worker = param(&params, "worker").parse().unwrap_or(0);
    answer(
        ipc::send_to(worker, param(&params, "tag"))
            .await
            .map(|()| "sent".into()),
    )
}

async fn received() -> String {
    format!("{}\n", RECEIVED.lock().unwrap().join(","))
}

async fn count_hit() -> Answer {
    answer(
        ipc::counter("hits")
            .add(1)
            .await
            .map(|value| value.to_string()),
    )
}

/// This worker's subscription to `hits`.
static WATCHED: OnceLock<ipc::CounterWatch> = OnceLock::new();

async fn watched() -> String {
    let value = WATCHED.get().map_or(-1, ipc::CounterWatch::value);
    format!("{value}\n")
}

async fn send_big() -> Answer {
    answer(ipc::send("x".repeat(17 * 1024 * 1024)).map(|()| "sent".into()))
}

async fn write_garbage() -> &'static str {
    // SAFETY: descriptor 3 is this worker's IPC socket, open for the life of the process;
    // it is only borrowed for one write.
    let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(3) };
    let _ = rustix::io::write(socket, b"\xff\xff\x00\x10this is not a frame");
    "garbage written\n"
}

/// The master's request handler: answers `echo`, keeps `ignore` forever.
async fn answer_requests(control: ClusterControl) {
    let Ok(mut inbox) = control.inbox() else {
        return;
    };
    let mut ignored = Vec::new();
    while let Some(incoming) = inbox.recv().await {
        if let cluster_core::Incoming::Request(request) = incoming {
            match request.data().as_str() {
                Some("ignore") => ignored.push(request),
                Some(other) => {
                    let other = other.to_owned();
                    let _ = request.reply(other);
                }
                None => request.fail("not a string"),
            }
        }
    }
}

/// Keeps the tags of the messages delivered to this worker.
async fn remember_messages() {
    let Ok(mut messages) = ipc::messages() else {
        return;
    };
    while let Some(message) = messages.recv().await {
        let tag = message.parse::<String>().unwrap_or_default();
        RECEIVED.lock().unwrap().push(tag);
    }
}

async fn hangs() -> &'static str {
    tokio::time::sleep(Duration::from_secs(600)).await;
    "done hanging\n"
}

async fn panics() -> &'static str {
    panic!("fixture: handler panics on purpose")
}

fn main() -> Exit {
    cluster_core::runtime::block_on(run())
}

async fn run() -> Exit {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(env_or(
            "RUST_LOG", "info",
        )))
        .with_writer(std::io::stderr)
        .init();
    let mut start_delay = millis_from_env("FIXTURE_START_DELAY_MS", 0);
    if WorkerInfo::current().is_some() {
        match fault().as_str() {
            "crash-at-start" => {
                eprintln!("fixture: failing at start on purpose");
                std::process::exit(3);
            }
            "slow-start" => start_delay = Duration::from_secs(60),
            _ => {}
        }
    }
    let address = format!("{}:{}", env_or("HOST", "127.0.0.1"), env_or("PORT", "0"));
    let cluster = Cluster::new()
        .on_master(answer_requests)
        .on_worker(|_worker| remember_messages());
    let control = cluster.control();
    let cluster = cluster
        .bind(address.clone())
        .shutdown_timeout(millis_from_env("FIXTURE_SHUTDOWN_MS", 5000))
        .reload_timeout(millis_from_env("FIXTURE_RELOAD_TIMEOUT_MS", 30_000))
        .restart_policy(RestartPolicy {
            initial_backoff: Duration::from_millis(50),
            max_restarts: 3,
            ..RestartPolicy::default()
        })
        .on_ready(move |addresses| {
            println!("listening on http://{}", addresses[0]);
            act_on_slot_from_env(&control);
        });
    let mut events = cluster.control().events();
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            println!("event: {event}");
            if let ClusterEvent::Exit { worker, .. } = event {
                println!(
                    "handle: id={} connected={} dead={} exited_after_disconnect={}",
                    worker.id(),
                    worker.is_connected(),
                    worker.is_dead(),
                    worker.exited_after_disconnect()
                );
            }
        }
    });
    let served = cluster
        .run(|worker| async move {
            let (crash, mut crash_requested) = mpsc::channel::<()>(1);
            let app = Router::new()
                .route("/", get(|| async { "fixture\n" }))
                .route("/panic", get(panics))
                .route("/hang", get(hangs))
                .route("/ask", get(ask))
                .route("/broadcast", get(broadcast))
                .route("/send_to", get(send_to))
                .route("/received", get(received))
                .route("/counter", get(count_hit))
                .route("/watched", get(watched))
                .route("/big", get(send_big))
                .route("/garbage", get(write_garbage))
                .route(
                    "/crash",
                    get(move || async move {
                        let _ = crash.try_send(());
                        "crashing\n"
                    }),
                )
                .layer(ClusterLayer::new());
            tokio::time::sleep(start_delay).await;
            let _ = WATCHED.set(ipc::counter("hits").subscribe().await?);
            let listener = worker.listen(&address).await?;
            let config = http_config();
            tokio::select! {
                () = serve_connections(listener, app, &config) => Ok::<_, Error>(()),
                _ = crash_requested.recv() => panic!("fixture: worker main panics on purpose"),
            }
        })
        .await;
    // The reader ends once the master has stopped; wait for it so no last event is lost.
    let _ = tokio::time::timeout(Duration::from_secs(2), printer).await;
    served.into()
}
