//! [`FairQueue`]: the master's inbox as plain data. Each worker has a lane of its own, bounded
//! by the credit it was given ([`clustered_ipc::INBOX_WINDOW`]), whose items are taken in the
//! order they were put, messages and requests alike (so a worker's request comes after its own
//! earlier messages). The lanes take turns, and one whose next item is a request goes before
//! those whose next item is a message (but one of those goes after [`URGENT_IN_A_ROW`]
//! requests in a row). So a worker flooding the inbox slows only itself: another's request is
//! next in line whatever the flood holds, and a flood of requests still lets other workers'
//! messages through. Each item taken is credit owed back to its lane's worker, given in
//! batches ([`CREDIT_BATCH`]) and whenever the lane empties (so an idle worker is never left
//! short).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Credit given back to a worker at the latest once this much is owed (its lane not empty).
pub(crate) const CREDIT_BATCH: u32 = 64;

/// Items taken in a row, at most, from lanes whose next item is urgent while lanes whose next
/// item is bulk wait: then one of those goes, so that a flood of requests from one worker
/// cannot starve another's messages.
pub(crate) const URGENT_IN_A_ROW: u32 = 8;

/// What an item is, for the turn of its lane once it is the lane's next item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A request (someone waits for the answer): its lane goes before lanes whose next item
    /// is bulk.
    Urgent,
    /// A message: its lane goes when no lane's next item is urgent.
    Bulk,
}

/// One worker's lane.
#[derive(Debug)]
struct Lane<T, S> {
    /// Its items, in the order they were put.
    items: VecDeque<(Kind, T)>,
    /// Items of this lane the inbox's reader took since credit was last given back.
    owed: u32,
    /// Where credit goes (the worker's IPC sender).
    owner: S,
    /// Its worker is gone: no more items come; the lane goes once empty.
    closed: bool,
}

impl<T, S> Lane<T, S> {
    /// The kind of its next item, if it has one.
    fn next_kind(&self) -> Option<Kind> {
        self.items.front().map(|(kind, _)| *kind)
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
    /// Lanes whose next item is urgent, in turn (each at most once).
    urgent_turn: VecDeque<K>,
    /// Lanes whose next item is bulk, in turn (each at most once).
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
            items: VecDeque::new(),
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
        if lane.items.is_empty() {
            self.lanes.remove(&key);
        }
    }

    /// Queues `item` at the end of `key`'s lane.
    pub(crate) fn push(&mut self, key: K, kind: Kind, item: T) -> Result<(), Refusal<T>> {
        let Some(lane) = self.lanes.get_mut(&key).filter(|lane| !lane.closed) else {
            return Err(Refusal::NoLane(item));
        };
        if lane.items.len() >= self.capacity {
            return Err(Refusal::Full(item));
        }
        lane.items.push_back((kind, item));
        if lane.items.len() == 1 {
            self.turn(kind).push_back(key);
        }
        Ok(())
    }

    /// The next item: the next of a lane whose next item is urgent, if any (but of one whose
    /// next item is bulk after [`URGENT_IN_A_ROW`] urgent ones while such lanes wait), one lane
    /// after the other.
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

    /// The next item of the next lane in `kind`'s turn; the lane then waits in the turn of the
    /// kind of its next item.
    fn pop_kind(&mut self, kind: Kind) -> Option<Taken<T, S>> {
        // A lane is in a turn only while its next item is of that kind; one whose is not is
        // passed over rather than trusted.
        let (key, lane, item) = loop {
            let key = self.turn(kind).pop_front()?;
            let Some(lane) = self.lanes.get_mut(&key) else {
                continue;
            };
            if lane.next_kind() == Some(kind)
                && let Some((_, item)) = lane.items.pop_front()
            {
                break (key, lane, item);
            }
        };
        lane.owed = lane.owed.saturating_add(1);
        let next = lane.next_kind();
        let credit = (next.is_none() || lane.owed >= CREDIT_BATCH)
            .then(|| (std::mem::take(&mut lane.owed), lane.owner.clone()));
        let forgotten = next.is_none() && lane.closed;
        if let Some(next) = next {
            self.turn(next).push_back(key);
        }
        if forgotten {
            self.lanes.remove(&key);
        }
        Some(Taken { item, credit })
    }

    /// Empties every lane (the inbox's reader is gone): for each open lane, where its credit
    /// goes, the items it held in order, and the credit owed for those taken before.
    pub(crate) fn drain(&mut self) -> Vec<(S, Vec<T>, u32)> {
        self.urgent_turn.clear();
        self.bulk_turn.clear();
        self.lanes.retain(|_, lane| !lane.closed);
        self.lanes
            .values_mut()
            .map(|lane| {
                let items = lane.items.drain(..).map(|(_, item)| item).collect();
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
    fn one_lane_is_taken_in_the_order_it_was_put_messages_and_requests_alike() {
        let mut queue = queue();
        queue.push(1, Kind::Bulk, "count").unwrap();
        queue.push(1, Kind::Urgent, "total").unwrap();
        queue.push(1, Kind::Bulk, "count again").unwrap();
        assert_eq!(items(&mut queue), ["count", "total", "count again"]);
    }

    #[test]
    fn a_lane_whose_next_item_is_a_request_goes_before_the_others_messages() {
        let mut queue = queue();
        for _ in 0..50 {
            queue.push(1, Kind::Bulk, "flood").unwrap();
        }
        queue.push(2, Kind::Urgent, "r2").unwrap();
        queue.push(2, Kind::Bulk, "m2").unwrap();
        let taken = items(&mut queue);
        assert_eq!(taken[..3], ["r2", "flood", "m2"]);
        assert_eq!(taken.len(), 52);
        // A request arriving mid-flood is next.
        for _ in 0..10 {
            queue.push(1, Kind::Bulk, "flood").unwrap();
        }
        queue.pop();
        queue.push(2, Kind::Urgent, "late").unwrap();
        assert_eq!(queue.pop().unwrap().item, "late");
    }

    #[test]
    fn a_lane_whose_request_follows_its_messages_waits_its_turn_behind_them() {
        let mut queue = queue();
        for _ in 0..3 {
            queue.push(1, Kind::Bulk, "flood").unwrap();
        }
        queue.push(1, Kind::Urgent, "r1").unwrap();
        queue.push(2, Kind::Bulk, "m2").unwrap();
        queue.push(2, Kind::Urgent, "r2").unwrap();
        // Lanes take turns among those whose next item is a message, and one whose next item
        // becomes a request goes next.
        assert_eq!(
            items(&mut queue),
            ["flood", "m2", "r2", "flood", "flood", "r1"]
        );
    }

    #[test]
    fn a_flood_of_requests_lets_another_lanes_message_through_after_a_few() {
        let mut queue = queue();
        for _ in 0..50 {
            queue.push(1, Kind::Urgent, "request").unwrap();
        }
        queue.push(2, Kind::Bulk, "message").unwrap();
        let taken = items(&mut queue);
        let at = taken.iter().position(|item| *item == "message").unwrap();
        assert_eq!(at, URGENT_IN_A_ROW as usize, "{taken:?}");
        assert_eq!(taken.len(), 51);
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
        assert_eq!(queue.pop().unwrap().item, "m");
        assert_eq!(queue.drain(), [("w2", vec!["r", "taken"], 1)]);
        assert!(queue.pop().is_none());
        assert_eq!(queue.owners().copied().collect::<Vec<_>>(), ["w2"]);
    }
}
