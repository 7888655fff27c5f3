//! The visit counter done right (Node cluster's classic "count" example).
//!
//! ```sh
//! cargo run --example count     # then: curl localhost:3000; curl localhost:3000/total
//! ```
//!
//! Every `GET /` does `ipc::send("count")`; the master counts. `GET /total` asks the master
//! (`ipc::request`) for the exact cluster-wide total (`/total` and `/seen` are not counted); a
//! count still on its way from another worker arrives a moment later (the master takes its
//! workers' messages in turn, so no order holds across workers).
//! Every second the master broadcasts the total to all workers; `GET /seen` shows the last
//! value this worker received. Environment as for `hello`: `CLUSTER_WORKERS`, `HOST`, `PORT`.
//!
//! Every visit is also counted with the `metrics` crate (`visits_total`): set
//! `CLUSTER_METRICS_ADDR=127.0.0.1:9100` and `curl localhost:9100/metrics` shows the sum over
//! every worker, those that died included.
//!
//! The master's part runs in `Cluster::on_master`, the workers' background part in
//! `Cluster::on_worker`: no process asks which one it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use clustered::{
    Cluster, ClusterControl, ClusterLayer, Exit, InboxItem, IpcError, ServeHttp, ipc, metrics,
};

/// The last total this worker received from the master's broadcast.
static SEEN: AtomicU64 = AtomicU64::new(0);

async fn visit() -> Result<&'static str, (StatusCode, String)> {
    ipc::send("count").map_err(unavailable)?;
    metrics::counter!("visits_total").increment(1);
    Ok("counted\n")
}

async fn total() -> Result<String, (StatusCode, String)> {
    let total: u64 = ipc::request("total").await.map_err(unavailable)?;
    Ok(format!("{total}\n"))
}

async fn seen() -> String {
    format!("{}\n", SEEN.load(Ordering::Relaxed))
}

/// What a failed call to the master answers: busy or slow is worth a retry, anything else is not.
fn unavailable(error: IpcError) -> (StatusCode, String) {
    let status = match error {
        IpcError::Backpressure | IpcError::MasterGone => StatusCode::SERVICE_UNAVAILABLE,
        IpcError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("{error}\n"))
}

/// The master's part: count, answer `total`, broadcast the total every second.
async fn count_in_master(control: ClusterControl) {
    let Ok(mut inbox) = control.inbox() else {
        return;
    };
    let mut total: u64 = 0;
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            incoming = inbox.recv() => match incoming {
                Some(InboxItem::Message { data, .. }) if data == "count" => total += 1,
                Some(InboxItem::Request(request)) if request.data() == "total" => {
                    let _ = request.reply(total);
                }
                Some(InboxItem::Request(request)) => request.fail("unknown request"),
                Some(_) => {}
                None => return,
            },
            _ = every_second.tick() => {
                let _ = control.broadcast(total);
            }
        }
    }
}

/// The worker's part: remember the last broadcast total.
async fn remember_broadcasts() {
    let Ok(mut messages) = ipc::messages() else {
        return;
    };
    while let Some(message) = messages.recv().await {
        if let Ok(total) = message.parse::<u64>() {
            SEEN.store(total, Ordering::Relaxed);
        }
    }
}

#[clustered::main]
async fn main() -> Exit {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let cluster = Cluster::new()
        .on_ready(|addresses| println!("listening on http://{}", addresses[0]))
        .on_master(count_in_master)
        .on_worker(|_worker| {
            metrics::describe_counter!("visits_total", "Visits of /, over every worker.");
            remember_broadcasts()
        });
    let app = Router::new()
        .route("/", get(visit))
        .route("/total", get(total))
        .route("/seen", get(seen))
        .layer(ClusterLayer::new());
    cluster.serve(format!("{host}:{port}"), app).await.into()
}
