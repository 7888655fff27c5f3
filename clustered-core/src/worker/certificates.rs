//! When the master tells this worker to load its TLS certificates again (`clusterctl tls
//! reload`): each TLS server of this process registers how it loads its certificate
//! (`clustered-tower`'s `serve_tls` does), and the worker's link runs every one and tells the
//! master how many loaded it and why the others could not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

/// Loads a TLS server's certificate again; why not, in one line naming the file.
type Reload = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The registered reloads, by registration number.
static RELOADS: Mutex<Vec<(u64, Reload)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A TLS server's way to load its certificate again, registered while this lives.
#[derive(Debug)]
#[must_use = "the reload is registered only while this lives"]
pub struct CertificateReload {
    number: u64,
}

impl Drop for CertificateReload {
    fn drop(&mut self) {
        lock(&RELOADS).retain(|(number, _)| *number != self.number);
    }
}

/// Registers `reload`, run on the blocking pool each time the master asks this worker to load
/// its certificates again, until the returned guard is dropped.
pub fn on_reload(
    reload: impl Fn() -> Result<(), String> + Send + Sync + 'static,
) -> CertificateReload {
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    lock(&RELOADS).push((number, Arc::new(reload)));
    CertificateReload { number }
}

/// Runs every registered reload (file reads, off the runtime's threads): how many loaded,
/// and why the others did not.
pub(crate) async fn reload_all() -> (u32, Vec<String>) {
    let reloads: Vec<Reload> = lock(&RELOADS)
        .iter()
        .map(|(_, reload)| Arc::clone(reload))
        .collect();
    if reloads.is_empty() {
        return (0, Vec::new());
    }
    let run = tokio::task::spawn_blocking(move || {
        let mut loaded = 0u32;
        let mut errors = Vec::new();
        for reload in reloads {
            match reload() {
                Ok(()) => loaded = loaded.saturating_add(1),
                Err(error) => errors.push(error),
            }
        }
        (loaded, errors)
    });
    run.await
        .unwrap_or_else(|error| (0, vec![format!("loading the certificate failed: {error}")]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_every_registered_reload_while_it_is_registered() {
        let good = on_reload(|| Ok(()));
        let bad = on_reload(|| Err("cannot read the certificate chain /x/cert.pem".into()));
        assert_eq!(
            reload_all().await,
            (
                1,
                vec!["cannot read the certificate chain /x/cert.pem".to_owned()]
            )
        );
        drop(bad);
        assert_eq!(reload_all().await, (1, Vec::new()));
        drop(good);
        assert_eq!(reload_all().await, (0, Vec::new()));
    }
}
