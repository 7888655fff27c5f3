//! 10,000 descriptors passed and closed leave the process's open-descriptor count unchanged.
//! Alone in its test binary so no other test opens descriptors meanwhile.

use std::os::fd::OwnedFd;

use clustered_ipc::{Channel, ListenKey, Message};

const TOTAL: usize = 10_000;
const PER_FRAME: usize = 10;

fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_passed_descriptors_are_all_closed() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // tokio opens process-wide descriptors (its signal pipe) once, with the first runtime.
    drop(runtime());
    let before = open_fd_count();
    let runtime = runtime();
    let passed = runtime.block_on(async {
        let (a, b) = Channel::pair().unwrap();
        let (sender, _a_receiver) = a.split();
        let (_b_sender, mut receiver) = b.split();
        let writer = tokio::spawn(async move {
            for seq in 0..(TOTAL / PER_FRAME) as u64 {
                let fds: Vec<OwnedFd> = (0..PER_FRAME)
                    .map(|_| std::fs::File::open("/dev/null").unwrap().into())
                    .collect();
                let message = Message::NewConn {
                    seq,
                    key: ListenKey::from("k"),
                    peer: None,
                };
                sender.send_with_fds(&message, fds).await.unwrap();
            }
        });
        let mut passed = 0;
        while passed < TOTAL {
            let received = receiver.recv().await.unwrap().expect("a frame");
            passed += received.fds.len();
        }
        writer.await.unwrap();
        passed
    });
    drop(runtime);
    assert_eq!(passed, TOTAL);
    assert_eq!(open_fd_count(), before, "descriptors leaked");
}
