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
//! The same region holds the worker's heartbeats too: a count, and the load the last one said
//! (open connections, requests in flight, requests served, resident bytes; [`LoadReport`]).
//! A worker that has a region says every heartbeat there instead of in a frame — the load
//! words first, then the count, with release ordering — and the master reads the count of
//! every worker before each input and when it looks for silent ones, and the load words
//! behind a count that changed (acquire ordering: they are at least as new as that count). So
//! a worker under load, whose load changes all the time and is said every 10 ms, wakes the
//! master for none of it (measured, those frames were most of a busy `rr` master's wake-ups
//! once acknowledgements moved here), and an idle master wakes for its liveness check alone.
//! The four words are not written at once: a master reading while the worker writes may see
//! some words of one report and some of the next — each a value the worker had moments apart,
//! and the next count makes it read them again. A worker writing garbage there can only look
//! alive while it is not, or misstate its own load — as it could in heartbeat frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::shared_metrics::{ACK_BASE, ACK_WORDS, BEAT_WORD, LOAD_BASE, LOAD_WORDS, Region};

/// The slots of a ring: the most handoffs a worker may have unacknowledged at once.
pub(crate) const RING_SLOTS: usize = ACK_WORDS;

/// What a heartbeat says of the worker, in a frame or in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LoadReport {
    /// Open connections.
    pub(crate) conns: u64,
    /// Requests in flight.
    pub(crate) inflight: u64,
    /// Requests served since the worker started.
    pub(crate) served: u64,
    /// Resident memory, in bytes.
    pub(crate) rss: u64,
}

impl LoadReport {
    fn to_words(self) -> [u64; LOAD_WORDS] {
        [self.conns, self.inflight, self.served, self.rss]
    }

    fn from_words([conns, inflight, served, rss]: [u64; LOAD_WORDS]) -> Self {
        LoadReport {
            conns,
            inflight,
            served,
            rss,
        }
    }
}

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

    /// In the worker: one more heartbeat, saying `load`, in memory.
    pub(crate) fn beat(&self, load: LoadReport) {
        let words = self.region.words();
        for (word, value) in words[LOAD_BASE..].iter().zip(load.to_words()) {
            word.store(value, Ordering::Relaxed);
        }
        words[BEAT_WORD].fetch_add(1, Ordering::Release);
    }

    /// In the master: how many heartbeats the worker has said in memory (any number: the
    /// master only looks for a change).
    pub(crate) fn beats(&self) -> u64 {
        self.region.words()[BEAT_WORD].load(Ordering::Acquire)
    }

    /// In the master: the load the worker's heartbeats in memory said last (after
    /// [`AckRing::beats`], at least what the heartbeat it counted said).
    pub(crate) fn last_load(&self) -> LoadReport {
        let words = self.region.words();
        let mut values = [0; LOAD_WORDS];
        for (value, word) in values.iter_mut().zip(&words[LOAD_BASE..]) {
            *value = word.load(Ordering::Relaxed);
        }
        LoadReport::from_words(values)
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
    fn heartbeats_said_in_memory_are_counted_and_read_in_the_other_mapping() {
        let (master, worker) = rings();
        assert_eq!(master.beats(), 0);
        assert_eq!(master.last_load(), LoadReport::default());
        let busy = LoadReport {
            conns: 3,
            inflight: 2,
            served: 41,
            rss: 9 << 20,
        };
        worker.beat(LoadReport::default());
        worker.beat(busy);
        assert_eq!(master.beats(), 2);
        assert_eq!(master.last_load(), busy);
        worker.record_taken(3);
        assert_eq!(master.beats(), 2, "an acknowledgement is no heartbeat");
        assert_eq!(master.last_load(), busy, "nor a load");
    }

    #[test]
    fn metrics_never_write_over_a_load_report() {
        let (master, fd) = Region::create().unwrap();
        let worker = Arc::new(Region::open(&fd).unwrap());
        let full = LoadReport {
            conns: u64::MAX,
            inflight: u64::MAX,
            served: u64::MAX,
            rss: u64::MAX,
        };
        AckRing::new(Arc::clone(&worker)).beat(full);
        let recorder = crate::shared_metrics::RegionRecorder::new(worker);
        metrics::with_local_recorder(&recorder, || {
            for index in 0..100 {
                metrics::counter!(format!("c{index}")).increment(1);
            }
        });
        assert_eq!(AckRing::new(Arc::new(master)).last_load(), full);
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
