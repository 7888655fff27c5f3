//! Compact payloads for the two messages of the connection hot path, `newConn` and `accepted`:
//! a fixed binary layout instead of JSON, told apart by the payload's first byte (a JSON
//! payload starts with `{`).
//!
//! ```text
//! newConn:   01 | seq: u64 | family: u8 | [ip: 4 or 16 bytes | port: u16 | (v6) flowinfo: u32, scope_id: u32] | key: UTF-8 to the end
//!            family 0: no peer address; 4: IPv4; 6: IPv6
//! accepted:  02 | seq: u64 | flags: u8 (bit 0: ok, bit 1: draining)
//! ```
//!
//! Integers are big-endian. Every field is checked on the way in: a short payload, an unknown
//! family, unknown flag bits, trailing bytes after `accepted` or a key that is not UTF-8 is an
//! [`WireError::InvalidMessage`] naming the kind, as a bad JSON message is.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::{Buf, BufMut, BytesMut};

use crate::{Frame, ListenKey, Message, WireError};

const NEW_CONN: u8 = 0x01;
const ACCEPTED: u8 = 0x02;

const FAMILY_NONE: u8 = 0;
const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

const FLAG_OK: u8 = 0b01;
const FLAG_DRAINING: u8 = 0b10;

/// Whether `payload` is a compact one (rather than JSON).
pub(crate) fn is_compact(payload: &[u8]) -> bool {
    matches!(payload.first(), Some(&NEW_CONN | &ACCEPTED))
}

/// Writes the compact payload of `message` (with `fds` descriptors) to `dst` and returns
/// `true`, or writes nothing and returns `false` when the message has no compact form (or its
/// descriptor count is not the usual one).
pub(crate) fn encode(message: &Message, fds: usize, dst: &mut BytesMut) -> bool {
    match (message, fds) {
        (Message::NewConn { seq, key, peer }, 1) => {
            dst.put_u8(NEW_CONN);
            dst.put_u64(*seq);
            match peer {
                None => dst.put_u8(FAMILY_NONE),
                Some(SocketAddr::V4(address)) => {
                    dst.put_u8(FAMILY_V4);
                    dst.put_slice(&address.ip().octets());
                    dst.put_u16(address.port());
                }
                Some(SocketAddr::V6(address)) => {
                    dst.put_u8(FAMILY_V6);
                    dst.put_slice(&address.ip().octets());
                    dst.put_u16(address.port());
                    dst.put_u32(address.flowinfo());
                    dst.put_u32(address.scope_id());
                }
            }
            dst.put_slice(key.as_str().as_bytes());
            true
        }
        (Message::Accepted { seq, ok, draining }, 0) => {
            dst.put_u8(ACCEPTED);
            dst.put_u64(*seq);
            dst.put_u8(if *ok { FLAG_OK } else { 0 } | if *draining { FLAG_DRAINING } else { 0 });
            true
        }
        _ => false,
    }
}

/// Reads a compact payload (one [`is_compact`] said yes to).
pub(crate) fn decode(mut payload: &[u8]) -> Result<Frame, WireError> {
    let tag = payload.get_u8();
    let kind = if tag == NEW_CONN {
        "newConn"
    } else {
        "accepted"
    };
    let invalid = |reason: &str| WireError::InvalidMessage {
        kind: kind.into(),
        reason: reason.into(),
    };
    let seq = payload
        .try_get_u64()
        .map_err(|_| invalid("shorter than its sequence number"))?;
    if tag == ACCEPTED {
        let flags = payload.try_get_u8().map_err(|_| invalid("no flags"))?;
        if flags & !(FLAG_OK | FLAG_DRAINING) != 0 || payload.has_remaining() {
            return Err(invalid("unknown flags or trailing bytes"));
        }
        let message = Message::Accepted {
            seq,
            ok: flags & FLAG_OK != 0,
            draining: flags & FLAG_DRAINING != 0,
        };
        return Ok(Frame { message, fds: 0 });
    }
    let short = |_| invalid("shorter than its peer address");
    let peer = match payload.try_get_u8().map_err(short)? {
        FAMILY_NONE => None,
        FAMILY_V4 => {
            let ip = Ipv4Addr::from(payload.try_get_u32().map_err(short)?);
            let port = payload.try_get_u16().map_err(short)?;
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        FAMILY_V6 => {
            let ip = Ipv6Addr::from(payload.try_get_u128().map_err(short)?);
            let port = payload.try_get_u16().map_err(short)?;
            let flowinfo = payload.try_get_u32().map_err(short)?;
            let scope_id = payload.try_get_u32().map_err(short)?;
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip, port, flowinfo, scope_id,
            )))
        }
        _ => return Err(invalid("unknown address family")),
    };
    let key = std::str::from_utf8(payload).map_err(|_| invalid("the key is not UTF-8"))?;
    let message = Message::NewConn {
        seq,
        key: ListenKey::from(key),
        peer,
    };
    Ok(Frame { message, fds: 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) {
        let mut wire = BytesMut::new();
        assert!(
            encode(&frame.message, frame.fds, &mut wire),
            "{frame:?} has a compact form"
        );
        assert!(is_compact(&wire));
        assert_eq!(decode(&wire).unwrap(), frame);
    }

    #[test]
    fn new_conn_round_trips_with_every_kind_of_peer() {
        let peers = [
            None,
            Some("127.0.0.1:4000".parse().unwrap()),
            Some(SocketAddr::V6(SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                443,
                7,
                2,
            ))),
        ];
        for peer in peers {
            round_trip(Frame {
                message: Message::NewConn {
                    seq: u64::MAX,
                    key: ListenKey::from("[::]:8080"),
                    peer,
                },
                fds: 1,
            });
        }
    }

    #[test]
    fn accepted_round_trips_with_every_flag() {
        for (ok, draining) in [(true, false), (false, false), (false, true)] {
            round_trip(Frame {
                message: Message::Accepted {
                    seq: 9,
                    ok,
                    draining,
                },
                fds: 0,
            });
        }
    }

    #[test]
    fn an_unusual_descriptor_count_or_another_message_stays_json() {
        let mut wire = BytesMut::new();
        let odd = Frame {
            message: Message::Accepted {
                seq: 1,
                ok: true,
                draining: false,
            },
            fds: 1,
        };
        assert!(!encode(&odd.message, odd.fds, &mut wire));
        let other = Frame {
            message: Message::Disconnect,
            fds: 0,
        };
        assert!(!encode(&other.message, other.fds, &mut wire));
        assert!(wire.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_kind() {
        let mut wire = BytesMut::new();
        let frame = Frame {
            message: Message::NewConn {
                seq: 3,
                key: ListenKey::from(""),
                peer: Some("[::1]:80".parse().unwrap()),
            },
            fds: 1,
        };
        assert!(encode(&frame.message, frame.fds, &mut wire));
        for len in 1..wire.len() {
            let error = decode(&wire[..len]).unwrap_err();
            assert!(
                matches!(error, WireError::InvalidMessage { ref kind, .. } if kind == "newConn"),
                "{len}: {error}"
            );
        }
    }

    #[test]
    fn bad_fields_are_refused() {
        let bad = [
            (&[ACCEPTED, 0, 0, 0, 0, 0, 0, 0, 1, 0b100][..], "accepted"),
            (&[ACCEPTED, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0][..], "accepted"),
            (&[NEW_CONN, 0, 0, 0, 0, 0, 0, 0, 1, 5][..], "newConn"),
            (&[NEW_CONN, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xff][..], "newConn"),
        ];
        for (payload, expected) in bad {
            let error = decode(payload).unwrap_err();
            assert!(
                matches!(error, WireError::InvalidMessage { ref kind, .. } if kind == expected),
                "{payload:?}: {error}"
            );
        }
    }
}
