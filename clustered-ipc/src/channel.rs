//! [`Channel`]: typed messages with file descriptors over one Unix socket.
//!
//! A channel splits into a cloneable [`Sender`] and one [`Receiver`]. Senders feed one writer
//! task; control frames go before user messages (two lanes); a small control frame with
//! nothing queued before it (and nothing half-written) is written by its sender at once, in
//! one `sendmsg` (no hop to the writer task); every `sendmsg` is made with the socket held, so
//! frames never interleave; a burst of queued frames goes out in one `sendmsg`,
//! ending at the first frame that carries descriptors (so each
//! `sendmsg` carries the descriptors of one frame at most, which lets the receiver tell whose
//! descriptors the kernel dropped when it runs out: see `fd_groups`). The receiver queues
//! descriptors as they arrive and hands each frame its own once the frame is complete.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), clustered_ipc::WireError> {
//! use clustered_ipc::{Channel, Message};
//!
//! let (left, right) = Channel::pair()?;
//! let (to_right, _) = left.split();
//! let (_, mut from_left) = right.split();
//!
//! let file = std::fs::File::open("/dev/null")?;
//! to_right.send_with_fds(&Message::Disconnect, vec![file.into()]).await?;
//! let received = from_left.recv().await?.expect("a frame");
//! assert_eq!(received.message, Message::Disconnect);
//! assert_eq!(received.fds.len(), 1);
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::Decoder;

use crate::fd_groups::{self, FdGroup};
use crate::socket::{FdSocket, MAX_FDS_PER_SEND};
use crate::writer::{Backlog, Outgoing, SendFd, WriteNow, WriteSide, write_loop, write_now};
use crate::{Frame, FrameCodec, Message, WireError};

/// Frames waiting for the writer task, per channel and lane. Senders wait when it is full.
const SEND_QUEUE: usize = 1024;
/// Bytes of user messages waiting for the writer, per channel, at most: past it their senders
/// wait (or hear [`TrySendError::Full`]), so a peer that reads slowly holds bounded memory.
const DATA_BYTES: usize = 8 * 1024 * 1024;
/// Bytes asked of the kernel per `recvmsg` at first: the hot path's frames are tens of bytes,
/// and a process holds one read buffer per channel (the master one per worker).
const FIRST_READ_CHUNK: usize = 4 * 1024;
/// Bytes asked of the kernel per `recvmsg` at most: a read that fills the buffer doubles it up
/// to this, so large messages come in large reads.
const MAX_READ_CHUNK: usize = 64 * 1024;
/// Descriptors that may wait for their frame before the peer is considered broken.
const MAX_QUEUED_FDS: usize = 4 * MAX_FDS_PER_SEND;

/// One end of an IPC socket, before it is split into sender and receiver.
#[derive(Debug)]
pub struct Channel {
    socket: FdSocket,
    codec: FrameCodec,
}

impl Channel {
    /// A connected pair of channels (a `socketpair`, close-on-exec).
    /// Must be called inside a tokio runtime.
    pub fn pair() -> Result<(Channel, Channel), WireError> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((Self::from_std(a)?, Self::from_std(b)?))
    }

    /// Wraps a connected std socket (for example one inherited from the parent process).
    /// Must be called inside a tokio runtime.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> Result<Channel, WireError> {
        Ok(Self {
            socket: FdSocket::new(stream)?,
            codec: FrameCodec::new(),
        })
    }

    /// Sets the largest frame payload, in bytes, for both directions.
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.codec = FrameCodec::with_max_frame_len(max_frame_len);
        self
    }

    /// The underlying socket's descriptor (for example to map it into a child process).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Splits into a [`Sender`] and a [`Receiver`], starting the writer task.
    /// Must be called inside a tokio runtime.
    pub fn split(self) -> (Sender, Receiver) {
        let socket = Arc::new(self.socket);
        let (control, control_queue) = mpsc::channel(SEND_QUEUE);
        let (data, data_queue) = mpsc::channel(SEND_QUEUE);
        let side = Arc::new(WriteSide {
            socket: Arc::clone(&socket),
            backlog: Backlog::default(),
        });
        tokio::spawn(write_loop(Arc::clone(&side), control_queue, data_queue));
        let sender = Sender {
            side,
            control,
            data,
            data_budget: Arc::new(Semaphore::new(DATA_BYTES)),
            codec: self.codec,
        };
        let receiver = Receiver {
            socket,
            codec: self.codec,
            buffer: BytesMut::new(),
            chunk: vec![0; FIRST_READ_CHUNK],
            fds: VecDeque::new(),
            finished: false,
        };
        (sender, receiver)
    }
}

/// The sending half of a [`Channel`]. Cheap to clone; every clone feeds the same writer task.
///
/// Frames go in one of two lanes, by [`Message::is_control`]: the writer takes control frames
/// first, so they never wait behind user messages; each lane keeps its order. A small control
/// frame that finds both lanes empty and nothing in the writer's hands is written at once, by
/// the sender, in the order it was sent.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The socket, and the frames queued in either lane or in the writer's hands.
    side: Arc<WriteSide>,
    control: mpsc::Sender<Outgoing>,
    data: mpsc::Sender<Outgoing>,
    data_budget: Arc<Semaphore>,
    codec: FrameCodec,
}

impl Sender {
    /// Sends a message, waiting while the send queue is full.
    pub async fn send(&self, message: &Message) -> Result<(), WireError> {
        self.send_with_fds(message, Vec::new()).await
    }

    /// Sends a message with descriptors attached; they are closed here once sent.
    pub async fn send_with_fds(
        &self,
        message: &Message,
        fds: Vec<OwnedFd>,
    ) -> Result<(), WireError> {
        let outgoing = self.encode(message, fds.into_iter().map(SendFd::Owned).collect())?;
        let Some(mut outgoing) = self.write_now(message, outgoing) else {
            return Ok(());
        };
        if !message.is_control() {
            let share = budget_share(&outgoing);
            let budget = Arc::clone(&self.data_budget)
                .acquire_many_owned(share)
                .await;
            outgoing.budget = Some(budget.map_err(|_| WireError::Closed)?);
        }
        let place = self
            .lane(message)
            .reserve()
            .await
            .map_err(|_| WireError::Closed)?;
        self.side.backlog.add();
        place.send(outgoing);
        Ok(())
    }

    /// Sends without waiting: [`TrySendError::Full`] when the send queue is full,
    /// [`TrySendError::Ipc`] when the channel is closed or the frame cannot be encoded.
    pub fn try_send_with_fds(
        &self,
        message: &Message,
        fds: Vec<OwnedFd>,
    ) -> Result<(), TrySendError> {
        self.try_queue(message, fds.into_iter().map(SendFd::Owned).collect())
    }

    /// [`Sender::try_send_with_fds`] with descriptors the caller keeps: they stay open for
    /// the caller (no copy is made) and the channel lets go of them once they are sent.
    pub fn try_send_with_shared_fds(
        &self,
        message: &Message,
        fds: impl IntoIterator<Item = Arc<OwnedFd>>,
    ) -> Result<(), TrySendError> {
        self.try_queue(message, fds.into_iter().map(SendFd::Shared).collect())
    }

    fn try_queue(&self, message: &Message, fds: Vec<SendFd>) -> Result<(), TrySendError> {
        let outgoing = self.encode(message, fds).map_err(TrySendError::Ipc)?;
        let Some(mut outgoing) = self.write_now(message, outgoing) else {
            return Ok(());
        };
        if !message.is_control() {
            let share = budget_share(&outgoing);
            let budget = Arc::clone(&self.data_budget).try_acquire_many_owned(share);
            outgoing.budget = Some(budget.map_err(|_| TrySendError::Full)?);
        }
        let place = self
            .lane(message)
            .try_reserve()
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(()) => TrySendError::Full,
                mpsc::error::TrySendError::Closed(()) => TrySendError::Ipc(WireError::Closed),
            })?;
        self.side.backlog.add();
        place.send(outgoing);
        Ok(())
    }

    /// Writes a control frame at once when nothing is queued before it (see
    /// `writer::write_now`); the frame back when it is for the writer task.
    fn write_now(&self, message: &Message, outgoing: Outgoing) -> Option<Outgoing> {
        if !message.is_control() {
            return Some(outgoing);
        }
        match write_now(&self.side, outgoing) {
            WriteNow::Written => None,
            WriteNow::Queue(outgoing) => Some(outgoing),
        }
    }

    /// Sends without waiting, no descriptors; see [`Sender::try_send_with_fds`].
    pub fn try_send(&self, message: &Message) -> Result<(), TrySendError> {
        self.try_send_with_fds(message, Vec::new())
    }

    /// Whether the writer has stopped (the socket failed or every receiver is gone).
    pub fn is_closed(&self) -> bool {
        self.control.is_closed()
    }

    fn lane(&self, message: &Message) -> &mpsc::Sender<Outgoing> {
        match message.is_control() {
            true => &self.control,
            false => &self.data,
        }
    }

    fn encode(&self, message: &Message, fds: Vec<SendFd>) -> Result<Outgoing, WireError> {
        if fds.len() > MAX_FDS_PER_SEND {
            return Err(WireError::TooManyFds {
                count: fds.len(),
                max: MAX_FDS_PER_SEND,
            });
        }
        // Room for a control frame at once (a handoff is about 40 bytes).
        let mut bytes = BytesMut::with_capacity(128);
        self.codec.encode_message(message, fds.len(), &mut bytes)?;
        Ok(Outgoing {
            bytes: bytes.freeze(),
            fds,
            budget: None,
        })
    }
}

/// A frame's share of [`DATA_BYTES`] (a frame larger than all of it takes all of it).
fn budget_share(outgoing: &Outgoing) -> u32 {
    let share = outgoing.bytes.len().min(DATA_BYTES);
    u32::try_from(share).unwrap_or(u32::MAX)
}

/// Why [`Sender::try_send_with_fds`] did not send.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError {
    /// The send queue is full; try again after the writer catches up.
    #[error("IPC send queue is full")]
    Full,
    /// The message cannot be sent (closed channel, oversize frame, ...).
    #[error(transparent)]
    Ipc(#[from] WireError),
}

/// A message received with the descriptors that rode with it.
#[derive(Debug)]
pub struct Received {
    /// The protocol message.
    pub message: Message,
    /// The descriptors its frame announced, in the order they were sent (close-on-exec).
    /// Fewer when this process ran out of descriptor numbers as they arrived: the kernel
    /// dropped the rest (`MSG_CTRUNC`), and the receiver decides what that frame is worth.
    pub fds: Vec<OwnedFd>,
}

/// The receiving half of a [`Channel`].
#[derive(Debug)]
pub struct Receiver {
    socket: Arc<FdSocket>,
    codec: FrameCodec,
    buffer: BytesMut,
    /// What one `recvmsg` reads into (its length is what is asked for).
    chunk: Vec<u8>,
    fds: VecDeque<FdGroup>,
    finished: bool,
}

impl Receiver {
    /// The next message: `Ok(None)` at a clean end of stream (the peer closed between frames).
    ///
    /// A protocol violation or socket error is returned once and closes the channel: the socket
    /// is shut down, queued descriptors are closed, and later calls return `Ok(None)`.
    ///
    /// Cancel-safe: dropping the future loses no data.
    pub async fn recv(&mut self) -> Result<Option<Received>, WireError> {
        if self.finished {
            return Ok(None);
        }
        match self.next_frame().await {
            Ok(Some(received)) => Ok(Some(received)),
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(error) => {
                self.finished = true;
                self.fds.clear();
                self.buffer.clear();
                self.socket.shutdown();
                Err(error)
            }
        }
    }

    async fn next_frame(&mut self) -> Result<Option<Received>, WireError> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer)? {
                return self.claim_fds(frame).map(Some);
            }
            let len = self.socket.recv(&mut self.chunk, &mut self.fds).await?;
            let queued = fd_groups::queued(&self.fds);
            if queued > MAX_QUEUED_FDS || self.fds.len() > MAX_QUEUED_FDS {
                return Err(WireError::UnexpectedFds { count: queued });
            }
            if len == 0 {
                return match (self.buffer.len(), queued) {
                    (0, 0) => Ok(None),
                    (0, count) => Err(WireError::UnexpectedFds { count }),
                    (buffered, _) => Err(WireError::TruncatedFrame { buffered }),
                };
            }
            self.buffer.extend_from_slice(&self.chunk[..len]);
            if len == self.chunk.len() && len < MAX_READ_CHUNK {
                self.chunk
                    .resize(len.saturating_mul(2).min(MAX_READ_CHUNK), 0);
            }
        }
    }

    fn claim_fds(&mut self, frame: Frame) -> Result<Received, WireError> {
        Ok(Received {
            fds: fd_groups::claim(&mut self.fds, frame.fds)?,
            message: frame.message,
        })
    }
}
