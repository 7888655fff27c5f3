//! [`Machine`]: the master's state, and the primitive steps every decision is made of
//! (start a worker, retire one, hand out connections, arm a timer, tell user code).

use std::time::{Duration, Instant};

use clustered_ipc::Message;

use super::action::{Action, Notice};
use super::addresses::BoundAddresses;
use super::agent_requests::AgentRequests;
use super::answers::Answers;
use super::config::{Config, UNANSWERED_SUSPECT_AFTER};
use super::conn::Conn;
use super::counters::Counters;
use super::dispatch::{Dispatcher, Placement};
use super::fleet_state::FleetState;
use super::input::Timer;
use super::reload::Reload;
use super::restart::RestartTracker;
use super::rng::Rng;
use super::subscriptions::Subscriptions;
use super::timers::Timers;
use super::upgrade::Upgrade;
use super::workers::{Origin, WorkerState, Workers};
use crate::Error;
use crate::master::handle::WorkerStatus;
use crate::master::ids::WorkerKey;
use crate::master::process_exit::ExitReason;

/// Readiness before the master has started: what `/readyz` says until the machine tells.
pub(crate) const NOT_STARTED: &str = "starting: the master has not started yet";

/// Where the master is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not started yet.
    Idle,
    /// Binding the configured addresses; workers start once they are bound.
    Binding,
    /// Workers serve; deaths are restarted.
    Running,
    /// A stop began: the listeners are closing.
    Closing,
    /// The workers are draining; the master finishes once they are all gone.
    Stopping,
    /// Done: [`Action::Finish`] was given.
    Finished,
}

/// How a stop is going.
#[derive(Debug, Default)]
pub(super) struct StopState {
    /// An error that stops the cluster; the master returns it.
    pub(super) fatal: Option<Error>,
    /// A second stop signal killed this many workers at once.
    pub(super) forced: Option<usize>,
    /// Workers killed because they outlived the shutdown timeout during the stop.
    pub(super) killed_at_timeout: usize,
}

/// The master's decisions, apart from all I/O: fed [`Input`](super::input::Input)s with the time, it answers
/// with [`Action`]s for the driver.
#[derive(Debug)]
pub(crate) struct Machine {
    pub(super) config: Config,
    pub(super) phase: Phase,
    pub(super) workers: Workers,
    pub(super) dispatcher: Dispatcher,
    pub(super) listeners: BoundAddresses,
    pub(super) restarts: RestartTracker,
    pub(super) reload: Reload,
    pub(super) subscriptions: Subscriptions,
    pub(super) counters: Counters,
    /// The fleet's Redis, as the driver last told.
    pub(super) fleet: FleetState,
    pub(super) stop: StopState,
    /// An upgrade of the master, on either side.
    pub(super) upgrade: Upgrade,
    /// The ready notice was given.
    pub(super) ready: bool,
    /// The workers were started (with an agent, once it was ready).
    pub(super) workers_started: bool,
    /// Workers' requests the agent has not answered.
    pub(super) agent_requests: AgentRequests,
    /// Commands waiting for their answer.
    pub(super) answers: Answers,
    /// No worker is recycled before this (a recycling failed).
    pub(super) recycle_paused_until: Option<Instant>,
    /// A later worker held `max_memory` already at its first heartbeat: memory recycling is off
    /// for this master's life (it would replace every worker over and over).
    pub(super) memory_recycling_off: bool,
    /// The look at the workers' served counts that max-requests arms while they change.
    pub(super) served_look: ServedLook,
    /// The time of the input being handled.
    pub(super) now: Instant,
    /// What the machine waits for, by deadline.
    pub(super) timers: Timers,
    /// When the liveness check runs next (the earliest [`Timer::Liveness`] armed).
    pub(super) liveness_due: Option<Instant>,
    /// Restart jitter comes from here.
    pub(super) rng: Rng,
    /// The backlog's length as last told ([`Action::Backlog`]).
    pub(super) published_backlog: usize,
    /// The readiness as last told ([`Action::Readiness`]).
    pub(super) published_readiness: Result<(), &'static str>,
    /// The seed it started from (recycling's per-worker jitter is drawn from it too).
    pub(super) seed: u64,
    next_key: u64,
    pub(super) actions: Vec<Action>,
}

/// The look at the served counts that max-requests arms (`recycling.rs`): armed, and whether
/// a count changed since it was.
#[derive(Debug, Default)]
pub(super) struct ServedLook {
    pub(super) armed: bool,
    pub(super) changed: bool,
}

impl Machine {
    /// A machine that starts at `now`, its randomness seeded with `seed`.
    pub(crate) fn new(config: Config, now: Instant, seed: u64) -> Self {
        Self {
            dispatcher: Dispatcher::new(config.policy),
            upgrade: match config.upgrading {
                true => Upgrade::adopting(),
                false => Upgrade::default(),
            },
            config,
            phase: Phase::Idle,
            workers: Workers::new(),
            listeners: BoundAddresses::default(),
            restarts: RestartTracker::default(),
            reload: Reload::default(),
            subscriptions: Subscriptions::default(),
            counters: Counters::default(),
            fleet: FleetState::default(),
            stop: StopState::default(),
            ready: false,
            recycle_paused_until: None,
            memory_recycling_off: false,
            served_look: ServedLook::default(),
            workers_started: false,
            agent_requests: AgentRequests::default(),
            answers: Answers::default(),
            now,
            timers: Timers::default(),
            liveness_due: None,
            rng: Rng::new(seed),
            seed,
            published_backlog: 0,
            published_readiness: Err(NOT_STARTED),
            next_key: 0,
            actions: Vec::new(),
        }
    }

    /// The actions decided since the last call.
    pub(super) fn take_actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }

    pub(super) fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    pub(super) fn notify(&mut self, notice: Notice) {
        self.push(Action::Notify(notice));
    }

    /// Moves the worker's handle on to `status` (never back: a draining worker that says it
    /// listens still drains); before any notice about it.
    pub(super) fn set_status(&mut self, key: WorkerKey, status: WorkerStatus) {
        if let Some(worker) = self.workers.get_mut(&key)
            && worker.status < status
        {
            worker.status = status;
            self.push(Action::WorkerStatus {
                worker: key,
                status,
            });
        }
    }

    /// Arms `timer` to expire `after` from now.
    pub(super) fn arm(&mut self, after: Duration, timer: Timer) {
        // A delay too long for the clock (a huge timeout from the builder) never expires.
        if let Some(at) = self.now.checked_add(after) {
            self.timers.arm(at, timer);
        }
    }

    /// When the machine next needs [`Input::Timeout`](super::input::Input::Timeout), if it
    /// waits for anything: the earliest deadline armed. The driver asks after every input.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Every handoff in flight, by worker, for the driver to look up in their
    /// acknowledgement rings.
    pub(crate) fn unacknowledged_handoffs(&self) -> impl Iterator<Item = (WorkerKey, u64)> + '_ {
        self.workers
            .iter()
            .flat_map(|(key, worker)| worker.unacknowledged_seqs().map(move |seq| (*key, seq)))
    }

    /// Sends a control frame or reply to `worker`.
    pub(super) fn send(&mut self, worker: WorkerKey, message: Message) {
        self.push(Action::Send {
            worker,
            message,
            share: None,
        });
    }

    /// Whether `worker` serves: it listens on every bound address (the agent: it joined) and,
    /// when the master waits for readiness, said it is ready.
    pub(super) fn serves(&self, worker: &WorkerState) -> bool {
        worker.serves(self.listeners.len(), self.config.wait_ready)
    }

    /// Whether the master is stopping (exits are expected, nothing is restarted).
    pub(super) fn is_stopping(&self) -> bool {
        matches!(
            self.phase,
            Phase::Closing | Phase::Stopping | Phase::Finished
        )
    }

    /// Notes an error that stops the cluster (the first one wins).
    pub(super) fn fail(&mut self, error: Error) {
        self.stop.fatal.get_or_insert(error);
    }

    /// Starts a worker process for `slot`.
    pub(super) fn spawn(&mut self, slot: usize, origin: Origin) -> WorkerKey {
        let worker = WorkerKey(self.next_key);
        self.next_key += 1;
        self.workers
            .insert(worker, WorkerState::new(slot, origin, self.now));
        self.push(Action::Spawn { worker, slot });
        self.arm_boot_deadline(worker, origin);
        worker
    }

    /// The worker holding `slot` that is not being stopped, if any.
    pub(super) fn serving_worker(&self, slot: usize) -> Option<WorkerKey> {
        self.workers
            .iter()
            .find(|(_, worker)| worker.slot == slot && !worker.is_leaving())
            .map(|(key, _)| *key)
    }

    /// Stops routing to the worker, asks it to finish and exit, and kills it if it is still
    /// there after the shutdown timeout. It is not replaced.
    pub(super) fn retire(&mut self, key: WorkerKey) {
        self.dispatcher.remove_worker(key);
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        if worker.disconnecting {
            return;
        }
        worker.disconnecting = true;
        self.push(Action::ExitIntended { worker: key });
        self.set_status(key, WorkerStatus::Draining);
        self.send(key, Message::Disconnect);
        self.notify(Notice::Disconnect(key));
        self.arm(
            self.config.shutdown_timeout,
            Timer::DisconnectTimeout { worker: key },
        );
    }

    /// Kills a worker that is not wanted any more; it is not replaced.
    pub(super) fn abandon(&mut self, key: WorkerKey) {
        if let Some(worker) = self.workers.get_mut(&key)
            && !std::mem::replace(&mut worker.disconnecting, true)
        {
            self.push(Action::ExitIntended { worker: key });
        }
        self.kill(key, ExitReason::Stopped);
    }

    /// The one way the master kills a worker: it gets nothing more from now on, its exit
    /// says `reason` (the first reason given wins), and once it has exited the connections it
    /// did not acknowledge go to others (until then it may still be serving them). Whether it
    /// is replaced is decided at its exit, as for any other.
    pub(super) fn kill(&mut self, key: WorkerKey, reason: ExitReason) {
        self.dispatcher.remove_worker(key);
        if let Some(worker) = self.workers.get_mut(&key) {
            worker.killed_for.get_or_insert(reason);
            self.push(Action::Kill { worker: key });
        }
    }

    /// Hands `conn` to a worker, or keeps it in the backlog.
    pub(super) fn dispatch(&mut self, conn: Conn) {
        if let Some(placement) = self.dispatcher.dispatch(conn, &mut self.workers, self.now) {
            self.hand_off(placement);
        }
    }

    /// Hands out backlogged connections to workers that have room now.
    pub(super) fn drain_backlog(&mut self) {
        for placement in self.dispatcher.drain_backlog(&mut self.workers, self.now) {
            self.hand_off(placement);
        }
    }

    fn hand_off(&mut self, Placement { worker, seq, conn }: Placement) {
        self.push(Action::HandOff { worker, seq, conn });
        // Unanswered this long, the worker is suspect: looked at by then.
        if let Some(at) = self.now.checked_add(UNANSWERED_SUSPECT_AFTER) {
            self.check_liveness_by(at);
        }
    }

    /// Makes the liveness check run by `at`: a timer is armed only when none runs earlier,
    /// so a handoff costs a comparison.
    pub(super) fn check_liveness_by(&mut self, at: Instant) {
        if self.liveness_due.is_some_and(|due| due <= at) {
            return;
        }
        self.liveness_due = Some(at);
        self.timers.arm(at, Timer::Liveness);
    }

    /// Takes a worker whose process is gone out of every rotation and gives its unacknowledged
    /// connections to the others (each once: they are no longer its own). Only once it is gone:
    /// a live worker may still serve a connection whose acknowledgement is on its way.
    pub(super) fn redispatch_from(&mut self, key: WorkerKey) {
        self.dispatcher.remove_worker(key);
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        for conn in worker.take_unacknowledged() {
            self.dispatch(conn);
        }
    }
}
