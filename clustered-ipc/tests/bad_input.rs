//! A malformed frame, an oversize frame, an unknown kind, missing or unclaimed descriptors: each
//! is a distinct error that closes only the channel that saw it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use clustered_ipc::{Channel, Message, WireError};

/// A channel receiving from a raw socket the test writes bytes into.
fn raw_peer() -> (UnixStream, clustered_ipc::Receiver, clustered_ipc::Sender) {
    let (raw, ours) = UnixStream::pair().unwrap();
    let (sender, receiver) = Channel::from_std(ours).unwrap().split();
    (raw, receiver, sender)
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// Writes `bytes` from the raw side and returns the error the receiver reports, after checking
/// that the channel is closed afterwards (the raw side reads end of stream).
async fn error_for(bytes: &[u8]) -> WireError {
    let (mut raw, mut receiver, _sender) = raw_peer();
    raw.write_all(bytes).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), receiver.recv())
        .await
        .unwrap();
    let error = result.expect_err("bad input must be an error");
    assert!(error.is_protocol_violation(), "{error}");
    assert!(
        receiver.recv().await.unwrap().is_none(),
        "the channel stays closed"
    );
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        raw.read_to_end(&mut rest).unwrap(),
        0,
        "peer sees the channel closed"
    );
    error
}

#[tokio::test]
async fn malformed_json_is_a_malformed_frame() {
    let error = error_for(&frame(b"{\"kind\": oops")).await;
    assert!(matches!(error, WireError::MalformedFrame { .. }), "{error}");
    assert!(error.to_string().contains("malformed IPC frame"));
}

#[tokio::test]
async fn a_non_object_is_a_malformed_frame() {
    let error = error_for(&frame(b"[1,2,3]")).await;
    assert!(matches!(error, WireError::MalformedFrame { .. }), "{error}");
}

#[tokio::test]
async fn an_oversize_header_is_refused_before_the_payload_arrives() {
    let error = error_for(&(64u32 * 1024 * 1024).to_be_bytes()).await;
    assert!(matches!(error, WireError::FrameTooLarge { len, .. } if len == 64 * 1024 * 1024));
    assert!(error.to_string().contains("exceeds the limit"));
}

#[tokio::test]
async fn an_unknown_kind_names_the_kind() {
    let error = error_for(&frame(br#"{"kind":"teleport","to":3}"#)).await;
    assert!(matches!(error, WireError::UnknownKind { ref kind } if kind == "teleport"));
    assert!(error.to_string().contains("teleport"));
}

#[tokio::test]
async fn a_frame_announcing_descriptors_that_never_came_is_refused() {
    let error = error_for(&frame(br#"{"kind":"disconnect","fds":2}"#)).await;
    assert!(
        matches!(
            error,
            WireError::MissingFds {
                expected: 2,
                received: 0
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn end_of_stream_inside_a_frame_is_a_truncated_frame() {
    let (mut raw, mut receiver, _sender) = raw_peer();
    raw.write_all(&frame(br#"{"kind":"disconnect"}"#)[..10])
        .unwrap();
    drop(raw);
    let error = receiver.recv().await.unwrap_err();
    assert!(
        matches!(error, WireError::TruncatedFrame { buffered: 10 }),
        "{error}"
    );
}

#[tokio::test]
async fn an_error_closes_only_its_own_channel() {
    let (healthy_a, healthy_b) = Channel::pair().unwrap();
    let (to_b, _from_b) = healthy_a.split();
    let (_to_a, mut from_a) = healthy_b.split();
    let error = error_for(&frame(b"garbage")).await;
    assert!(matches!(error, WireError::MalformedFrame { .. }));
    to_b.send(&Message::Disconnect).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(5), from_a.recv())
        .await
        .unwrap();
    assert_eq!(received.unwrap().unwrap().message, Message::Disconnect);
}

#[tokio::test]
async fn an_oversize_message_is_refused_to_the_sender_and_the_channel_goes_on() {
    let (a, b) = Channel::pair().unwrap();
    let (sender, _ra) = a.with_max_frame_len(1024).split();
    let (_sb, mut receiver) = b.split();
    let huge = Message::QueryServer {
        seq: 1,
        address: "x".repeat(4096),
    };
    let error = sender.send(&huge).await.unwrap_err();
    assert!(
        matches!(error, WireError::FrameTooLarge { max: 1024, .. }),
        "{error}"
    );
    sender.send(&Message::Disconnect).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(5), receiver.recv())
        .await
        .unwrap();
    assert_eq!(received.unwrap().unwrap().message, Message::Disconnect);
}
