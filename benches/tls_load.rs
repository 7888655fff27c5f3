//! Load generator for new TLS connections: `CONCURRENCY` (default 16) tasks on one thread each
//! connect to `TARGET` (`HOST:PORT`), make a TLS 1.3 handshake trusting the certificate in `CA`
//! (PEM; server name `localhost`), send one `GET /` with `connection: close`, read the answer
//! to its end and start again, for `SECONDS` (default 3), or until `CONNECTIONS` have been made
//! when that is set (for instruction counts, which want a fixed number). `MODE=full` (default) makes a full
//! handshake every time; `MODE=resumed` keeps one session store, so every connection but the
//! first few resumes with a ticket from whichever worker served an earlier one.
//!
//! Prints `connections=N resumed=R failed=F seconds=S`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    resumed: AtomicU64,
    failed: AtomicU64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target: std::net::SocketAddr = std::env::var("TARGET")
        .map_err(|_| "set TARGET=HOST:PORT")?
        .parse()?;
    let ca = std::env::var("CA").map_err(|_| "set CA to the server's certificate (PEM)")?;
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let concurrency = number("CONCURRENCY", 16).max(1);
    let seconds = number("SECONDS", 3);
    let limit = number("CONNECTIONS", u64::MAX);
    let started_count = Arc::new(AtomicU64::new(0));
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(&ca)? {
        roots.add(certificate?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if std::env::var("MODE").as_deref() != Ok("resumed") {
        config.resumption = Resumption::disabled();
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let counts = Arc::new(Counts::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    runtime.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (connector, counts) = (connector.clone(), Arc::clone(&counts));
                let started_count = Arc::clone(&started_count);
                tokio::spawn(async move {
                    while Instant::now() < until
                        && started_count.fetch_add(1, Ordering::Relaxed) < limit
                    {
                        match exchange(&connector, target).await {
                            Ok(resumed) => {
                                counts.connections.fetch_add(1, Ordering::Relaxed);
                                if resumed {
                                    counts.resumed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(error) => {
                                if counts.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                                    eprintln!("first failure: {error}");
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
    println!(
        "connections={} resumed={} failed={} seconds={:.3}",
        counts.connections.load(Ordering::Relaxed),
        counts.resumed.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One connection: handshake, `GET /`, the answer to its end; whether the session resumed.
async fn exchange(
    connector: &tokio_rustls::TlsConnector,
    target: std::net::SocketAddr,
) -> std::io::Result<bool> {
    let tcp = tokio::net::TcpStream::connect(target).await?;
    let name = ServerName::try_from("localhost").expect("a valid name");
    let mut tls = connector.connect(name, tcp).await?;
    let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    match answer.starts_with(b"HTTP/1.1 200") {
        true => Ok(resumed),
        false => Err(std::io::Error::other("not a 200")),
    }
}
