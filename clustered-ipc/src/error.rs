//! The one error type of the wire.

use std::io;

/// What can go wrong on an IPC channel.
///
/// Every variant except [`WireError::Io`] and [`WireError::Closed`] means the peer broke the
/// protocol: the channel that saw it is closed and must not be used again, while every other
/// channel carries on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The socket itself failed.
    #[error("IPC socket error: {0}")]
    Io(#[from] io::Error),
    /// The channel is closed (the peer went away, or this side closed it after an error).
    #[error("IPC channel is closed")]
    Closed,
    /// A frame is larger than the channel's limit (on either side).
    #[error("IPC frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Size of the offending frame payload in bytes.
        len: usize,
        /// The channel's limit in bytes.
        max: usize,
    },
    /// A frame that is not a JSON object of the protocol's shape.
    #[error("malformed IPC frame: {reason}")]
    MalformedFrame {
        /// What the parser said.
        reason: String,
    },
    /// A well-formed frame whose `kind` this side does not know (often a version mismatch).
    #[error("unknown IPC message kind `{kind}` (is the peer a different version?)")]
    UnknownKind {
        /// The kind the peer sent.
        kind: String,
    },
    /// A frame of a known kind whose fields are wrong.
    #[error("invalid IPC message `{kind}`: {reason}")]
    InvalidMessage {
        /// The message kind.
        kind: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A frame announced more descriptors than arrived with it.
    #[error("IPC frame announced {expected} file descriptors but only {received} arrived")]
    MissingFds {
        /// Descriptors the frame announced.
        expected: usize,
        /// Descriptors actually queued.
        received: usize,
    },
    /// Descriptors arrived that no frame claims.
    #[error("{count} file descriptors arrived that no IPC frame claims")]
    UnexpectedFds {
        /// How many were queued unclaimed (they have been closed).
        count: usize,
    },
    /// More descriptors than one frame may carry.
    #[error("an IPC frame may carry at most {max} file descriptors, got {count}")]
    TooManyFds {
        /// Descriptors the caller tried to attach.
        count: usize,
        /// The limit (the kernel's `SCM_MAX_FD`).
        max: usize,
    },
    /// The peer closed the socket in the middle of a frame.
    #[error("IPC peer closed the socket in the middle of a frame ({buffered} bytes buffered)")]
    TruncatedFrame {
        /// Bytes of the incomplete frame that had arrived.
        buffered: usize,
    },
}

impl WireError {
    /// Whether this error means the peer broke the protocol (as opposed to the socket closing
    /// or failing).
    pub fn is_protocol_violation(&self) -> bool {
        !matches!(self, WireError::Io(_) | WireError::Closed)
    }
}
