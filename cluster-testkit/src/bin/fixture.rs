//! A clustered axum app with faults on demand, for the lifecycle tests.
//!
//! - The master prints `listening on http://ADDR` when ready and every cluster event as
//!   `event: <event>` on stdout.
//! - `FIXTURE_FAULT=crash-at-start`: every worker writes a line to stderr and exits with code 3
//!   before joining the master.
//! - Routes: `GET /` → `fixture`; `GET /panic` → the handler panics (the worker answers 500 and
//!   lives); `GET /crash` → the worker's main function panics (exit code 101, replaced);
//!   `GET /hang` → answers after 10 minutes (outlives any shutdown timeout).
//! - Restarts: 50 ms initial backoff, at most 3 early deaths (within 1 s) in a row.
//!   `FIXTURE_SHUTDOWN_MS` sets the shutdown timeout (default 5000); `FIXTURE_START_DELAY_MS`
//!   makes each worker wait that long before it listens (default 0).
//! - Environment as for the examples: `CLUSTER_WORKERS`, `HOST`, `PORT`.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use cluster_core::{Cluster, Error, Exit, RestartPolicy, WorkerInfo};
use cluster_tower::{ClusterLayer, serve_connections};
use tokio::sync::mpsc;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn hangs() -> &'static str {
    tokio::time::sleep(Duration::from_secs(600)).await;
    "done hanging\n"
}

async fn panics() -> &'static str {
    panic!("fixture: handler panics on purpose")
}

#[tokio::main]
async fn main() -> Exit {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(env_or(
            "RUST_LOG", "info",
        )))
        .with_writer(std::io::stderr)
        .init();
    if WorkerInfo::current().is_some() && env_or("FIXTURE_FAULT", "") == "crash-at-start" {
        eprintln!("fixture: failing at start on purpose");
        std::process::exit(3);
    }
    let address = format!("{}:{}", env_or("HOST", "127.0.0.1"), env_or("PORT", "0"));
    let shutdown_ms = env_or("FIXTURE_SHUTDOWN_MS", "5000")
        .parse()
        .unwrap_or(5000);
    let start_delay_ms = env_or("FIXTURE_START_DELAY_MS", "0").parse().unwrap_or(0);
    let start_delay = Duration::from_millis(start_delay_ms);
    let cluster = Cluster::new()
        .bind(address.clone())
        .shutdown_timeout(Duration::from_millis(shutdown_ms))
        .restart_policy(RestartPolicy {
            initial_backoff: Duration::from_millis(50),
            max_restarts: 3,
            ..RestartPolicy::default()
        })
        .on_ready(|addresses| println!("listening on http://{}", addresses[0]));
    let mut events = cluster.control().events();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            println!("event: {event}");
        }
    });
    cluster
        .run(|worker| async move {
            let (crash, mut crash_requested) = mpsc::channel::<()>(1);
            let app = Router::new()
                .route("/", get(|| async { "fixture\n" }))
                .route("/panic", get(panics))
                .route("/hang", get(hangs))
                .route(
                    "/crash",
                    get(move || async move {
                        let _ = crash.try_send(());
                        "crashing\n"
                    }),
                )
                .layer(ClusterLayer::new());
            tokio::time::sleep(start_delay).await;
            let listener = worker.listen(&address).await?;
            tokio::select! {
                () = serve_connections(listener, app) => Ok::<_, Error>(()),
                _ = crash_requested.recv() => panic!("fixture: worker main panics on purpose"),
            }
        })
        .await
        .into()
}
