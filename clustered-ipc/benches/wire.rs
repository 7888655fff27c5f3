//! Micro-benchmarks of the wire (`cargo bench -p clustered-ipc --bench wire`):
//!
//! - encoding and decoding one `newConn` frame;
//! - one connection handoff round trip between two processes: `newConn` with a descriptor
//!   out, `accepted` back;
//! - handoffs per second through one channel, pipelined 64 at a time as the master does: one
//!   `newConn` frame per descriptor, and `newConns` frames of 8 (one `sendmsg` each), as the
//!   master sends a burst.
//!
//! The peer is this same binary, started again with `WIRE_BENCH_PEER=<socket path>`.

use std::hint::black_box;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clustered_ipc::{Channel, Frame, FrameCodec, Handoff, ListenKey, Message, Receiver, Sender};
use criterion::{Criterion, Throughput, criterion_group};
use tokio::runtime::Runtime;
use tokio_util::codec::{Decoder, Encoder};

const PEER_ENV: &str = "WIRE_BENCH_PEER";
const WINDOW: u64 = 64;
/// Connections per `newConns` frame in the batched run.
const BATCH: u64 = 8;

/// The frame that hands over connections `first..first + size`: `newConn` for one,
/// `newConns` for more.
fn handoff_frame(first: u64, size: u64) -> Message {
    let key = ListenKey::from("127.0.0.1:3000");
    let peer = Some("127.0.0.1:51234".parse().unwrap());
    match size {
        1 => Message::NewConn {
            seq: first,
            key,
            peer,
        },
        _ => Message::NewConns {
            key,
            conns: (first..first + size)
                .map(|seq| Handoff { seq, peer })
                .collect(),
        },
    }
}

fn codec(c: &mut Criterion) {
    let mut codec = FrameCodec::new();
    let frame = Frame {
        message: handoff_frame(42, 1),
        fds: 1,
    };
    c.bench_function("encode newConn", |b| {
        let mut buffer = BytesMut::with_capacity(256);
        b.iter(|| {
            buffer.clear();
            codec.encode(black_box(&frame), &mut buffer).unwrap();
        })
    });
    let mut encoded = BytesMut::new();
    codec.encode(&frame, &mut encoded).unwrap();
    c.bench_function("decode newConn", |b| {
        b.iter(|| {
            let mut wire = encoded.clone();
            black_box(codec.decode(&mut wire).unwrap().unwrap());
        })
    });
}

/// A peer process acknowledging every handoff, and our end of the channel to it.
struct Peer {
    child: std::process::Child,
    sender: Sender,
    receiver: Receiver,
    _dir: std::path::PathBuf,
}

impl Peer {
    fn start(runtime: &Runtime) -> Peer {
        let dir = std::env::temp_dir().join(format!("wire-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .env(PEER_ENV, &path)
            .spawn()
            .unwrap();
        let (stream, _) = listener.accept().unwrap();
        let (sender, receiver) =
            runtime.block_on(async { Channel::from_std(stream).unwrap().split() });
        Peer {
            child,
            sender,
            receiver,
            _dir: dir,
        }
    }

    /// Hands over `count` descriptors with at most `window` unacknowledged, `batch` per frame
    /// (`newConn` for one, `newConns` for more).
    async fn handoffs(&mut self, count: u64, window: u64, batch: u64) {
        let mut sent = 0;
        let mut acknowledged = 0;
        while acknowledged < count {
            while sent < count && sent - acknowledged < window {
                let size = batch.min(count - sent).min(window - (sent - acknowledged));
                let fds: Vec<OwnedFd> = (0..size)
                    .map(|_| std::fs::File::open("/dev/null").unwrap().into())
                    .collect();
                let message = handoff_frame(sent, size);
                self.sender.send_with_fds(&message, fds).await.unwrap();
                sent += size;
            }
            match self.receiver.recv().await.unwrap() {
                Some(received) if matches!(received.message, Message::Accepted { .. }) => {
                    acknowledged += 1
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn handoff(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut peer = Peer::start(&runtime);
    c.bench_function("handoff round trip (newConn + fd, accepted)", |b| {
        b.iter_custom(|iterations| {
            let started = Instant::now();
            runtime.block_on(peer.handoffs(iterations, 1, 1));
            started.elapsed()
        })
    });
    let mut group = c.benchmark_group("handoffs, pipelined 64 at a time");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, batch) in [("per handoff", 1), ("per handoff, newConns of 8", BATCH)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                runtime.block_on(peer.handoffs(iterations, WINDOW, batch));
                started.elapsed()
            })
        });
    }
    group.finish();
}

/// The peer: acknowledges every handoff (closing the descriptor) until the channel closes.
fn run_peer(path: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = std::os::unix::net::UnixStream::connect(path).unwrap();
        let (sender, mut receiver) = Channel::from_std(stream).unwrap().split();
        while let Ok(Some(received)) = receiver.recv().await {
            drop(received.fds);
            let seqs = match received.message {
                Message::NewConn { seq, .. } => vec![seq],
                Message::NewConns { conns, .. } => conns.iter().map(|conn| conn.seq).collect(),
                _ => continue,
            };
            for seq in seqs {
                let taken = Message::Accepted {
                    seq,
                    ok: true,
                    draining: false,
                };
                if sender.send(&taken).await.is_err() {
                    return;
                }
            }
        }
    });
}

// criterion_group! makes an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, codec, handoff);
}
use group::benches;

fn main() {
    if let Ok(path) = std::env::var(PEER_ENV) {
        return run_peer(&path);
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
