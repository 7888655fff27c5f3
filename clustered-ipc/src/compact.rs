//! Compact payloads for the messages of the connection hot path, `newConn`, `newConns` and
//! `accepted`: a fixed binary layout instead of JSON, told apart by the payload's first byte (a
//! JSON payload starts with `{`).
//!
//! ```text
//! newConn:   01 | seq: u64 | peer | key: UTF-8 to the end
//! newConns:  03 | key length: u16 | key: UTF-8 | 1 to 253 times: seq: u64 | peer
//! accepted:  02 | seq: u64 | flags: u8 (bit 0: ok, bit 1: draining)
//! peer:      family: u8 | [ip: 4 or 16 bytes | port: u16 | (v6) flowinfo: u32, scope_id: u32]
//!            family 0: no peer address; 4: IPv4; 6: IPv6
//! ```
//!
//! Integers are big-endian. `newConn` carries one descriptor, `newConns` one per connection.
//! Every field is checked on the way in: a short payload, an unknown family, unknown flag bits,
//! trailing bytes after `accepted`, a `newConns` with no connection or more than 253, or a key
//! that is not UTF-8 is an [`WireError::InvalidMessage`] naming the kind, as a bad JSON message
//! is.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::{Buf, BufMut, BytesMut};

use crate::{Frame, Handoff, ListenKey, MAX_FDS_PER_SEND, Message, WireError};

const NEW_CONN: u8 = 0x01;
const ACCEPTED: u8 = 0x02;
const NEW_CONNS: u8 = 0x03;

const FAMILY_NONE: u8 = 0;
const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

const FLAG_OK: u8 = 0b01;
const FLAG_DRAINING: u8 = 0b10;

/// Whether `payload` is a compact one (rather than JSON).
pub(crate) fn is_compact(payload: &[u8]) -> bool {
    matches!(payload.first(), Some(&NEW_CONN | &ACCEPTED | &NEW_CONNS))
}

/// Writes the compact payload of `message` (with `fds` descriptors) to `dst` and returns
/// `true`, or writes nothing and returns `false` when the message has no compact form (or its
/// descriptor count is not the usual one).
pub(crate) fn encode(message: &Message, fds: usize, dst: &mut BytesMut) -> bool {
    match (message, fds) {
        (Message::NewConn { seq, key, peer }, 1) => {
            dst.put_u8(NEW_CONN);
            dst.put_u64(*seq);
            put_peer(peer, dst);
            dst.put_slice(key.as_str().as_bytes());
            true
        }
        (Message::NewConns { key, conns }, fds)
            if fds == conns.len() && (1..=MAX_FDS_PER_SEND).contains(&fds) =>
        {
            let Ok(key_len) = u16::try_from(key.as_str().len()) else {
                return false;
            };
            dst.put_u8(NEW_CONNS);
            dst.put_u16(key_len);
            dst.put_slice(key.as_str().as_bytes());
            for conn in conns {
                dst.put_u64(conn.seq);
                put_peer(&conn.peer, dst);
            }
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

fn put_peer(peer: &Option<SocketAddr>, dst: &mut BytesMut) {
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
}

/// Reads a compact payload (one [`is_compact`] said yes to).
pub(crate) fn decode(mut payload: &[u8]) -> Result<Frame, WireError> {
    let tag = payload.get_u8();
    let kind = match tag {
        NEW_CONN => "newConn",
        NEW_CONNS => "newConns",
        _ => "accepted",
    };
    let invalid = |reason: &str| WireError::InvalidMessage {
        kind: kind.into(),
        reason: reason.into(),
    };
    if tag == NEW_CONNS {
        return decode_new_conns(payload).map_err(invalid);
    }
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
    let peer = get_peer(&mut payload).map_err(invalid)?;
    let key = std::str::from_utf8(payload).map_err(|_| invalid("the key is not UTF-8"))?;
    let message = Message::NewConn {
        seq,
        key: ListenKey::from(key),
        peer,
    };
    Ok(Frame { message, fds: 1 })
}

/// A `newConns` payload after its tag; the error is the reason.
fn decode_new_conns(mut payload: &[u8]) -> Result<Frame, &'static str> {
    let key_len = payload
        .try_get_u16()
        .map_err(|_| "shorter than its key length")?;
    let key = payload
        .get(..usize::from(key_len))
        .ok_or("shorter than its key")?;
    let key = std::str::from_utf8(key).map_err(|_| "the key is not UTF-8")?;
    payload.advance(usize::from(key_len));
    let mut conns = Vec::with_capacity(8);
    while payload.has_remaining() {
        if conns.len() == MAX_FDS_PER_SEND {
            return Err("more connections than one sendmsg carries descriptors");
        }
        let seq = payload
            .try_get_u64()
            .map_err(|_| "shorter than a sequence number")?;
        let peer = get_peer(&mut payload)?;
        conns.push(Handoff { seq, peer });
    }
    if conns.is_empty() {
        return Err("no connection");
    }
    let fds = conns.len();
    let message = Message::NewConns {
        key: ListenKey::from(key),
        conns,
    };
    Ok(Frame { message, fds })
}

/// A peer address (see the layout above), advancing `payload` past it.
fn get_peer(payload: &mut &[u8]) -> Result<Option<SocketAddr>, &'static str> {
    let short = |_| "shorter than its peer address";
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
        _ => return Err("unknown address family"),
    };
    Ok(peer)
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

    fn new_conns(count: usize) -> Frame {
        let peers = [
            None,
            Some("10.0.0.1:5000".parse().unwrap()),
            Some("[::1]:6000".parse().unwrap()),
        ];
        let conns = (0..count)
            .map(|index| Handoff {
                seq: u64::MAX - index as u64,
                peer: peers[index % peers.len()],
            })
            .collect();
        Frame {
            message: Message::NewConns {
                key: ListenKey::from("127.0.0.1:3000"),
                conns,
            },
            fds: count,
        }
    }

    #[test]
    fn new_conns_round_trips_from_one_to_as_many_as_one_sendmsg_carries() {
        for count in [1, 2, 3, MAX_FDS_PER_SEND] {
            round_trip(new_conns(count));
        }
    }

    #[test]
    fn new_conns_with_too_many_none_or_another_descriptor_count_stays_json() {
        let mut wire = BytesMut::new();
        for (frame, fds) in [
            (new_conns(MAX_FDS_PER_SEND + 1), MAX_FDS_PER_SEND + 1),
            (new_conns(0), 0),
            (new_conns(3), 2),
        ] {
            assert!(!encode(&frame.message, fds, &mut wire), "{fds}");
        }
        assert!(wire.is_empty());
    }

    #[test]
    fn a_new_conns_payload_cut_anywhere_or_overlong_is_refused() {
        let mut wire = BytesMut::new();
        let frame = new_conns(3);
        assert!(encode(&frame.message, frame.fds, &mut wire));
        // Cut inside the key or a connection (cutting exactly between two connections leaves a
        // shorter, valid list).
        let boundaries: Vec<usize> = {
            let key = 1 + 2 + "127.0.0.1:3000".len();
            let sizes = [9, 9 + 6, 9 + 18 + 8];
            let mut at = vec![key];
            for size in sizes {
                at.push(at.last().unwrap() + size);
            }
            at
        };
        for len in 1..wire.len() {
            let result = decode(&wire[..len]);
            if boundaries[1..].contains(&len) {
                assert!(result.is_ok(), "{len}");
                continue;
            }
            let error = result.unwrap_err();
            assert!(
                matches!(error, WireError::InvalidMessage { ref kind, .. } if kind == "newConns"),
                "{len}: {error}"
            );
        }
        let mut too_many = BytesMut::new();
        too_many.put_u8(NEW_CONNS);
        too_many.put_u16(0);
        for seq in 0..=MAX_FDS_PER_SEND as u64 {
            too_many.put_u64(seq);
            too_many.put_u8(FAMILY_NONE);
        }
        assert!(decode(&too_many).is_err(), "254 connections");
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
