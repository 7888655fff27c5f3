//! The master's decisions as a synchronous state machine, apart from all I/O (the sans-IO
//! style of `quinn-proto` and `rustls`): the driver feeds it each [`Input`] with the current
//! time and carries out the [`Action`]s it answers with, in order. Nothing here touches a
//! socket, a process, a clock or a task, so every decision is unit-tested with a made-up clock.
//! What user code sees change (a worker handle's status and load, the registry, an exited
//! worker's metrics) is said by actions too, where the change happens and before the notice
//! that tells of it: the driver keeps no state of the machine's.
//!
//! Layout, imports flowing down only:
//! - this file: [`Machine::handle`], which routes each input to the concerns below;
//! - the concerns, each an `impl Machine` block that uses only `state`'s primitives:
//!   `binding` (start-up binds, `queryServer`), `connections` (handoffs and their answers),
//!   `lifecycle` (workers starting, dying, restarting), `liveness` (silent, hung and slow to
//!   boot workers), `rolling` (reload), `messaging` (user messages, counters), `shutdown`
//!   (graceful stop);
//! - `state`: the [`Machine`] struct and its primitive steps;
//! - plain data with its own rules: `workers`, `dispatch`, `listeners`, `reload`, `restart`,
//!   `subscriptions`, `counters`, `timers` (its deadlines: the driver sleeps until
//!   [`Machine::poll_timeout`] and then feeds [`Input::Timeout`]), `rng` (its randomness,
//!   seeded at construction); and the vocabulary: `input`, `action`, `conn`, `config`.
//!
//! Time and chance belong to the machine (quinn-proto's way): it keeps its own timers and its
//! own seeded generator, so a test advances a fake clock from deadline to deadline and sees
//! the same delays on every run.

mod action;
mod addresses;
pub(super) mod agent_requests;
mod agent_slot;
mod answering;
mod answers;
mod binding;
pub(super) mod certificates;
mod config;
mod conn;
mod counters;
mod dispatch;
mod fleet;
mod fleet_state;
mod handoffs;
mod input;
mod lifecycle;
mod liveness;
mod messaging;
pub(super) mod recycling;
mod reload;
mod reloading;
mod restart;
mod rng;
mod scaling;
mod shutdown;
mod state;
mod subscriptions;
#[cfg(test)]
mod tests;
mod timers;
mod upgrade;
mod upgrading;
mod workers;

use std::time::Instant;

use clustered_ipc::Message;

pub(crate) use self::action::{Action, FleetAction, Notice};
pub(crate) use self::config::{Config, Recycle};
pub(crate) use self::conn::Conn;
#[cfg_attr(not(feature = "redis"), allow(unused_imports))]
pub(crate) use self::input::FleetInput;
pub(crate) use self::input::{Input, ReplyId, SignalAction, Timer};
pub use self::restart::RestartPolicy;
use self::state::Phase;
pub(crate) use self::state::{Machine, NOT_STARTED};
use crate::Error;
use crate::handoff_acks::LoadReport;
use crate::master::command::{Answer, Command, Done};
use crate::master::ids::WorkerKey;
use crate::master::process_exit::ProcessExit;

/// How soon a worker that could not start for lack of resources is tried again.
const RESOURCE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Machine {
    /// Handles one input at time `now`; returns what the driver must do, in order (taken
    /// from a buffer the machine keeps, so an input allocates no list of actions).
    pub(crate) fn handle(&mut self, input: Input, now: Instant) -> std::vec::Drain<'_, Action> {
        self.now = now;
        match input {
            Input::Start => self.on_start(),
            Input::Bound { address, result } => self.on_bound(address, result),
            Input::Spawned { worker, pid } => self.on_spawned(worker, pid),
            Input::SpawnFailed { worker, error } => self.on_spawn_failed(worker, error),
            Input::Connections(conns) => conns.into_iter().for_each(|conn| self.dispatch(conn)),
            Input::HandoffFailed { worker, seq } => self.on_handoff_failed(worker, seq),
            Input::Beat { worker, load } => {
                self.heard_from(worker);
                self.on_heartbeat(worker, load);
            }
            Input::Taken { worker, seq } => {
                self.heard_from(worker);
                self.on_accepted(worker, seq, true, false);
            }
            Input::ShareFailed {
                worker,
                seq,
                key,
                error,
            } => self.on_share_failed(worker, seq, key, error),
            Input::Message { worker, message } => self.on_message(worker, message),
            Input::ChannelClosed { worker, error } => self.on_channel_closed(worker, error),
            Input::Exited { worker, exit } => self.on_exit(worker, exit),
            Input::Command { command, reply } => self.on_command(command, reply),
            Input::Signal(SignalAction::Stop(name)) => self.on_stop_signal(name),
            Input::Signal(SignalAction::Reload(name)) => {
                tracing::info!("received {name}; reloading workers");
                self.request_reload(None);
            }
            Input::Signal(SignalAction::Scale(name, scale)) => {
                tracing::info!("received {name}; scaling workers");
                self.scale(scale, None);
            }
            Input::Timeout => {
                for timer in self.timers.take_due(now) {
                    self.on_timer(timer);
                }
            }
            Input::ListenersClosed => self.on_listeners_closed(),
            Input::Signal(SignalAction::Upgrade(name)) => {
                tracing::info!("received {name}; upgrading the master");
                self.request_upgrade(None);
            }
            Input::UpgradeFailed { reason } => self.on_upgrade_failed(reason),
            Input::NewMasterServing { old_pid, new_pid } => {
                self.on_new_master_serving(old_pid, new_pid)
            }
            Input::ForwardedCounter {
                worker,
                seq,
                outcome,
            } => self.on_forwarded_counter(worker, seq, outcome),
            Input::Adopt { counters } => self.on_adopt(counters),
            Input::ForeignCounter { id, name, op } => self.on_foreign_counter(id, name, op),
            Input::Fleet(input) => self.on_fleet(input),
        }
        if self.stop.fatal.is_some() {
            self.begin_stop();
        }
        self.settle_answers();
        self.settle_certificates();
        self.publish_backlog();
        self.publish_readiness();
        self.take_actions()
    }

    /// Tells whether the cluster takes traffic, when that changed, before anything else this
    /// input led to: a stop makes it unready before the listeners close, so a load balancer
    /// stops sending first.
    fn publish_readiness(&mut self) {
        let readiness = if self.is_stopping() {
            Err("stopping: the workers drain, then the master exits")
        } else if self.phase != Phase::Running {
            Err("starting: the addresses are being bound")
        } else if self
            .workers
            .values()
            .any(|worker| !worker.is_agent() && !worker.is_leaving() && self.serves(worker))
        {
            Ok(())
        } else {
            Err("no worker serves every address right now")
        };
        if readiness != std::mem::replace(&mut self.published_readiness, readiness) {
            self.actions.insert(0, Action::Readiness(readiness));
        }
    }

    /// Tells how many accepted connections wait for a worker with room, when that changed.
    fn publish_backlog(&mut self) {
        let queued = self.dispatcher.backlog_len();
        if queued != std::mem::replace(&mut self.published_backlog, queued) {
            self.push(Action::Backlog { queued });
        }
    }

    fn on_message(&mut self, key: WorkerKey, message: Message) {
        self.heard_from(key);
        if !self.workers.contains_key(&key) {
            return;
        }
        match message {
            Message::Online { version, .. } => self.on_online(key, version),
            Message::QueryServer { seq, address } => self.on_query_server(key, seq, address),
            Message::Listening { key: listen_key } => {
                self.on_listening(key, listen_key);
                self.note_serving(key);
                self.reload_on_listening(key);
                self.announce_if_ready();
            }
            Message::Accepted { seq, ok, draining } => self.on_accepted(key, seq, ok, draining),
            Message::Ready => self.on_ready(key),
            Message::Stopping => self.on_stopping(key),
            Message::AgentRequest { seq, data } => self.on_agent_request(key, seq, data),
            Message::AgentAnswer { id, outcome } => self.on_agent_answer(key, id, outcome),
            Message::CertificatesReloaded { id, loaded, errors } => {
                self.on_certificates_reloaded(key, id, loaded, errors)
            }
            Message::User { to, data, seq } => self.on_user_message(key, to, data, seq),
            Message::Counter { seq, name, op } => self.on_counter(key, seq, name, op),
            Message::Heartbeat {
                conns,
                inflight,
                served,
                rss,
            } => {
                let load = LoadReport {
                    conns,
                    inflight,
                    served,
                    rss,
                };
                self.on_heartbeat(key, load);
            }
            other => self.on_forbidden(key, other.kind()),
        }
    }

    /// A heartbeat's load, from a frame or the worker's region.
    fn on_heartbeat(&mut self, key: WorkerKey, load: LoadReport) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        worker.report_load(load.conns, load.inflight);
        let served_changed = std::mem::replace(&mut worker.served, load.served) != load.served;
        if served_changed {
            self.look_at_served_soon();
        }
        self.push(Action::WorkerLoad {
            worker: key,
            load: load.into(),
        });
        self.recycle_if_due(key, load.rss);
    }

    fn on_spawn_failed(&mut self, key: WorkerKey, error: Error) {
        let Some(worker) = self.workers.remove(&key) else {
            return;
        };
        tracing::error!(slot = worker.slot, %error, "cannot start worker");
        if self.reload.slot_of(key).is_some() {
            self.reload_on_loss(key, error.to_string());
        } else if self.is_stopping() {
            // Nothing is started during a stop.
        } else if error.is_out_of_resources() {
            // Not the program's fault: retried, never counted as a crash.
            self.arm(RESOURCE_RETRY, Timer::RestartDue { slot: worker.slot });
        } else if worker.origin == workers::Origin::Initial {
            self.fail(error);
        } else {
            self.schedule_restart(worker.slot, worker.uptime(self.now), 0, error.to_string());
        }
    }

    fn on_exit(&mut self, key: WorkerKey, exit: ProcessExit) {
        let Some(worker) = self.remove_exited(key, &exit) else {
            return;
        };
        let why = match worker.killed_for {
            Some(reason) => format!(
                "the new worker was killed ({reason}: {})",
                reason.describe()
            ),
            None => format!("the new worker exited before listening: {exit}"),
        };
        self.reload_on_loss(key, why);
        if worker.is_agent() {
            self.agent_exited(key);
        }
        self.reload_on_exit(key);
        self.restart_if_unexpected(&worker, &exit);
        self.finish_if_stopped();
    }

    fn on_command(&mut self, command: Command, reply: Option<ReplyId>) {
        match command {
            Command::Reload => self.request_reload(reply),
            Command::Shutdown => {
                let answer = match self.is_stopping() {
                    true => Answer::Refused("the master is stopping already".into()),
                    false => Answer::Done(Done::saying(
                        "stopping: the workers drain, then the master exits",
                    )),
                };
                self.answer(reply, answer);
                tracing::info!("shutdown requested; stopping gracefully");
                self.begin_stop();
            }
            Command::Restart(slot) => self.restart_slot(slot, reply),
            Command::Disconnect(key) => self.retire(key),
            Command::Release(key) => self.on_release(key),
            Command::Deliver { to, data } => self.on_master_message(to, data),
            Command::Scale(scale) => self.scale(scale, reply),
            Command::Upgrade => self.request_upgrade(reply),
            Command::ReloadCertificates => self.reload_certificates(reply),
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::RestartDue { slot } => self.on_restart_due(slot),
            Timer::Rested { worker } => self.on_rested(worker),
            Timer::Liveness => self.on_liveness_check(),
            Timer::BootDeadline { worker } => self.on_boot_deadline(worker),
            Timer::DisconnectTimeout { worker } => self.on_disconnect_timeout(worker),
            Timer::ReloadDeadline { worker } => self.on_reload_deadline(worker),
            Timer::PushCounters => self.push_counters(),
            Timer::ShutdownDeadline => self.on_shutdown_deadline(),
            Timer::UpgradeDeadline { attempt } => self.on_upgrade_deadline(attempt),
            Timer::CertificatesDeadline { id } => self.on_certificates_deadline(id),
            Timer::ServedLook => self.on_served_look(),
        }
    }
}
