//! [`AckRing`]: a worker's "I took handoff `seq`", said in memory the master reads instead of
//! in a frame it would wake up for.
//!
//! Each worker's metrics region (a `memfd` both processes map, `shared_metrics`) ends with
//! [`RING_SLOTS`] words that are not metrics. When a worker takes the connection of handoff
//! `seq`, it stores `seq + 1` in slot `seq % RING_SLOTS` (release ordering), before anything
//! reads from the connection; that costs it no system call. The master looks at the slots of
//! the handoffs it has in flight each time it wakes for anything else — under load, for the
//! next accepted connection — and shortly after its last handoff otherwise, so taking a
//! connection costs it no wake-up either (a frame per acknowledgement woke the master once per
//! connection: measured, that was about half of its wake-ups under `rr`).
//!
//! A slot cannot be claimed by two handoffs at once: a worker never has more than
//! [`RING_SLOTS`] handoffs unacknowledged (the master's window), so `seq` and
//! `seq + RING_SLOTS` are never in flight together, and a slot holding `seq + 1` names `seq`
//! alone. A refused handoff leaves its slot alone and is answered by an `accepted` frame, as
//! are all handoffs of a worker without a region. What a worker writes here the master only
//! compares: a worker writing garbage can mark its own handoffs taken (and lose those
//! connections, as a false `accepted` frame would), nothing more.
//!
//! The same region holds one more word the master reads rather than wakes for: how many
//! heartbeats the worker has said there. An idle worker whose load has not changed counts a
//! heartbeat in it instead of sending a frame, and the master reads the count of every worker
//! when it looks for silent ones (and before every other input), so an idle master wakes for
//! its liveness check alone, not once per worker per heartbeat period. A worker writing
//! garbage there can only look alive while it is not — as it could by sending heartbeats.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::shared_metrics::{ACK_BASE, ACK_WORDS, BEAT_WORD, Region};

/// The slots of a ring: the most handoffs a worker may have unacknowledged at once.
pub(crate) const RING_SLOTS: usize = ACK_WORDS;

/// The acknowledgement slots of one worker's region, as the worker or the master maps it.
#[derive(Debug, Clone)]
pub(crate) struct AckRing {
    region: Arc<Region>,
}

impl AckRing {
    /// The slots at the end of `region`.
    pub(crate) fn new(region: Arc<Region>) -> Self {
        AckRing { region }
    }

    /// In the worker: the connection of handoff `seq` is taken.
    pub(crate) fn record_taken(&self, seq: u64) {
        self.slot(seq)
            .store(seq.saturating_add(1), Ordering::Release);
    }

    /// In the master: whether the worker recorded handoff `seq` as taken.
    pub(crate) fn is_taken(&self, seq: u64) -> bool {
        self.slot(seq).load(Ordering::Acquire) == seq.saturating_add(1)
    }

    /// In the worker: one more heartbeat, said in memory.
    pub(crate) fn beat(&self) {
        self.region.words()[BEAT_WORD].fetch_add(1, Ordering::Release);
    }

    /// In the master: how many heartbeats the worker has said in memory (any number: the
    /// master only looks for a change).
    pub(crate) fn beats(&self) -> u64 {
        self.region.words()[BEAT_WORD].load(Ordering::Acquire)
    }

    fn slot(&self, seq: u64) -> &AtomicU64 {
        // The remainder is below RING_SLOTS, so it fits a usize.
        let index = (seq % RING_SLOTS as u64) as usize;
        &self.region.words()[ACK_BASE + index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The master's and a worker's view of one new region.
    fn rings() -> (AckRing, AckRing) {
        let (master, fd) = Region::create().unwrap();
        let worker = Region::open(&fd).unwrap();
        (
            AckRing::new(Arc::new(master)),
            AckRing::new(Arc::new(worker)),
        )
    }

    #[test]
    fn heartbeats_said_in_memory_are_counted_in_the_other_mapping() {
        let (master, worker) = rings();
        assert_eq!(master.beats(), 0);
        worker.beat();
        worker.beat();
        assert_eq!(master.beats(), 2);
        worker.record_taken(3);
        assert_eq!(master.beats(), 2, "an acknowledgement is no heartbeat");
    }

    #[test]
    fn a_taken_handoff_is_seen_by_the_other_mapping_and_no_other_is() {
        let (master, worker) = rings();
        assert!(!master.is_taken(0), "nothing is taken in a new region");
        worker.record_taken(5);
        assert!(master.is_taken(5));
        assert!(!master.is_taken(4));
        assert!(!master.is_taken(6));
        assert!(
            !master.is_taken(5 + RING_SLOTS as u64),
            "the handoff that will share its slot"
        );
    }

    #[test]
    fn a_slot_names_its_latest_handoff_only() {
        let (master, worker) = rings();
        let next_round = 3 + RING_SLOTS as u64;
        worker.record_taken(3);
        worker.record_taken(next_round);
        assert!(master.is_taken(next_round));
        assert!(!master.is_taken(3));
    }

    #[test]
    fn a_refused_handoff_is_never_seen_taken_whatever_its_slot_held() {
        let (master, worker) = rings();
        worker.record_taken(7);
        // Handoff 7 + RING_SLOTS is refused (by frame): its slot keeps 7's mark.
        assert!(!master.is_taken(7 + RING_SLOTS as u64));
    }

    #[test]
    fn metrics_never_write_into_the_ring() {
        let (master, fd) = Region::create().unwrap();
        let worker = Arc::new(Region::open(&fd).unwrap());
        let recorder = crate::shared_metrics::RegionRecorder::new(worker);
        let ring = AckRing::new(Arc::new(master));
        // Long names: the key strings fill up to the ring (before the entries run out), and
        // no further.
        metrics::with_local_recorder(&recorder, || {
            for index in 0..3000 {
                metrics::counter!(format!("{index:0>300}")).increment(1);
            }
        });
        for seq in 0..RING_SLOTS as u64 {
            assert_eq!(ring.slot(seq).load(Ordering::Relaxed), 0, "slot {seq}");
        }
    }
}
