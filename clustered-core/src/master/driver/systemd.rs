//! systemd's notification protocol (`sd_notify(3)`), when the master runs as a `Type=notify`
//! (or `notify-reload`) service: it tells the service manager on `NOTIFY_SOCKET` (a path, or
//! `@name` for an abstract socket) `READY=1` with `MAINPID=` once every worker serves,
//! `RELOADING=1` with `MONOTONIC_USEC=` when a rolling reload starts and `READY=1` when it
//! ends (the protocol of `Type=notify-reload`, whose SIGHUP is the rolling reload),
//! `STOPPING=1` when a stop begins, keeps `STATUS=` current (`2 workers listening, 3
//! restarts`), and feeds
//! the watchdog (`WATCHDOG_USEC`) at half its period from the master's own loop, only while a
//! worker serves or a stop drains, and once right after `READY=1`. Workers are started
//! without these variables: only the master speaks to systemd.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use crate::master::control::ClusterControl;
use crate::master::handle::WorkerStatus;
use crate::master::machine::Notice;

/// The variables systemd sets for the notification protocol; workers do not inherit them.
pub(crate) const NOTIFY_VARIABLES: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// The master's end of `NOTIFY_SOCKET`.
#[derive(Debug)]
pub(crate) struct SystemdNotify {
    socket: UnixDatagram,
    to: SocketAddr,
    watchdog: Option<Duration>,
    reloading: bool,
    stopping: bool,
    /// `READY=1` was sent once: later ones (after a reload) leave out `MAINPID=`.
    announced: bool,
    /// An upgrade's new master took over: it is the service's main process now, and this one
    /// says nothing more (no `STOPPING=1` as it drains, no watchdog).
    handed_over: bool,
}

impl SystemdNotify {
    /// The notifier `NOTIFY_SOCKET` asks for (with the watchdog `WATCHDOG_USEC` asks for, when
    /// `WATCHDOG_PID` is unset or this process), or `None` when not under systemd.
    pub(crate) fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let target = lookup("NOTIFY_SOCKET").filter(|target| !target.is_empty())?;
        let to = match socket_address(&target) {
            Ok(to) => to,
            Err(error) => {
                tracing::warn!(%error, "NOTIFY_SOCKET={target:?} is not a socket address; systemd is not told");
                return None;
            }
        };
        let socket = UnixDatagram::unbound()
            .inspect_err(|error| tracing::warn!(%error, "cannot make a socket to tell systemd"))
            .ok()?;
        let ours = lookup("WATCHDOG_PID").is_none_or(|pid| pid == std::process::id().to_string());
        let watchdog = lookup("WATCHDOG_USEC")
            .filter(|_| ours)
            .and_then(|usec| watchdog_period(&usec));
        Some(Self {
            socket,
            to,
            watchdog,
            reloading: false,
            stopping: false,
            announced: false,
            handed_over: false,
        })
    }

    /// How often the watchdog is fed (half of `WATCHDOG_USEC`), if systemd watches.
    pub(crate) fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Tells systemd what `notice` changes.
    pub(crate) fn on_notice(&mut self, notice: &Notice, control: &ClusterControl) {
        if self.handed_over {
            return;
        }
        let message = match notice {
            Notice::HandedOver { .. } => {
                self.handed_over = true;
                return;
            }
            Notice::Ready(_) => {
                // With its pid, so systemd follows this process when something else started it
                // (a wrapper that did not exec, with `NotifyAccess=all`), as sd_notify(3) says.
                let first = !std::mem::replace(&mut self.announced, true);
                let main_pid = match first {
                    true => format!("MAINPID={}\n", std::process::id()),
                    false => String::new(),
                };
                let ready = format!("READY=1\n{main_pid}STATUS={}", self.status(control));
                self.send(&ready);
                // At once, so a watchdog armed by READY=1 never expires before the first tick.
                return self.feed_watchdog(control);
            }
            Notice::ReloadStarted => {
                self.reloading = true;
                format!(
                    "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}",
                    monotonic_usec(),
                    self.status(control)
                )
            }
            Notice::ReloadFinished | Notice::ReloadFailed { .. } if self.reloading => {
                self.reloading = false;
                format!("READY=1\nSTATUS={}", self.status(control))
            }
            Notice::ShutdownStarted => {
                self.stopping = true;
                format!("STOPPING=1\nSTATUS={}", self.status(control))
            }
            Notice::Listening(..)
            | Notice::Exit { .. }
            | Notice::Restarting { .. }
            | Notice::Scaled { .. } => format!("STATUS={}", self.status(control)),
            _ => return,
        };
        self.send(&message);
    }

    /// `WATCHDOG=1`, while a worker serves or a stop drains (a master whose workers all died
    /// and never come back is let go by the watchdog).
    pub(crate) fn feed_watchdog(&self, control: &ClusterControl) {
        let serving = serving(control) > 0;
        if self.watchdog.is_some() && (serving || self.stopping) && !self.handed_over {
            self.send("WATCHDOG=1");
        }
    }

    fn status(&self, control: &ClusterControl) -> String {
        status_line(
            serving(control),
            control.registry().total_restarts(),
            self.reloading,
            self.stopping,
        )
    }

    fn send(&self, message: &str) {
        if let Err(error) = self.socket.send_to_addr(message.as_bytes(), &self.to) {
            tracing::debug!(%error, "systemd was not told {message:?}");
        }
    }
}

/// Workers (not the agent) listening now.
fn serving(control: &ClusterControl) -> usize {
    control
        .workers()
        .iter()
        .filter(|worker| {
            worker.id() != crate::AGENT_ID && worker.status() == WorkerStatus::Listening
        })
        .count()
}

/// `NOTIFY_SOCKET`'s address: a path, or `@name` for an abstract socket.
fn socket_address(target: &str) -> std::io::Result<SocketAddr> {
    match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(target),
    }
}

/// Half of `WATCHDOG_USEC`, as `sd_watchdog_enabled(3)` advises; `None` for none or nonsense.
fn watchdog_period(usec: &str) -> Option<Duration> {
    let usec: u64 = usec.trim().parse().ok().filter(|usec| *usec > 0)?;
    Some(Duration::from_micros(usec / 2))
}

/// What `STATUS=` says: `2 workers listening, 3 restarts`, and what is under way.
fn status_line(serving: usize, restarts: u64, reloading: bool, stopping: bool) -> String {
    let workers = match serving {
        1 => "1 worker listening".to_owned(),
        count => format!("{count} workers listening"),
    };
    let restarts = match restarts {
        1 => "1 restart".to_owned(),
        count => format!("{count} restarts"),
    };
    let under_way = match (stopping, reloading) {
        (true, _) => ", stopping",
        (false, true) => ", reload in progress",
        (false, false) => "",
    };
    format!("{workers}, {restarts}{under_way}")
}

/// `CLOCK_MONOTONIC` in microseconds, as `RELOADING=1` wants it beside.
fn monotonic_usec() -> u128 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u128::from(now.tv_sec.unsigned_abs()) * 1_000_000
        + u128::from(now.tv_nsec.unsigned_abs()) / 1_000
}

#[cfg(test)]
mod tests {
    use super::{socket_address, status_line, watchdog_period};
    use std::time::Duration;

    #[test]
    fn the_status_says_what_serves_what_restarted_and_what_is_under_way() {
        assert_eq!(
            status_line(2, 3, false, false),
            "2 workers listening, 3 restarts"
        );
        assert_eq!(
            status_line(1, 1, true, false),
            "1 worker listening, 1 restart, reload in progress"
        );
        assert_eq!(
            status_line(0, 0, true, true),
            "0 workers listening, 0 restarts, stopping"
        );
    }

    #[test]
    fn the_watchdog_is_fed_at_half_its_period() {
        assert_eq!(watchdog_period("10000000"), Some(Duration::from_secs(5)));
        assert_eq!(watchdog_period("0"), None);
        assert_eq!(watchdog_period("soon"), None);
    }

    #[test]
    fn a_path_and_an_abstract_name_are_both_addresses() {
        use std::os::linux::net::SocketAddrExt;
        let path = socket_address("/run/systemd/notify").unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let abstract_name = socket_address("@clustered/notify").unwrap();
        assert_eq!(
            abstract_name.as_abstract_name(),
            Some(&b"clustered/notify"[..])
        );
    }
}
