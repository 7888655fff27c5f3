//! [`LiveCertificate`]: the certificate a worker serves, which it can load again from its PEM
//! files while it runs (`clusterctl tls reload`): new handshakes get the new one, connections
//! already made keep theirs, and the session-ticket keys stay. A new chain or key that cannot
//! be read, or that do not go together, is refused with an error naming the file, and the one
//! before keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls_error::TlsError;

/// The certificate being served, and where it comes from.
#[derive(Debug)]
pub(crate) struct LiveCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl LiveCertificate {
    /// The chain in `cert` and its key in `key`, read now.
    pub(crate) fn load(
        cert: &Path,
        key: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let current = read(cert, key, &provider)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again and serves what they hold from the next handshake on; on an
    /// error, the certificate before stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let fresh = read(&self.cert, &self.key, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

impl ResolvesServerCert for LiveCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The chain in `cert` and the key in `key`, checked to go together.
fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(cert)?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::Key {
        path: key.to_owned(),
        reason: pem_reason(&error, "private key"),
    })?;
    CertifiedKey::from_der(chain, private_key, provider).map_err(|error| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: error.to_string(),
    })
}

/// Every certificate in the PEM file at `path`, in order; an error if there is none.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let failed = |reason: String| TlsError::Certificate {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|error| failed(pem_reason(&error, "certificate")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| failed(pem_reason(&error, "certificate")))?;
    if chain.is_empty() {
        return Err(failed("no PEM certificate in it".into()));
    }
    Ok(chain)
}

/// One line for a PEM reading error.
fn pem_reason(error: &rustls_pki_types::pem::Error, what: &str) -> String {
    match error {
        rustls_pki_types::pem::Error::NoItemsFound => format!("no PEM {what} in it"),
        rustls_pki_types::pem::Error::Io(error) => error.to_string(),
        other => format!("not valid PEM: {other:?}"),
    }
}
