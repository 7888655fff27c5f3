//! The master: binds the listening sockets, spawns and supervises the workers (restarting those
//! that die), hands them connections, reloads them one by one on SIGHUP, and stops them
//! gracefully on SIGTERM or SIGINT.

mod control;
mod dispatch;
mod event;
mod events;
mod handle;
mod inbox;
mod listeners;
mod reload;
mod restart;
mod signals;
mod spawn;
mod subscriptions;
mod worker;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use cluster_ipc::{
    CounterOp, IpcError, ListenKey, Message, Outcome, PROTOCOL_VERSION, Peer, Policy, Received,
    Route,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Cluster, Error};
use control::{Command, Target};
use dispatch::Dispatcher;
use event::{Event, WorkerKey};
use handle::WorkerHandle as Handle;
use listeners::Listeners;
use reload::Reload;
use restart::{Restart, RestartTracker};
use signals::{SignalAction, Signals};
use spawn::{Program, spawn_worker};
use subscriptions::Subscriptions;
use worker::{WorkerRecord, describe_exit};

pub use control::ClusterControl;
pub use events::{ClusterEvent, EventStream};
pub use handle::WorkerHandle;
pub use inbox::{Inbox, Incoming, Request};

pub use restart::RestartPolicy;

/// Events waiting for the supervisor loop; reporters wait when it is full.
const EVENT_QUEUE: usize = 1024;
/// How long killed workers may take to be reaped at the end of a stop.
const REAP_GRACE: Duration = Duration::from_secs(5);

/// Runs the master until the cluster stops.
pub(crate) async fn run(cluster: Cluster) -> Result<(), Error> {
    let worker_count = cluster.worker_count()?;
    let policy = cluster.scheduling_policy()?;
    let program = Program::current()?;
    let mut signals = Signals::install()?;
    let control = cluster.control();
    let mut commands = control
        .take_command_receiver()
        .ok_or(Error::AlreadyRunning)?;
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let mut master = Master {
        listeners: Listeners::new(policy, events_tx.clone()),
        events: events_tx,
        program,
        worker_count,
        handle_commands: control.commands(),
        control,
        cluster,
        workers: HashMap::new(),
        dispatcher: Dispatcher::new(policy),
        policy,
        restarts: RestartTracker::default(),
        reload: Reload::default(),
        subscriptions: Subscriptions::default(),
        next_key: 0,
        ready: false,
        stopping: false,
        killed_at_timeout: 0,
        fatal: None,
    };
    let mut inputs = Inputs {
        events: &mut events,
        commands: &mut commands,
        signals: &mut signals,
    };
    let outcome = match master.start().await {
        Ok(()) => master.supervise(&mut inputs).await,
        Err(error) => Err(error),
    };
    let stopped = master.stop(&mut inputs).await;
    outcome.and(stopped)
}

/// Everything the master waits on.
struct Inputs<'a> {
    events: &'a mut mpsc::Receiver<Event>,
    commands: &'a mut mpsc::UnboundedReceiver<Command>,
    signals: &'a mut Signals,
}

/// What woke the master up.
enum Wake {
    Event(Event),
    Command(Command),
    Signal(SignalAction),
    ReloadTimeout,
}

impl Inputs<'_> {
    async fn next(&mut self, reload_deadline: Option<Instant>) -> Wake {
        let reload_timeout = async {
            match reload_deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(event) = self.events.recv() => Wake::Event(event),
            Some(command) = self.commands.recv() => Wake::Command(command),
            action = self.signals.next() => Wake::Signal(action),
            () = reload_timeout => Wake::ReloadTimeout,
        }
    }
}

struct Master {
    cluster: Cluster,
    worker_count: usize,
    program: Program,
    listeners: Listeners,
    events: mpsc::Sender<Event>,
    control: ClusterControl,
    /// Given to each worker handle, so user code can ask the master to disconnect it.
    handle_commands: mpsc::UnboundedSender<Command>,
    workers: HashMap<WorkerKey, WorkerRecord>,
    dispatcher: Dispatcher,
    policy: Policy,
    restarts: RestartTracker,
    reload: Reload,
    subscriptions: Subscriptions,
    next_key: u64,
    /// The ready hook has run.
    ready: bool,
    /// Shutdown has begun: exits are expected and nothing is restarted.
    stopping: bool,
    /// Workers killed during the stop because they outlived the shutdown timeout.
    killed_at_timeout: usize,
    /// An error that stops the cluster, noticed while handling an event.
    fatal: Option<Error>,
}

impl Master {
    /// Binds the configured addresses (failing fast on a taken port), then spawns the workers.
    async fn start(&mut self) -> Result<(), Error> {
        for address in self.cluster.addresses.clone() {
            self.listeners.bind(&address).await?;
        }
        tracing::info!(workers = self.worker_count, policy = ?self.policy, "starting workers");
        for slot in 1..=self.worker_count {
            self.spawn(slot)?;
        }
        Ok(())
    }

    fn spawn(&mut self, slot: usize) -> Result<WorkerKey, Error> {
        let key = WorkerKey(self.next_key);
        self.next_key += 1;
        let spawned = spawn_worker(&self.program, slot, key, &self.events, &self.control)?;
        tracing::debug!(slot, pid = spawned.pid, "worker spawned");
        let handle = Handle::new(key, slot, spawned.pid, self.handle_commands.clone());
        self.control.add_worker(handle.clone());
        self.control.emit(ClusterEvent::Fork(handle.clone()));
        self.workers
            .insert(key, WorkerRecord::new(slot, spawned, handle));
        Ok(key)
    }

    /// Handles events, commands and signals until a stop is asked for or a fatal error.
    async fn supervise(&mut self, inputs: &mut Inputs<'_>) -> Result<(), Error> {
        loop {
            match inputs.next(self.reload.deadline()).await {
                Wake::Event(event) => self.handle(event).await,
                Wake::Command(Command::Reload) => self.request_reload(),
                Wake::Signal(SignalAction::Reload(name)) => {
                    tracing::info!("received {name}; reloading workers");
                    self.request_reload();
                }
                Wake::Command(Command::Disconnect(key)) => self.retire(key),
                Wake::Command(Command::Deliver { to, data }) => self.deliver_from_master(to, data),
                Wake::Command(Command::Shutdown) => {
                    tracing::info!("shutdown requested; stopping gracefully");
                    return Ok(());
                }
                Wake::Signal(SignalAction::Stop(name)) => {
                    tracing::info!("received {name}; stopping gracefully");
                    return Ok(());
                }
                Wake::ReloadTimeout => self.reload_timed_out(),
            }
            if let Some(error) = self.fatal.take() {
                return Err(error);
            }
        }
    }

    async fn handle(&mut self, event: Event) {
        match event {
            Event::Connection(handoff) => self.dispatcher.dispatch(handoff, &mut self.workers),
            Event::Message { worker, received } => self.on_message(worker, received).await,
            Event::ChannelClosed { worker, error } => self.on_channel_closed(worker, error),
            Event::Exited { worker, status } => self.on_exit(worker, status),
            Event::RestartDue { slot } => self.restart_slot(slot),
            Event::DisconnectTimeout { worker } => self.on_disconnect_timeout(worker),
            Event::PushCounters => self.push_counters(),
        }
    }

    async fn on_message(&mut self, key: WorkerKey, Received { message, fds }: Received) {
        let Some(worker) = self.workers.get(&key) else {
            return;
        };
        let (slot, pid) = (worker.slot, worker.pid);
        if !fds.is_empty() {
            tracing::warn!(
                slot,
                kind = message.kind(),
                "worker sent descriptors; closed them"
            );
        }
        match message {
            Message::Online { version, .. } if version != PROTOCOL_VERSION => {
                tracing::error!(
                    slot,
                    pid,
                    "worker speaks protocol version {version}, this master {PROTOCOL_VERSION}; stopping it"
                );
                worker.kill();
            }
            Message::Online { .. } => {
                tracing::debug!(slot, pid, "worker online");
                self.control
                    .emit(ClusterEvent::Online(worker.handle.clone()));
            }
            Message::QueryServer { seq, address } => self.query_server(key, seq, address).await,
            Message::Listening { key: listen_key } => self.on_listening(key, listen_key),
            Message::Accepted { seq, ok } => self.on_accepted(key, seq, ok),
            Message::User { to, data, seq } => {
                let outcome = self.route_user_message(slot, to, data);
                if let (Some(seq), Some(worker)) = (seq, self.workers.get(&key)) {
                    inbox::send_to_worker(worker.sender(), Message::Reply { seq, outcome });
                }
            }
            Message::Counter { seq, name, op } => self.on_counter(key, seq, name, op),
            Message::Heartbeat { conns, inflight } => {
                if let Some(worker) = self.workers.get_mut(&key) {
                    worker.report_load(conns + inflight);
                }
            }
            other => {
                tracing::error!(
                    slot,
                    pid,
                    kind = other.kind(),
                    "worker sent a message only the master may send; stopping it"
                );
                worker.kill();
            }
        }
    }

    /// Applies a counter operation, answers it, and schedules a push to subscribers.
    fn on_counter(&mut self, key: WorkerKey, seq: u64, name: String, op: CounterOp) {
        if op == CounterOp::Subscribe {
            self.subscriptions.subscribe(&name, key);
        }
        let value = self.control.apply_counter(name.clone(), op);
        if let CounterOp::Add(_) = op
            && self.subscriptions.changed(name)
        {
            self.after(subscriptions::PUSH_INTERVAL, Event::PushCounters);
        }
        if let Some(worker) = self.workers.get(&key) {
            let outcome = Outcome::Ok(value.into());
            inbox::send_to_worker(worker.sender(), Message::Reply { seq, outcome });
        }
    }

    /// Pushes every changed counter's value to the workers subscribed to it.
    fn push_counters(&mut self) {
        for (name, subscribers) in self.subscriptions.take_changed() {
            let value = self.control.counter(&name);
            let message = Message::CounterValue { name, value };
            self.deliver(
                |worker| subscribers.contains(&worker.handle.key()),
                &message,
            );
        }
    }

    /// Relays a worker's user message; the outcome answers a receipt request.
    fn route_user_message(&mut self, from: usize, to: Route, data: serde_json::Value) -> Outcome {
        let message = Message::Deliver {
            from: Peer::Worker(from),
            data,
        };
        match to {
            // The worker's reader hands these to the inbox before they get here.
            Route::Master => Outcome::Error("not deliverable".into()),
            Route::All => {
                self.deliver(|_| true, &message);
                Outcome::Ok(serde_json::Value::Null)
            }
            Route::Worker(slot) => match self.deliver(|worker| worker.slot == slot, &message) {
                0 => Outcome::Error(format!("no live worker {slot}")),
                _ => Outcome::Ok(serde_json::Value::Null),
            },
        }
    }

    fn deliver_from_master(&mut self, to: Target, data: serde_json::Value) {
        let message = Message::Deliver {
            from: Peer::Master,
            data,
        };
        match to {
            Target::All => self.deliver(|_| true, &message),
            Target::One(key) => self.deliver(|worker| worker.handle.key() == key, &message),
        };
    }

    /// Sends `message` to every connected worker that is not stopping and `matches`; returns
    /// how many got it.
    fn deliver(&self, matches: impl Fn(&WorkerRecord) -> bool, message: &Message) -> usize {
        let mut delivered = 0;
        for worker in self.workers.values() {
            if worker.disconnecting || !worker.handle.is_connected() || !matches(worker) {
                continue;
            }
            if worker.deliver(message.clone()) {
                delivered += 1;
            }
        }
        delivered
    }

    /// Binds the address once for the whole cluster and tells the worker how to listen.
    async fn query_server(&mut self, key: WorkerKey, seq: u64, address: String) {
        let listen_key = ListenKey::from(address.as_str());
        let bound = self.listeners.bind(&address).await.and_then(|bound| {
            let shared = self
                .listeners
                .share(&listen_key)
                .map_err(|source| Error::Bind {
                    address: address.clone(),
                    source,
                })?;
            Ok((bound, shared))
        });
        let (reply, fds) = match bound {
            Ok((bound, shared)) => {
                let reply = Message::ServerAck {
                    seq,
                    key: listen_key,
                    policy: self.policy,
                    address: bound,
                };
                (reply, shared.into_iter().collect())
            }
            Err(error) => {
                let message = error.to_string();
                self.fatal.get_or_insert(error);
                (Message::ServerError { seq, message }, Vec::new())
            }
        };
        if let Some(worker) = self.workers.get(&key) {
            worker.send_with_fds(&reply, fds);
        }
    }

    fn on_listening(&mut self, key: WorkerKey, listen_key: ListenKey) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        let Some(address) = self.listeners.address_of(&listen_key) else {
            tracing::warn!(slot = worker.slot, %listen_key, "worker listens on an unknown key");
            return;
        };
        tracing::debug!(slot = worker.slot, %listen_key, "worker listening");
        worker.listening.insert(listen_key.clone());
        self.control
            .emit(ClusterEvent::Listening(worker.handle.clone(), address));
        if !worker.disconnecting {
            self.dispatcher.add(listen_key, worker.slot, key);
            self.dispatcher.drain_backlog(&mut self.workers);
        }
        self.reload_on_listening(key);
        self.announce_if_ready();
    }

    fn on_accepted(&mut self, key: WorkerKey, seq: u64, ok: bool) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        let Some(handoff) = worker.acknowledge(seq) else {
            tracing::warn!(
                slot = worker.slot,
                seq,
                "acknowledgement of an unknown handoff"
            );
            return;
        };
        if !ok {
            // The worker refused (it is draining): it takes no more for this key.
            self.dispatcher.remove(&handoff.key, key);
            self.dispatcher.dispatch(handoff, &mut self.workers);
        }
        self.dispatcher.drain_backlog(&mut self.workers);
    }

    fn on_channel_closed(&mut self, key: WorkerKey, error: Option<IpcError>) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        worker.handle.set_disconnected();
        match error {
            Some(error) if error.is_protocol_violation() => {
                tracing::error!(slot = worker.slot, pid = worker.pid, %error, "worker broke the IPC protocol; stopping it");
                worker.kill();
            }
            Some(error) => tracing::warn!(slot = worker.slot, %error, "IPC with worker failed"),
            None => tracing::debug!(slot = worker.slot, "worker closed its IPC channel"),
        }
        self.redispatch_from(key);
    }

    fn on_exit(&mut self, key: WorkerKey, status: std::io::Result<std::process::ExitStatus>) {
        self.redispatch_from(key);
        let Some(worker) = self.workers.remove(&key) else {
            return;
        };
        self.control.remove_worker(key);
        self.subscriptions.forget(key);
        worker.handle.set_dead();
        let intended = worker.disconnecting || worker.handle.exited_after_disconnect();
        let (code, signal) = match &status {
            Ok(status) => (status.code(), status.signal()),
            Err(_) => (None, None),
        };
        self.control.emit(ClusterEvent::Exit {
            worker: worker.handle.clone(),
            code,
            signal,
            exited_after_disconnect: intended,
        });
        let how = describe_exit(&status);
        self.reload_on_exit(key, worker.slot, &how);
        if self.stopping || intended {
            tracing::debug!(slot = worker.slot, pid = worker.pid, "worker exited: {how}");
            return;
        }
        tracing::warn!(
            slot = worker.slot,
            pid = worker.pid,
            "worker exited unexpectedly: {how}"
        );
        if !self.slot_is_served(worker.slot) {
            self.schedule_restart(worker.slot, worker.started.elapsed(), worker.pid, how);
        }
    }

    /// Decides, with the restart policy, when the slot's next worker starts, or gives up.
    fn schedule_restart(&mut self, slot: usize, uptime: Duration, pid: u32, status: String) {
        let policy = self.cluster.restart;
        match self.restarts.on_death(&policy, slot, uptime) {
            Restart::After(delay) => {
                tracing::info!(slot, ?delay, "restarting worker");
                self.control
                    .emit(ClusterEvent::Restarting { id: slot, delay });
                self.after(delay, Event::RestartDue { slot });
            }
            Restart::GiveUp { early_deaths } => {
                self.fatal.get_or_insert(Error::CrashLoop {
                    slot,
                    pid,
                    status,
                    early_deaths,
                    min_uptime: policy.min_uptime,
                });
            }
        }
    }

    fn restart_slot(&mut self, slot: usize) {
        if self.stopping || self.slot_is_served(slot) {
            return;
        }
        if let Err(error) = self.spawn(slot) {
            tracing::error!(slot, %error, "cannot restart worker");
            self.schedule_restart(slot, Duration::ZERO, 0, error.to_string());
        }
    }

    /// Whether a worker that is not being stopped holds `slot`.
    fn slot_is_served(&self, slot: usize) -> bool {
        self.serving_worker(slot).is_some()
    }

    /// The worker holding `slot` that is not being stopped, if any.
    fn serving_worker(&self, slot: usize) -> Option<WorkerKey> {
        self.workers
            .iter()
            .find(|(_, worker)| worker.slot == slot && !worker.disconnecting)
            .map(|(key, _)| *key)
    }

    /// Stops routing to the worker, asks it to finish and exit, and kills it if it is still
    /// there after the shutdown timeout.
    fn retire(&mut self, key: WorkerKey) {
        self.dispatcher.remove_worker(key);
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        if worker.disconnecting {
            return;
        }
        worker.disconnect();
        self.control
            .emit(ClusterEvent::Disconnect(worker.handle.clone()));
        self.after(
            self.cluster.shutdown_timeout,
            Event::DisconnectTimeout { worker: key },
        );
    }

    fn on_disconnect_timeout(&mut self, key: WorkerKey) {
        let Some(worker) = self.workers.get(&key) else {
            return;
        };
        tracing::warn!(
            slot = worker.slot,
            pid = worker.pid,
            timeout = ?self.cluster.shutdown_timeout,
            "worker did not stop in time; killing it"
        );
        worker.kill();
        if self.stopping {
            self.killed_at_timeout += 1;
        }
    }

    /// Delivers `event` to the master after `delay`.
    fn after(&self, delay: Duration, event: Event) {
        let events = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = events.send(event).await;
        });
    }

    /// Takes a gone worker out of every rotation and gives its unacknowledged connections to
    /// the others.
    fn redispatch_from(&mut self, key: WorkerKey) {
        self.dispatcher.remove_worker(key);
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        for handoff in worker.take_unacknowledged() {
            self.dispatcher.dispatch(handoff, &mut self.workers);
        }
    }

    /// Runs the ready hook once every worker listens on every bound address.
    fn announce_if_ready(&mut self) {
        let listening = self.listeners.len();
        let all_listening = self.workers.len() >= self.worker_count
            && listening > 0
            && self
                .workers
                .values()
                .all(|worker| worker.listening.len() >= listening);
        if self.ready || !all_listening {
            return;
        }
        self.ready = true;
        let addresses = self.listeners.addresses();
        tracing::info!(workers = self.workers.len(), ?addresses, "cluster ready");
        if let Some(hook) = &self.cluster.on_ready {
            hook(&addresses);
        }
    }

    /// Stops accepting, asks every worker to finish and exit, and kills what is left after the
    /// shutdown timeout (or at once on a second stop signal).
    async fn stop(&mut self, inputs: &mut Inputs<'_>) -> Result<(), Error> {
        self.stopping = true;
        self.control.emit(ClusterEvent::ShutdownStarted);
        self.reload = Reload::default();
        self.listeners.close();
        // Hand out what was accepted before the listeners closed; the workers serve those
        // before they see `disconnect`.
        while let Ok(event) = inputs.events.try_recv() {
            self.handle(event).await;
        }
        let keys: Vec<WorkerKey> = self.workers.keys().copied().collect();
        for key in keys {
            self.retire(key);
        }
        let mut deadline = Instant::now() + self.cluster.shutdown_timeout + REAP_GRACE;
        let mut forced = 0;
        while !self.workers.is_empty() {
            let wake = tokio::select! {
                wake = inputs.next(None) => wake,
                () = tokio::time::sleep_until(deadline) => break,
            };
            match wake {
                Wake::Event(event) => self.handle(event).await,
                Wake::Signal(SignalAction::Stop(name)) if forced == 0 => {
                    tracing::warn!("received {name} again; stopping at once");
                    forced = self.workers.len();
                    self.workers.values().for_each(WorkerRecord::kill);
                    deadline = Instant::now() + REAP_GRACE;
                }
                _ => {}
            }
        }
        let dropped = self.dispatcher.clear_backlog();
        if dropped > 0 {
            tracing::warn!(dropped, "closed connections no worker could take");
        }
        if !self.workers.is_empty() {
            tracing::error!(left = self.workers.len(), "workers could not be reaped");
        }
        if forced > 0 {
            return Err(Error::ForcedStop { count: forced });
        }
        if self.killed_at_timeout > 0 {
            return Err(Error::ShutdownTimeout {
                count: self.killed_at_timeout,
                timeout: self.cluster.shutdown_timeout,
            });
        }
        tracing::info!("all workers stopped");
        Ok(())
    }
}
