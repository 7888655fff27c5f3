//! What the master runs with, by one rule for every setting: the operator's environment
//! variable when it is set (and not empty), else the program's builder value, else the
//! default. Each value is checked once, the same way whatever its source: one out of range is
//! an error that names where it came from (`CLUSTER_WORKERS="0"`, `Cluster::workers(0)`) and
//! the range allowed; nothing is silently raised or clamped. The master's start-up line
//! ([`Origins`]) says each value and where it came from.

use std::fmt::{self, Debug, Display};
use std::path::PathBuf;
use std::time::Duration;

use crate::Policy;

use super::{
    Cluster, DEFAULT_POLICY, DEFAULT_RELOAD_BATCH, DEFAULT_WAIT_READY, MIN_HANG_TIMEOUT, Recycling,
    Timeouts,
};
use crate::cpus;
use crate::env;
use crate::error::{Error, bytes};
use crate::log_format::LogFormat;
use crate::master::{Config, MAX_WORKERS, Recycle, RestartPolicy, Settings};

/// Where environment values come from: the process's environment, or a test's table.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment (a value that is not UTF-8 is read lossily).
pub(super) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// Where a value the master runs with came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The environment variable of that name.
    Env(&'static str),
    /// The builder method of that name.
    Builder(&'static str),
    /// Neither set it.
    Default,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Env(name) | Origin::Builder(name) => name,
            Origin::Default => "default",
        }
    }
}

/// The master's start-up line: each value it runs with and where it came from, as
/// `workers=3 (CLUSTER_WORKERS) policy=rr (default) …`.
#[derive(Debug, Default)]
pub(super) struct Origins(Vec<String>);

impl Origins {
    fn note(&mut self, name: &str, value: impl Display, origin: Origin) {
        self.note_why(name, value, origin.name());
    }

    fn note_why(&mut self, name: &str, value: impl Display, why: &str) {
        self.0.push(format!("{name}={value} ({why})"));
    }
}

impl Display for Origins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// One setting that the environment and the builder both set: the variable's value, parsed,
/// else the builder's, and either way checked against the same rule.
struct Setting<T> {
    /// Its name in the start-up line.
    name: &'static str,
    /// The builder method that sets it, for errors.
    method: &'static str,
    /// The environment variable that sets it.
    var: &'static str,
    /// What is allowed, in words, for errors.
    allowed: &'static str,
    parse: fn(&str) -> Option<T>,
    valid: fn(&T) -> bool,
    /// The value as the start-up line says it.
    show: fn(&T) -> String,
}

impl<T: Debug + PartialEq> Setting<T> {
    /// The value and its origin, if the environment or the builder (`builder`) gives one.
    fn given(&self, builder: Option<T>, env: Lookup<'_>) -> Result<Option<(T, Origin)>, Error> {
        if let Some(text) = env(self.var).filter(|text| !text.trim().is_empty()) {
            return match (self.parse)(text.trim()).filter(self.valid) {
                Some(value) => Ok(Some((value, Origin::Env(self.var)))),
                None => Err(Error::Env {
                    var: self.var,
                    value: text,
                    reason: self.allowed.into(),
                }),
            };
        }
        let Some(value) = builder else {
            return Ok(None);
        };
        match (self.valid)(&value) {
            true => Ok(Some((value, Origin::Builder(self.method)))),
            false => Err(Error::Setting {
                method: self.method,
                value: format!("{value:?}"),
                reason: self.allowed.into(),
            }),
        }
    }

    /// The value the master runs with and its origin, noted in `origins`: the variable's,
    /// else the builder's when it is not `default`, else `default`.
    fn read_with_origin(
        &self,
        builder: T,
        default: T,
        env: Lookup<'_>,
        origins: &mut Origins,
    ) -> Result<(T, Origin), Error> {
        let builder = Some(builder).filter(|value| *value != default);
        let (value, origin) = self
            .given(builder, env)?
            .unwrap_or((default, Origin::Default));
        origins.note(self.name, (self.show)(&value), origin);
        Ok((value, origin))
    }

    /// The value the master runs with, noted in `origins` (see [`Setting::read_with_origin`]).
    fn read(
        &self,
        builder: T,
        default: T,
        env: Lookup<'_>,
        origins: &mut Origins,
    ) -> Result<T, Error> {
        Ok(self.read_with_origin(builder, default, env, origins)?.0)
    }
}

const WORKERS: Setting<usize> = Setting {
    name: "workers",
    method: "Cluster::workers",
    var: env::WORKERS,
    allowed: "the worker count is a whole number from 1 to 1024, or max (one per CPU)",
    parse: |text| match text {
        "max" | "auto" => Some(cpus::available().count),
        count => count.parse().ok(),
    },
    valid: |count| (1..=MAX_WORKERS).contains(count),
    show: usize::to_string,
};

const POLICY: Setting<Policy> = Setting {
    name: "policy",
    method: "Cluster::policy",
    var: env::SCHED_POLICY,
    allowed: "the policy is one of rr, sticky, shared, reuseport, least",
    parse: |text| text.parse().ok(),
    valid: |_| true,
    show: |policy| {
        let name = Policy::ALL.iter().find(|(_, known)| known == policy);
        name.map_or("?", |(name, _)| name).to_owned()
    },
};

const SHUTDOWN_TIMEOUT: Setting<Duration> = Setting {
    name: "shutdown_timeout",
    method: "Cluster::shutdown_timeout",
    var: env::SHUTDOWN_TIMEOUT,
    allowed: "the shutdown timeout is a number of seconds from 0 up (e.g. 30 or 2.5)",
    parse: seconds,
    valid: |_| true,
    show: |timeout| format!("{timeout:?}"),
};

const HANG_TIMEOUT: Setting<Duration> = Setting {
    name: "hang_timeout",
    method: "Cluster::hang_timeout",
    var: env::HANG_TIMEOUT,
    allowed: "the hang timeout is at least 6 s (three heartbeat periods), or 0 to turn hang detection off; in seconds, e.g. 30",
    parse: seconds,
    valid: |timeout| timeout.is_zero() || *timeout >= MIN_HANG_TIMEOUT,
    show: |timeout| match timeout.is_zero() {
        true => "off".into(),
        false => format!("{timeout:?}"),
    },
};

/// How often the TLS session-ticket key turns by default (12 hours).
const DEFAULT_TICKET_ROTATION: Duration = Duration::from_secs(12 * 60 * 60);

const TICKET_ROTATION: Setting<Duration> = Setting {
    name: "tls_ticket_rotation",
    method: "CLUSTER_TLS_TICKET_ROTATION only",
    var: env::TLS_TICKET_ROTATION,
    allowed: "the TLS ticket rotation is a number of seconds more than 0 (e.g. 43200 for 12 hours)",
    parse: seconds,
    valid: |period| !period.is_zero(),
    show: |period| format!("{period:?}"),
};

const BOOT_TIMEOUT: Setting<Duration> = Setting {
    name: "boot_timeout",
    method: "Cluster::boot_timeout",
    var: env::BOOT_TIMEOUT,
    allowed: "the boot timeout is a number of seconds more than 0 (e.g. 60 or 2.5)",
    parse: seconds,
    valid: |timeout| !timeout.is_zero(),
    show: |timeout| format!("{timeout:?}"),
};

const RELOAD_TIMEOUT: Setting<Duration> = Setting {
    name: "reload_timeout",
    method: "Cluster::reload_timeout",
    var: env::RELOAD_TIMEOUT,
    allowed: "the reload timeout is a number of seconds more than 0 (e.g. 30 or 2.5)",
    parse: seconds,
    valid: |timeout| !timeout.is_zero(),
    show: |timeout| format!("{timeout:?}"),
};

const RELOAD_BATCH: Setting<usize> = Setting {
    name: "reload_batch",
    method: "Cluster::reload_batch",
    var: env::RELOAD_BATCH,
    allowed: "the reload batch is a whole number of slots from 1 up",
    parse: |text| text.parse().ok(),
    valid: |slots| *slots >= 1,
    show: usize::to_string,
};

const RESTART_BACKOFF: Setting<Duration> = Setting {
    name: "restart_backoff",
    method: "Cluster::restart_policy",
    var: env::RESTART_BACKOFF,
    allowed: "the restart backoff is a number of seconds from 0 up (e.g. 0.1)",
    parse: seconds,
    valid: |_| true,
    show: |delay| format!("{delay:?}"),
};

const RESTART_MAX_BACKOFF: Setting<Duration> = Setting {
    name: "restart_max_backoff",
    method: "Cluster::restart_policy",
    var: env::RESTART_MAX_BACKOFF,
    allowed: "the longest restart backoff is a number of seconds from 0 up (e.g. 10)",
    parse: seconds,
    valid: |_| true,
    show: |delay| format!("{delay:?}"),
};

const MIN_UPTIME: Setting<Duration> = Setting {
    name: "min_uptime",
    method: "Cluster::restart_policy",
    var: env::MIN_UPTIME,
    allowed: "the minimum uptime is a number of seconds from 0 up (e.g. 1 or 0.5)",
    parse: seconds,
    valid: |_| true,
    show: |uptime| format!("{uptime:?}"),
};

const MAX_RESTARTS: Setting<u32> = Setting {
    name: "max_restarts",
    method: "Cluster::restart_policy",
    var: env::MAX_RESTARTS,
    allowed: "max-restarts is a whole number from 0 to 4294967295",
    parse: |text| text.parse().ok(),
    valid: |_| true,
    show: u32::to_string,
};

const MAX_REQUESTS: Setting<u64> = Setting {
    name: "max_requests",
    method: "Cluster::max_requests",
    var: env::MAX_REQUESTS,
    allowed: "max-requests is a whole number from 0 (off) to 18446744073709551615",
    parse: |text| text.parse().ok(),
    valid: |_| true,
    show: |requests| off_or(*requests, |requests| requests.to_string()),
};

const MAX_REQUESTS_JITTER: Setting<u64> = Setting {
    name: "max_requests_jitter",
    method: "Cluster::max_requests_jitter",
    var: env::MAX_REQUESTS_JITTER,
    allowed: "the jitter is a whole number of requests from 0 to 18446744073709551615",
    parse: |text| text.parse().ok(),
    valid: |_| true,
    show: u64::to_string,
};

const MAX_MEMORY: Setting<u64> = Setting {
    name: "max_memory",
    method: "Cluster::max_memory",
    var: env::MAX_MEMORY,
    allowed: "max-memory is a whole number of bytes, or of K, M or G (powers of 1024, e.g. 512M), up to 16 EiB, or 0 (off)",
    parse: parse_bytes,
    valid: |_| true,
    show: |limit| off_or(*limit, bytes),
};

const WAIT_READY: Setting<bool> = Setting {
    name: "wait_ready",
    method: "Cluster::wait_ready",
    var: env::WAIT_READY,
    allowed: "wait-ready is 1 or 0 (or true/false, yes/no, on/off)",
    parse: switch,
    valid: |_| true,
    show: bool::to_string,
};

const LOG_FORMAT: Setting<LogFormat> = Setting {
    name: "log_format",
    method: "CLUSTER_LOG_FORMAT",
    var: env::LOG_FORMAT,
    allowed: "the log format is text or json",
    parse: LogFormat::parse,
    valid: |_| true,
    show: |format| format.name().to_owned(),
};

/// A setting that is either given or not (a path, an address): taken as it is, unchecked.
struct Optional {
    /// Its name in the start-up line (which names it only when it is given).
    name: &'static str,
    /// The builder method that sets it.
    method: &'static str,
    /// The environment variable that sets it.
    var: &'static str,
}

impl Optional {
    /// The variable's value when it is set and not empty, else the builder's, noted in
    /// `origins` when there is one.
    fn read<T: Clone + From<String> + Debug>(
        &self,
        builder: &Option<T>,
        env: Lookup<'_>,
        origins: &mut Origins,
    ) -> Option<T> {
        let (value, origin) = match env(self.var).filter(|value| !value.trim().is_empty()) {
            Some(value) => (T::from(value), Origin::Env(self.var)),
            None => (builder.clone()?, Origin::Builder(self.method)),
        };
        origins.note(self.name, format!("{value:?}"), origin);
        Some(value)
    }
}

const CONTROL_SOCKET: Optional = Optional {
    name: "control_socket",
    method: "Cluster::control_socket",
    var: env::CONTROL_SOCKET,
};

const PID_FILE: Optional = Optional {
    name: "pid_file",
    method: "Cluster::pid_file",
    var: env::PID_FILE,
};

const LOG_FILE: Optional = Optional {
    name: "log_file",
    method: "Cluster::log_file",
    var: env::LOG_FILE,
};

const ERROR_LOG_FILE: Optional = Optional {
    name: "error_log_file",
    method: "Cluster::error_log_file",
    var: env::ERROR_LOG_FILE,
};

const METRICS_ADDR: Optional = Optional {
    name: "metrics_addr",
    method: "Cluster::metrics_addr",
    var: env::METRICS_ADDR,
};

/// `off` for 0, else the number as `show` says it.
fn off_or(value: u64, show: fn(u64) -> String) -> String {
    match value {
        0 => "off".into(),
        _ => show(value),
    }
}

impl Cluster {
    /// The worker count and its origin: `CLUSTER_WORKERS`, else the builder's, else the number
    /// of cores.
    fn worker_count_origin(&self, env: Lookup<'_>) -> Result<(usize, Origin), Error> {
        let given = WORKERS.given(self.workers, env)?;
        Ok(given.unwrap_or_else(|| (cpus::available().count, Origin::Default)))
    }

    /// The worker count: `CLUSTER_WORKERS`, else the builder's, else the number of cores.
    pub(super) fn worker_count_from(&self, env: Lookup<'_>) -> Result<usize, Error> {
        Ok(self.worker_count_origin(env)?.0)
    }

    /// The policy: `CLUSTER_SCHED_POLICY`, else the builder's, else round-robin.
    pub(super) fn policy_from(&self, env: Lookup<'_>) -> Result<Policy, Error> {
        POLICY.read(self.policy, DEFAULT_POLICY, env, &mut Origins::default())
    }

    /// The four timeouts (the hang timeout `None` when off).
    fn timeouts_from(
        &self,
        env: Lookup<'_>,
        origins: &mut Origins,
    ) -> Result<(Timeouts, Option<Duration>), Error> {
        let (given, default) = (&self.timeouts, Timeouts::default());
        let timeouts = Timeouts {
            shutdown: SHUTDOWN_TIMEOUT.read(given.shutdown, default.shutdown, env, origins)?,
            hang: HANG_TIMEOUT.read(given.hang, default.hang, env, origins)?,
            boot: BOOT_TIMEOUT.read(given.boot, default.boot, env, origins)?,
            reload: RELOAD_TIMEOUT.read(given.reload, default.reload, env, origins)?,
        };
        let hang = Some(timeouts.hang).filter(|timeout| !timeout.is_zero());
        Ok((timeouts, hang))
    }

    /// The restart policy, field by field.
    fn restart_from(&self, env: Lookup<'_>, origins: &mut Origins) -> Result<RestartPolicy, Error> {
        let (given, default) = (&self.restart, RestartPolicy::default());
        Ok(RestartPolicy {
            initial_backoff: RESTART_BACKOFF.read(
                given.initial_backoff,
                default.initial_backoff,
                env,
                origins,
            )?,
            max_backoff: RESTART_MAX_BACKOFF.read(
                given.max_backoff,
                default.max_backoff,
                env,
                origins,
            )?,
            min_uptime: MIN_UPTIME.read(given.min_uptime, default.min_uptime, env, origins)?,
            max_restarts: MAX_RESTARTS.read(
                given.max_restarts,
                default.max_restarts,
                env,
                origins,
            )?,
        })
    }

    /// When workers are recycled.
    fn recycle_from(&self, env: Lookup<'_>, origins: &mut Origins) -> Result<Recycle, Error> {
        let (given, default) = (&self.recycling, Recycling::default());
        let max_requests =
            MAX_REQUESTS.read(given.max_requests, default.max_requests, env, origins)?;
        let (max_requests_jitter, origin) = MAX_REQUESTS_JITTER
            .given(given.max_requests_jitter, env)?
            .unwrap_or((max_requests / 10, Origin::Default));
        origins.note(MAX_REQUESTS_JITTER.name, max_requests_jitter, origin);
        let (max_memory, origin) =
            MAX_MEMORY.read_with_origin(given.max_memory, default.max_memory, env, origins)?;
        Ok(Recycle {
            max_requests: Some(max_requests).filter(|requests| *requests > 0),
            max_requests_jitter,
            max_memory: Some(max_memory).filter(|limit| *limit > 0),
            max_memory_from: origin.name(),
        })
    }

    /// Watch mode's extra paths when it is on (`None`: off).
    fn watch_from(&self, env: Lookup<'_>, origins: &mut Origins) -> Option<Vec<PathBuf>> {
        let from_env = env(env::WATCH).filter(|value| !value.trim().is_empty());
        let (watch, origin) = match (from_env, self.operations.watch) {
            (Some(value), _) => {
                let watch = match switch(&value) {
                    // A switch only: the builder's extra paths stay.
                    Some(on) => on.then(|| self.operations.watch_paths.clone()),
                    None => Some(
                        value
                            .split(':')
                            .filter(|path| !path.is_empty())
                            .map(PathBuf::from)
                            .collect(),
                    ),
                };
                (watch, Origin::Env(env::WATCH))
            }
            (None, Some(on)) => (
                on.then(|| self.operations.watch_paths.clone()),
                Origin::Builder("Cluster::watch"),
            ),
            (None, None) => (None, Origin::Default),
        };
        let shown = if watch.is_some() { "on" } else { "off" };
        origins.note("watch", shown, origin);
        watch
    }

    /// What the master runs with, from this builder and the process's environment, and the
    /// start-up line that says where each value came from.
    pub(super) fn into_settings(self) -> Result<(Settings, Origins), Error> {
        self.into_settings_from(&process_env)
    }

    /// What the master runs with, from this builder and `env`.
    fn into_settings_from(self, env: Lookup<'_>) -> Result<(Settings, Origins), Error> {
        let mut origins = Origins::default();
        let (worker_count, origin) = self.worker_count_origin(env)?;
        match origin {
            // One per CPU: the line says how many CPUs this process may use, and why.
            Origin::Default => origins.note_why(WORKERS.name, worker_count, &cpus::available().why),
            origin => origins.note(WORKERS.name, worker_count, origin),
        }
        let policy = POLICY.read(self.policy, DEFAULT_POLICY, env, &mut origins)?;
        let (timeouts, hang_timeout) = self.timeouts_from(env, &mut origins)?;
        let reload_batch =
            RELOAD_BATCH.read(self.reload_batch, DEFAULT_RELOAD_BATCH, env, &mut origins)?;
        let config = Config {
            worker_count,
            policy,
            addresses: self.addresses.clone(),
            shutdown_timeout: timeouts.shutdown,
            reload_timeout: timeouts.reload,
            reload_batch,
            restart: self.restart_from(env, &mut origins)?,
            hang_timeout,
            boot_timeout: timeouts.boot,
            agent: self.hooks.agent.is_some(),
            wait_ready: WAIT_READY.read(self.wait_ready, DEFAULT_WAIT_READY, env, &mut origins)?,
            recycle: self.recycle_from(env, &mut origins)?,
            upgrading: env(crate::env::UPGRADE_FD).is_some(),
            fleet: cfg!(feature = "redis")
                && env(crate::env::REDIS_URL).is_some_and(|url| !url.is_empty()),
        };
        let watch = self.watch_from(env, &mut origins);
        let operations = &self.operations;
        let control_socket = CONTROL_SOCKET.read(&operations.control_socket, env, &mut origins);
        let pid_file = PID_FILE.read(&operations.pid_file, env, &mut origins);
        let ticket_rotation = TICKET_ROTATION.read(
            DEFAULT_TICKET_ROTATION,
            DEFAULT_TICKET_ROTATION,
            env,
            &mut origins,
        )?;
        let log_file = LOG_FILE.read(&operations.log_file, env, &mut origins);
        let error_log_file = ERROR_LOG_FILE.read(&operations.error_log_file, env, &mut origins);
        let metrics_addr = METRICS_ADDR.read(&operations.metrics_addr, env, &mut origins);
        let log_format = LOG_FORMAT.read(LogFormat::Text, LogFormat::Text, env, &mut origins)?;
        let settings = Settings {
            config,
            log_format,
            control_socket,
            pid_file,
            ticket_rotation,
            log_file,
            error_log_file,
            metrics_addr,
            watch,
            control: self.control,
            on_ready: self.hooks.on_ready.map(|hook| hook.0),
            on_master: self.hooks.on_master.map(|hook| hook.0),
        };
        Ok((settings, origins))
    }
}

/// Seconds, whole or not (`30`, `2.5`), as a duration; `None` for anything else.
fn seconds(text: &str) -> Option<Duration> {
    let seconds: f64 = text.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// An on/off environment value: `1`, `true`, `yes`, `on`, or `0`, `false`, `no`, `off`;
/// `None` for anything else.
fn switch(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `512`, `64K`, `512M`, `2G` (powers of 1024) in bytes; `None` unless a whole count that
/// fits.
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (at, 'k' | 'K') => (&text[..at], 1 << 10),
        (at, 'm' | 'M') => (&text[..at], 1 << 20),
        (at, 'g' | 'G') => (&text[..at], 1 << 30),
        _ => (text, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// What `cluster` runs with under an environment of just `vars` (its config and its
    /// start-up line), or the error's text.
    fn run_with(cluster: Cluster, vars: &[(&str, &str)]) -> Result<(Config, String), String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let env = move |name: &str| vars.get(name).cloned();
        cluster
            .into_settings_from(&env)
            .map(|(settings, origins)| (settings.config, origins.to_string()))
            .map_err(|error| error.to_string())
    }

    fn settings(cluster: Cluster, vars: &[(&str, &str)]) -> Result<Config, String> {
        run_with(cluster, vars).map(|(config, _)| config)
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
            error.ends_with(
                "the worker count is a whole number from 1 to 1024, or max (one per CPU)"
            ),
            "{error}"
        );
        // `max` and `auto` mean one per CPU, as the default does; the line says why then.
        let cpus = crate::cpus::available();
        for word in ["max", "auto"] {
            let config = settings(Cluster::new().workers(9), &[("CLUSTER_WORKERS", word)]);
            assert_eq!(config.unwrap().worker_count, cpus.count, "{word}");
        }
        let (_, line) = run_with(Cluster::new(), &[]).unwrap();
        assert!(
            line.contains(&format!("workers={} ({})", cpus.count, cpus.why)),
            "{line}"
        );
        let error = settings(Cluster::new(), &[("CLUSTER_HANG_TIMEOUT", "2")]).unwrap_err();
        assert!(error.contains("at least 6 s"), "{error}");
    }

    #[test]
    fn the_environment_beats_the_builder_which_beats_the_default() {
        let (config, line) = run_with(
            Cluster::new().workers(3).max_requests(500).wait_ready(true),
            &[("CLUSTER_WORKERS", "5"), ("CLUSTER_WAIT_READY", "0")],
        )
        .unwrap();
        assert_eq!(config.worker_count, 5);
        assert!(!config.wait_ready, "the operator turned it off");
        assert_eq!(config.recycle.max_requests, Some(500));
        assert_eq!(config.recycle.max_requests_jitter, 50, "a tenth by default");
        assert_eq!(config.hang_timeout, Some(Timeouts::default().hang));
        assert_eq!(config.policy, Policy::Rr);
        for said in [
            "workers=5 (CLUSTER_WORKERS)",
            "policy=rr (default)",
            "hang_timeout=30s (default)",
            "max_requests=500 (Cluster::max_requests)",
            "max_requests_jitter=50 (default)",
            "wait_ready=false (CLUSTER_WAIT_READY)",
            "max_memory=off (default)",
        ] {
            assert!(line.contains(said), "{said:?} in {line}");
        }
        // The builder's value stands where the environment says nothing, or an empty value.
        let config = settings(Cluster::new().workers(3), &[("CLUSTER_WORKERS", " ")]).unwrap();
        assert_eq!(config.worker_count, 3);
        // The environment overrides the builder's groups too.
        let cluster = Cluster::new()
            .timeouts(Timeouts {
                boot: Duration::from_secs(5),
                ..Timeouts::default()
            })
            .policy(Policy::Least)
            .reload_batch(2);
        let (config, line) = run_with(
            cluster,
            &[
                ("CLUSTER_BOOT_TIMEOUT", "7.5"),
                ("CLUSTER_SCHED_POLICY", "sticky"),
            ],
        )
        .unwrap();
        assert_eq!(config.boot_timeout, Duration::from_millis(7500));
        assert_eq!(config.policy, Policy::Sticky);
        assert_eq!(config.reload_batch, 2);
        assert!(
            line.contains("boot_timeout=7.5s (CLUSTER_BOOT_TIMEOUT)"),
            "{line}"
        );
        assert!(
            line.contains("reload_batch=2 (Cluster::reload_batch)"),
            "{line}"
        );
    }

    #[test]
    fn every_new_variable_is_read_and_checked() {
        let vars = [
            ("CLUSTER_SHUTDOWN_TIMEOUT", "2.5"),
            ("CLUSTER_RELOAD_TIMEOUT", "12"),
            ("CLUSTER_RELOAD_BATCH", "3"),
            ("CLUSTER_RESTART_BACKOFF", "0.2"),
            ("CLUSTER_RESTART_MAX_BACKOFF", "4"),
            ("CLUSTER_MIN_UPTIME", "3"),
            ("CLUSTER_MAX_RESTARTS", "0"),
            ("CLUSTER_MAX_MEMORY", "512M"),
            ("CLUSTER_MAX_REQUESTS_JITTER", "7"),
        ];
        let config = settings(Cluster::new().reload_batch(9), &vars).unwrap();
        assert_eq!(config.shutdown_timeout, Duration::from_millis(2500));
        assert_eq!(config.reload_timeout, Duration::from_secs(12));
        assert_eq!(config.reload_batch, 3);
        assert_eq!(
            config.restart,
            RestartPolicy {
                initial_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(4),
                min_uptime: Duration::from_secs(3),
                max_restarts: 0,
            }
        );
        assert_eq!(config.recycle.max_memory, Some(512 << 20));
        assert_eq!(config.recycle.max_memory_from, "CLUSTER_MAX_MEMORY");
        assert_eq!(config.recycle.max_requests_jitter, 7);
        let from_builder = settings(Cluster::new().max_memory(1 << 30), &[]).unwrap();
        assert_eq!(from_builder.recycle.max_memory_from, "Cluster::max_memory");

        type Case = (&'static str, &'static str, &'static str);
        let bad: [Case; 11] = [
            ("CLUSTER_SHUTDOWN_TIMEOUT", "-1", "from 0 up"),
            ("CLUSTER_BOOT_TIMEOUT", "0", "more than 0"),
            ("CLUSTER_RELOAD_TIMEOUT", "soon", "more than 0"),
            ("CLUSTER_RELOAD_BATCH", "0", "from 1 up"),
            ("CLUSTER_RESTART_BACKOFF", "nan", "from 0 up"),
            ("CLUSTER_RESTART_MAX_BACKOFF", "1e30", "from 0 up"),
            ("CLUSTER_MIN_UPTIME", "-0.5", "from 0 up"),
            ("CLUSTER_MAX_RESTARTS", "4294967296", "from 0 to 4294967295"),
            (
                "CLUSTER_MAX_REQUESTS",
                "-1",
                "from 0 (off) to 18446744073709551615",
            ),
            ("CLUSTER_MAX_MEMORY", "1.5G", "K, M or G"),
            (
                "CLUSTER_SCHED_POLICY",
                "fifo",
                "one of rr, sticky, shared, reuseport, least",
            ),
        ];
        let names: Vec<&str> = Policy::ALL.iter().map(|(name, _)| *name).collect();
        assert!(
            POLICY.allowed.ends_with(&names.join(", ")),
            "every policy named"
        );
        for (var, value, range) in bad {
            let error = settings(Cluster::new(), &[(var, value)]).expect_err(var);
            assert!(
                error.starts_with(&format!("invalid {var}={value:?}: ")) && error.contains(range),
                "{error}"
            );
        }
        for (cluster, named, range) in [
            (
                Cluster::new().boot_timeout(Duration::ZERO),
                "Cluster::boot_timeout(0ns)",
                "more than 0",
            ),
            (
                Cluster::new().reload_timeout(Duration::ZERO),
                "Cluster::reload_timeout(0ns)",
                "more than 0",
            ),
            (
                Cluster::new().reload_batch(0),
                "Cluster::reload_batch(0)",
                "from 1 up",
            ),
        ] {
            let error = settings(cluster, &[]).expect_err(named);
            assert!(error.contains(named) && error.contains(range), "{error}");
        }
    }

    #[test]
    fn zero_means_off_for_the_hang_timeout_and_the_recycling_limits() {
        let off = settings(Cluster::new(), &[("CLUSTER_HANG_TIMEOUT", "0")]).unwrap();
        assert_eq!(off.hang_timeout, None);
        let off = settings(Cluster::new().hang_timeout(Duration::ZERO), &[]).unwrap();
        assert_eq!(off.hang_timeout, None);
        let off = settings(Cluster::new().max_requests(0).max_memory(0), &[]).unwrap();
        assert_eq!(off.recycle.max_requests, None);
        assert_eq!(off.recycle.max_memory, None);
        let (off, line) = run_with(
            Cluster::new().max_requests(100).max_memory(1 << 30),
            &[("CLUSTER_MAX_REQUESTS", "0"), ("CLUSTER_MAX_MEMORY", "0")],
        )
        .unwrap();
        assert_eq!(off.recycle.max_requests, None, "the operator turned it off");
        assert_eq!(off.recycle.max_memory, None);
        assert!(
            line.contains("max_requests=off (CLUSTER_MAX_REQUESTS)"),
            "{line}"
        );
    }

    #[test]
    fn paths_and_watch_mode_follow_the_same_precedence() {
        let cluster = Cluster::new()
            .control_socket("/tmp/program.sock")
            .log_file("/tmp/program.log")
            .watch(true);
        let vars = [
            ("CLUSTER_CONTROL_SOCKET", "/tmp/operator.sock"),
            ("CLUSTER_WATCH", "0"),
        ];
        let env: HashMap<&str, &str> = vars.into_iter().collect();
        let lookup = move |name: &str| env.get(name).map(|value| value.to_string());
        let (settings, line) = cluster.into_settings_from(&lookup).unwrap();
        let line = line.to_string();
        assert_eq!(
            settings.control_socket,
            Some(PathBuf::from("/tmp/operator.sock"))
        );
        assert_eq!(settings.log_file, Some(PathBuf::from("/tmp/program.log")));
        assert_eq!(settings.watch, None, "CLUSTER_WATCH=0 turns it off");
        assert!(
            line.contains(r#"control_socket="/tmp/operator.sock" (CLUSTER_CONTROL_SOCKET)"#),
            "{line}"
        );
        assert!(
            line.contains(r#"log_file="/tmp/program.log" (Cluster::log_file)"#),
            "{line}"
        );
        assert!(line.contains("watch=off (CLUSTER_WATCH)"), "{line}");
    }

    #[test]
    fn turning_watch_mode_on_from_the_environment_keeps_the_program_s_paths() {
        let cluster = Cluster::new().watch_path("config");
        let on = |name: &str| (name == env::WATCH).then(|| "1".to_string());
        let (settings, _) = cluster.clone().into_settings_from(&on).unwrap();
        assert_eq!(settings.watch, Some(vec![PathBuf::from("config")]));
        let paths = |name: &str| (name == env::WATCH).then(|| "src:static".to_string());
        let (settings, _) = cluster.into_settings_from(&paths).unwrap();
        assert_eq!(
            settings.watch,
            Some(vec![PathBuf::from("src"), PathBuf::from("static")]),
            "paths in the variable are the operator's list"
        );
    }

    #[test]
    fn on_off_values_read_as_switches() {
        for on in ["1", "true", " yes ", "on"] {
            assert_eq!(switch(on), Some(true), "{on:?}");
        }
        for off in ["0", "false", "no", "off"] {
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
        assert_eq!(parse_bytes("0"), Some(0), "off");
        for bad in ["", "M", "-5M", "1.5G", "99999999999G"] {
            assert_eq!(parse_bytes(bad), None, "{bad:?}");
        }
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes(5_452_595), "5.2 MiB");
    }
}
