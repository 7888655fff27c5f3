//! A small control frame that finds nothing queued is written by its sender at once, and frames
//! keep their order when the socket fills (they queue for the writer task) and drains (senders
//! write at once again).

use std::os::fd::OwnedFd;

use clustered_ipc::{Channel, ListenKey, Message};
use rustix::net::RecvFlags;

fn handoff(seq: u64) -> Message {
    Message::NewConn {
        seq,
        key: ListenKey::from("k"),
        peer: None,
    }
}

/// Bytes waiting on `socket`, read without taking them (never waits).
fn waiting_bytes(socket: &OwnedFd) -> usize {
    let mut buffer = [0u8; 4096];
    match rustix::net::recv(socket, &mut buffer, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((taken, _)) => taken,
        Err(rustix::io::Errno::AGAIN) => 0,
        Err(error) => panic!("peeking at the socket: {error}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_small_control_frame_is_on_the_socket_before_its_sender_yields() {
    let (a, b) = Channel::pair().unwrap();
    let peer = b.as_fd().try_clone_to_owned().unwrap();
    let (sender, _a_receiver) = a.split();
    let (_b_sender, mut receiver) = b.split();

    let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    sender.try_send_with_fds(&handoff(7), vec![file]).unwrap();
    // The writer task has not run (this runtime has one thread and it has not yielded).
    assert!(
        waiting_bytes(&peer) > 0,
        "the frame was written by its sender"
    );
    // A user message goes through the writer task, as before.
    let user = Message::User {
        seq: None,
        to: clustered_ipc::Route::Master,
        data: serde_json::json!("hello"),
    };
    let before = waiting_bytes(&peer);
    sender.try_send(&user).unwrap();
    assert_eq!(
        waiting_bytes(&peer),
        before,
        "a user message waits for the writer"
    );

    let first = receiver.recv().await.unwrap().expect("a frame");
    assert_eq!(first.message, handoff(7));
    assert_eq!(first.fds.len(), 1, "the descriptor rode with it");
    let second = receiver.recv().await.unwrap().expect("a frame");
    assert_eq!(second.message, user);
}

#[tokio::test(flavor = "current_thread")]
async fn frames_keep_their_order_as_the_socket_fills_and_drains() {
    const ROUNDS: u64 = 20;
    const SENT_PER_ROUND: u64 = 60;
    const READ_PER_ROUND: u64 = 30;
    let (a, b) = Channel::pair().unwrap();
    // Small buffers: a few dozen frames fill the socket, and the rest queue for the writer.
    rustix::net::sockopt::set_socket_send_buffer_size(a.as_fd(), 4096).unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(b.as_fd(), 4096).unwrap();
    let peer = b.as_fd().try_clone_to_owned().unwrap();
    let (sender, _a_receiver) = a.split();
    let (_b_sender, mut receiver) = b.split();

    sender.try_send(&handoff(0)).unwrap();
    assert!(waiting_bytes(&peer) > 0, "the first frame went out at once");
    let (mut sent, mut expected) = (1, 0);
    let mut next_in_order = async |count: u64| {
        for _ in 0..count {
            let received = receiver.recv().await.unwrap().expect("a frame");
            assert_eq!(received.message, handoff(expected), "in order");
            expected += 1;
        }
    };
    // Each round reads some while frames still queue: the socket has room again while the
    // writer holds a backlog, and a frame sent then must not go before it.
    for _ in 0..ROUNDS {
        for _ in 0..SENT_PER_ROUND {
            sender.try_send(&handoff(sent)).unwrap();
            sent += 1;
        }
        next_in_order(READ_PER_ROUND).await;
    }
    next_in_order(sent - READ_PER_ROUND * ROUNDS).await;

    // Drained: the next frame is written at once again, after everything before it.
    assert_eq!(waiting_bytes(&peer), 0);
    sender.try_send(&handoff(sent)).unwrap();
    assert!(
        waiting_bytes(&peer) > 0,
        "written at once once nothing is queued"
    );
    let last = receiver.recv().await.unwrap().expect("a frame");
    assert_eq!(last.message, handoff(sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_written_at_once_never_lands_inside_one_the_writer_is_writing() {
    const LARGE: u64 = 60;
    const SMALL: u64 = 20_000;
    let (a, b) = Channel::pair().unwrap();
    // A small send buffer: each large frame takes dozens of `sendmsg`s, the writer waiting
    // for room between them, while small frames are offered from another thread.
    rustix::net::sockopt::set_socket_send_buffer_size(a.as_fd(), 4096).unwrap();
    let (sender, _a_receiver) = a.split();
    let (_b_sender, mut receiver) = b.split();

    let large_sender = sender.clone();
    let large = tokio::spawn(async move {
        for n in 0..LARGE {
            let message = Message::User {
                seq: Some(n),
                to: clustered_ipc::Route::Master,
                data: serde_json::json!("x".repeat(150 * 1024)),
            };
            large_sender.send(&message).await.unwrap();
        }
    });
    let small = tokio::spawn(async move {
        for seq in 0..SMALL {
            // Never waits: a full queue only slows this thread down.
            while sender.try_send(&handoff(seq)).is_err() {
                tokio::task::yield_now().await;
            }
        }
    });

    let (mut larges, mut next_small) = (0, 0);
    while larges < LARGE || next_small < SMALL {
        let received = tokio::time::timeout(std::time::Duration::from_secs(60), receiver.recv())
            .await
            .expect("frames keep coming")
            .expect("every frame decodes: none was cut into by another")
            .expect("a frame");
        match received.message {
            Message::User { seq, .. } => {
                assert_eq!(seq, Some(larges), "large frames in order");
                larges += 1;
            }
            message => {
                assert_eq!(message, handoff(next_small), "small frames in order");
                next_small += 1;
            }
        }
    }
    large.await.unwrap();
    small.await.unwrap();
}
