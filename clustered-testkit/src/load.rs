//! A bounded load generator in Rust, so tests need no outside tool: `clients` concurrent
//! clients, each opening a new connection per request (like `ab -c N`) or keeping one
//! connection alive (like `wrk -c N`). A keep-alive client reconnects when the server answers
//! `Connection: close`, or when its idle connection was closed before it sent anything; a
//! request that was sent and got no whole answer is a failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::http::{REQUEST_TIMEOUT, read_reply, request};

/// How each client uses connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// A new connection for every request (`ab -c N`).
    PerRequest,
    /// One keep-alive connection, renewed only when the server closes it (`wrk -c N`).
    KeepAlive,
}

/// A request that failed: when it started and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When the client started the request.
    pub started: Instant,
    /// What went wrong.
    pub error: String,
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// 2xx responses.
    pub ok: usize,
    /// Responses with another status.
    pub non_2xx: usize,
    /// Requests with no whole response.
    pub failures: Vec<Failure>,
    /// 2xx responses per `x-worker-id`.
    pub per_worker: BTreeMap<String, usize>,
}

impl LoadReport {
    /// Asserts that every request got a whole 2xx answer (showing the first failures), with
    /// `context` in the message.
    pub fn assert_all_2xx(&self, context: &str) {
        let shown = &self.failures[..self.failures.len().min(5)];
        assert!(
            self.failures.is_empty(),
            "{context}: {} failed: {shown:?}",
            self.failures.len()
        );
        assert_eq!(self.non_2xx, 0, "{context}: answers other than 2xx");
    }

    fn merge(&mut self, other: LoadReport) {
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.failures.extend(other.failures);
        for (worker, count) in other.per_worker {
            *self.per_worker.entry(worker).or_default() += count;
        }
    }
}

/// A running load; stop it to get the report.
pub struct Load {
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicUsize>,
    clients: Vec<JoinHandle<LoadReport>>,
}

impl Load {
    /// Starts `clients` clients sending `GET path` to `address` until [`Load::stop`].
    pub fn start(
        address: SocketAddr,
        path: &'static str,
        clients: usize,
        connections: Connections,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicUsize::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (stop, completed) = (Arc::clone(&stop), Arc::clone(&completed));
                tokio::spawn(client(address, path, connections, stop, completed))
            })
            .collect();
        Load {
            stop,
            completed,
            clients,
        }
    }

    /// Requests completed so far (whatever their outcome).
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::Relaxed)
    }

    /// Waits until `count` requests have completed; `false` if `timeout` ran out first.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.completed() < count {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops every client after its current request and sums up what they saw.
    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut report = LoadReport::default();
        for client in self.clients {
            report.merge(client.await.expect("a load client panicked"));
        }
        report
    }
}

async fn client(
    address: SocketAddr,
    path: &'static str,
    connections: Connections,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicUsize>,
) -> LoadReport {
    let mut report = LoadReport::default();
    let mut connection = None;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(REQUEST_TIMEOUT, exchange(address, path, &mut connection))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")));
        match outcome {
            Ok((status, worker, close)) => {
                if (200..300).contains(&status) {
                    report.ok += 1;
                    *report
                        .per_worker
                        .entry(worker.unwrap_or_default())
                        .or_default() += 1;
                } else {
                    report.non_2xx += 1;
                }
                if close || connections == Connections::PerRequest {
                    connection = None;
                }
            }
            Err(error) => {
                connection = None;
                report.failures.push(Failure { started, error });
            }
        }
        completed.fetch_add(1, Ordering::Relaxed);
    }
    report
}

/// One request on the client's connection (opened first if there is none, or if the server
/// closed it while idle). Returns the status, `x-worker-id`, and whether the server closes.
async fn exchange(
    address: SocketAddr,
    path: &str,
    connection: &mut Option<SendRequest<Empty<Bytes>>>,
) -> Result<(u16, Option<String>, bool), String> {
    if let Some(sender) = connection.as_mut()
        && sender.ready().await.is_err()
    {
        *connection = None; // closed before this request was sent: not a failure
    }
    let sender = match connection {
        Some(sender) => sender,
        None => connection.insert(connect(address).await?),
    };
    let response = sender
        .send_request(request(address, path))
        .await
        .map_err(|error| format!("request: {error}"))?;
    let close = response
        .headers()
        .get(hyper::header::CONNECTION)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
    let reply = read_reply(response)
        .await
        .map_err(|error| format!("body: {error}"))?;
    Ok((reply.status, reply.worker_id, close))
}

async fn connect(address: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|error| format!("connect: {error}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("handshake: {error}"))?;
    tokio::spawn(connection);
    Ok(sender)
}
