//! A clustered raw TCP server (no HTTP): each worker echoes every line back, prefixed with its
//! slot. Shows the low-level path: [`clustered::Worker::listen`] yields delivered
//! [`clustered::Connection`]s.
//!
//! ```sh
//! PORT=4000 cargo run --example tcp_echo     # then: nc 127.0.0.1 4000
//! ```
//!
//! Environment as for `hello`: `CLUSTER_WORKERS`, `HOST`, `PORT` (default 4000).

use clustered::{Cluster, Connection, Exit};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn echo(stream: Connection, worker_id: usize) -> std::io::Result<()> {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut lines = BufReader::new(reader).lines();
    while let Some(line) = lines.next_line().await? {
        writer
            .write_all(format!("worker {worker_id}: {line}\n").as_bytes())
            .await?;
    }
    Ok(())
}

#[clustered::main]
async fn main() -> Exit {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "4000".into());
    let address = format!("{host}:{port}");
    Cluster::new()
        .bind(address.clone())
        .on_ready(|addresses| println!("listening on tcp://{}", addresses[0]))
        .run(|worker| async move {
            let mut listener = worker.listen(&address).await?;
            while let Some((stream, _peer)) = listener.accept().await {
                tokio::spawn(echo(stream, worker.id()));
            }
            Ok::<_, clustered::Error>(())
        })
        .await
        .into()
}
