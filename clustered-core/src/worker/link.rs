//! The worker's end of the IPC channel: a task that reads the master's messages, answers
//! connection handoffs and routes replies to the requests waiting for them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use std::time::Duration;

use clustered_ipc::{
    Handoff, INBOX_WINDOW, ListenKey, ListenMode, Message, Outcome, Received, Receiver, Sender,
    TrySendError, WireError,
};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::connection::{Connection, OwnListener, UNIX_PEER};
use super::listener::{Delivered, Listener, Source};
use super::mailbox::mailbox;
use crate::bind::{LISTEN_BACKLOG, reuseport_socket};
use crate::error::{Error, IpcError};
use crate::handoff_acks::{AckRing, LoadReport};
use crate::limits::AcceptErrors;
use crate::sync::lock;

/// Connections one listener may hold before the worker refuses more (the master's window per
/// worker is far smaller, so a healthy worker never refuses).
const LISTENER_QUEUE: usize = 1024;
/// How long the master may take to answer `queryServer` (it binds the address meanwhile).
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// This process's link, once it has joined the master.
static INSTALLED: OnceLock<Arc<Link>> = OnceLock::new();

/// Makes `link` this process's link (the first one stays).
pub(crate) fn install(link: Arc<Link>) {
    let _ = INSTALLED.set(link);
}

/// This process's link, if it has joined a master.
pub(crate) fn installed_link() -> Option<&'static Arc<Link>> {
    INSTALLED.get()
}

/// Shared state between the worker's handles and its reader task.
#[derive(Debug)]
pub(crate) struct Link {
    sender: Sender,
    next_seq: AtomicU64,
    /// Calls waiting for the master's answer; `None` once the master is gone (a call then
    /// fails at once).
    replies: Mutex<Option<HashMap<u64, oneshot::Sender<Received>>>>,
    routes: Mutex<HashMap<ListenKey, Route>>,
    draining: watch::Sender<bool>,
    /// Credit for the master's inbox: one per message or request for it, given back by the
    /// master's `inboxCredit` (see [`INBOX_WINDOW`]); closed once the master is gone.
    inbox_credit: Semaphore,
    /// Whether master code reads the inbox, as the master last said.
    inbox_read: AtomicBool,
    /// This worker said it is ready (`Worker::ready`).
    ready: watch::Sender<bool>,
    /// Where it records the handoffs it takes, when the master gave it a region (else it
    /// answers each with a frame).
    acks: Option<AckRing>,
}

impl Link {
    /// Starts the reader task.
    pub(super) fn start(sender: Sender, receiver: Receiver, acks: Option<AckRing>) -> Arc<Link> {
        let link = Arc::new(Link {
            sender,
            next_seq: AtomicU64::new(1),
            replies: Mutex::new(Some(HashMap::new())),
            routes: Mutex::new(HashMap::new()),
            draining: watch::Sender::new(false),
            inbox_credit: Semaphore::new(window()),
            inbox_read: AtomicBool::new(true),
            ready: watch::Sender::new(false),
            acks,
        });
        tokio::spawn(Arc::clone(&link).read_loop(receiver));
        tokio::spawn(Arc::clone(&link).drain_on_sigterm());
        link
    }

    /// SIGTERM (from a user or `clusterctl kill`, or `PR_SET_PDEATHSIG` when the master dies)
    /// drains the worker like a `disconnect` from the master; the master hears of it first
    /// (`stopping`), so it starts a successor at once and counts no crash.
    async fn drain_on_sigterm(self: Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(error) => {
                tracing::warn!(%error, "cannot handle SIGTERM; it will kill this worker");
                return;
            }
        };
        if terminate.recv().await.is_some() {
            tracing::info!("received SIGTERM; draining");
            // When the master is gone there is nobody to tell.
            let _ = self.try_send(&Message::Stopping);
            self.start_draining();
        }
    }

    /// The channel to the master.
    pub(crate) fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Tells the master this worker is ready (once; later calls do nothing).
    pub(crate) async fn declare_ready(&self) -> Result<(), IpcError> {
        if self.ready.send_replace(true) {
            return Ok(());
        }
        self.send(&Message::Ready).await
    }

    pub(crate) async fn send(&self, message: &Message) -> Result<(), IpcError> {
        self.sender
            .send(message)
            .await
            .map_err(|error| self.or_gone(error))
    }

    /// Sends without waiting; a full send queue is [`IpcError::Backpressure`].
    pub(crate) fn try_send(&self, message: &Message) -> Result<(), IpcError> {
        self.sender.try_send(message).map_err(|error| match error {
            TrySendError::Ipc(error) => self.or_gone(error),
            _full => IpcError::Backpressure,
        })
    }

    /// Says a heartbeat: in the region the master reads, or in a frame without one (then a
    /// full send queue is [`IpcError::Backpressure`]).
    pub(crate) fn beat(&self, load: LoadReport) -> Result<(), IpcError> {
        match &self.acks {
            Some(acks) => {
                acks.beat(load);
                Ok(())
            }
            None => self.try_send(&Message::Heartbeat {
                conns: load.conns,
                inflight: load.inflight,
                served: load.served,
                rss: load.rss,
            }),
        }
    }

    /// [`IpcError::MasterGone`] for an error that comes of the master being gone, else the error.
    fn or_gone(&self, error: WireError) -> IpcError {
        match lock(&self.replies).is_none() || matches!(error, WireError::Closed) {
            true => IpcError::MasterGone,
            false => IpcError::Channel(error),
        }
    }

    /// Sends a message for the master's inbox without waiting, spending a credit:
    /// [`IpcError::Backpressure`] when this worker has none left (the master's inbox is behind)
    /// or the send queue is full, [`IpcError::InboxUnread`] when nobody reads the inbox.
    pub(crate) fn try_send_to_inbox(&self, message: &Message) -> Result<(), IpcError> {
        self.check_inbox_read()?;
        let credit = self
            .inbox_credit
            .try_acquire()
            .map_err(|error| match error {
                tokio::sync::TryAcquireError::Closed => IpcError::MasterGone,
                tokio::sync::TryAcquireError::NoPermits => IpcError::Backpressure,
            })?;
        self.try_send(message)?;
        credit.forget();
        Ok(())
    }

    /// Waits for a credit for the master's inbox: at once while the master keeps up, else once
    /// it takes one of this worker's messages out. The caller spends it ([`Credit::spend`])
    /// once its message or request is queued; dropped unspent, it is given back.
    /// [`IpcError::InboxUnread`] when nobody reads the inbox (also when the master says so while
    /// this waits), [`IpcError::MasterGone`] once the master is gone.
    pub(crate) async fn inbox_credit(&self) -> Result<Credit<'_>, IpcError> {
        self.check_inbox_read()?;
        let permit = self
            .inbox_credit
            .acquire()
            .await
            .map_err(|_| IpcError::MasterGone)?;
        self.check_inbox_read()?;
        Ok(Credit(permit))
    }

    /// [`Link::send`] of a message for the master's inbox, once this worker has credit for it.
    pub(crate) async fn send_to_inbox(&self, message: &Message) -> Result<(), IpcError> {
        let credit = self.inbox_credit().await?;
        self.send(message).await?;
        credit.spend();
        Ok(())
    }

    fn check_inbox_read(&self) -> Result<(), IpcError> {
        match self.inbox_read.load(Ordering::Relaxed) {
            true => Ok(()),
            false => Err(IpcError::InboxUnread),
        }
    }

    /// The master's `inboxCredit`: credit back (never past the window, whatever it says),
    /// whether the inbox is read, and how many of this worker's messages it refused.
    fn on_inbox_credit(&self, granted: u32, open: bool, refused: u32) {
        let out = window().saturating_sub(self.inbox_credit.available_permits());
        let granted = usize::try_from(granted).unwrap_or(usize::MAX).min(out);
        self.inbox_credit.add_permits(granted);
        self.inbox_read.store(open, Ordering::Relaxed);
        if refused > 0 {
            let why = match open {
                false => "nobody reads it (ClusterControl::inbox)",
                true => "they were sent past this worker's credit",
            };
            tracing::warn!(
                refused,
                "the master refused messages this worker sent to its inbox: {why}"
            );
        }
    }

    /// Sends the message `make(seq)` and waits up to `timeout` for the master's answer to
    /// `seq`; [`IpcError::MasterGone`] at once when the master is gone, or goes meanwhile. A
    /// `credit` for the master's inbox is spent once the message is queued.
    pub(crate) async fn call(
        &self,
        make: impl FnOnce(u64) -> Message,
        timeout: Duration,
        credit: Option<Credit<'_>>,
    ) -> Result<Received, IpcError> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&self.replies)
            .as_mut()
            .ok_or(IpcError::MasterGone)?
            .insert(seq, reply_tx);
        let forget = || {
            if let Some(replies) = lock(&self.replies).as_mut() {
                replies.remove(&seq);
            }
        };
        let message = make(seq);
        let kind = message.kind();
        // One deadline for both: a send queue that stays full (a stopped master) is waited on
        // no longer than the answer is.
        let sent_and_answered = async {
            self.send(&message).await?;
            if let Some(credit) = credit {
                credit.spend();
            }
            reply_rx.await.map_err(|_| IpcError::MasterGone)
        };
        match tokio::time::timeout(timeout, sent_and_answered).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => {
                forget();
                Err(error)
            }
            Err(_) => {
                forget();
                Err(IpcError::Timeout {
                    what: kind,
                    after: timeout,
                })
            }
        }
    }

    pub(super) fn draining(&self) -> watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// `queryServer` → reply → `listening`.
    pub(super) async fn listen(&self, address: &str) -> Result<Listener, Error> {
        let query = |seq| Message::QueryServer {
            seq,
            address: address.to_owned(),
        };
        let Received { message, mut fds } = self.call(query, QUERY_TIMEOUT, None).await?;
        let (key, mode, bound, wait_ready) = match message {
            Message::ServerAck {
                key,
                mode,
                address,
                wait_ready,
                ..
            } => (key, mode, address, wait_ready),
            Message::ServerError { message, .. } => {
                return Err(Error::ServerRefused {
                    address: address.to_owned(),
                    message,
                });
            }
            other => return Err(Error::UnexpectedReply { kind: other.kind() }),
        };
        let listen_error = |source| Error::Bind {
            address: address.to_owned(),
            source,
        };
        let source = match mode {
            ListenMode::Shared => {
                let fd = fds.pop().ok_or_else(|| {
                    listen_error(std::io::Error::other(
                        "the master's listening socket did not arrive (is this worker out of descriptors?)",
                    ))
                })?;
                let unix = bound.as_unix_path().is_some();
                let listener = OwnListener::shared(fd, unix).map_err(listen_error)?;
                self.own_source(listener, wait_ready)
            }
            ListenMode::Reuseport => {
                let socket = reuseport_socket(&bound.to_string())
                    .await
                    .map_err(listen_error)?;
                let listener = socket.listen(LISTEN_BACKLOG).map_err(listen_error)?;
                self.own_source(OwnListener::Tcp(listener), wait_ready)
            }
            ListenMode::Delivered => {
                let (incoming_tx, incoming_rx) = mpsc::channel(LISTENER_QUEUE);
                let mut routes = lock(&self.routes);
                if *self.draining.borrow() {
                    return Err(Error::Draining);
                }
                let route = Route {
                    to: incoming_tx,
                    unix: bound.as_unix_path().is_some(),
                };
                routes.insert(key.clone(), route);
                Source::Master(incoming_rx)
            }
        };
        self.send(&Message::Listening { key: key.clone() }).await?;
        Ok(Listener::new(key, bound, source))
    }

    async fn read_loop(self: Arc<Self>, mut receiver: Receiver) {
        loop {
            match receiver.recv().await {
                Ok(Some(received)) => self.handle(received).await,
                Ok(None) => {
                    tracing::info!("the master closed the IPC channel; draining");
                    break;
                }
                Err(error) => {
                    tracing::error!(%error, "IPC with the master failed; draining");
                    break;
                }
            }
        }
        self.start_draining();
        // From now on every call fails at once, and those waiting for a reply or for credit
        // see it fail now: IpcError::MasterGone.
        lock(&self.replies).take();
        self.inbox_credit.close();
    }

    async fn handle(&self, Received { message, fds }: Received) {
        match message {
            Message::ServerAck { seq, .. }
            | Message::ServerError { seq, .. }
            | Message::Reply { seq, .. } => self.reply(seq, Received { message, fds }),
            Message::Deliver { from, data } => mailbox().deliver(from, data),
            Message::AgentAsk { id, from, data } => {
                if !mailbox().ask((id, from, data)) {
                    let reason = "the agent is overloaded (its requests are not read)".into();
                    let answer = Message::AgentAnswer {
                        id,
                        outcome: Outcome::Error(reason),
                    };
                    let _ = self.try_send(&answer);
                }
            }
            Message::CounterValue { name, value } => mailbox().counter_changed(&name, value),
            Message::FleetStatus { up } => mailbox().set_fleet_up(up),
            Message::TicketKeys { keys } => super::ticket_keys::set(keys),
            Message::ReloadCertificates { id } => self.reload_certificates(id),
            Message::NewConn { seq, key, peer } => {
                self.take_handoffs(&key, [Handoff { seq, peer }], fds).await;
            }
            Message::NewConns { key, conns } => self.take_handoffs(&key, conns, fds).await,
            Message::Disconnect => {
                tracing::debug!("the master asked this worker to disconnect");
                self.start_draining();
            }
            Message::InboxCredit {
                granted,
                open,
                refused,
            } => self.on_inbox_credit(granted, open, refused),
            other => tracing::warn!(message = ?other, "unexpected message from the master"),
        }
    }

    /// Loads this worker's TLS certificates again, off the reader task, then tells the
    /// master how it went.
    fn reload_certificates(&self, id: u64) {
        let sender = self.sender.clone();
        tokio::spawn(async move {
            let (loaded, errors) = super::certificates::reload_all().await;
            let answer = Message::CertificatesReloaded { id, loaded, errors };
            if let Err(error) = sender.try_send(&answer) {
                tracing::debug!(%error, "cannot tell the master how the certificates loaded");
            }
        });
    }

    /// A listener accepting from a socket of this worker's own (once it is ready, when the
    /// master waits for that).
    fn own_source(&self, listener: OwnListener, wait_ready: bool) -> Source {
        Source::Own {
            listener: Some(listener),
            draining: self.draining.subscribe(),
            ready: wait_ready.then(|| self.ready.subscribe()),
            errors: AcceptErrors::new(),
        }
    }

    fn reply(&self, seq: u64, reply: Received) {
        let waiting = lock(&self.replies)
            .as_mut()
            .and_then(|replies| replies.remove(&seq));
        match waiting {
            Some(waiting) => {
                let _ = waiting.send(reply);
            }
            None => tracing::warn!(seq, "a reply from the master that nobody waits for"),
        }
    }

    /// Takes the connections of one handoff frame, the `n`th with the `n`th descriptor. The
    /// channel hands on a frame with fewer descriptors than it announced only when this process
    /// ran out of numbers, and then the kernel delivered the first ones: the connections past
    /// them have none, and are refused.
    async fn take_handoffs(
        &self,
        key: &ListenKey,
        conns: impl IntoIterator<Item = Handoff>,
        fds: Vec<OwnedFd>,
    ) {
        let mut fds = fds.into_iter();
        for conn in conns {
            if let Err(error) = self
                .take_handoff(conn.seq, key, conn.peer, fds.next())
                .await
            {
                tracing::debug!(%error, "cannot acknowledge a connection");
            }
        }
    }

    /// Answers a handoff, then hands the connection to its listener: the answer is recorded
    /// (in the acknowledgement ring, `crate::handoff_acks`) or on its way to the master
    /// before anything reads from the connection, so a connection the master never heard was
    /// taken has not been read from. A refusal, always a frame, tells the master to give it to
    /// another worker.
    async fn take_handoff(
        &self,
        seq: u64,
        key: &ListenKey,
        peer: Option<SocketAddr>,
        fd: Option<OwnedFd>,
    ) -> Result<(), IpcError> {
        let refuse = |draining| Message::Accepted {
            seq,
            ok: false,
            draining,
        };
        let Some(fd) = fd else {
            tracing::debug!("a connection handoff without its descriptor; refused");
            return self.send(&refuse(false)).await;
        };
        let Some(route) = lock(&self.routes).get(key).cloned() else {
            // Draining, or never listened on this key.
            return self.send(&refuse(true)).await;
        };
        let slot = match route.to.try_reserve_owned() {
            Ok(slot) => slot,
            Err(mpsc::error::TrySendError::Full(_)) => return self.send(&refuse(false)).await,
            // The listener was dropped: nobody here takes connections for this key any more.
            Err(mpsc::error::TrySendError::Closed(_)) => return self.send(&refuse(true)).await,
        };
        let stream = match Connection::from_handoff(fd, route.unix) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot use a handed-over connection; refused");
                return self.send(&refuse(false)).await;
            }
        };
        let acknowledged = match &self.acks {
            Some(acks) => {
                acks.record_taken(seq);
                Ok(())
            }
            None => {
                let taken = Message::Accepted {
                    seq,
                    ok: true,
                    draining: false,
                };
                self.send(&taken).await
            }
        };
        let peer = peer
            .or_else(|| stream.as_tcp()?.peer_addr().ok())
            .unwrap_or(UNIX_PEER);
        slot.send((stream, peer));
        acknowledged
    }

    fn start_draining(&self) {
        let mut routes = lock(&self.routes);
        routes.clear();
        self.draining.send_replace(true);
    }
}

/// Where the connections handed over for one listen key go, and whether they are Unix
/// sockets (the listener's kind, so a handoff costs no system call to find out).
#[derive(Debug, Clone)]
struct Route {
    to: mpsc::Sender<Delivered>,
    unix: bool,
}

/// One credit for the master's inbox, taken and not yet spent: dropped, it is given back.
#[derive(Debug)]
pub(crate) struct Credit<'a>(tokio::sync::SemaphorePermit<'a>);

impl Credit<'_> {
    /// The message or request it was for is queued: the master gives the credit back once it
    /// has taken it out of its inbox.
    pub(crate) fn spend(self) {
        self.0.forget();
    }
}

/// The inbox credit a worker starts with.
fn window() -> usize {
    usize::try_from(INBOX_WINDOW).unwrap_or(usize::MAX)
}
