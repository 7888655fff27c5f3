//! [`TlsConfig`]: HTTPS from every worker. A certificate chain and its key from PEM files, ALPN
//! `h2` and `http/1.1`, TLS 1.3 and 1.2, with rustls and its ring provider (it builds with a C
//! compiler alone). The handshake runs in the worker that took the connection (the master only
//! hands over descriptors), bounded by [`TlsConfig::handshake_timeout`]; when the worker drains, a
//! handshake under way gets [`crate::KEEP_ALIVE_DRAIN_GRACE`] to finish, and a client that never
//! finishes it holds the drain no longer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use crate::live_cert::LiveCertificate;
pub use crate::tls_error::TlsError;

/// How long a client has to finish its TLS handshake, by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

use clustered_core::env::{TLS_CERT, TLS_HANDSHAKE_TIMEOUT, TLS_KEY};

/// The TLS side of serving HTTPS: the server's certificate and what it speaks.
///
/// ```no_run
/// use clustered_tower::TlsConfig;
/// let tls = TlsConfig::from_pem_files("/etc/app/cert.pem", "/etc/app/key.pem")?;
/// # Ok::<(), clustered_tower::TlsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TlsConfig {
    server: Arc<ServerConfig>,
    certificate: Arc<LiveCertificate>,
    handshake_timeout: Duration,
}

impl TlsConfig {
    /// The certificate chain in `cert` (PEM, the server's certificate first) and its private
    /// key in `key` (PEM: PKCS#8, PKCS#1 or SEC1), speaking TLS 1.3 and 1.2 with ALPN `h2` and
    /// `http/1.1`.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate = Arc::new(LiveCertificate::load(cert, key, Arc::clone(&provider))?);
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|error| TlsError::Mismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
                reason: error.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(
                Arc::clone(&certificate) as Arc<dyn rustls::server::ResolvesServerCert>
            );
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Tickets sealed with the cluster's keys: a session resumes on any worker.
        server.ticketer = Arc::new(crate::tickets::SharedTickets::new());
        Ok(Self {
            server: Arc::new(server),
            certificate,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// The files [`TLS_CERT`] and [`TLS_KEY`] name, when both are set, with the handshake
    /// timeout [`TLS_HANDSHAKE_TIMEOUT`] gives (seconds; default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]); `None` when neither file is set.
    pub fn from_env() -> Result<Option<Self>, TlsError> {
        let var = |name| std::env::var_os(name).filter(|value| !value.is_empty());
        match (var(TLS_CERT), var(TLS_KEY)) {
            (Some(cert), Some(key)) => {
                let timeout = match var(TLS_HANDSHAKE_TIMEOUT) {
                    Some(value) => handshake_timeout_of(&value.to_string_lossy())?,
                    None => DEFAULT_HANDSHAKE_TIMEOUT,
                };
                let tls = Self::from_pem_files(cert, key)?;
                Ok(Some(tls.handshake_timeout(timeout)))
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err(TlsError::HalfSet {
                set: TLS_CERT,
                unset: TLS_KEY,
            }),
            (None, Some(_)) => Err(TlsError::HalfSet {
                set: TLS_KEY,
                unset: TLS_CERT,
            }),
        }
    }

    /// How long a client has to finish its handshake before the connection is closed
    /// (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The rustls configuration the workers serve with.
    pub fn server_config(&self) -> &Arc<ServerConfig> {
        &self.server
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Reads the certificate's files again and serves them from the next handshake on (the
    /// ticket keys stay); on an error, naming the file, the one before keeps serving. Every
    /// worker does this when told (`clusterctl tls reload`).
    pub fn reload_certificate(&self) -> Result<(), TlsError> {
        self.certificate.reload()
    }
}

/// A handshake timeout in seconds, whole or not (`10`, `2.5`), more than 0.
fn handshake_timeout_of(value: &str) -> Result<Duration, TlsError> {
    let seconds: Option<f64> = value.trim().parse().ok();
    seconds
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .filter(|timeout| !timeout.is_zero())
        .ok_or_else(|| TlsError::HandshakeTimeout {
            value: value.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_timeout_is_seconds_more_than_zero() {
        assert_eq!(
            handshake_timeout_of("2.5").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(
            handshake_timeout_of(" 10 ").unwrap(),
            Duration::from_secs(10)
        );
        for bad in ["0", "-1", "ten", "", "NaN", "1e400"] {
            let error = handshake_timeout_of(bad).unwrap_err().to_string();
            assert!(
                error.starts_with("CLUSTER_TLS_HANDSHAKE_TIMEOUT="),
                "{error}"
            );
        }
    }
}
