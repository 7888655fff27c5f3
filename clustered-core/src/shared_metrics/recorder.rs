//! [`RegionRecorder`]: the `metrics` crate's recorder in a cluster process. Each new series
//! is published in the process's [`Region`] once; its handle then writes straight into the
//! region with relaxed atomics (a counter's increment is one `fetch_add`), where the master
//! reads it, also after the process is killed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

use super::key;
use super::layout::{BUCKETS, Kind, Writer};
use super::region::Region;
use crate::sync::lock;

/// Records into a [`Region`].
#[derive(Debug)]
pub(crate) struct RegionRecorder {
    region: Arc<Region>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    writer: Writer,
    counters: HashMap<Key, Counter>,
    gauges: HashMap<Key, Gauge>,
    histograms: HashMap<Key, Histogram>,
    described: HashSet<String>,
}

impl RegionRecorder {
    /// A recorder writing into `region` (fresh, zeroed).
    pub(crate) fn new(region: Arc<Region>) -> Self {
        let writer = Writer::start(region.words());
        Self {
            region,
            state: Mutex::new(State {
                writer,
                counters: HashMap::new(),
                gauges: HashMap::new(),
                histograms: HashMap::new(),
                described: HashSet::new(),
            }),
        }
    }

    /// Installs this recorder for the process; `false` if one was installed before.
    pub(crate) fn install(self) -> bool {
        metrics::set_global_recorder(self).is_ok()
    }

    /// Publishes a series; its first value word, or `None` when the region is full.
    fn publish(&self, writer: &mut Writer, kind: Kind, key: &Key) -> Option<Cell> {
        let labels = key.labels().map(|label| (label.key(), label.value()));
        let encoded = key::encode(key.name(), labels);
        let word = writer.publish(self.region.words(), kind, &encoded)?;
        Some(Cell {
            region: Arc::clone(&self.region),
            word,
        })
    }

    /// The handle of the series `key`, kept in the map `handles` selects: the one made the
    /// first time (by `make`, from its cell in the region, or from none when the region is
    /// full).
    fn register<H: Clone>(
        &self,
        kind: Kind,
        key: &Key,
        handles: impl Fn(&mut State) -> &mut HashMap<Key, H>,
        make: impl FnOnce(Option<Cell>) -> H,
    ) -> H {
        let mut state = lock(&self.state);
        if let Some(handle) = handles(&mut state).get(key) {
            return handle.clone();
        }
        let handle = make(self.publish(&mut state.writer, kind, key));
        handles(&mut state).insert(key.clone(), handle.clone());
        handle
    }

    fn describe(&self, name: KeyName, description: SharedString) {
        let mut state = lock(&self.state);
        if state.described.insert(name.as_str().to_owned()) {
            let encoded = key::encode(name.as_str(), [("help", description.as_ref())]);
            state
                .writer
                .publish(self.region.words(), Kind::Help, &encoded);
        }
    }
}

impl Recorder for RegionRecorder {
    fn describe_counter(&self, name: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(name, description);
    }

    fn describe_gauge(&self, name: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(name, description);
    }

    fn describe_histogram(&self, name: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(name, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.register(
            Kind::Counter,
            key,
            |state| &mut state.counters,
            |cell| cell.map_or_else(Counter::noop, |cell| Counter::from_arc(Arc::new(cell))),
        )
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.register(
            Kind::Gauge,
            key,
            |state| &mut state.gauges,
            |cell| cell.map_or_else(Gauge::noop, |cell| Gauge::from_arc(Arc::new(cell))),
        )
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.register(
            Kind::Histogram,
            key,
            |state| &mut state.histograms,
            |cell| cell.map_or_else(Histogram::noop, |cell| Histogram::from_arc(Arc::new(cell))),
        )
    }
}

/// A series' value words in the region.
#[derive(Debug)]
struct Cell {
    region: Arc<Region>,
    /// Its first value word.
    word: usize,
}

impl Cell {
    fn word(&self, offset: usize) -> &AtomicU64 {
        &self.region.words()[self.word + offset]
    }

    /// Changes the `f64` kept in the word at `offset`.
    fn update_f64(&self, offset: usize, change: impl Fn(f64) -> f64) {
        let word = self.word(offset);
        let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some(change(f64::from_bits(bits)).to_bits())
        });
    }
}

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.word(0).fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.word(0).fetch_max(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, value: f64) {
        self.update_f64(0, |current| current + value);
    }

    fn decrement(&self, value: f64) {
        self.update_f64(0, |current| current - value);
    }

    fn set(&self, value: f64) {
        self.word(0).store(value.to_bits(), Ordering::Relaxed);
    }
}

impl HistogramFn for Cell {
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    fn record_many(&self, value: f64, count: usize) {
        if value.is_nan() {
            return;
        }
        let bucket = BUCKETS
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(BUCKETS.len());
        self.word(bucket).fetch_add(count as u64, Ordering::Relaxed);
        self.update_f64(BUCKETS.len() + 1, |sum| sum + value * count as f64);
    }
}

#[cfg(test)]
mod tests {
    use metrics::with_local_recorder;

    use super::*;
    use crate::shared_metrics::layout::{MAX_ENTRIES, dropped, entries};

    #[test]
    fn recorded_values_land_in_the_region() {
        let (master_view, fd) = Region::create().unwrap();
        let recorder = RegionRecorder::new(Arc::new(Region::open(&fd).unwrap()));
        with_local_recorder(&recorder, || {
            metrics::describe_counter!("visits_total", "Visits of /");
            for _ in 0..3 {
                metrics::counter!("visits_total", "path" => "/").increment(2);
            }
            metrics::gauge!("queue").set(4.5);
            metrics::gauge!("queue").decrement(1.0);
            metrics::histogram!("latency").record(0.2);
            metrics::histogram!("latency").record(100.0);
        });
        let words = master_view.words();
        let read = entries(words);
        let kinds: Vec<Kind> = read.iter().map(|entry| entry.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Help, Kind::Counter, Kind::Gauge, Kind::Histogram]
        );
        let value = |index: usize, offset: usize| {
            words[read[index].values.start + offset].load(Ordering::Relaxed)
        };
        assert_eq!(value(1, 0), 6, "one series however often it is named");
        assert_eq!(f64::from_bits(value(2, 0)), 3.5);
        assert_eq!(value(3, 5), 1, "0.2 is in the 0.25 bucket");
        assert_eq!(value(3, BUCKETS.len()), 1, "100 is in +Inf");
        assert_eq!(f64::from_bits(value(3, BUCKETS.len() + 1)), 100.2);
    }

    #[test]
    fn series_past_a_full_region_are_no_ops_and_counted() {
        let (master_view, fd) = Region::create().unwrap();
        let recorder = RegionRecorder::new(Arc::new(Region::open(&fd).unwrap()));
        with_local_recorder(&recorder, || {
            for user in 0..MAX_ENTRIES + 10 {
                metrics::counter!("logins_total", "user" => user.to_string()).increment(1);
            }
        });
        assert_eq!(entries(master_view.words()).len(), MAX_ENTRIES);
        assert_eq!(dropped(master_view.words()), 10);
    }
}
