//! Framing: a big-endian `u32` payload length, then a JSON object, or for the messages of
//! the connection hot path (`newConn`, `newConns`, `accepted`) a fixed binary layout (see
//! `compact.rs` in this crate: its first byte is never `{`).
//!
//! [`FrameCodec`] is a [`tokio_util::codec`] codec, so it can also frame any byte stream, but
//! file descriptors need [`crate::Channel`], which reads with `recvmsg`.
//!
//! ```
//! use bytes::BytesMut;
//! use clustered_ipc::{Frame, FrameCodec, Message};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = FrameCodec::new();
//! let mut wire = BytesMut::new();
//! codec.encode(&Frame { message: Message::Disconnect, fds: 0 }, &mut wire).unwrap();
//! assert_eq!(&wire[4..], br#"{"kind":"disconnect"}"#);
//!
//! let frame = codec.decode(&mut wire).unwrap().unwrap();
//! assert_eq!(frame.message, Message::Disconnect);
//! ```

use bytes::{Buf, BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

use crate::{Message, WireError, compact};

/// Default largest frame payload: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

const HEADER_LEN: usize = 4;

/// One decoded frame: the message, and how many descriptors ride with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// The protocol message.
    #[serde(flatten)]
    pub message: Message,
    /// How many file descriptors belong to this frame.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fds: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Length-delimited JSON frames with a size limit enforced both ways.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl FrameCodec {
    /// A codec with the default limit ([`DEFAULT_MAX_FRAME_LEN`]).
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A codec refusing payloads larger than `max_frame_len` bytes (at most `u32::MAX`).
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self {
            max_frame_len: max_frame_len.min(u32::MAX as usize),
        }
    }

    /// The largest payload this codec accepts, in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.max_frame_len {
            return Err(WireError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        if src.len() < HEADER_LEN + len {
            src.reserve(HEADER_LEN + len - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(len);
        match compact::is_compact(&payload) {
            true => compact::decode(&payload).map(Some),
            false => parse_frame(&payload).map(Some),
        }
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        self.encode_message(&frame.message, frame.fds, dst)
    }
}

/// A [`Frame`] that borrows its message, to encode without copying it.
#[derive(Serialize)]
struct FrameRef<'a> {
    #[serde(flatten)]
    message: &'a Message,
    #[serde(skip_serializing_if = "is_zero")]
    fds: usize,
}

impl FrameCodec {
    /// Encodes `message` with `fds` descriptors as one frame at the end of `dst`; on error
    /// `dst` is left as it was.
    pub(crate) fn encode_message(
        &self,
        message: &Message,
        fds: usize,
        dst: &mut BytesMut,
    ) -> Result<(), WireError> {
        let start = dst.len();
        dst.put_u32(0);
        let written = match compact::encode(message, fds, dst) {
            true => Ok(()),
            false => serde_json::to_writer(dst.writer(), &FrameRef { message, fds }),
        };
        let len = dst.len() - start - HEADER_LEN;
        if let Err(error) = written {
            dst.truncate(start);
            return Err(WireError::InvalidMessage {
                kind: "outgoing".into(),
                reason: error.to_string(),
            });
        }
        if len > self.max_frame_len {
            dst.truncate(start);
            return Err(WireError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        dst[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }
}

/// Parses one payload, telling a malformed frame, an unknown kind and a bad message apart.
fn parse_frame(payload: &[u8]) -> Result<Frame, WireError> {
    let error = match serde_json::from_slice::<Frame>(payload) {
        Ok(frame) => return Ok(frame),
        Err(error) => error,
    };
    if error.is_syntax() || error.is_eof() {
        return Err(WireError::MalformedFrame {
            reason: error.to_string(),
        });
    }
    #[derive(Deserialize)]
    struct KindOnly {
        kind: String,
    }
    match serde_json::from_slice::<KindOnly>(payload) {
        Ok(KindOnly { kind }) if !Message::KINDS.contains(&kind.as_str()) => {
            Err(WireError::UnknownKind { kind })
        }
        Ok(KindOnly { kind }) => Err(WireError::InvalidMessage {
            kind,
            reason: error.to_string(),
        }),
        Err(_) => Err(WireError::MalformedFrame {
            reason: format!("not a message object with a string `kind`: {error}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_u32(payload.len() as u32);
        buf.put_slice(payload);
        buf
    }

    #[test]
    fn round_trips_a_frame_with_fds() {
        let frame = Frame {
            message: Message::Accepted {
                seq: 7,
                ok: true,
                draining: false,
            },
            fds: 2,
        };
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        codec.encode(&frame, &mut buf).unwrap();
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(frame));
        assert!(buf.is_empty());
    }

    #[test]
    fn waits_for_the_whole_frame() {
        let mut codec = FrameCodec::new();
        let mut full = BytesMut::new();
        codec
            .encode(
                &Frame {
                    message: Message::Disconnect,
                    fds: 0,
                },
                &mut full,
            )
            .unwrap();
        let mut partial = BytesMut::new();
        for byte in &full[..full.len() - 1] {
            partial.put_u8(*byte);
            assert_eq!(codec.decode(&mut partial).unwrap(), None);
        }
        partial.put_u8(full[full.len() - 1]);
        assert!(codec.decode(&mut partial).unwrap().is_some());
    }

    #[test]
    fn tells_the_three_bad_inputs_apart() {
        let mut codec = FrameCodec::with_max_frame_len(64);
        let malformed = codec.decode(&mut wire(b"{not json")).unwrap_err();
        assert!(
            matches!(malformed, WireError::MalformedFrame { .. }),
            "{malformed}"
        );
        let unknown = codec
            .decode(&mut wire(br#"{"kind":"teleport"}"#))
            .unwrap_err();
        assert!(matches!(unknown, WireError::UnknownKind { ref kind } if kind == "teleport"));
        let invalid = codec
            .decode(&mut wire(br#"{"kind":"accepted","seq":"x"}"#))
            .unwrap_err();
        assert!(
            matches!(invalid, WireError::InvalidMessage { ref kind, .. } if kind == "accepted")
        );
        let oversize = codec.decode(&mut wire(&[b' '; 65])).unwrap_err();
        assert!(matches!(
            oversize,
            WireError::FrameTooLarge { len: 65, max: 64 }
        ));
    }

    #[test]
    fn refuses_to_encode_an_oversize_frame_and_leaves_the_buffer_as_it_was() {
        let mut codec = FrameCodec::with_max_frame_len(16);
        let mut buf = BytesMut::from(&b"kept"[..]);
        let frame = Frame {
            message: Message::QueryServer {
                seq: 1,
                address: "x".repeat(100),
            },
            fds: 0,
        };
        let error = codec.encode(&frame, &mut buf).unwrap_err();
        assert!(matches!(error, WireError::FrameTooLarge { max: 16, .. }));
        assert_eq!(&buf[..], b"kept");
    }
}
