//! What the master runs with: the builder's settings, else the environment's.

use std::path::PathBuf;
use std::time::Duration;

use super::{Cluster, DEFAULT_HANG_TIMEOUT, MIN_HANG_TIMEOUT};
use crate::error::Error;
use crate::master::{Config, Recycle, Settings};
use crate::role::{
    CONTROL_SOCKET_ENV, ERROR_LOG_FILE_ENV, HANG_TIMEOUT_ENV, LOG_FILE_ENV, MAX_MEMORY_ENV,
    MAX_REQUESTS_ENV, MAX_REQUESTS_JITTER_ENV, METRICS_ADDR_ENV, WAIT_READY_ENV, WATCH_ENV,
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

    /// Watch mode's extra paths when it is on (`None`: off), from the builder, else the
    /// environment.
    fn watch_setting(&self) -> Option<Vec<PathBuf>> {
        if let Some(watch) = self.watch {
            return watch.then(|| self.watch_paths.clone());
        }
        let value = std::env::var_os(WATCH_ENV)?.to_string_lossy().into_owned();
        match switch(&value) {
            Some(on) => on.then(Vec::new),
            None => Some(
                value
                    .split(':')
                    .filter(|path| !path.is_empty())
                    .map(PathBuf::from)
                    .collect(),
            ),
        }
    }

    /// Whether workers say when they are ready, from the builder, else the environment.
    fn wait_ready_setting(&self) -> Result<bool, Error> {
        match (self.wait_ready, std::env::var(WAIT_READY_ENV)) {
            (Some(wait), _) => Ok(wait),
            (None, Ok(value)) => switch(&value).ok_or_else(|| Error::Env {
                var: WAIT_READY_ENV,
                value,
                reason: "expected 1 or 0".into(),
            }),
            (None, Err(_)) => Ok(false),
        }
    }

    /// When workers are recycled, from the builder, else the environment.
    fn recycle_setting(&self) -> Result<Recycle, Error> {
        let positive = |n: u64| n >= 1;
        let max_requests = match (self.max_requests, std::env::var(MAX_REQUESTS_ENV)) {
            (Some(requests), _) => Some(requests),
            (None, Ok(value)) => Some(parse_env(MAX_REQUESTS_ENV, &value, positive)?),
            (None, Err(_)) => None,
        };
        let jitter_env = std::env::var(MAX_REQUESTS_JITTER_ENV);
        let max_requests_jitter = match (self.max_requests_jitter, jitter_env) {
            (Some(jitter), _) => jitter,
            (None, Ok(value)) => parse_env(MAX_REQUESTS_JITTER_ENV, &value, |_: u64| true)?,
            (None, Err(_)) => max_requests.map_or(0, |requests| requests / 10),
        };
        let max_memory = match (self.max_memory, std::env::var(MAX_MEMORY_ENV)) {
            (Some(bytes), _) => Some(bytes),
            (None, Ok(value)) => Some(parse_bytes(&value).ok_or_else(|| Error::Env {
                var: MAX_MEMORY_ENV,
                value: value.clone(),
                reason: "expected bytes, or a number with K, M or G (e.g. 512M)".into(),
            })?),
            (None, Err(_)) => None,
        };
        Ok(Recycle {
            max_requests,
            max_requests_jitter,
            max_memory,
        })
    }

    /// What the master runs with, from this builder and the environment.
    pub(super) fn into_settings(self) -> Result<Settings, Error> {
        let hang_timeout = self.hang_timeout_setting()?;
        let recycle = self.recycle_setting()?;
        let watch = self.watch_setting();
        let wait_ready = self.wait_ready_setting()?;
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
            agent: self.agent.is_some(),
            wait_ready,
            recycle,
        };
        Ok(Settings {
            config,
            control_socket,
            log_file,
            error_log_file,
            metrics_addr,
            watch,
            control: self.control,
            on_ready: self.on_ready,
            on_master: self.on_master,
        })
    }
}

/// An on/off environment value: `1`, `true`, `yes`, `on`, or `0`, `false`, `no`, `off` and
/// empty; `None` for anything else.
fn switch(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// `512`, `64K`, `512M`, `2G` (powers of 1024) in bytes; `None` unless a positive count.
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (at, 'k' | 'K') => (&text[..at], 1 << 10),
        (at, 'm' | 'M') => (&text[..at], 1 << 20),
        (at, 'g' | 'G') => (&text[..at], 1 << 30),
        _ => (text, 1),
    };
    let bytes = digits.trim().parse::<u64>().ok()?.checked_mul(unit)?;
    (bytes > 0).then_some(bytes)
}

/// A path from the builder, else from the environment variable `var` (unset or empty: none).
fn path_setting(builder: &Option<PathBuf>, var: &str) -> Option<PathBuf> {
    builder.clone().or_else(|| {
        std::env::var_os(var)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, switch};

    #[test]
    fn on_off_values_read_as_switches() {
        for on in ["1", "true", " yes ", "on"] {
            assert_eq!(switch(on), Some(true), "{on:?}");
        }
        for off in ["0", "false", "no", "off", ""] {
            assert_eq!(switch(off), Some(false), "{off:?}");
        }
        assert_eq!(switch("src:config"), None);
    }

    #[test]
    fn memory_sizes_read_with_or_without_a_unit() {
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes(" 64k "), Some(64 << 10));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        for bad in ["", "M", "0", "-5M", "1.5G", "99999999999G"] {
            assert_eq!(parse_bytes(bad), None, "{bad:?}");
        }
    }
}
