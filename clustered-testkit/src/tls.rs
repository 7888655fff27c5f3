//! HTTPS for tests: a certificate made at test time ([`TestCertificate`], rcgen), and `GET`
//! over TLS with a chosen ALPN protocol ([`get_tls`]), through tokio-rustls and hyper.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::http::{REQUEST_TIMEOUT, Reply, read_reply, request};

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM files in a
/// directory of its own (removed when dropped).
pub struct TestCertificate {
    dir: PathBuf,
    /// Every certificate made so far (clients trust them all), the current one last.
    made: Vec<CertificateDer<'static>>,
}

impl TestCertificate {
    /// Makes one; `name` keeps two tests' files apart.
    pub fn new(name: &str) -> TestCertificate {
        let dir = std::env::temp_dir().join(format!("clustered-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for the certificate");
        let mut certificate = TestCertificate {
            dir,
            made: Vec::new(),
        };
        certificate.renew();
        certificate
    }

    /// Makes a new certificate and key in the same files (clients made from now on trust it
    /// and the ones before); returns its DER.
    pub fn renew(&mut self) -> Vec<u8> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("a self-signed certificate");
        std::fs::write(self.cert_path(), made.cert.pem()).expect("cert.pem");
        std::fs::write(self.key_path(), made.key_pair.serialize_pem()).expect("key.pem");
        self.made.push(made.cert.der().clone());
        made.cert.der().to_vec()
    }

    /// The current certificate's DER.
    pub fn der(&self) -> Vec<u8> {
        self.made.last().map(|der| der.to_vec()).unwrap_or_default()
    }

    /// The certificate's PEM file.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The private key's PEM file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The directory both are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client configuration that trusts the certificates made so far alone, offering `alpn`.
    pub fn client(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for der in &self.made {
            roots.add(der.clone()).expect("the certificate as a root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Arc::new(config)
    }
}

impl Drop for TestCertificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What an HTTPS exchange saw: the reply, the protocol ALPN chose, whether the session was
/// resumed, and the client's own address.
#[derive(Debug)]
pub struct TlsReply {
    /// The response.
    pub reply: Reply,
    /// The ALPN protocol the server chose.
    pub alpn: Option<Vec<u8>>,
    /// Whether the handshake resumed an earlier session.
    pub resumed: bool,
    /// The client's address (what the server sees as its peer).
    pub local: SocketAddr,
    /// The server's certificate (DER).
    pub certificate: Vec<u8>,
}

/// `GET path` over a new TLS connection to `address` with `client`, in HTTP/2 when ALPN chose
/// `h2` and HTTP/1.1 otherwise.
pub async fn get_tls(
    address: SocketAddr,
    path: &str,
    client: Arc<rustls::ClientConfig>,
) -> TlsReply {
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, tokio::net::TcpStream::connect(address))
        .await
        .unwrap_or_else(|_| panic!("connecting to {address} timed out"))
        .expect("connect");
    get_tls_over(stream, path, client).await
}

/// [`get_tls`] over `stream`, a TCP connection made earlier: the handshake begins now.
pub async fn get_tls_over(
    stream: tokio::net::TcpStream,
    path: &str,
    client: Arc<rustls::ClientConfig>,
) -> TlsReply {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let local = stream.local_addr().expect("the client's address");
        let name = ServerName::try_from("localhost").expect("a server name");
        let session = tokio_rustls::TlsConnector::from(client)
            .connect(name, stream)
            .await
            .expect("a TLS handshake");
        let (_, state) = session.get_ref();
        let alpn = state.alpn_protocol().map(<[u8]>::to_vec);
        let resumed = state.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        let certificate = server_certificate(state);
        let io = TokioIo::new(session);
        let response = match alpn.as_deref() {
            Some(b"h2") => {
                let (mut sender, connection) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .expect("HTTP/2 handshake");
                tokio::spawn(connection);
                let request = hyper::Request::get(format!("https://localhost{path}"))
                    .body(Empty::<Bytes>::new())
                    .expect("a request");
                sender.send_request(request).await.expect("HTTP/2 request")
            }
            _ => {
                let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                    .await
                    .expect("HTTP/1 handshake");
                tokio::spawn(connection);
                sender
                    .send_request(request("localhost", path))
                    .await
                    .expect("HTTP/1 request")
            }
        };
        let reply = read_reply(response).await.expect("a whole response");
        TlsReply {
            reply,
            alpn,
            resumed,
            local,
            certificate,
        }
    })
    .await
    .unwrap_or_else(|_| panic!("GET {path} over TLS timed out"))
}

/// The server's certificate of a session (DER; empty if it sent none).
fn server_certificate(state: &rustls::ClientConnection) -> Vec<u8> {
    state
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| der.to_vec())
        .unwrap_or_default()
}

/// An HTTP/1.1 keep-alive connection over TLS, for requests one after another.
pub struct TlsConnection {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    /// The server's certificate on this connection (DER).
    pub certificate: Vec<u8>,
}

impl TlsConnection {
    /// Connects to `address` with `client` (HTTP/1.1).
    pub async fn open(address: SocketAddr, client: Arc<rustls::ClientConfig>) -> TlsConnection {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("a server name");
        let session = tokio::time::timeout(
            REQUEST_TIMEOUT,
            tokio_rustls::TlsConnector::from(client).connect(name, stream),
        )
        .await
        .expect("a handshake in time")
        .expect("a TLS handshake");
        let certificate = server_certificate(session.get_ref().1);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(session))
            .await
            .expect("HTTP/1 handshake");
        tokio::spawn(connection);
        TlsConnection {
            sender,
            certificate,
        }
    }

    /// `GET path` on this connection.
    pub async fn get(&mut self, path: &str) -> Reply {
        let response = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.sender.send_request(request("localhost", path)),
        )
        .await
        .expect("an answer in time")
        .expect("HTTP/1 request");
        read_reply(response).await.expect("a whole response")
    }
}
