//! The master's end of the control socket: binding it safely, and answering requests with what
//! [`ClusterControl`] knows.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::protocol::{
    CONTROL_PROTOCOL_VERSION, ControlCommand, ControlReply, ControlRequest, MAX_REPLY, MAX_REQUEST,
    WorkerRow,
};
use crate::Error;
use crate::master::cluster_event::ClusterEvent;
use crate::master::command::Scale;
use crate::master::control::ClusterControl;
use crate::master::handle::WorkerStatus;
use crate::master::metrics_view::exposition;
use crate::proc_stats::{CPU_WINDOW, cpu_percent, cpu_ticks, rss_bytes};

/// The master's control socket, served by a task of its own; dropping this removes the file
/// (the master keeps it until it returns).
#[derive(Debug)]
pub(crate) struct ControlSocket {
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` (mode 0600), replacing a file left by a master that is gone and refusing
    /// one a running master answers on, and starts answering every same-user peer. Must be
    /// called inside a tokio runtime.
    pub(crate) fn open(path: &Path, control: ClusterControl) -> Result<Self, Error> {
        let failed = |reason: String| Error::ControlSocket {
            path: path.to_owned(),
            reason,
        };
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(failed(
                    "a running master answers on it; stop that master or choose another path"
                        .into(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|error| failed(format!("cannot replace the stale socket: {error}")))?;
            tracing::info!(path = %path.display(), "replaced a stale control socket");
        }
        let listener = bind_private(path).map_err(|error| failed(error.to_string()))?;
        // The file is ours from here on: removed however this ends.
        let socket = Self {
            path: path.to_owned(),
        };
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| UnixListener::from_std(listener))
            .map_err(|error| failed(error.to_string()))?;
        tracing::info!(path = %path.display(), "control socket listening");
        tokio::spawn(serve(listener, control));
        Ok(socket)
    }
}

/// Answers every same-user peer until the master exits (the task is dropped with it).
async fn serve(listener: UnixListener, control: ClusterControl) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, most likely: try again in a moment rather than spin.
                tracing::warn!(%error, "control socket: cannot accept");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        match peer_uid(&stream) {
            Some(uid) if uid == rustix::process::geteuid() => {
                tokio::spawn(answer(stream, control.clone()));
            }
            uid => {
                tracing::warn!(?uid, "control socket: refused a peer of another user");
                tokio::spawn(refuse(stream));
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds a Unix socket at `path` that only its owner may connect to: the mode is set before it
/// listens, so no other user can connect in between.
fn bind_private(path: &Path) -> io::Result<StdUnixListener> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::bind(&socket, &SocketAddrUnix::new(path)?)?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))?;
    rustix::net::listen(&socket, 64)?;
    Ok(StdUnixListener::from(socket))
}

/// The user the peer runs as (`SO_PEERCRED`).
fn peer_uid(stream: &UnixStream) -> Option<rustix::process::Uid> {
    rustix::net::sockopt::socket_peercred(stream.as_fd())
        .ok()
        .map(|peer| peer.uid)
}

fn framed(stream: UnixStream) -> Framed<UnixStream, LengthDelimitedCodec> {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_REQUEST)
        .new_codec();
    Framed::new(stream, codec)
}

/// Sends `reply`, which may be larger than a request may; `false` if the peer is gone.
async fn send_reply(
    framed: &mut Framed<UnixStream, LengthDelimitedCodec>,
    reply: &ControlReply,
) -> bool {
    let Ok(bytes) = serde_json::to_vec(reply) else {
        return false;
    };
    framed.codec_mut().set_max_frame_length(MAX_REPLY);
    let sent = framed.send(bytes::Bytes::from(bytes)).await.is_ok();
    framed.codec_mut().set_max_frame_length(MAX_REQUEST);
    sent
}

/// Tells a peer of another user that it is refused (after reading its request, so that closing
/// does not reset the connection under its answer), then hangs up.
async fn refuse(stream: UnixStream) {
    let mut framed = framed(stream);
    let read = tokio::time::timeout(std::time::Duration::from_secs(1), framed.next()).await;
    if matches!(read, Ok(Some(Ok(_)))) {
        let reply = ControlReply::failed(format!(
            "refused: this control socket answers only its owner (uid {})",
            rustix::process::geteuid().as_raw()
        ));
        send_reply(&mut framed, &reply).await;
    }
}

/// Sends the last `lines` lines, then every new one (of slot `id` only, when given), until the
/// peer hangs up or the master stops.
async fn follow_logs(
    mut framed: Framed<UnixStream, LengthDelimitedCodec>,
    control: &ClusterControl,
    id: Option<usize>,
    lines: usize,
) {
    let mut live = control.logs().follow();
    let mut batch = control.logs().recent(id, None, lines);
    // The first reply goes out even empty: the peer knows it follows.
    let mut first_reply = true;
    loop {
        if !batch.is_empty() || std::mem::take(&mut first_reply) {
            let reply = ControlReply::lines(std::mem::take(&mut batch));
            if !send_reply(&mut framed, &reply).await {
                return;
            }
        }
        let first = tokio::select! {
            line = live.recv() => line,
            // The peer hung up (or sent something, which a follower may not).
            _ = framed.next() => return,
        };
        match first {
            Ok(line) => batch.push(line),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::debug!(skipped, "a slow log follower skipped lines");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
        while let Ok(line) = live.try_recv() {
            batch.push(line);
        }
        batch.retain(|line| id.is_none_or(|id| line.id == id));
    }
}

/// Answers one peer's requests, one reply each, until it hangs up.
async fn answer(stream: UnixStream, control: ClusterControl) {
    let mut framed = framed(stream);
    while let Some(Ok(frame)) = framed.next().await {
        let reply = match serde_json::from_slice::<ControlRequest>(&frame) {
            Ok(request) if request.version != CONTROL_PROTOCOL_VERSION => {
                ControlReply::failed(format!(
                    "protocol version {} is not this master's {CONTROL_PROTOCOL_VERSION}; use the clusterctl of the same build",
                    request.version
                ))
            }
            Ok(ControlRequest {
                command:
                    ControlCommand::Logs {
                        id,
                        lines,
                        follow: true,
                    },
                ..
            }) => return follow_logs(framed, &control, id, lines).await,
            Ok(request) => run(request.command, &control).await,
            Err(error) => ControlReply::failed(format!("not a request: {error}")),
        };
        if !send_reply(&mut framed, &reply).await {
            return;
        }
    }
}

async fn run(command: ControlCommand, control: &ClusterControl) -> ControlReply {
    match command {
        ControlCommand::Ls => ControlReply::workers(rows(control, None).await),
        ControlCommand::Reload => reload(control).await,
        ControlCommand::Scale { to, by } => match (to, by) {
            (Some(to), None) => scale(control, Scale::To(to)).await,
            (None, Some(by)) => scale(control, Scale::By(by)).await,
            _ => ControlReply::failed("scale takes one of `to` and `by`"),
        },
        ControlCommand::Logs { id, lines, .. } => {
            ControlReply::lines(control.logs().recent(id, None, lines))
        }
        ControlCommand::Show { id } => {
            let rows = rows(control, Some(id)).await;
            match rows.is_empty() {
                true => ControlReply::failed(format!("no worker {id}")),
                false => ControlReply::workers(rows),
            }
        }
        ControlCommand::Kill { id } => replace(control, id).await,
        ControlCommand::Metrics => ControlReply::metrics(exposition(control)),
        ControlCommand::Stop => {
            control.shutdown();
            ControlReply::done("stopping: the workers drain, then the master exits")
        }
    }
}

/// Every live worker (of slot `id` only, when given), with its CPU use sampled over
/// [`CPU_WINDOW`].
async fn rows(control: &ClusterControl, id: Option<usize>) -> Vec<WorkerRow> {
    let mut workers = control.workers();
    workers.retain(|worker| id.is_none_or(|id| worker.id() == id));
    let before: Vec<Option<u64>> = workers
        .iter()
        .map(|worker| cpu_ticks(worker.pid()))
        .collect();
    tokio::time::sleep(CPU_WINDOW).await;
    workers
        .iter()
        .zip(before)
        .map(|(worker, before)| {
            let used = cpu_ticks(worker.pid())
                .zip(before)
                .map_or(0, |(after, before)| after.saturating_sub(before));
            let load = worker.load();
            let history = control.registry().slot(worker.id());
            WorkerRow {
                id: worker.id(),
                pid: worker.pid(),
                status: worker.status().name().to_owned(),
                uptime_secs: worker.uptime().as_secs(),
                restarts: history.restarts,
                connections: load.connections,
                inflight: load.in_flight,
                requests: load.served,
                cpu_percent: cpu_percent(used),
                rss_bytes: rss_bytes(worker.pid()),
                last_exit: history.last_exit.map(|reason| reason.to_string()),
            }
        })
        .collect()
}

/// How long new workers (of `scale`, of `kill`) may take to listen before the answer says so.
const LISTEN_WAIT: Duration = Duration::from_secs(30);

/// Whether `condition` holds within [`LISTEN_WAIT`] (looked at every 50 ms).
async fn within_listen_wait(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + LISTEN_WAIT;
    while !condition() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Changes the worker count and answers once exactly the new count of workers listens (and the
/// removed ones are draining).
async fn scale(control: &ClusterControl, scale: Scale) -> ControlReply {
    let serving = || {
        control
            .workers()
            .iter()
            .filter(|worker| worker.status() == WorkerStatus::Listening)
            .count()
    };
    let target = scale.target(serving());
    let mut events = control.events();
    control.scale(scale);
    let accepted = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(event) = events.recv().await {
            if let ClusterEvent::Scaled { from, to } = event {
                return Some((from, to));
            }
        }
        None
    });
    let (from, to) = match accepted.await {
        Ok(Some(change)) => change,
        _ if serving() == target => return ControlReply::done(format!("{target} workers already")),
        _ => {
            return ControlReply::failed(
                "not scaled: a reload or a stop is under way (the master's log says which)",
            );
        }
    };
    if !within_listen_wait(|| serving() == to).await {
        return ControlReply::failed(format!(
            "scaled from {from} to {to} workers, but {} listen after {LISTEN_WAIT:?}",
            serving()
        ));
    }
    ControlReply::done(format!("scaled from {from} to {to} workers"))
}

/// Sends SIGTERM to the worker serving slot `id` and answers once its successor listens.
async fn replace(control: &ClusterControl, id: usize) -> ControlReply {
    let serving = |pid: Option<u32>| {
        control.workers().into_iter().find(|worker| {
            worker.id() == id
                && worker.status() == WorkerStatus::Listening
                && pid.is_none_or(|pid| worker.pid() != pid)
        })
    };
    let Some(old) = serving(None) else {
        return ControlReply::failed(format!("no worker {id} is serving"));
    };
    if let Err(error) = old.signal(rustix::process::Signal::TERM) {
        return ControlReply::failed(format!("cannot signal worker {id}: {error}"));
    }
    let mut successor = None;
    if !within_listen_wait(|| {
        successor = serving(Some(old.pid()));
        successor.is_some()
    })
    .await
    {
        return ControlReply::failed(format!(
            "worker {id} (pid {}) got SIGTERM, but no successor listens after {LISTEN_WAIT:?}",
            old.pid()
        ));
    }
    let new_pid = successor.map_or(0, |new| new.pid());
    ControlReply::done(format!(
        "worker {id} replaced: pid {} -> {new_pid}",
        old.pid()
    ))
}

/// Starts a rolling reload and answers once it has finished or failed.
async fn reload(control: &ClusterControl) -> ControlReply {
    let mut events = control.events();
    control.reload();
    let mut started = false;
    while let Some(event) = events.recv().await {
        match event {
            ClusterEvent::ReloadStarted => started = true,
            ClusterEvent::ReloadFinished if started => {
                return ControlReply::done("reloaded: every worker was replaced");
            }
            ClusterEvent::ReloadFailed { id, reason } if started => {
                return ControlReply::failed(format!(
                    "reload aborted at worker {id}: {reason}; the old workers keep serving"
                ));
            }
            ClusterEvent::ShutdownStarted => {
                return ControlReply::failed("the master is stopping; no reload");
            }
            _ => {}
        }
    }
    ControlReply::failed("the master stopped before the reload finished")
}
