//! The cluster's wire: length-delimited frames (JSON, and binary on the connection hot path) with file descriptors attached, over a Unix
//! socketpair between the master and each worker.
//!
//! - [`protocol`]: the [`Message`]s of the cluster protocol.
//! - [`codec`]: framing ([`FrameCodec`]): a `u32` length, then a JSON object (or, for
//!   `newConn`, `newConns` and `accepted`, a fixed binary layout); 16 MiB limit by default, enforced on both
//!   sides with [`WireError::FrameTooLarge`].
//! - [`channel`]: a [`Channel`] splits into a cloneable [`Sender`] and a [`Receiver`]; a single
//!   writer task per socket keeps frames whole.
//!
//! # How descriptors travel
//!
//! Descriptors are passed with `SCM_RIGHTS` through `rustix`'s `sendmsg`/`recvmsg`, driven by
//! tokio readiness (`AsyncFd::async_io`, the socket registered for reading only): a call that
//! would block clears readiness and waits for a wake-up from the reactor. We do **not** use the `passfd` crate's async functions: they
//! return `Pending` without registering a wake-up, so a channel under load hangs forever
//! (reproduced). Every read is a `recvmsg` with room for 253 descriptors (`SCM_MAX_FD`) and
//! `MSG_CMSG_CLOEXEC`, so no descriptor leaks into a child process and none is silently closed by
//! a plain `read()`. A `sendmsg` carries the descriptors of one frame at most, so when the
//! receiving process runs out of descriptor numbers (`MSG_CTRUNC`) the frame whose descriptors
//! the kernel dropped is known and handed on with fewer (the first ones: the kernel installs
//! them in order and stops at the first it has no number for); the channel goes on.
//! Received descriptors are [`std::os::fd::OwnedFd`]s: closed exactly once, when dropped.
//!
//! # Errors
//!
//! A malformed frame, an oversize frame, an unknown message kind, a frame whose descriptors did
//! not arrive and descriptors no frame claims are each a distinct [`WireError`]; the receiver that
//! saw one returns it once and closes that channel only.

// One `unsafe` block, allowed where it is: registering a socket with tokio for reading only
// (`AsyncFd::register_with_interest`, whose safe forms are deprecated).
#![deny(unsafe_code)]

pub mod channel;
pub mod codec;
mod compact;
mod error;
mod fd_groups;
mod listen_key;
pub mod protocol;
mod socket;
mod ticket_keys;
mod writer;

pub use channel::{Channel, Received, Receiver, Sender, TrySendError};
pub use codec::{DEFAULT_MAX_FRAME_LEN, Frame, FrameCodec};
pub use error::WireError;
pub use protocol::{
    CounterOp, HEARTBEAT_PERIOD, Handoff, INBOX_WINDOW, ListenAddr, ListenKey, ListenMode, Message,
    Outcome, PROTOCOL_VERSION, Peer, Route, TicketKey, TicketKeys,
};
pub use socket::MAX_FDS_PER_SEND;
