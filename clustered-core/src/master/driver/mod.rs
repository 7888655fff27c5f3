//! The master's driver: it owns every socket, process, signal and timer, turns what happens
//! into the machine's [`Input`]s, and carries out the [`Action`]s the machine answers with. It
//! decides nothing itself and keeps no state of the machine's: what user code sees change (a
//! worker handle's status and connection, the registry, the metrics of an exited worker)
//! changes by the machine's own actions, in the order it gives them — but for the load of a
//! worker that says its heartbeats in its region, which its handle reads there, live.
//!
//! - `sockets`: the sockets the master binds; `acceptors`: those it accepts on, polled by the
//!   driver's loop itself;
//! - `spawn` and `reader`: worker processes, the task reading each one's channel (which puts
//!   inbox messages straight into the inbox, as [`InboxRouting`](crate::master::inbox_routing)
//!   says) and the task reaping it;
//! - `link`: the driver's ends towards one live worker; `held_conns`: the connections it holds;
//!   `handoff_groups`: the handoffs of one input, gathered into one frame per worker;
//! - `signals` (the signal task, which sends the loop what it heard), `publish` (notices into
//!   events), `report` (what the tasks tell the driver);
//! - `orphans`: when the master is PID 1, the zombies it did not spawn, reaped.

mod acceptors;
mod ack_look;
#[cfg(feature = "redis")]
mod fleet;
#[cfg(not(feature = "redis"))]
#[path = "fleet_off.rs"]
mod fleet;
mod handoff_groups;
mod held_conns;
mod link;
mod orphans;
mod output;
mod pid_file;
mod publish;
mod reader;
mod report;
mod signals;
mod sockets;
mod spawn;
mod systemd;
mod ticket_keys;
mod upgrade;
#[cfg(feature = "watch")]
mod watch;
#[cfg(not(feature = "watch"))]
#[path = "watch_off.rs"]
mod watch;

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::Policy;
use crate::timer_fd::Alarm;
use clustered_ipc::{Message, Outcome};
use rustc_hash::FxHashMap;
use rustix::process::Signal;
use tokio::sync::{mpsc, oneshot};

use self::ack_look::AckLook;
use self::fleet::FleetLink;
use self::handoff_groups::HandoffGroups;
use self::held_conns::HeldConns;
use self::link::{Links, WorkerLink};
use self::orphans::Orphans;
use self::pid_file::PidFile;
use self::report::Report;
use self::signals::Signals;
use self::sockets::ListeningSockets;
use self::spawn::{Program, spawn_worker};
use self::systemd::SystemdNotify;
use self::ticket_keys::TicketKeyring;
use self::upgrade::{HandoverLink, NewMaster, OldMaster};
use self::watch::Watch;
use crate::Error;
use crate::control_socket::server::ControlSocket;
use crate::handoff_acks::AckRing;
use crate::master::command::{Answer, AnswerTo, Command};
use crate::master::control::ClusterControl;
use crate::master::handle::WorkerHandle;
use crate::master::handover::{self, HandoverMessage};
use crate::master::hooks::{MasterHook, ReadyHook};
use crate::master::ids::WorkerKey;
use crate::master::inherited::InheritedSockets;
use crate::master::logs::LogStream;
use crate::master::machine::{Action, Config, Input, Machine, Notice, ReplyId};
use crate::master::metrics_endpoint::MetricsEndpoint;
use crate::master::metrics_view;

/// Reports waiting for the driver; reporting tasks wait when it is full.
const REPORT_QUEUE: usize = 1024;

/// What the master needs from the [`crate::Cluster`] builder.
pub(crate) struct Settings {
    /// How the master writes its lines and its workers' (`CLUSTER_LOG_FORMAT`).
    pub(crate) log_format: crate::log_format::LogFormat,
    pub(crate) config: Config,
    pub(crate) control_socket: Option<PathBuf>,
    /// Where the master writes its pid, if anywhere.
    pub(crate) pid_file: Option<PathBuf>,
    /// How often the TLS session-ticket key turns.
    pub(crate) ticket_rotation: std::time::Duration,
    pub(crate) log_file: Option<PathBuf>,
    pub(crate) error_log_file: Option<PathBuf>,
    pub(crate) metrics_addr: Option<String>,
    /// Watch mode's extra paths, when it is on.
    pub(crate) watch: Option<Vec<PathBuf>>,
    pub(crate) control: ClusterControl,
    pub(crate) on_ready: Option<ReadyHook>,
    pub(crate) on_master: Option<MasterHook>,
}

/// Runs the master until the cluster stops.
pub(crate) async fn run(settings: Settings) -> Result<(), Error> {
    let program = Program::current(settings.log_format)?;
    crate::scheduling::favor_workers()?;
    let control = settings.control;
    let signals = Signals::install(control.clone())?;
    let orphans = Orphans::install()?;
    metrics_view::record_master_metrics(&control);
    control
        .logs()
        .open_files(
            settings.log_file.as_deref(),
            settings.error_log_file.as_deref(),
        )
        .map_err(Error::LogFile)?;
    let commands = control
        .commands()
        .take_receiver()
        .ok_or(Error::AlreadyRunning)?;
    let (reports_tx, reports) = mpsc::channel(REPORT_QUEUE);
    let mut inherited = InheritedSockets::from_env(|name| std::env::var(name).ok());
    let old_master = OldMaster::from_env(control.clone(), reports_tx.clone());
    let mut endpoints = Endpoints {
        control_socket: settings.control_socket.clone(),
        metrics_addr: settings.metrics_addr.clone(),
        inherited_control: inherited.take_named(handover::CONTROL_SOCKET),
        inherited_admin: inherited.take_named(handover::ADMIN_SOCKET),
        pid_file: settings.pid_file.clone(),
        control_socket_open: None,
        metrics_endpoint: None,
        pid_file_written: None,
    };
    // Bound before anything starts, so a taken path stops the master at once; removed when
    // this function returns. A master an upgrade started opens them once it has taken over:
    // until then its predecessor answers on them.
    if old_master.is_none() {
        endpoints.open(&control).await?;
    }
    let _watch = match &settings.watch {
        Some(extra) => Some(Watch::start(program.exe(), extra, control.clone())?),
        None => None,
    };
    // Restart jitter only needs to differ between masters.
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let mut machine = Machine::new(settings.config.clone(), Instant::now(), seed);
    let systemd = SystemdNotify::from_env(|name| std::env::var(name).ok());
    let ticket_keys = TicketKeyring::new(settings.ticket_rotation)
        .inspect_err(|error| {
            tracing::error!(%error, "cannot make TLS session-ticket keys; each worker makes its own")
        })
        .ok();
    let watchdog = systemd
        .as_ref()
        .and_then(SystemdNotify::watchdog_period)
        .map(tokio::time::interval);
    let fleet = FleetLink::start(&control, reports_tx.clone(), settings.config.agent)?;
    let mut driver = Driver {
        fleet,
        listeners: ListeningSockets::new(old_master.is_some()),
        policy: settings.config.policy,
        program,
        reports_tx,
        reports,
        commands,
        signals,
        orphans,
        timer: Alarm::new(),
        deadline: None,
        conns: HeldConns::new(crate::limits::connection_budget()),
        handoffs: HandoffGroups::default(),
        links: Links::default(),
        ack_look: AckLook::default(),
        waiting: FxHashMap::default(),
        next_reply: 0,
        reports_in_a_row: 0,
        on_ready: settings.on_ready,
        control: control.clone(),
        systemd,
        watchdog,
        inherited,
        endpoints,
        ticket_keys,
        new_master: None,
        handed_over: false,
        old_master,
    };
    if let Some(hook) = settings.on_master {
        tokio::spawn(hook(control.clone()));
    }
    // The loop runs as a task of its own, not as part of the future the runtime blocks on:
    // a task waking that future makes the current-thread scheduler look for I/O once more
    // (`epoll_wait` with a zero timeout) before it polls it, where a woken task is only
    // queued. Stopped with that future, if it is dropped; a panic goes on unwinding here.
    let task = tokio::spawn(async move {
        let result = driver.run(&mut machine).await;
        (result, driver)
    });
    let (result, mut driver) = match AbortOnDrop(task).join().await {
        Ok(done) => done,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled: the runtime is shutting down, and drops this future too.
            Err(_) => std::future::pending().await,
        },
    };
    if let Some(new_master) = driver.new_master.take().filter(|_| driver.handed_over) {
        new_master.finish(control.metrics().totals()).await;
    }
    if let Some(fleet) = &driver.fleet {
        fleet.withdraw().await;
    }
    // Master code reading the inbox hears that the master has stopped.
    control.inbox_slot().close();
    result
}

struct Driver {
    /// The fleet's Redis, when `CLUSTER_REDIS_URL` names one.
    fleet: Option<FleetLink>,
    program: Program,
    policy: Policy,
    control: ClusterControl,
    on_ready: Option<ReadyHook>,
    listeners: ListeningSockets,
    /// Given to every task that reports to the driver.
    reports_tx: mpsc::Sender<Report>,
    reports: mpsc::Receiver<Report>,
    commands: mpsc::UnboundedReceiver<(Command, AnswerTo)>,
    /// Callers waiting for the answer to their command, by the number the machine knows.
    waiting: FxHashMap<ReplyId, oneshot::Sender<Answer>>,
    next_reply: u64,
    /// What the signal task heard (SIGUSR1 it handles itself).
    signals: Signals,
    /// Reaps the zombies the driver did not spawn, when the master is PID 1.
    orphans: Orphans,
    /// Fires at the machine's next deadline (`deadline`), set again when that changes: a
    /// timerfd, so an idle master wakes once for a deadline seconds away, not two or three times.
    timer: Alarm,
    deadline: Option<Instant>,
    conns: HeldConns,
    /// Handoffs asked for by the actions being carried out, not yet sent.
    handoffs: HandoffGroups,
    links: Links,
    /// When to look at the workers' acknowledgement rings, with nothing else to wake for.
    ack_look: AckLook,
    /// Reports taken from the queue since signals and timers were last looked at.
    reports_in_a_row: u32,
    /// The listening sockets systemd handed over, not yet served.
    inherited: InheritedSockets,
    /// systemd's `NOTIFY_SOCKET`, when the master runs under it.
    systemd: Option<SystemdNotify>,
    /// The control socket and the admin address.
    endpoints: Endpoints,
    /// The TLS session-ticket keys every worker gets (none if they could not be made).
    ticket_keys: Option<TicketKeyring>,
    /// The new master an upgrade started, while it starts and once it took over.
    new_master: Option<NewMaster>,
    /// This master handed over to `new_master`: it drains and exits.
    handed_over: bool,
    /// The master this one upgrades, when an upgrade started it.
    old_master: Option<OldMaster>,
    /// Ticks at half systemd's watchdog period, when it watches; fed from this loop, so
    /// only while the loop runs.
    watchdog: Option<tokio::time::Interval>,
}

/// Queued reports taken in a row without polling the signals, timers and listeners (the signal
/// task's channel, the timer and the other branches of the loop's `select!`). Bounded, so a
/// flood of reports delays a signal, a timer or an accept by this many reports at most.
const REPORTS_IN_A_ROW: u32 = 64;

impl Driver {
    async fn run(&mut self, machine: &mut Machine) -> Result<(), Error> {
        let mut input = Some(Input::Start);
        // Kept from pass to pass (empty between them), so a pass allocates no queue.
        let mut inputs = VecDeque::new();
        loop {
            // First what the workers took meanwhile: a worker that exited may have taken
            // handoffs, and the master must not give those to another.
            self.taken_handoffs(machine, &mut inputs);
            let taken = inputs.len();
            self.beats(&mut inputs);
            if input.is_none() {
                self.ack_look
                    .looked(self.ring_handoffs(machine).count() > taken);
            }
            inputs.extend(input);
            if let Some(result) = self.feed(machine, &mut inputs).await {
                return result;
            }
            self.wake_at(machine.poll_timeout());
            input = self.next_input().await;
        }
    }

    /// The handoffs in flight to workers with an acknowledgement ring.
    fn ring_handoffs<'a>(
        &'a self,
        machine: &'a Machine,
    ) -> impl Iterator<Item = (WorkerKey, u64, &'a AckRing)> + 'a {
        machine
            .unacknowledged_handoffs()
            .filter_map(|(worker, seq)| {
                let acks = self.links.get(&worker)?.acks.as_ref()?;
                Some((worker, seq, acks))
            })
    }

    /// The handoffs the workers recorded as taken in their rings since the machine last
    /// heard, as inputs added to `inputs`.
    fn taken_handoffs(&self, machine: &Machine, inputs: &mut VecDeque<Input>) {
        inputs.extend(
            self.ring_handoffs(machine)
                .filter(|(_, seq, acks)| acks.is_taken(*seq))
                .map(|(worker, seq, _)| Input::Taken { worker, seq }),
        );
    }

    /// The workers that counted a heartbeat in their region since the driver last looked,
    /// with the load their region says, as inputs added to `inputs`.
    fn beats(&mut self, inputs: &mut VecDeque<Input>) {
        for (worker, link) in &mut self.links {
            let Some(acks) = &link.acks else { continue };
            let count = acks.beats();
            if count != link.beats_seen {
                link.beats_seen = count;
                inputs.push_back(Input::Beat {
                    worker: *worker,
                    load: acks.last_load(),
                });
            }
        }
    }

    /// Hands `inputs` to the machine in order and carries out their actions, and those of the
    /// inputs they lead to, until none is left; the master's result once the machine finishes.
    async fn feed(
        &mut self,
        machine: &mut Machine,
        inputs: &mut VecDeque<Input>,
    ) -> Option<Result<(), Error>> {
        while let Some(input) = inputs.pop_front() {
            for action in machine.handle(input, Instant::now()) {
                // Handoffs are gathered, and sent before any other action is carried out.
                if !matches!(action, Action::HandOff { .. }) {
                    self.send_handoffs(inputs);
                }
                if let Action::Finish(result) = action {
                    return Some(result.map_err(|error| self.with_last_output(error)));
                }
                self.execute(action, inputs).await;
            }
            self.send_handoffs(inputs);
        }
        None
    }

    /// Sends the gathered handoffs, one frame per worker and listener; those that cannot be
    /// queued now go back to the machine (`HandoffFailed`).
    fn send_handoffs(&mut self, inputs: &mut VecDeque<Input>) {
        let mut handoffs = std::mem::take(&mut self.handoffs);
        handoffs.drain(|worker, frame| {
            let held = frame
                .iter()
                .all(|handoff| self.conns.get(handoff.conn.id).is_some());
            let fds = frame
                .iter()
                .filter_map(|handoff| self.conns.get(handoff.conn.id).cloned());
            let sent = match self.links.get(&worker) {
                Some(link) if held => link.hand_off(frame, fds).then_some(link.acks.is_some()),
                _ => None,
            };
            match sent {
                Some(ring) => {
                    self.control.registry().count_handoffs(frame.len());
                    if ring {
                        self.ack_look.handed_off();
                    }
                }
                None => inputs.extend(frame.iter().map(|handoff| Input::HandoffFailed {
                    worker,
                    seq: handoff.seq,
                })),
            }
        });
        self.handoffs = handoffs;
    }

    /// A crash loop's error with the last lines its slot wrote to stderr.
    fn with_last_output(&self, mut error: Error) -> Error {
        if let Error::CrashLoop {
            slot, last_output, ..
        }
        | Error::BootTimeouts {
            slot, last_output, ..
        } = &mut error
        {
            *last_output = (self
                .control
                .logs()
                .recent(Some(*slot), Some(LogStream::Err), 5))
            .into_iter()
            .map(|line| line.line)
            .collect();
        }
        error
    }

    /// Sleeps until `deadline` from now on (not at all without one).
    fn wake_at(&mut self, deadline: Option<Instant>) {
        if deadline != self.deadline {
            self.deadline = deadline;
            self.timer.set(deadline);
        }
    }

    /// The next thing that happened, or `None` when only the acknowledgement rings are due
    /// for a look. Commands come first: a worker user code released is known as such before
    /// its exit is.
    async fn next_input(&mut self) -> Option<Input> {
        if self.reports_in_a_row < REPORTS_IN_A_ROW {
            if let Ok((command, answer_to)) = self.commands.try_recv() {
                return Some(self.command_input(command, answer_to));
            }
            if let Ok(report) = self.reports.try_recv() {
                self.reports_in_a_row += 1;
                return Some(self.input_of(report).await);
            }
        }
        self.reports_in_a_row = 0;
        let report = loop {
            tokio::select! {
                biased;
                Some((command, answer_to)) = self.commands.recv() => {
                    return Some(self.command_input(command, answer_to));
                }
                action = self.signals.next() => return Some(Input::Signal(action)),
                () = self.timer.fired(), if self.deadline.is_some() => {
                    // Expired: the machine arms what it waits for next.
                    self.deadline = None;
                    return Some(Input::Timeout);
                }
                due = self.ack_look.fired(), if self.ack_look.is_due() => {
                    if due {
                        return None;
                    }
                }
                () = self.orphans.child_exited(), if self.orphans.is_on() => {
                    // Every spawned worker has its link by now: spawns happen in `feed`.
                    self.orphans
                        .reap(|pid| self.links.values().any(|link| link.handle.pid() == pid));
                }
                // Before the listeners and the reports, which a flood keeps ready.
                () = rotate(&mut self.ticket_keys, &self.links), if self.ticket_keys.is_some() => {}
                _ = tick(&mut self.watchdog), if self.watchdog.is_some() => {
                    if let Some(systemd) = &self.systemd {
                        systemd.feed_watchdog(&self.control);
                    }
                }
                // Before the reports: with a flood of them, a batch of accepts after every
                // `REPORTS_IN_A_ROW` (and reports in between a flood of accepts).
                batch = self.listeners.accepted(self.conns.room()),
                    if self.listeners.is_accepting() && self.conns.room() > 0 =>
                {
                    let conns = batch.into_iter().map(|accepted| self.conns.hold(accepted));
                    return Some(Input::Connections(conns.collect()));
                }
                Some(report) = self.reports.recv() => break report,
            }
        };
        Some(self.input_of(report).await)
    }

    /// The machine's input for `command`, remembering who waits for its answer.
    fn command_input(&mut self, command: Command, answer_to: AnswerTo) -> Input {
        let reply = answer_to.map(|answer_to| {
            let reply = ReplyId(self.next_reply);
            self.next_reply = self.next_reply.wrapping_add(1);
            self.waiting.insert(reply, answer_to);
            reply
        });
        Input::Command { command, reply }
    }

    async fn input_of(&mut self, report: Report) -> Input {
        match report {
            Report::Bound { address, result } => {
                let result = result.and_then(|(bound, opened, file)| {
                    self.listeners
                        .install(&address, opened, file)
                        .map(|()| bound)
                });
                Input::Bound { address, result }
            }
            Report::Adopted {
                counters,
                ticket_keys,
                socket_files,
            } => {
                self.listeners.adopt_files(socket_files);
                if let Err(error) = self.endpoints.open(&self.control).await {
                    tracing::error!(%error, "after the upgrade");
                }
                if let (Some(keys), Some(keyring)) = (ticket_keys, &mut self.ticket_keys) {
                    // The old master's: its clients' tickets resume on the new workers.
                    keyring.adopt(keys);
                    for link in self.links.values() {
                        let keys = keyring.keys().clone();
                        link.send(Message::TicketKeys { keys }, Vec::new());
                    }
                }
                Input::Adopt { counters }
            }
            Report::Input(input) => input,
        }
    }

    /// Carries out `action`; what it leads to goes on `inputs`.
    async fn execute(&mut self, action: Action, inputs: &mut VecDeque<Input>) {
        match action {
            Action::Bind { address } => {
                let (policy, reports) = (self.policy, self.reports_tx.clone());
                let inherited = self.inherited.take(&address);
                tokio::spawn(async move {
                    let result = sockets::open(policy, &address, inherited).await;
                    let _ = reports.send(Report::Bound { address, result }).await;
                });
            }
            Action::Spawn { worker, slot } => inputs.push_back(self.spawn(worker, slot)),
            Action::HandOff { worker, seq, conn } => self.handoffs.push(worker, seq, conn),
            Action::Send {
                worker,
                message,
                share,
            } => {
                let fds = match share.map(|key| (self.listeners.share(&key), key)) {
                    Some((Ok(fd), _)) => fd.into_iter().collect(),
                    Some((Err(error), key)) => {
                        if let Message::ServerAck { seq, .. } = message {
                            let failed = Input::ShareFailed {
                                worker,
                                seq,
                                key,
                                error,
                            };
                            inputs.push_back(failed);
                        }
                        return;
                    }
                    None => Vec::new(),
                };
                if let Some(link) = self.links.get(&worker) {
                    link.send(message, fds);
                }
            }
            Action::Deliver {
                worker,
                message,
                receipt,
            } => {
                let delivered = match self.links.get(&worker) {
                    Some(link) => link.deliver(message),
                    None => Err("the worker is gone".into()),
                };
                if let Some((from, seq)) = receipt
                    && let Some(sender) = self.links.get(&from)
                {
                    let outcome = match delivered {
                        Ok(()) => Outcome::Ok(serde_json::Value::Null),
                        Err(reason) => Outcome::Error(reason),
                    };
                    sender.send(Message::Reply { seq, outcome }, Vec::new());
                }
            }
            Action::CloseConn(id) => self.conns.close(id),
            Action::Kill { worker } => {
                if let Some(link) = self.links.get(&worker)
                    && let Err(error) = link.handle.signal(Signal::KILL)
                {
                    tracing::debug!(slot = link.handle.id(), %error, "kill failed (already gone?)");
                }
            }
            Action::CloseListeners => {
                self.listeners.close();
                inputs.push_back(Input::ListenersClosed);
            }
            Action::Notify(Notice::Ready(addresses)) => {
                if let Some(old_master) = &mut self.old_master {
                    old_master.serving();
                }
                self.listeners.accept();
                if let Some(fleet) = &self.fleet {
                    fleet.serving(&addresses);
                }
                if let Some(systemd) = &mut self.systemd {
                    systemd.on_notice(&Notice::Ready(addresses.clone()), &self.control);
                }
                if let Some(hook) = &self.on_ready {
                    hook(&addresses);
                }
            }
            Action::Notify(notice) => {
                if let (Notice::Online(worker), Some(keyring)) = (&notice, &self.ticket_keys)
                    && let Some(link) = self.links.get(worker)
                {
                    // Before any `serverAck`: the worker has them before it serves.
                    let keys = keyring.keys().clone();
                    link.send(Message::TicketKeys { keys }, Vec::new());
                }
                if let Some(systemd) = &mut self.systemd {
                    systemd.on_notice(&notice, &self.control);
                }
                if let Some(event) = publish::event_for(notice, &self.links) {
                    self.control.emit(event);
                }
            }
            Action::WorkerStatus { worker, status } => {
                if let Some(link) = self.links.get(&worker) {
                    link.handle.set_status(status);
                }
            }
            Action::WorkerLoad { worker, load } => {
                if let Some(link) = self.links.get(&worker) {
                    link.handle.set_load(load);
                }
            }
            Action::WorkerDisconnected { worker } => {
                if let Some(link) = self.links.get(&worker) {
                    link.handle.set_disconnected();
                }
            }
            Action::ExitIntended { worker } => {
                if let Some(link) = self.links.get(&worker) {
                    link.handle.set_exited_after_disconnect();
                }
            }
            Action::RetireMetrics { worker } => self.control.metrics().retire(worker.0),
            Action::WorkerGone {
                worker,
                slot,
                reason,
            } => {
                let registry = self.control.registry();
                registry.remove_worker(worker);
                registry.note_exit(slot, reason);
            }
            Action::Unlink { worker } => {
                self.links.remove(&worker);
            }
            Action::SlotRestarted { slot } => self.control.registry().note_restart(slot),
            Action::Backlog { queued } => self.control.registry().set_backlog(queued),
            Action::Readiness(readiness) => self.control.registry().set_readiness(readiness),
            Action::Answer { reply, answer } => {
                if let Some(waiting) = self.waiting.remove(&reply) {
                    // A caller that stopped waiting is fine.
                    let _ = waiting.send(answer);
                }
            }
            Action::PublishCounter { name, value } => {
                self.control.registry().set_counter(name, value);
            }
            Action::StartUpgrade => {
                if let Err(reason) = self.start_upgrade() {
                    inputs.push_back(Input::UpgradeFailed { reason });
                }
            }
            Action::AbortUpgrade => {
                if let Some(new_master) = self.new_master.take() {
                    new_master.kill();
                }
            }
            Action::HandOver { counters } => self.hand_over(counters),
            Action::ForwardCounter {
                worker,
                seq,
                name,
                op,
            } => match self.handover_link() {
                Some(link) => link.forward_counter(worker, seq, name, op),
                None => inputs.push_back(Input::ForwardedCounter {
                    worker,
                    seq,
                    outcome: Outcome::Error("the other master is gone; the counter is lost".into()),
                }),
            },
            Action::AnswerForeign { id, outcome } => {
                if let Some(link) = self.handover_link() {
                    link.answer_counter(id, outcome);
                }
            }
            Action::Fleet(action) => {
                if let Some(fleet) = &self.fleet {
                    fleet.execute(action);
                }
            }
            // `feed` returns the result before it gets here.
            Action::Finish(_) => {}
        }
    }

    /// The handover socket to the other master of an upgrade, if one is under way.
    fn handover_link(&mut self) -> Option<&mut HandoverLink> {
        match (&mut self.new_master, &mut self.old_master) {
            (Some(new_master), _) => Some(new_master.link()),
            (None, Some(old_master)) => Some(old_master.link()),
            (None, None) => None,
        }
    }

    /// Starts an upgrade's new master with every socket this one serves; why not.
    fn start_upgrade(&mut self) -> Result<(), String> {
        if rustix::process::getpid().is_init() {
            return Err("this master is PID 1 (a container's entry point): its exit would end the container; replace the container instead".into());
        }
        let cannot = |error: std::io::Error| format!("cannot start the new master: {error}");
        let mut sockets: Vec<(String, OwnedFd)> = self
            .listeners
            .handover_fds()
            .map_err(cannot)?
            .into_iter()
            .map(|(key, fd)| (key.as_str().to_owned(), fd))
            .collect();
        sockets.extend(self.endpoints.handover_fds().map_err(cannot)?);
        let new_master =
            NewMaster::start(&self.program, sockets, self.reports_tx.clone()).map_err(cannot)?;
        self.new_master = Some(new_master);
        Ok(())
    }

    /// Hands this master's state to the new master, which answers on the control and admin
    /// sockets from now on; the socket files are its to remove.
    fn hand_over(&mut self, counters: std::collections::BTreeMap<String, i64>) {
        let Some(new_master) = &self.new_master else {
            return;
        };
        new_master.hand_over(HandoverMessage::State {
            counters,
            restarts: self.control.registry().restarts().into_iter().collect(),
            metrics: self.control.metrics().totals(),
            handoffs: self.control.registry().handoffs(),
            ticket_keys: self
                .ticket_keys
                .as_ref()
                .map(|keyring| keyring.keys().clone()),
            socket_files: self.listeners.file_paths(),
        });
        self.handed_over = true;
        self.endpoints.hand_over();
        self.listeners.keep_files();
    }

    /// Starts the worker process `worker` for `slot`; what the machine hears of it.
    fn spawn(&mut self, worker: WorkerKey, slot: usize) -> Input {
        match spawn_worker(&self.program, slot, worker, &self.reports_tx, &self.control) {
            Ok(spawned) => {
                let acks = spawned.metrics.map(|region| {
                    let acks = AckRing::new(Arc::clone(&region));
                    self.control
                        .metrics()
                        .add(worker.0, slot.to_string(), region);
                    acks
                });
                let commands = self.control.commands().sender();
                let (pid, pidfd) = (spawned.pid, spawned.pidfd);
                let handle = WorkerHandle::new(worker, slot, pid, pidfd, commands, acks.clone());
                self.control.registry().add_worker(handle.clone());
                let link = WorkerLink::new(spawned.sender, handle, acks);
                self.links.insert(worker, link);
                Input::Spawned {
                    worker,
                    pid: spawned.pid,
                }
            }
            Err(error) => Input::SpawnFailed { worker, error },
        }
    }
}

/// The control socket and the admin address, and what an upgrade's old master handed over
/// for them.
struct Endpoints {
    control_socket: Option<PathBuf>,
    metrics_addr: Option<String>,
    inherited_control: Option<OwnedFd>,
    inherited_admin: Option<OwnedFd>,
    pid_file: Option<PathBuf>,
    control_socket_open: Option<ControlSocket>,
    metrics_endpoint: Option<MetricsEndpoint>,
    pid_file_written: Option<PidFile>,
}

impl Endpoints {
    /// Opens those configured (on the handed-over sockets, if any), and writes the pid file,
    /// once.
    async fn open(&mut self, control: &ClusterControl) -> Result<(), Error> {
        if let Some(path) = self.pid_file.take() {
            let written = PidFile::write(&path).map_err(|source| Error::PidFile {
                path: path.clone(),
                source,
            })?;
            self.pid_file_written = Some(written);
        }
        if let Some(path) = self.control_socket.take() {
            let inherited = self.inherited_control.take();
            self.control_socket_open =
                Some(ControlSocket::open(&path, control.clone(), inherited)?);
        }
        if let Some(address) = self.metrics_addr.take() {
            let inherited = self.inherited_admin.take();
            self.metrics_endpoint =
                Some(MetricsEndpoint::open(&address, control.clone(), inherited).await?);
        }
        Ok(())
    }

    /// Copies of the open sockets, named, for an upgrade's new master.
    fn handover_fds(&self) -> std::io::Result<Vec<(String, OwnedFd)>> {
        let mut sockets = Vec::new();
        if let Some(socket) = &self.control_socket_open {
            sockets.push((handover::CONTROL_SOCKET.to_owned(), socket.handover_fd()?));
        }
        if let Some(endpoint) = &self.metrics_endpoint {
            sockets.push((handover::ADMIN_SOCKET.to_owned(), endpoint.handover_fd()?));
        }
        Ok(sockets)
    }

    /// Stops answering on them: the new master does.
    fn hand_over(&mut self) {
        if let Some(socket) = self.control_socket_open.take() {
            socket.hand_over();
        }
        self.metrics_endpoint = None;
    }
}

/// Waits for the next rotation of the ticket keys (for ever, without keys: the branch is off
/// then) and gives every worker the new ones.
async fn rotate(keyring: &mut Option<TicketKeyring>, links: &Links) {
    match keyring {
        Some(keyring) => {
            let keys = keyring.rotate().await.clone();
            for link in links.values() {
                let keys = keys.clone();
                link.send(Message::TicketKeys { keys }, Vec::new());
            }
        }
        None => std::future::pending().await,
    }
}

/// The next tick of `interval` (never, without one: the branch is off then).
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A task, aborted if dropped before it ends.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// What the task ended with.
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
