//! What the master runs with: the builder's settings, else the environment's.

use std::path::PathBuf;
use std::time::Duration;

use super::{Cluster, DEFAULT_HANG_TIMEOUT, MIN_HANG_TIMEOUT};
use crate::error::Error;
use crate::master::{Config, Settings};
use crate::role::{
    CONTROL_SOCKET_ENV, ERROR_LOG_FILE_ENV, HANG_TIMEOUT_ENV, LOG_FILE_ENV, METRICS_ADDR_ENV,
    parse_env,
};

impl Cluster {
    /// The control socket's path, from the builder or the environment.
    fn control_socket_setting(&self) -> Option<PathBuf> {
        path_setting(&self.control_socket, CONTROL_SOCKET_ENV)
    }

    /// The hang timeout this cluster will use (`None`: off).
    fn hang_timeout_setting(&self) -> Result<Option<Duration>, Error> {
        let timeout = match self.hang_timeout {
            Some(timeout) if !timeout.is_zero() && timeout < MIN_HANG_TIMEOUT => {
                tracing::warn!(
                    ?timeout,
                    minimum = ?MIN_HANG_TIMEOUT,
                    "hang timeout raised to the minimum (three heartbeat periods)"
                );
                MIN_HANG_TIMEOUT
            }
            Some(timeout) => timeout,
            None => match std::env::var(HANG_TIMEOUT_ENV) {
                Ok(value) => {
                    let valid = |seconds: f64| seconds.is_finite() && seconds >= 0.0;
                    let timeout =
                        Duration::from_secs_f64(parse_env(HANG_TIMEOUT_ENV, &value, valid)?);
                    if !timeout.is_zero() && timeout < MIN_HANG_TIMEOUT {
                        return Err(Error::Env {
                            var: HANG_TIMEOUT_ENV,
                            value,
                            reason: format!(
                                "at least {} s (three heartbeat periods), or 0 to turn hang detection off",
                                MIN_HANG_TIMEOUT.as_secs()
                            ),
                        });
                    }
                    timeout
                }
                Err(_) => DEFAULT_HANG_TIMEOUT,
            },
        };
        Ok(Some(timeout).filter(|timeout| !timeout.is_zero()))
    }

    /// What the master runs with, from this builder and the environment.
    pub(super) fn into_settings(self) -> Result<Settings, Error> {
        let hang_timeout = self.hang_timeout_setting()?;
        let control_socket = self.control_socket_setting();
        let log_file = path_setting(&self.log_file, LOG_FILE_ENV);
        let error_log_file = path_setting(&self.error_log_file, ERROR_LOG_FILE_ENV);
        let metrics_addr = self.metrics_addr.clone().or_else(|| {
            std::env::var(METRICS_ADDR_ENV)
                .ok()
                .filter(|address| !address.trim().is_empty())
        });
        let config = Config {
            worker_count: self.worker_count()?,
            policy: self.scheduling_policy()?,
            addresses: self.addresses,
            shutdown_timeout: self.shutdown_timeout,
            reload_timeout: self.reload_timeout,
            reload_batch: self.reload_batch,
            restart: self.restart,
            hang_timeout,
            boot_timeout: self.boot_timeout,
        };
        Ok(Settings {
            config,
            control_socket,
            log_file,
            error_log_file,
            metrics_addr,
            control: self.control,
            on_ready: self.on_ready,
            on_master: self.on_master,
        })
    }
}

/// A path from the builder, else from the environment variable `var` (unset or empty: none).
fn path_setting(builder: &Option<PathBuf>, var: &str) -> Option<PathBuf> {
    builder.clone().or_else(|| {
        std::env::var_os(var)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    })
}
