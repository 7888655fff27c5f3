//! The master's side of the fleet (feature `redis`, `CLUSTER_REDIS_URL`): one
//! [`clustered_redis::Fleet`] and the tasks around it, so that no Redis call is ever awaited
//! in the driver's loop (a slow Redis never holds back a handoff). The machine's
//! [`FleetAction`]s are queued to a task that publishes broadcasts one after another (in
//! order) and runs counter operations each in a task of its own; what Redis says comes back
//! as [`FleetInput`]s: other masters' broadcasts, counter changes, answers, and whether Redis
//! is reachable. A heartbeat task refreshes this master's key every second (`clusterctl
//! fleet` lists them). With an agent, a lease task takes part in the fleet's lease
//! (`CLUSTER_REDIS_LEASE`) and tells the machine when this master holds it; requests for the
//! agent from a master without it go to the holder's inbox (`send_to`) and come back there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clustered_ipc::{CounterOp, Outcome};
use clustered_redis::{Fleet, FleetConfig, MasterInfo};
use tokio::sync::mpsc;

use super::report::Report;
use crate::Error;
use crate::master::control::ClusterControl;
use crate::master::ids::WorkerKey;
use crate::master::machine::{FleetAction, FleetInput, Input};
use crate::master::registry::FleetStatus;
use crate::role::AGENT_ID;

/// How often the heartbeat is refreshed, and how long it lives.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_TTL: Duration = Duration::from_secs(5);
/// The agent's lease without `CLUSTER_REDIS_LEASE`.
const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// How long a request for the agent of another master may wait for its answer.
const AGENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests this master sent to the fleet's agent, by its number for them: the asking
/// worker and its `seq`.
#[derive(Default)]
struct Asked {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, (WorkerKey, u64)>>,
}

impl Asked {
    fn add(&self, asker: (WorkerKey, u64)) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        crate::sync::lock(&self.waiting).insert(id, asker);
        id
    }

    fn take(&self, id: u64) -> Option<(WorkerKey, u64)> {
        crate::sync::lock(&self.waiting).remove(&id)
    }
}

/// What masters send each other's inboxes.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
enum Letter {
    AgentAsk { id: u64, data: serde_json::Value },
    AgentAnswer { id: u64, outcome: Outcome },
}

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
        agent: bool,
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
        let lease = lease_time()?;
        let asked = Arc::new(Asked::default());
        let mut tasks = vec![
            tokio::spawn(run_jobs(
                fleet.clone(),
                queue,
                reports.clone(),
                asked.clone(),
            )),
            tokio::spawn(listen(
                fleet.clone(),
                control.clone(),
                reports.clone(),
                asked,
            )),
            tokio::spawn(heartbeat(fleet.clone(), control.clone(), port_rx)),
        ];
        if agent {
            tasks.push(tokio::spawn(hold_lease(
                fleet.clone(),
                lease,
                control.clone(),
                reports,
            )));
        }
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

/// `CLUSTER_REDIS_LEASE` (milliseconds, 300 to 600,000), or 10 s.
fn lease_time() -> Result<Duration, Error> {
    let Ok(value) = std::env::var(crate::env::REDIS_LEASE) else {
        return Ok(DEFAULT_LEASE);
    };
    match value.parse::<u64>() {
        Ok(ms) if (300..=600_000).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(Error::Env {
            var: crate::env::REDIS_LEASE,
            value,
            reason: "give the agent's lease in milliseconds, 300 to 600000".into(),
        }),
    }
}

/// Takes part in the fleet's lease; tells the registry (the agent's token) and the machine.
async fn hold_lease(
    fleet: Fleet,
    ttl: Duration,
    control: ClusterControl,
    reports: mpsc::Sender<Report>,
) {
    let mut lease = fleet.lease(ttl);
    let mut token = None;
    loop {
        let status = control.registry().fleet().unwrap_or_default();
        control.registry().set_fleet(FleetStatus {
            agent_token: token,
            ..status
        });
        report(&reports, FleetInput::Lease(token)).await;
        match lease.changed().await {
            Some(now) => token = now,
            None => return,
        }
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
    asked: Arc<Asked>,
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
                    let input = FleetInput::Reply {
                        worker,
                        seq,
                        outcome,
                    };
                    report(&reports, input).await;
                });
            }
            FleetAction::AgentRequest { worker, seq, data } => {
                let (fleet, reports, asked) = (fleet.clone(), reports.clone(), asked.clone());
                tokio::spawn(ask_fleet_agent(fleet, reports, asked, (worker, seq), data));
            }
            FleetAction::AgentAnswer {
                master,
                id,
                outcome,
            } => {
                let fleet = fleet.clone();
                tokio::spawn(async move {
                    let letter = Letter::AgentAnswer { id, outcome };
                    let letter = serde_json::to_value(letter).unwrap_or_default();
                    if let Err(error) = fleet.send_to(&master, &letter).await {
                        tracing::debug!(%error, "the agent's answer did not reach its master");
                    }
                });
            }
        }
    }
}

/// Sends a worker's request to the master holding the fleet's lease; an answer that does not
/// come within [`AGENT_TIMEOUT`] fails it.
async fn ask_fleet_agent(
    fleet: Fleet,
    reports: mpsc::Sender<Report>,
    asked: Arc<Asked>,
    asker: (WorkerKey, u64),
    data: serde_json::Value,
) {
    let (worker, seq) = asker;
    let fail = |reason: String| FleetInput::Reply {
        worker,
        seq,
        outcome: Outcome::Error(reason),
    };
    let holder = match fleet.lease_holder().await {
        Ok(Some(holder)) => holder,
        Ok(None) => {
            let reason = "no agent runs in the fleet right now (its lease is free); try again";
            return report(&reports, fail(reason.into())).await;
        }
        Err(error) => return report(&reports, fail(error.to_string())).await,
    };
    let id = asked.add(asker);
    let letter = serde_json::to_value(Letter::AgentAsk { id, data }).unwrap_or_default();
    if let Err(error) = fleet.send_to(&holder.id, &letter).await {
        asked.take(id);
        return report(&reports, fail(error.to_string())).await;
    }
    tokio::time::sleep(AGENT_TIMEOUT).await;
    if asked.take(id).is_some() {
        let reason = format!("the fleet's agent did not answer within {AGENT_TIMEOUT:?}");
        report(&reports, fail(reason)).await;
    }
}

/// Other masters' broadcasts, counter changes and Redis's reachability, to the machine.
async fn listen(
    fleet: Fleet,
    control: ClusterControl,
    reports: mpsc::Sender<Report>,
    asked: Arc<Asked>,
) {
    let mut messages = fleet.messages();
    let mut inbox = fleet.inbox();
    let mut counters = fleet.counter_updates();
    let mut up = fleet.up_watch();
    let status = |fleet: &Fleet, control: &ClusterControl| FleetStatus {
        up: fleet.is_up(),
        reconnects: fleet.reconnects(),
        agent_token: control.registry().fleet().and_then(|f| f.agent_token),
    };
    control.registry().set_fleet(status(&fleet, &control));
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(message) => report(&reports, FleetInput::Message { data: message.data }).await,
                None => return,
            },
            letter = inbox.recv() => match letter {
                Some(letter) => {
                    let input = match serde_json::from_value::<Letter>(letter.data) {
                        Ok(Letter::AgentAsk { id, data }) => {
                            Some(FleetInput::AgentAsk { master: letter.from, id, data })
                        }
                        Ok(Letter::AgentAnswer { id, outcome }) => asked
                            .take(id)
                            .map(|(worker, seq)| FleetInput::Reply { worker, seq, outcome }),
                        Err(error) => {
                            tracing::debug!(%error, "a letter from another master that is not one");
                            None
                        }
                    };
                    if let Some(input) = input {
                        report(&reports, input).await;
                    }
                }
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
                control.registry().set_fleet(status(&fleet, &control));
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
