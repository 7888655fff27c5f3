//! [`HandoffGroups`]: the handoffs the actions of one input ask for, gathered so that a worker
//! handed several connections of one listener at once gets them in one frame (`newConns`:
//! one `sendmsg` carrying every descriptor, one `recvmsg` in the worker), as a burst of
//! accepted connections is dispatched.

use clustered_ipc::MAX_FDS_PER_SEND;

use crate::master::ids::WorkerKey;
use crate::master::machine::Conn;

/// One handoff the machine asked for.
#[derive(Debug)]
pub(crate) struct Handoff {
    pub(crate) worker: WorkerKey,
    pub(crate) seq: u64,
    pub(crate) conn: Conn,
}

/// Handoffs waiting to be sent (the buffer is kept, so gathering allocates nothing once warm).
#[derive(Debug, Default)]
pub(crate) struct HandoffGroups {
    pending: Vec<Handoff>,
}

impl HandoffGroups {
    /// Adds a handoff the machine asked for.
    pub(crate) fn push(&mut self, worker: WorkerKey, seq: u64, conn: Conn) {
        self.pending.push(Handoff { worker, seq, conn });
    }

    /// Hands every gathered handoff to `send` and forgets them, in groups: one worker, one
    /// listener, at most [`MAX_FDS_PER_SEND`] connections, each worker's in the order the
    /// machine gave them.
    pub(crate) fn drain(&mut self, mut send: impl FnMut(WorkerKey, &[Handoff])) {
        // Stable: a worker's handoffs keep their order (the order of its sequence numbers).
        self.pending.sort_by_key(|handoff| handoff.worker);
        let same_frame =
            |a: &Handoff, b: &Handoff| a.worker == b.worker && a.conn.key == b.conn.key;
        for group in self.pending.chunk_by(same_frame) {
            for frame in group.chunks(MAX_FDS_PER_SEND) {
                send(frame[0].worker, frame);
            }
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use clustered_ipc::ListenKey;

    use super::*;
    use crate::master::ids::ConnId;

    fn conn(id: u64, key: &str) -> Conn {
        Conn {
            id: ConnId(id),
            key: ListenKey::from(key),
            peer: SocketAddr::from(([127, 0, 0, 1], 4000)),
        }
    }

    fn frames(groups: &mut HandoffGroups) -> Vec<(u64, Vec<u64>)> {
        let mut frames = Vec::new();
        groups.drain(|worker, frame| {
            assert!(frame.iter().all(|handoff| handoff.worker == worker));
            frames.push((worker.0, frame.iter().map(|handoff| handoff.seq).collect()));
        });
        frames
    }

    #[test]
    fn each_worker_gets_its_handoffs_of_one_listener_in_one_frame_in_order() {
        let mut groups = HandoffGroups::default();
        for (worker, seq, key) in [
            (1, 10, "a"),
            (2, 20, "a"),
            (1, 11, "a"),
            (2, 21, "b"),
            (1, 12, "a"),
        ] {
            groups.push(WorkerKey(worker), seq, conn(seq, key));
        }
        assert_eq!(
            frames(&mut groups),
            vec![(1, vec![10, 11, 12]), (2, vec![20]), (2, vec![21])]
        );
        assert!(frames(&mut groups).is_empty(), "drained");
    }

    #[test]
    fn a_frame_carries_no_more_descriptors_than_one_sendmsg_can() {
        let mut groups = HandoffGroups::default();
        let count = MAX_FDS_PER_SEND as u64 + 2;
        for seq in 0..count {
            groups.push(WorkerKey(1), seq, conn(seq, "a"));
        }
        let sizes: Vec<usize> = frames(&mut groups)
            .iter()
            .map(|(_, seqs)| seqs.len())
            .collect();
        assert_eq!(sizes, vec![MAX_FDS_PER_SEND, 2]);
    }
}
