//! The master: binds the listening sockets, spawns and supervises the workers, hands them
//! connections, and stops them gracefully on SIGTERM or SIGINT.

mod dispatch;
mod event;
mod listeners;
mod signals;
mod spawn;
mod worker;

use std::collections::HashMap;

use cluster_ipc::{ListenKey, Message, PROTOCOL_VERSION, Policy, Received};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Cluster, Error};
use dispatch::Dispatcher;
use event::{Event, WorkerKey};
use listeners::Listeners;
use signals::Signals;
use spawn::{Program, spawn_worker};
use worker::{WorkerHandle, describe_exit};

/// Events waiting for the supervisor loop; reporters wait when it is full.
const EVENT_QUEUE: usize = 1024;

/// Runs the master until the cluster stops.
pub(crate) async fn run(cluster: Cluster) -> Result<(), Error> {
    let worker_count = cluster.worker_count()?;
    let program = Program::current()?;
    let mut signals = Signals::install()?;
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let mut master = Master {
        listeners: Listeners::new(events_tx.clone()),
        events: events_tx,
        program,
        worker_count,
        cluster,
        workers: HashMap::new(),
        dispatcher: Dispatcher::default(),
        next_key: 0,
        ready: false,
        stopping: false,
        fatal: None,
    };
    let outcome = match master.start().await {
        Ok(()) => master.supervise(&mut events, &mut signals).await,
        Err(error) => Err(error),
    };
    let stopped = master.stop(&mut events, &mut signals).await;
    outcome.and(stopped)
}

struct Master {
    cluster: Cluster,
    worker_count: usize,
    program: Program,
    listeners: Listeners,
    events: mpsc::Sender<Event>,
    workers: HashMap<WorkerKey, WorkerHandle>,
    dispatcher: Dispatcher,
    next_key: u64,
    /// The ready hook has run.
    ready: bool,
    /// Shutdown has begun: exits are expected.
    stopping: bool,
    /// An error that stops the cluster, noticed while handling an event.
    fatal: Option<Error>,
}

impl Master {
    /// Binds the configured addresses (failing fast on a taken port), then spawns the workers.
    async fn start(&mut self) -> Result<(), Error> {
        for address in self.cluster.addresses.clone() {
            self.listeners.bind(&address).await?;
        }
        tracing::info!(workers = self.worker_count, "starting workers");
        for slot in 1..=self.worker_count {
            self.spawn(slot)?;
        }
        Ok(())
    }

    fn spawn(&mut self, slot: usize) -> Result<(), Error> {
        let key = WorkerKey(self.next_key);
        self.next_key += 1;
        let spawned = spawn_worker(&self.program, slot, key, &self.events)?;
        tracing::debug!(slot, pid = spawned.pid, "worker spawned");
        self.workers.insert(key, WorkerHandle::new(slot, spawned));
        Ok(())
    }

    /// Handles events until a stop signal or a fatal error.
    async fn supervise(
        &mut self,
        events: &mut mpsc::Receiver<Event>,
        signals: &mut Signals,
    ) -> Result<(), Error> {
        loop {
            tokio::select! {
                Some(event) = events.recv() => self.handle(event).await,
                name = signals.next() => {
                    tracing::info!("received {name}; stopping gracefully");
                    return Ok(());
                }
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
            Message::Online { .. } => tracing::debug!(slot, pid, "worker online"),
            Message::QueryServer { seq, address } => self.query_server(key, seq, address).await,
            Message::Listening { key: listen_key } => self.on_listening(key, listen_key),
            Message::Accepted { seq, ok } => self.on_accepted(key, seq, ok),
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

    /// Binds the address once for the whole cluster and tells the worker how to listen.
    async fn query_server(&mut self, key: WorkerKey, seq: u64, address: String) {
        let reply = match self.listeners.bind(&address).await {
            Ok(bound) => Message::ServerAck {
                seq,
                key: ListenKey::from(address),
                policy: Policy::Rr,
                address: bound,
            },
            Err(error) => {
                let message = error.to_string();
                self.fatal.get_or_insert(error);
                Message::ServerError { seq, message }
            }
        };
        if let Some(worker) = self.workers.get(&key) {
            worker.send(&reply);
        }
    }

    fn on_listening(&mut self, key: WorkerKey, listen_key: ListenKey) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        if !self.listeners.contains(&listen_key) {
            tracing::warn!(slot = worker.slot, %listen_key, "worker listens on an unknown key");
            return;
        }
        tracing::debug!(slot = worker.slot, %listen_key, "worker listening");
        worker.listening.insert(listen_key.clone());
        self.dispatcher.add(listen_key, worker.slot, key);
        self.dispatcher.drain_backlog(&mut self.workers);
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

    fn on_channel_closed(&mut self, key: WorkerKey, error: Option<cluster_ipc::IpcError>) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        worker.connected = false;
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
        let how = describe_exit(&status);
        if self.stopping || worker.disconnecting {
            tracing::debug!(slot = worker.slot, pid = worker.pid, "worker exited: {how}");
        } else {
            tracing::warn!(
                slot = worker.slot,
                pid = worker.pid,
                "worker exited unexpectedly: {how}"
            );
            if self.workers.is_empty() {
                self.fatal.get_or_insert(Error::AllWorkersExited {
                    slot: worker.slot,
                    pid: worker.pid,
                    status: how,
                });
            }
        }
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
    async fn stop(
        &mut self,
        events: &mut mpsc::Receiver<Event>,
        signals: &mut Signals,
    ) -> Result<(), Error> {
        self.stopping = true;
        self.listeners.close();
        // Hand out what was accepted before the listeners closed; the workers serve those
        // before they see `disconnect`.
        while let Ok(event) = events.try_recv() {
            self.handle(event).await;
        }
        for worker in self.workers.values_mut() {
            worker.disconnect();
        }
        let timeout = self.cluster.shutdown_timeout;
        let deadline = Instant::now() + timeout;
        let mut forced = false;
        while !self.workers.is_empty() {
            tokio::select! {
                Some(event) = events.recv() => self.handle(event).await,
                () = tokio::time::sleep_until(deadline) => break,
                name = signals.next() => {
                    tracing::warn!("received {name} again; stopping at once");
                    forced = true;
                    break;
                }
            }
        }
        let left = self.workers.len();
        if left > 0 {
            self.kill_all(events).await;
        }
        let dropped = self.dispatcher.clear_backlog();
        if dropped > 0 {
            tracing::warn!(dropped, "closed connections no worker could take");
        }
        match (left, forced) {
            (0, _) => {
                tracing::info!("all workers stopped");
                Ok(())
            }
            (count, true) => Err(Error::ForcedStop { count }),
            (count, false) => Err(Error::ShutdownTimeout { count, timeout }),
        }
    }

    /// Kills every remaining worker and reaps them (bounded: a killed process is reaped at once).
    async fn kill_all(&mut self, events: &mut mpsc::Receiver<Event>) {
        for worker in self.workers.values() {
            tracing::warn!(slot = worker.slot, pid = worker.pid, "killing worker");
            worker.kill();
        }
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while !self.workers.is_empty() {
            tokio::select! {
                Some(event) = events.recv() => self.handle(event).await,
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }
}
