//! Frames with descriptors survive short writes and partial reads: large frames are interleaved
//! with descriptor frames over socket buffers far smaller than one frame.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use clustered_ipc::{Channel, ListenKey, Message};
use rustix::fs::MemfdFlags;

const FRAMES: u64 = 300;

/// A memfd whose content names `seq`, so the receiver can tell which frame it belongs to.
fn marked_fd(seq: u64) -> std::fs::File {
    let fd = rustix::fs::memfd_create("marker", MemfdFlags::CLOEXEC).unwrap();
    let mut file = std::fs::File::from(fd);
    write!(file, "{seq}").unwrap();
    file
}

fn mark_of(file: impl Into<std::fs::File>) -> u64 {
    let mut file = file.into();
    file.rewind().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_interleaved_with_fd_frames_arrive_whole_and_in_order() {
    let (a, b) = Channel::pair().unwrap();
    rustix::net::sockopt::set_socket_send_buffer_size(a.as_fd(), 4096).unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(b.as_fd(), 4096).unwrap();
    let (sender, _a_receiver) = a.split();
    let (_b_sender, mut receiver) = b.split();

    let writer = tokio::spawn(async move {
        for seq in 0..FRAMES {
            if seq % 3 == 0 {
                // ~200 KiB: dozens of short writes against a 4 KiB buffer.
                let address = format!("{seq}:{}", "x".repeat(200 * 1024));
                sender
                    .send(&Message::QueryServer { seq, address })
                    .await
                    .unwrap();
            } else {
                let fds = (0..(seq % 4 + 1)).map(|_| marked_fd(seq).into()).collect();
                let message = Message::NewConn {
                    seq,
                    key: ListenKey::from("k"),
                    peer: None,
                };
                sender.send_with_fds(&message, fds).await.unwrap();
            }
        }
    });

    let reading = async {
        for expected in 0..FRAMES {
            if expected % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await; // let the writer run ahead
            }
            let received = receiver
                .recv()
                .await
                .unwrap()
                .expect("frame before end of stream");
            match received.message {
                Message::QueryServer { seq, address } => {
                    assert_eq!(seq, expected);
                    assert!(received.fds.is_empty());
                    assert_eq!(address.len(), format!("{seq}:").len() + 200 * 1024);
                    assert!(address.starts_with(&format!("{seq}:xxx")));
                }
                Message::NewConn { seq, .. } => {
                    assert_eq!(seq, expected);
                    assert_eq!(received.fds.len() as u64, seq % 4 + 1);
                    for fd in received.fds {
                        assert_eq!(mark_of(fd), seq, "descriptor attached to the wrong frame");
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("frames arrive in time");
    writer.await.unwrap();
}

#[tokio::test]
async fn a_clean_close_between_frames_ends_the_stream() {
    let (a, b) = Channel::pair().unwrap();
    let (sender, receiver_a) = a.split();
    let (_b_sender, mut receiver) = b.split();
    sender.send(&Message::Disconnect).await.unwrap();
    drop((sender, receiver_a));
    let first = receiver.recv().await.unwrap().unwrap();
    assert_eq!(first.message, Message::Disconnect);
    let end = tokio::time::timeout(Duration::from_secs(5), receiver.recv())
        .await
        .unwrap();
    assert!(end.unwrap().is_none());
    let file = std::fs::File::open("/dev/null").unwrap();
    assert!(file.as_fd().try_clone_to_owned().is_ok());
}
