//! A small HTTP client over hyper for tests: one request per new connection, or HTTP/2.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// How long one HTTP exchange may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a test needs of an HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The `x-worker-id` header, if any.
    pub worker_id: Option<String>,
    /// The body, as text.
    pub body: String,
}

impl Reply {
    /// The pid in a `/whoami` body (`worker N pid P client C`).
    pub fn whoami_pid(&self) -> u32 {
        self.whoami_field("pid")
            .parse()
            .unwrap_or_else(|_| panic!("not a /whoami body: {}", self.body))
    }

    /// The word after `name` in a `/whoami` body (`worker N pid P client C`).
    pub fn whoami_field(&self, name: &str) -> &str {
        let mut words = self.body.split_whitespace();
        words.find(|word| *word == name);
        words.next().unwrap_or_default()
    }
}

/// `GET path` over a new HTTP/1.1 connection.
pub async fn get(address: SocketAddr, path: &str) -> Reply {
    let source = match address {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    get_from(source, address, path).await
}

/// `GET path` over a new HTTP/1.1 connection from the local address `source` (for example
/// 127.0.0.2: every 127.x.y.z address is this machine).
pub async fn get_from(source: std::net::IpAddr, address: SocketAddr, path: &str) -> Reply {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let socket = match source {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .expect("a socket");
        socket
            .bind((source, 0).into())
            .expect("bind the source address");
        let stream = socket.connect(address).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1 handshake");
        tokio::spawn(connection);
        send(&mut sender, address, path).await
    })
    .await
    .unwrap_or_else(|_| panic!("GET {path} timed out"))
}

/// `GET path` over a new HTTP/2 prior-knowledge (`h2c`) connection, `count` times on it.
pub async fn get_h2(address: SocketAddr, path: &str, count: usize) -> Vec<Reply> {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        let mut replies = Vec::new();
        for _ in 0..count {
            let request = hyper::Request::get(format!("http://{address}{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.expect("HTTP/2 request");
            replies.push(reply_of(response).await);
        }
        replies
    })
    .await
    .unwrap_or_else(|_| panic!("h2c GET {path} timed out"))
}

/// `GET path` over a new HTTP/1.1 connection to the Unix socket at `socket`.
pub async fn get_unix(socket: &std::path::Path, path: &str) -> Reply {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .unwrap_or_else(|error| panic!("connect to {}: {error}", socket.display()));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1 handshake");
        tokio::spawn(connection);
        send(&mut sender, "localhost", path).await
    })
    .await
    .unwrap_or_else(|_| panic!("GET {path} over {} timed out", socket.display()))
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: impl std::fmt::Display,
    path: &str,
) -> Reply {
    let response = sender
        .send_request(request(host, path))
        .await
        .expect("HTTP/1 request");
    reply_of(response).await
}

/// `GET path` for an HTTP/1 connection to `host` (its `Host` header).
pub(crate) fn request(host: impl std::fmt::Display, path: &str) -> hyper::Request<Empty<Bytes>> {
    hyper::Request::get(path)
        .header(hyper::header::HOST, host.to_string())
        .body(Empty::<Bytes>::new())
        .expect("a valid request")
}

async fn reply_of(response: hyper::Response<hyper::body::Incoming>) -> Reply {
    read_reply(response).await.expect("a whole response body")
}

/// Reads a whole response.
pub(crate) async fn read_reply(
    response: hyper::Response<hyper::body::Incoming>,
) -> Result<Reply, hyper::Error> {
    let status = response.status().as_u16();
    let worker_id = response
        .headers()
        .get("x-worker-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        worker_id,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One HTTP/2 prior-knowledge (`h2c`) connection; clones share it, so requests can run
/// concurrently on it.
#[derive(Clone)]
pub struct H2 {
    address: SocketAddr,
    sender: hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
}

impl H2 {
    /// Opens the connection.
    pub async fn connect(address: SocketAddr) -> H2 {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        H2 { address, sender }
    }

    /// `GET path` on this connection.
    pub async fn get(&self, path: &str) -> Reply {
        let request = hyper::Request::get(format!("http://{}{path}", self.address))
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        let mut sender = self.sender.clone();
        let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
            .await
            .expect("an HTTP/2 answer in time")
            .expect("HTTP/2 request");
        reply_of(response).await
    }
}
