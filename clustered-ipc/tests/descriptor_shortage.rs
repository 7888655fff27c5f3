//! A receiver out of descriptor numbers (a real `RLIMIT_NOFILE`) gets the first descriptors of a
//! frame that carries several (`newConns`): the kernel drops the rest (`MSG_CTRUNC`), the frame
//! arrives with those that did, and the channel goes on, the next frame getting its own.
//! Alone in its test binary: it lowers this process's limit.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use clustered_ipc::{Channel, Handoff, ListenKey, Message};
use rustix::process::{Resource, getrlimit, setrlimit};

/// Fills every free descriptor number below the highest open one (kept open in what it
/// returns) and returns the limit that leaves exactly `room` numbers free.
fn fill_holes_leaving(room: u64) -> (Vec<std::fs::File>, u64) {
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let mut filler = Vec::new();
    loop {
        let file = std::fs::File::open("/dev/null").unwrap();
        if file.as_raw_fd() as u64 > highest {
            break;
        }
        filler.push(file);
    }
    (filler, highest + 1 + room)
}

/// Descriptors kept open here while they travel, so the numbers they hold stay taken.
fn dev_null(count: usize) -> Vec<Arc<OwnedFd>> {
    (0..count)
        .map(|_| Arc::new(std::fs::File::open("/dev/null").unwrap().into()))
        .collect()
}

fn new_conns(first: u64, count: u64) -> Message {
    Message::NewConns {
        key: ListenKey::from("127.0.0.1:3000"),
        conns: (first..first + count)
            .map(|seq| Handoff { seq, peer: None })
            .collect(),
    }
}

#[test]
fn a_frame_whose_descriptors_do_not_all_fit_arrives_with_the_first_ones() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (a, b) = Channel::pair().unwrap();
        let (sender, _a_receiver) = a.split();
        let (_b_sender, mut receiver) = b.split();
        let (short, whole) = (dev_null(10), dev_null(4));
        // Room for 3 more descriptors: numbers are given lowest first, below the limit.
        let original = getrlimit(Resource::Nofile);
        let (_filler, room_for_three) = fill_holes_leaving(3);
        let mut limit = original;
        limit.current = Some(room_for_three);
        setrlimit(Resource::Nofile, limit).unwrap();
        sender
            .try_send_with_shared_fds(&new_conns(0, 10), short.iter().cloned())
            .unwrap();
        let first = receiver.recv().await.unwrap().expect("a frame");
        setrlimit(Resource::Nofile, original).unwrap();
        sender
            .try_send_with_shared_fds(&new_conns(10, 4), whole.iter().cloned())
            .unwrap();
        let second = receiver.recv().await.unwrap().expect("a frame");

        assert_eq!(first.message, new_conns(0, 10), "the whole frame");
        assert_eq!(first.fds.len(), 3, "the descriptors that fitted");
        assert_eq!(second.message, new_conns(10, 4));
        assert_eq!(second.fds.len(), 4, "its own, none of the first frame's");
    });
}
