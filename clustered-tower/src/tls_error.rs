//! [`TlsError`]: why a TLS setting could not be used.

use std::path::PathBuf;

/// Why a TLS setting could not be used; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate chain could not be read.
    #[error("cannot read the certificate chain {}: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why, in one line.
        reason: String,
    },
    /// The private key could not be read.
    #[error("cannot read the private key {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why, in one line.
        reason: String,
    },
    /// The chain and the key do not make a server configuration (the key is not the
    /// certificate's, an algorithm rustls does not take…).
    #[error("the certificate {} and the key {} do not go together: {reason}", cert.display(), key.display())]
    Mismatch {
        /// The certificate chain's file.
        cert: PathBuf,
        /// The key's file.
        key: PathBuf,
        /// Why, in one line.
        reason: String,
    },
    /// Only one of [`clustered_core::env::TLS_CERT`] and [`clustered_core::env::TLS_KEY`] is
    /// set.
    #[error("{set} is set but {unset} is not: set both (PEM files) for HTTPS, or neither")]
    HalfSet {
        /// The variable that is set.
        set: &'static str,
        /// The one that is not.
        unset: &'static str,
    },
    /// [`clustered_core::env::TLS_HANDSHAKE_TIMEOUT`] is not a number of seconds more than 0.
    #[error(
        "{}={value:?} is not a handshake timeout: give a number of seconds more than 0 (e.g. 10 or 2.5)",
        clustered_core::env::TLS_HANDSHAKE_TIMEOUT
    )]
    HandshakeTimeout {
        /// The value.
        value: String,
    },
}
