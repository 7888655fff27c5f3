//! The master's side of the fleet (feature `redis`, `CLUSTER_REDIS_URL`): one
//! [`clustered_redis::Fleet`] and the tasks around it, so that no Redis call is ever awaited
//! in the driver's loop (a slow Redis never holds back a handoff). The machine's
//! [`FleetAction`]s are queued to a task that publishes broadcasts one after another (in
//! order) and runs counter operations each in a task of its own; what Redis says comes back
//! as [`FleetInput`]s: other masters' broadcasts, counter changes, answers, and whether Redis
//! is reachable. A heartbeat task refreshes this master's key every second (`clusterctl
//! fleet` lists them).

use std::time::{Duration, Instant};

use clustered_ipc::{CounterOp, Outcome};
use clustered_redis::{Fleet, FleetConfig, MasterInfo};
use tokio::sync::mpsc;

use super::report::Report;
use crate::Error;
use crate::master::control::ClusterControl;
use crate::master::machine::{FleetAction, FleetInput, Input};
use crate::master::registry::FleetStatus;
use crate::role::AGENT_ID;

/// How often the heartbeat is refreshed, and how long it lives.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_TTL: Duration = Duration::from_secs(5);

/// The driver's end of the fleet.
pub(super) struct FleetLink {
    jobs: mpsc::UnboundedSender<FleetAction>,
    port: tokio::sync::watch::Sender<Option<u16>>,
    fleet: Fleet,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FleetLink {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FleetLink {
    /// The fleet of `CLUSTER_REDIS_URL`, connecting in the background (a master starts and
    /// serves whether or not Redis is there); `None` without the variable.
    pub(super) fn start(
        control: &ClusterControl,
        reports: mpsc::Sender<Report>,
    ) -> Result<Option<Self>, Error> {
        let bad = |error: clustered_redis::FleetError| Error::Env {
            var: crate::env::REDIS_URL,
            value: std::env::var(crate::env::REDIS_URL).unwrap_or_default(),
            reason: error.to_string(),
        };
        let Some(config) = FleetConfig::from_env().map_err(bad)? else {
            return Ok(None);
        };
        let fleet = Fleet::connect_lazy(&config).map_err(bad)?;
        tracing::info!(url = %config.url, namespace = %config.namespace, id = fleet.id(), "fleet on Redis");
        let (jobs, queue) = mpsc::unbounded_channel();
        let (port, port_rx) = tokio::sync::watch::channel(None);
        let tasks = vec![
            tokio::spawn(run_jobs(fleet.clone(), queue, reports.clone())),
            tokio::spawn(listen(fleet.clone(), control.clone(), reports)),
            tokio::spawn(heartbeat(fleet.clone(), control.clone(), port_rx)),
        ];
        Ok(Some(Self {
            jobs,
            port,
            fleet,
            tasks,
        }))
    }

    /// Queues what the machine asked (never waits).
    pub(super) fn execute(&self, action: FleetAction) {
        let _ = self.jobs.send(action);
    }

    /// The first TCP port this master serves, for its heartbeat.
    pub(super) fn serving(&self, addresses: &[clustered_ipc::ListenAddr]) {
        let port = addresses.iter().find_map(|address| match address {
            clustered_ipc::ListenAddr::Tcp(addr) => Some(addr.port()),
            _ => None,
        });
        self.port.send_replace(port);
    }

    /// Removes this master's heartbeat (it stops).
    pub(super) async fn withdraw(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.fleet.shutdown()).await;
    }
}

async fn report(reports: &mpsc::Sender<Report>, input: FleetInput) {
    let _ = reports.send(Report::Input(Input::Fleet(input))).await;
}

/// Publishes broadcasts in order; runs counter operations concurrently, each answered.
async fn run_jobs(
    fleet: Fleet,
    mut queue: mpsc::UnboundedReceiver<FleetAction>,
    reports: mpsc::Sender<Report>,
) {
    while let Some(job) = queue.recv().await {
        match job {
            FleetAction::Publish { data } => {
                if let Err(error) = fleet.publish(&data).await {
                    tracing::warn!(%error, "a fleet broadcast was not sent");
                }
            }
            FleetAction::Counter {
                worker,
                seq,
                name,
                op,
            } => {
                let (fleet, reports) = (fleet.clone(), reports.clone());
                tokio::spawn(async move {
                    let result = match op {
                        CounterOp::Add(by) => fleet.counter_add(&name, by).await,
                        CounterOp::Get | CounterOp::Subscribe => fleet.counter_get(&name).await,
                    };
                    let outcome = match result {
                        Ok(value) => Outcome::Ok(value.into()),
                        Err(error) => Outcome::Error(error.to_string()),
                    };
                    report(
                        &reports,
                        FleetInput::Reply {
                            worker,
                            seq,
                            outcome,
                        },
                    )
                    .await;
                });
            }
        }
    }
}

/// Other masters' broadcasts, counter changes and Redis's reachability, to the machine.
async fn listen(fleet: Fleet, control: ClusterControl, reports: mpsc::Sender<Report>) {
    let mut messages = fleet.messages();
    let mut counters = fleet.counter_updates();
    let mut up = fleet.up_watch();
    let status = |fleet: &Fleet| FleetStatus {
        up: fleet.is_up(),
        reconnects: fleet.reconnects(),
    };
    control.registry().set_fleet(status(&fleet));
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(message) => report(&reports, FleetInput::Message { data: message.data }).await,
                None => return,
            },
            update = counters.recv() => match update {
                Some(update) => {
                    let input = FleetInput::CounterValue { name: update.name, value: update.value };
                    report(&reports, input).await;
                }
                None => return,
            },
            changed = up.changed() => {
                if changed.is_err() {
                    return;
                }
                let is_up = *up.borrow_and_update();
                control.registry().set_fleet(status(&fleet));
                report(&reports, FleetInput::Up(is_up)).await;
            }
        }
    }
}

/// Refreshes this master's heartbeat key every second while Redis is reachable.
async fn heartbeat(
    fleet: Fleet,
    control: ClusterControl,
    port: tokio::sync::watch::Receiver<Option<u16>>,
) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tick.tick().await;
        if !fleet.is_up() {
            continue;
        }
        let workers = control.workers();
        let info = MasterInfo {
            id: fleet.id().to_owned(),
            host: fleet.host(),
            pid: std::process::id(),
            workers: workers.iter().filter(|w| w.id() != AGENT_ID).count(),
            uptime_secs: started.elapsed().as_secs(),
            port: *port.borrow(),
            agent: workers.iter().any(|w| w.id() == AGENT_ID),
        };
        if let Err(error) = fleet.announce(&info, HEARTBEAT_TTL).await {
            tracing::debug!(%error, "the fleet heartbeat was not written");
        }
    }
}
