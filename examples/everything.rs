//! Every feature of the cluster in one program, importing only from `clustered`: the builder's
//! groups, an agent, master code that reads the inbox, follows events and steers the workers,
//! worker code that sends, asks and counts, an axum app with the cluster's layer and its drain
//! signal, hyper-util's builder reached through `HttpConfig`, and a raw TCP listener beside it.
//! It compiles with the tests; run it to see it serve:
//!
//! ```sh
//! cargo run --example everything    # HTTP on 127.0.0.1:3000, TCP echo on 127.0.0.1:4000
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use clustered::shared_metrics::GaugeAggregation;
use clustered::{
    Answer, Cluster, ClusterControl, ClusterEvent, ClusterLayer, Drain, Error, Exit, HttpConfig,
    InboxItem, IpcError, Policy, Recycling, RestartPolicy, Scale, Signal, Timeouts, WorkerInfo,
    agent, env, ipc, metrics, serve_connections,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /`: who served it, for whom, and what the cluster counted.
async fn hello(
    Extension(worker): Extension<WorkerInfo>,
    Extension(drain): Extension<Drain>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
) -> Result<String, String> {
    let answer = |error: IpcError| error.to_string();
    ipc::send("visit").map_err(answer)?;
    let visits = ipc::counter("visits").add(1).await.map_err(answer)?;
    let total: u64 = ipc::request("total").await.map_err(answer)?;
    let ticks: u64 = agent::request("ticks").await.map_err(answer)?;
    metrics::counter!("hello_total").increment(1);
    Ok(format!(
        "worker {} (pid {}) for {client}: {visits} visits, {total} messages, {ticks} ticks{}\n",
        worker.id,
        worker.pid,
        if drain.is_draining() {
            ", draining"
        } else {
            ""
        },
    ))
}

/// The master's part: answer requests, print events, and steer the workers once they serve.
async fn master(control: ClusterControl) {
    let Ok(mut inbox) = control.inbox() else {
        return;
    };
    let mut events = control.events();
    let (mut messages, mut steered) = (0u64, false);
    loop {
        tokio::select! {
            item = inbox.recv() => match item {
                Some(InboxItem::Message { .. }) => messages += 1,
                Some(InboxItem::Request(request)) => { let _ = request.reply(messages); }
                Some(_) => {}
                None => return,
            },
            event = events.recv() => match event {
                // Once every worker (the agent is slot 0) listens on both addresses.
                Some(ClusterEvent::Listening(worker, _)) if worker.id() == 2 && !steered => {
                    steered = true;
                    let answer: Answer = control.scale(Scale::By(1)).await;
                    println!("scale: {answer}");
                    if let Some(worker) = control.workers().last() {
                        let _ = worker.kill(Signal::Term);
                    }
                    let _ = control.broadcast("hello, workers");
                }
                Some(event) => println!("event: {event}"),
                None => return,
            },
        }
    }
}

/// The agent: one process that ticks and answers how many times it did.
async fn agent_main() -> Result<(), Error> {
    let mut requests = agent::requests()?;
    let mut ticks = 0u64;
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every_second.tick() => ticks += 1,
            request = requests.recv() => match request {
                Some(request) => { let _ = request.reply(ticks); }
                None => return Ok(()),
            },
        }
    }
}

#[clustered::main]
async fn main() -> Exit {
    println!("workers from {} if set", env::WORKERS);
    let app = Router::new()
        .route("/", get(hello))
        .layer(ClusterLayer::new());
    let http = HttpConfig::default()
        .idle_timeout(Some(Duration::from_secs(30)))
        .http1(|builder| {
            builder.title_case_headers(true);
        });
    Cluster::new()
        .workers(2)
        .policy(Policy::Rr)
        .timeouts(Timeouts {
            shutdown: Duration::from_secs(10),
            ..Timeouts::default()
        })
        .recycling(Recycling {
            max_requests: 100_000,
            ..Recycling::default()
        })
        .restart_policy(RestartPolicy::default())
        .gauge_aggregation("queue_depth", GaugeAggregation::Max)
        .bind("127.0.0.1:3000")
        .bind("127.0.0.1:4000")
        .agent(|_agent| agent_main())
        .on_master(master)
        .on_worker(|_worker| async {
            let Ok(mut messages) = ipc::messages() else {
                return;
            };
            while let Some(message) = messages.recv().await {
                println!("worker got {}", message.data);
            }
        })
        .run(move |worker| {
            let (app, http) = (app.clone(), http.clone());
            async move {
                let web = worker.listen("127.0.0.1:3000").await?;
                let mut echo = worker.listen("127.0.0.1:4000").await?;
                tokio::spawn(async move {
                    while let Some((mut stream, _client)) = echo.accept().await {
                        tokio::spawn(async move {
                            let mut buffer = [0; 1024];
                            while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                                let _ = stream.write_all(&buffer[..read]).await;
                            }
                        });
                    }
                });
                serve_connections(web, app, &http).await;
                Ok::<_, Error>(())
            }
        })
        .await
        .into()
}
