//! [`FairQueue`]: the master's inbox as plain data. Each worker has a lane of its own, bounded
//! by the credit it was given ([`clustered_ipc::INBOX_WINDOW`]); the reader of the inbox takes
//! requests before messages (but a message after [`URGENT_IN_A_ROW`] requests while messages
//! wait), and among the lanes with something of that kind, one from each in turn. So a worker
//! flooding the inbox slows only itself: another's request is next in line whatever the flood
//! holds, and a flood of requests still lets other workers' messages through. Each item taken is credit owed back to its lane's worker, given
//! in batches ([`CREDIT_BATCH`]) and whenever the lane empties (so an idle worker is never
//! left short).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Credit given back to a worker at the latest once this much is owed (its lane not empty).
pub(crate) const CREDIT_BATCH: u32 = 64;

/// Urgent items taken in a row, at most, while bulk ones wait: then one bulk item goes, so
/// that a flood of requests from one worker cannot starve another's messages.
pub(crate) const URGENT_IN_A_ROW: u32 = 8;

/// Which of a lane's two queues an item waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Taken before any message (requests: someone waits for the answer).
    Urgent,
    /// Taken when no lane has anything urgent (messages).
    Bulk,
}

/// One worker's lane.
#[derive(Debug)]
struct Lane<T, S> {
    urgent: VecDeque<T>,
    bulk: VecDeque<T>,
    /// Items of this lane the inbox's reader took since credit was last given back.
    owed: u32,
    /// Where credit goes (the worker's IPC sender).
    owner: S,
    /// Its worker is gone: no more items come; the lane goes once empty.
    closed: bool,
}

impl<T, S> Lane<T, S> {
    fn len(&self) -> usize {
        self.urgent.len() + self.bulk.len()
    }

    fn queue(&mut self, kind: Kind) -> &mut VecDeque<T> {
        match kind {
            Kind::Urgent => &mut self.urgent,
            Kind::Bulk => &mut self.bulk,
        }
    }
}

/// Why an item was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal<T> {
    /// The lane holds as much as its worker's credit allows (the worker sent past it).
    Full(T),
    /// There is no open lane for that worker.
    NoLane(T),
}

/// An item taken from the queue, and the credit to give back now, if any, with where to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Taken<T, S> {
    pub(crate) item: T,
    pub(crate) credit: Option<(u32, S)>,
}

/// Every worker's lane, and whose turn it is.
#[derive(Debug)]
pub(crate) struct FairQueue<K, T, S> {
    lanes: HashMap<K, Lane<T, S>>,
    /// Lanes with urgent items, in turn (each at most once).
    urgent_turn: VecDeque<K>,
    /// Lanes with bulk items, in turn (each at most once).
    bulk_turn: VecDeque<K>,
    /// Items one lane may hold.
    capacity: usize,
    /// Urgent items taken since the last bulk one.
    urgent_in_a_row: u32,
}

impl<K: Hash + Eq + Copy, T, S: Clone> FairQueue<K, T, S> {
    /// A queue whose lanes hold at most `capacity` items each.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            lanes: HashMap::new(),
            urgent_turn: VecDeque::new(),
            bulk_turn: VecDeque::new(),
            capacity,
            urgent_in_a_row: 0,
        }
    }

    /// Opens `key`'s lane, giving credit back to `owner`.
    pub(crate) fn open(&mut self, key: K, owner: S) {
        let lane = Lane {
            urgent: VecDeque::new(),
            bulk: VecDeque::new(),
            owed: 0,
            owner,
            closed: false,
        };
        self.lanes.insert(key, lane);
    }

    /// `key`'s worker is gone: what its lane holds is still taken in turn, then the lane goes.
    pub(crate) fn close(&mut self, key: K) {
        let Some(lane) = self.lanes.get_mut(&key) else {
            return;
        };
        lane.closed = true;
        if lane.len() == 0 {
            self.lanes.remove(&key);
        }
    }

    /// Queues `item` in `key`'s lane.
    pub(crate) fn push(&mut self, key: K, kind: Kind, item: T) -> Result<(), Refusal<T>> {
        let Some(lane) = self.lanes.get_mut(&key).filter(|lane| !lane.closed) else {
            return Err(Refusal::NoLane(item));
        };
        if lane.len() >= self.capacity {
            return Err(Refusal::Full(item));
        }
        let queue = lane.queue(kind);
        queue.push_back(item);
        if queue.len() == 1 {
            self.turn(kind).push_back(key);
        }
        Ok(())
    }

    /// The next item: urgent ones first (but a bulk one after [`URGENT_IN_A_ROW`] urgent ones
    /// while bulk ones wait), one lane after the other.
    pub(crate) fn pop(&mut self) -> Option<Taken<T, S>> {
        let bulk_due = self.urgent_in_a_row >= URGENT_IN_A_ROW;
        let order = match bulk_due {
            true => [Kind::Bulk, Kind::Urgent],
            false => [Kind::Urgent, Kind::Bulk],
        };
        let (kind, taken) = order
            .into_iter()
            .find_map(|kind| Some((kind, self.pop_kind(kind)?)))?;
        self.urgent_in_a_row = match kind {
            Kind::Urgent => self.urgent_in_a_row.saturating_add(1),
            Kind::Bulk => 0,
        };
        Some(taken)
    }

    /// The next item of `kind`, one lane after the other.
    fn pop_kind(&mut self, kind: Kind) -> Option<Taken<T, S>> {
        // A lane is in its turn only while it holds an item of that kind; one that does not is
        // passed over rather than trusted.
        let (key, lane, item) = loop {
            let key = self.turn(kind).pop_front()?;
            let Some(lane) = self.lanes.get_mut(&key) else {
                continue;
            };
            if let Some(item) = lane.queue(kind).pop_front() {
                break (key, lane, item);
            }
        };
        let more = !lane.queue(kind).is_empty();
        lane.owed = lane.owed.saturating_add(1);
        let empty = lane.len() == 0;
        let credit = (empty || lane.owed >= CREDIT_BATCH)
            .then(|| (std::mem::take(&mut lane.owed), lane.owner.clone()));
        let forgotten = empty && lane.closed;
        if more {
            self.turn(kind).push_back(key);
        }
        if forgotten {
            self.lanes.remove(&key);
        }
        Some(Taken { item, credit })
    }

    /// Empties every lane (the inbox's reader is gone): for each open lane, where its credit
    /// goes, the items it held, and the credit owed for those taken before.
    pub(crate) fn drain(&mut self) -> Vec<(S, Vec<T>, u32)> {
        self.urgent_turn.clear();
        self.bulk_turn.clear();
        self.lanes.retain(|_, lane| !lane.closed);
        self.lanes
            .values_mut()
            .map(|lane| {
                let mut items: Vec<T> = lane.urgent.drain(..).collect();
                items.extend(lane.bulk.drain(..));
                (lane.owner.clone(), items, std::mem::take(&mut lane.owed))
            })
            .collect()
    }

    /// Where credit goes for every open lane.
    pub(crate) fn owners(&self) -> impl Iterator<Item = &S> {
        self.lanes
            .values()
            .filter(|lane| !lane.closed)
            .map(|lane| &lane.owner)
    }

    fn turn(&mut self, kind: Kind) -> &mut VecDeque<K> {
        match kind {
            Kind::Urgent => &mut self.urgent_turn,
            Kind::Bulk => &mut self.bulk_turn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue with lanes 1 and 2 (owners named "w1", "w2"), 100 items each at most.
    fn queue() -> FairQueue<u8, &'static str, &'static str> {
        let mut queue = FairQueue::new(100);
        queue.open(1, "w1");
        queue.open(2, "w2");
        queue
    }

    fn items(queue: &mut FairQueue<u8, &'static str, &'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| queue.pop().map(|taken| taken.item)).collect()
    }

    #[test]
    fn a_flooding_lane_does_not_hold_up_the_others_and_requests_go_first() {
        let mut queue = queue();
        for _ in 0..50 {
            queue.push(1, Kind::Bulk, "flood").unwrap();
        }
        queue.push(2, Kind::Bulk, "m2").unwrap();
        queue.push(2, Kind::Urgent, "r2").unwrap();
        queue.push(1, Kind::Urgent, "r1").unwrap();
        let taken = items(&mut queue);
        assert_eq!(taken[..4], ["r2", "r1", "flood", "m2"]);
        assert_eq!(taken.len(), 53);
        // A request arriving mid-flood is next.
        for _ in 0..10 {
            queue.push(1, Kind::Bulk, "flood").unwrap();
        }
        queue.pop();
        queue.push(2, Kind::Urgent, "late").unwrap();
        assert_eq!(queue.pop().unwrap().item, "late");
    }

    #[test]
    fn a_flood_of_requests_lets_a_message_through_every_few_requests() {
        let mut queue = queue();
        for _ in 0..50 {
            queue.push(1, Kind::Urgent, "request").unwrap();
        }
        queue.push(2, Kind::Bulk, "message").unwrap();
        let taken = items(&mut queue);
        let at = taken.iter().position(|item| *item == "message").unwrap();
        assert_eq!(at, URGENT_IN_A_ROW as usize, "{taken:?}");
    }

    #[test]
    fn a_lane_holds_its_credit_and_no_more_and_unknown_lanes_refuse() {
        let mut queue = queue();
        for _ in 0..100 {
            queue.push(1, Kind::Bulk, "m").unwrap();
        }
        assert_eq!(queue.push(1, Kind::Urgent, "r"), Err(Refusal::Full("r")));
        assert_eq!(queue.push(3, Kind::Bulk, "m"), Err(Refusal::NoLane("m")));
    }

    #[test]
    fn credit_goes_back_in_batches_and_whenever_a_lane_empties() {
        let mut queue = queue();
        for _ in 0..(CREDIT_BATCH + 10) {
            queue.push(1, Kind::Bulk, "m").unwrap();
        }
        let credits: Vec<(u32, &str)> = std::iter::from_fn(|| queue.pop())
            .filter_map(|taken| taken.credit)
            .collect();
        assert_eq!(credits, [(CREDIT_BATCH, "w1"), (10, "w1")]);
        queue.push(2, Kind::Urgent, "r").unwrap();
        assert_eq!(
            queue.pop().unwrap().credit,
            Some((1, "w2")),
            "an idle lane at once"
        );
    }

    #[test]
    fn a_closed_lane_is_emptied_then_forgotten_and_drain_hands_back_the_rest() {
        let mut queue = queue();
        queue.push(1, Kind::Bulk, "last words").unwrap();
        queue.close(1);
        assert!(matches!(
            queue.push(1, Kind::Bulk, "m"),
            Err(Refusal::NoLane(_))
        ));
        assert_eq!(queue.owners().copied().collect::<Vec<_>>(), ["w2"]);
        assert_eq!(items(&mut queue), ["last words"]);
        queue.push(2, Kind::Bulk, "m").unwrap();
        queue.push(2, Kind::Urgent, "r").unwrap();
        queue.push(2, Kind::Bulk, "taken").unwrap();
        queue.pop();
        assert_eq!(queue.drain(), [("w2", vec!["m", "taken"], 1)]);
        assert!(queue.pop().is_none());
        assert_eq!(queue.owners().copied().collect::<Vec<_>>(), ["w2"]);
    }
}
