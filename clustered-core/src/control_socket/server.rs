//! The master's end of the control socket: binding it safely, and answering requests with what
//! [`ClusterControl`] knows.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{Encoder, Framed, LengthDelimitedCodec};

use super::protocol::{
    CONTROL_PROTOCOL_VERSION, ControlCommand, ControlReply, ControlRequest, MAX_REPLY, MAX_REQUEST,
    WorkerRow,
};
use crate::Error;
use crate::master::command::Scale;
use crate::master::control::ClusterControl;
use crate::master::metrics_view::exposition;
use crate::proc_stats::{CPU_WINDOW, cpu_percent, cpu_ticks, rss_bytes};

/// The master's control socket, served by a task of its own; dropping this stops serving and
/// removes the file (the master keeps it until it returns), unless it was handed over.
#[derive(Debug)]
pub(crate) struct ControlSocket {
    /// The file to remove when dropped; none once handed over to an upgrade's new master.
    path: Option<PathBuf>,
    /// A copy of the listening socket, for an upgrade to hand over.
    listener: std::os::fd::OwnedFd,
    serving: tokio::task::JoinHandle<()>,
}

impl ControlSocket {
    /// Binds `path` (mode 0600), replacing a file left by a master that is gone and refusing
    /// one a running master answers on, and starts answering every same-user peer; serves
    /// `inherited` instead (bound at `path` by the master this one upgrades), when given.
    /// Must be called inside a tokio runtime.
    pub(crate) fn open(
        path: &Path,
        control: ClusterControl,
        inherited: Option<std::os::fd::OwnedFd>,
    ) -> Result<Self, Error> {
        let failed = |reason: String| Error::ControlSocket {
            path: path.to_owned(),
            reason,
        };
        let listener = match inherited {
            Some(fd) => StdUnixListener::from(fd),
            None => Self::bind(path).map_err(failed)?,
        };
        let copy = listener
            .as_fd()
            .try_clone_to_owned()
            .map_err(|error| failed(error.to_string()))?;
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| UnixListener::from_std(listener))
            .map_err(|error| failed(error.to_string()))?;
        tracing::info!(path = %path.display(), "control socket listening");
        Ok(Self {
            path: Some(path.to_owned()),
            listener: copy,
            serving: tokio::spawn(serve(listener, control)),
        })
    }

    /// A copy of the listening socket, for an upgrade's new master.
    pub(crate) fn handover_fd(&self) -> io::Result<std::os::fd::OwnedFd> {
        self.listener.try_clone()
    }

    /// Stops serving and leaves the file to the new master an upgrade handed it to.
    pub(crate) fn hand_over(mut self) {
        self.path = None;
    }

    fn bind(path: &Path) -> Result<StdUnixListener, String> {
        match crate::bind::replace_stale_socket(path) {
            Ok(true) => tracing::info!(path = %path.display(), "replaced a stale control socket"),
            Ok(false) => {}
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                return Err(
                    "a running master answers on it; stop that master or choose another path"
                        .into(),
                );
            }
            Err(error) => return Err(error.to_string()),
        }
        bind_private(path).map_err(|error| error.to_string())
    }
}

/// Control connections open at once, at most; the next is refused with a reply saying so.
pub(crate) const MAX_CONNECTIONS: usize = 64;

/// How long a control connection may take to send a whole request (after it connects, or
/// after its last reply) before it is closed.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers every same-user peer until the master exits (the task is dropped with it), at most
/// [`MAX_CONNECTIONS`] at once.
async fn serve(listener: UnixListener, control: ClusterControl) {
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let too_many = too_many_frame();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, most likely: try again in a moment rather than spin.
                tracing::warn!(%error, "control socket: cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(place) = Arc::clone(&open).try_acquire_owned() else {
            tracing::warn!("control socket: {MAX_CONNECTIONS} connections are open; refused one");
            tokio::spawn(refuse_at_once(stream, too_many.clone()));
            continue;
        };
        match peer_uid(&stream) {
            Some(uid) if uid == rustix::process::geteuid() => {
                let control = control.clone();
                tokio::spawn(async move {
                    answer(stream, control).await;
                    drop(place);
                });
            }
            uid => {
                tracing::warn!(?uid, "control socket: refused a peer of another user");
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(place);
                });
            }
        }
    }
}

/// The reply to a peer past [`MAX_CONNECTIONS`], as one frame (encoded once: a flood of
/// connections costs no allocation each).
fn too_many_frame() -> bytes::Bytes {
    let reply = ControlReply {
        refused: true,
        ..ControlReply::failed(format!(
            "{MAX_CONNECTIONS} control connections are open (the most at once); try again when one closes"
        ))
    };
    let json = serde_json::to_vec(&reply).unwrap_or_default();
    let mut frame = bytes::BytesMut::new();
    // The same framing as every reply's; a short frame cannot fail to encode.
    let _ = LengthDelimitedCodec::new().encode(bytes::Bytes::from(json), &mut frame);
    frame.freeze()
}

/// Tells a peer past [`MAX_CONNECTIONS`] why it is refused, without waiting for its request
/// (on a Unix socket the reply is not lost when the peer's request arrives unread), then
/// hangs up.
async fn refuse_at_once(mut stream: UnixStream, frame: bytes::Bytes) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, stream.write_all(&frame)).await;
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.serving.abort();
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
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

/// Bytes a connection's read buffer starts with: a request is a few dozen (it grows for a
/// larger one), so open connections hold little.
const READ_BUFFER: usize = 256;

fn framed(stream: UnixStream) -> Framed<UnixStream, LengthDelimitedCodec> {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_REQUEST)
        .new_codec();
    Framed::with_capacity(stream, codec, READ_BUFFER)
}

/// Sends `reply`, which may be larger than a request may; `false` if the peer is gone or does
/// not take it within [`REQUEST_TIMEOUT`].
async fn send_reply(
    framed: &mut Framed<UnixStream, LengthDelimitedCodec>,
    reply: &ControlReply,
) -> bool {
    let Ok(bytes) = serde_json::to_vec(reply) else {
        return false;
    };
    framed.codec_mut().set_max_frame_length(MAX_REPLY);
    let sending = framed.send(bytes::Bytes::from(bytes));
    let sent = matches!(
        tokio::time::timeout(REQUEST_TIMEOUT, sending).await,
        Ok(Ok(()))
    );
    framed.codec_mut().set_max_frame_length(MAX_REQUEST);
    sent
}

/// Tells a peer of another user that it is refused (after reading its request, so that closing
/// does not reset the connection under its answer), then hangs up.
async fn refuse(stream: UnixStream) {
    let mut framed = framed(stream);
    let read = tokio::time::timeout(Duration::from_secs(1), framed.next()).await;
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

/// Answers one peer's requests, one reply each, until it hangs up or sends no whole request
/// within [`REQUEST_TIMEOUT`].
async fn answer(stream: UnixStream, control: ClusterControl) {
    let mut framed = framed(stream);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(REQUEST_TIMEOUT, framed.next()).await {
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
            Ok(request) => tokio::select! {
                reply = run(request.command, &control) => reply,
                // The peer hung up (or spoke out of turn) while the master was busy with its
                // command: nobody waits for the answer, and the connection's place is freed.
                _ = framed.next() => return,
            },
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
        // The master's answers carry what they did (`Done`: counts, replacements).
        ControlCommand::Reload => control.reload().await.into(),
        ControlCommand::Scale { to, by } => match (to, by) {
            (Some(to), None) => control.scale(Scale::To(to)).await.into(),
            (None, Some(by)) => control.scale(Scale::By(by)).await.into(),
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
        ControlCommand::Kill { id } => control.restart(id).await.into(),
        ControlCommand::Metrics => ControlReply::metrics(exposition(control)),
        ControlCommand::Stop => control.shutdown().await.into(),
        ControlCommand::Upgrade => control.upgrade().await.into(),
        ControlCommand::TlsReload => control.reload_certificates().await.into(),
    }
}

/// Every live worker (of slot `id` only, when given) as they all were at one instant, with
/// their CPU use sampled over the [`CPU_WINDOW`] that follows (a worker that exits meanwhile
/// keeps its row, with the CPU it used until then).
async fn rows(control: &ClusterControl, id: Option<usize>) -> Vec<WorkerRow> {
    let mut workers = control.workers();
    workers.retain(|worker| id.is_none_or(|id| worker.id() == id));
    let mut snapshot: Vec<(WorkerRow, Option<u64>)> = workers
        .iter()
        .map(|worker| {
            let load = worker.load();
            let history = control.registry().slot(worker.id());
            let row = WorkerRow {
                id: worker.id(),
                pid: worker.pid(),
                status: worker.status().name().to_owned(),
                uptime_secs: worker.uptime().as_secs(),
                restarts: history.restarts,
                connections: load.connections,
                inflight: load.in_flight,
                requests: load.served,
                cpu_percent: 0.0,
                rss_bytes: rss_bytes(worker.pid()),
                last_exit: history.last_exit.map(|reason| reason.to_string()),
            };
            (row, cpu_ticks(worker.pid()))
        })
        .collect();
    tokio::time::sleep(CPU_WINDOW).await;
    for (row, before) in &mut snapshot {
        let used = cpu_ticks(row.pid)
            .zip(*before)
            .map_or(0, |(after, before)| after.saturating_sub(before));
        row.cpu_percent = cpu_percent(used);
    }
    snapshot.into_iter().map(|(row, _)| row).collect()
}
