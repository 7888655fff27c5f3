//! What the master runs with: the builder's settings, else the environment's, each checked
//! once and the same way whatever its source. A value out of range is an error that names
//! where it came from (`Cluster::workers(0)`, `CLUSTER_WORKERS="0"`) and what is allowed;
//! nothing is silently raised or clamped.

use crate::env;
use std::path::PathBuf;
use std::time::Duration;

use clustered_ipc::Policy;

use super::{Cluster, DEFAULT_HANG_TIMEOUT, MIN_HANG_TIMEOUT};
use crate::error::Error;
use crate::master::{Config, MAX_WORKERS, Recycle, Settings};

/// Where environment values come from: the process's environment, or a test's table.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment (a value that is not UTF-8 is read lossily).
pub(super) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// One setting that the builder and the environment both set: the builder's value, else the
/// variable's, parsed, and either way checked against the same rule.
struct Setting<T> {
    /// The builder method that sets it, for errors.
    method: &'static str,
    /// The environment variable that sets it.
    var: &'static str,
    /// What is allowed, in words, for errors.
    allowed: &'static str,
    parse: fn(&str) -> Option<T>,
    valid: fn(&T) -> bool,
}

impl<T: std::fmt::Debug> Setting<T> {
    /// The value, if the builder or the environment sets one.
    fn read(&self, builder: Option<T>, env: Lookup<'_>) -> Result<Option<T>, Error> {
        if let Some(value) = builder {
            return match (self.valid)(&value) {
                true => Ok(Some(value)),
                false => Err(Error::Setting {
                    method: self.method,
                    value: format!("{value:?}"),
                    reason: self.allowed.into(),
                }),
            };
        }
        let Some(text) = env(self.var) else {
            return Ok(None);
        };
        match (self.parse)(text.trim()).filter(self.valid) {
            Some(value) => Ok(Some(value)),
            None => Err(Error::Env {
                var: self.var,
                value: text,
                reason: self.allowed.into(),
            }),
        }
    }
}

const WORKERS: Setting<usize> = Setting {
    method: "Cluster::workers",
    var: env::WORKERS,
    allowed: "the worker count is a whole number from 1 to 1024",
    parse: |text| text.parse().ok(),
    valid: |count| (1..=MAX_WORKERS).contains(count),
};

const HANG_TIMEOUT: Setting<Duration> = Setting {
    method: "Cluster::hang_timeout",
    var: env::HANG_TIMEOUT,
    allowed: "the hang timeout is at least 6 s (three heartbeat periods), or 0 to turn hang detection off",
    parse: |seconds| {
        let seconds: f64 = seconds.parse().ok()?;
        Duration::try_from_secs_f64(seconds).ok()
    },
    valid: |timeout| timeout.is_zero() || *timeout >= MIN_HANG_TIMEOUT,
};

const MAX_REQUESTS: Setting<u64> = Setting {
    method: "Cluster::max_requests",
    var: env::MAX_REQUESTS,
    allowed: "max-requests is a whole number, at least 1",
    parse: |text| text.parse().ok(),
    valid: |requests| *requests >= 1,
};

const MAX_REQUESTS_JITTER: Setting<u64> = Setting {
    method: "Cluster::max_requests_jitter",
    var: env::MAX_REQUESTS_JITTER,
    allowed: "the jitter is a whole number of requests",
    parse: |text| text.parse().ok(),
    valid: |_| true,
};

const MAX_MEMORY: Setting<u64> = Setting {
    method: "Cluster::max_memory",
    var: env::MAX_MEMORY,
    allowed: "max-memory is bytes, or a number with K, M or G (e.g. 512M), at least 1",
    parse: parse_bytes,
    valid: |bytes| *bytes >= 1,
};

const WAIT_READY: Setting<bool> = Setting {
    method: "Cluster::wait_ready",
    var: env::WAIT_READY,
    allowed: "expected 1 or 0",
    parse: switch,
    valid: |_| true,
};

/// A builder-only setting that must be positive: `Ok(value)`, or the error naming `method`.
fn positive<T: std::fmt::Debug + PartialEq + Default>(
    method: &'static str,
    value: T,
    what: &str,
) -> Result<T, Error> {
    match value == T::default() {
        false => Ok(value),
        true => Err(Error::Setting {
            method,
            value: format!("{value:?}"),
            reason: format!("{what} must be more than zero"),
        }),
    }
}

impl Cluster {
    /// The worker count: the builder's, else `CLUSTER_WORKERS`, else the number of cores.
    pub(super) fn worker_count_from(&self, env: Lookup<'_>) -> Result<usize, Error> {
        let cores = || std::thread::available_parallelism().map_or(1, usize::from);
        Ok(WORKERS.read(self.workers, env)?.unwrap_or_else(cores))
    }

    /// The policy: the builder's, else `CLUSTER_SCHED_POLICY`, else round-robin.
    pub(super) fn policy_from(&self, env: Lookup<'_>) -> Result<Policy, Error> {
        if let Some(policy) = self.policy {
            return Ok(policy);
        }
        match env(env::SCHED_POLICY) {
            Some(name) => name.trim().parse().map_err(|reason| Error::Env {
                var: env::SCHED_POLICY,
                value: name,
                reason,
            }),
            None => Ok(Policy::Rr),
        }
    }

    /// The hang timeout this cluster will use (`None`: off).
    fn hang_timeout_setting(&self, env: Lookup<'_>) -> Result<Option<Duration>, Error> {
        let timeout = HANG_TIMEOUT
            .read(self.hang_timeout, env)?
            .unwrap_or(DEFAULT_HANG_TIMEOUT);
        Ok(Some(timeout).filter(|timeout| !timeout.is_zero()))
    }

    /// Watch mode's extra paths when it is on (`None`: off), from the builder, else the
    /// environment.
    fn watch_setting(&self, env: Lookup<'_>) -> Option<Vec<PathBuf>> {
        if let Some(watch) = self.watch {
            return watch.then(|| self.watch_paths.clone());
        }
        let value = env(env::WATCH)?;
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

    /// When workers are recycled, from the builder, else the environment.
    fn recycle_setting(&self, env: Lookup<'_>) -> Result<Recycle, Error> {
        let max_requests = MAX_REQUESTS.read(self.max_requests, env)?;
        let max_requests_jitter = MAX_REQUESTS_JITTER
            .read(self.max_requests_jitter, env)?
            .unwrap_or_else(|| max_requests.map_or(0, |requests| requests / 10));
        let max_memory = MAX_MEMORY.read(self.max_memory, env)?;
        Ok(Recycle {
            max_requests,
            max_requests_jitter,
            max_memory,
        })
    }

    /// What the master runs with, from this builder and the process's environment.
    pub(super) fn into_settings(self) -> Result<Settings, Error> {
        self.into_settings_from(&process_env)
    }

    /// What the master runs with, from this builder and `env`.
    fn into_settings_from(self, env: Lookup<'_>) -> Result<Settings, Error> {
        let config = Config {
            worker_count: self.worker_count_from(env)?,
            policy: self.policy_from(env)?,
            addresses: self.addresses.clone(),
            shutdown_timeout: self.shutdown_timeout,
            reload_timeout: positive(
                "Cluster::reload_timeout",
                self.reload_timeout,
                "the reload timeout",
            )?,
            reload_batch: positive(
                "Cluster::reload_batch",
                self.reload_batch,
                "the reload batch",
            )?,
            restart: self.restart,
            hang_timeout: self.hang_timeout_setting(env)?,
            boot_timeout: positive(
                "Cluster::boot_timeout",
                self.boot_timeout,
                "the boot timeout",
            )?,
            agent: self.agent.is_some(),
            wait_ready: WAIT_READY.read(self.wait_ready, env)?.unwrap_or(false),
            recycle: self.recycle_setting(env)?,
        };
        let watch = self.watch_setting(env);
        let path = |builder: &Option<PathBuf>, var| {
            builder
                .clone()
                .or_else(|| env(var).filter(|path| !path.is_empty()).map(PathBuf::from))
        };
        let metrics_addr = self
            .metrics_addr
            .clone()
            .or_else(|| env(env::METRICS_ADDR).filter(|address| !address.trim().is_empty()));
        Ok(Settings {
            config,
            control_socket: path(&self.control_socket, env::CONTROL_SOCKET),
            log_file: path(&self.log_file, env::LOG_FILE),
            error_log_file: path(&self.error_log_file, env::ERROR_LOG_FILE),
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The settings of `cluster` under an environment of just `vars`, or the error's text.
    fn settings(cluster: Cluster, vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let env = move |name: &str| vars.get(name).cloned();
        cluster
            .into_settings_from(&env)
            .map(|settings| settings.config)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn the_same_rule_holds_for_the_builder_and_the_environment_and_errors_name_both() {
        type Case = (
            Cluster,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: [Case; 6] = [
            (
                Cluster::new().workers(0),
                &[],
                "invalid Cluster::workers(0)",
            ),
            (
                Cluster::new(),
                &[("CLUSTER_WORKERS", "0")],
                "invalid CLUSTER_WORKERS=\"0\"",
            ),
            (
                Cluster::new().workers(1025),
                &[],
                "invalid Cluster::workers(1025)",
            ),
            (
                Cluster::new(),
                &[("CLUSTER_WORKERS", "1025")],
                "invalid CLUSTER_WORKERS=\"1025\"",
            ),
            (
                Cluster::new().hang_timeout(Duration::from_secs(2)),
                &[],
                "invalid Cluster::hang_timeout(2s)",
            ),
            (
                Cluster::new(),
                &[("CLUSTER_HANG_TIMEOUT", "2")],
                "invalid CLUSTER_HANG_TIMEOUT=\"2\"",
            ),
        ];
        for (cluster, vars, named) in cases {
            let error = settings(cluster, vars).expect_err(named);
            assert!(error.starts_with(named), "{error}");
        }
        let error = settings(Cluster::new().workers(0), &[]).unwrap_err();
        assert!(
            error.ends_with("the worker count is a whole number from 1 to 1024"),
            "{error}"
        );
        let error = settings(Cluster::new(), &[("CLUSTER_HANG_TIMEOUT", "2")]).unwrap_err();
        assert!(error.contains("at least 6 s"), "{error}");
    }

    #[test]
    fn zero_where_it_means_nothing_is_an_error_and_where_it_means_off_it_is_off() {
        for (cluster, named) in [
            (Cluster::new().reload_batch(0), "Cluster::reload_batch(0)"),
            (
                Cluster::new().boot_timeout(Duration::ZERO),
                "Cluster::boot_timeout(0ns)",
            ),
            (
                Cluster::new().reload_timeout(Duration::ZERO),
                "Cluster::reload_timeout(0ns)",
            ),
            (Cluster::new().max_requests(0), "Cluster::max_requests(0)"),
        ] {
            let error = settings(cluster, &[]).expect_err(named);
            assert!(error.contains(named), "{error}");
        }
        let off = settings(Cluster::new(), &[("CLUSTER_HANG_TIMEOUT", "0")]).unwrap();
        assert_eq!(off.hang_timeout, None);
        let off = settings(Cluster::new().hang_timeout(Duration::ZERO), &[]).unwrap();
        assert_eq!(off.hang_timeout, None);
    }

    #[test]
    fn the_builder_wins_and_the_environment_fills_in() {
        let config = settings(
            Cluster::new().workers(3),
            &[
                ("CLUSTER_WORKERS", "5"),
                ("CLUSTER_MAX_REQUESTS", "100"),
                ("CLUSTER_WAIT_READY", "1"),
            ],
        )
        .unwrap();
        assert_eq!(config.worker_count, 3);
        assert_eq!(config.recycle.max_requests, Some(100));
        assert_eq!(config.recycle.max_requests_jitter, 10, "a tenth by default");
        assert!(config.wait_ready);
        assert_eq!(config.hang_timeout, Some(DEFAULT_HANG_TIMEOUT));
    }

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
