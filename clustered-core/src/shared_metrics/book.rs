//! [`MetricsBook`]: the master's view of every process's metrics: the regions of the live
//! processes, read at each scrape, and what the dead ones counted, kept when they exit, so
//! counters and histograms summed over the cluster never go down.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::families::{Families, GaugeAggregation, Value};
use super::key::{self, SeriesKey};
use super::layout::{self, BUCKETS, Kind};
use super::region::Region;
use crate::sync::lock;

/// The name of the counter of series a process could not register (its region was full).
const DROPPED: &str = "cluster_metrics_dropped_total";

/// A counter's or histogram's total over every process of a master, as an upgrade hands it
/// to the next master.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct MetricTotal {
    pub(crate) key: SeriesKey,
    pub(crate) value: Value,
}

/// Every process's metrics, for the master.
#[derive(Debug, Default)]
pub(crate) struct MetricsBook {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Live processes' regions, by the id the caller gave.
    live: BTreeMap<u64, Source>,
    /// Counters and histograms of processes that exited.
    retired: BTreeMap<SeriesKey, Value>,
    /// The totals an upgrade's old master handed over (its latest word replaces the one
    /// before: its totals only grow).
    inherited: BTreeMap<SeriesKey, Value>,
    /// Descriptions, once seen.
    help: BTreeMap<String, String>,
    aggregations: HashMap<String, GaugeAggregation>,
}

#[derive(Debug)]
struct Source {
    /// The `worker` label of its per-worker gauges.
    worker: String,
    region: Arc<Region>,
    /// The highest value read from each counter word, so a process writing a lower one
    /// (`Counter::absolute`, or a bug) never makes a sum go down.
    high: HashMap<usize, u64>,
}

impl MetricsBook {
    /// Starts reading `region`, the metrics of process `id` (its `worker` label: `worker`).
    pub(crate) fn add(&self, id: u64, worker: String, region: Arc<Region>) {
        let source = Source {
            worker,
            region,
            high: HashMap::new(),
        };
        lock(&self.state).live.insert(id, source);
    }

    /// Process `id` exited: what its counters and histograms say now is kept for good, its
    /// gauges are gone.
    pub(crate) fn retire(&self, id: u64) {
        let mut state = lock(&self.state);
        let Some(mut source) = state.live.remove(&id) else {
            return;
        };
        for (key, value) in read(&mut source, &mut state.help) {
            if matches!(value, Value::Gauge(_)) {
                continue;
            }
            match state.retired.get_mut(&key) {
                Some(kept) => kept.merge(&value, GaugeAggregation::Sum),
                None => {
                    state.retired.insert(key, value);
                }
            }
        }
    }

    /// The total of every counter and histogram series over every process, live and dead
    /// (and those handed over by an earlier master), for an upgrade to hand on.
    pub(crate) fn totals(&self) -> Vec<MetricTotal> {
        let mut state = lock(&self.state);
        let State {
            live,
            retired,
            inherited,
            help,
            ..
        } = &mut *state;
        let mut totals = retired.clone();
        let counted = live.values_mut().flat_map(|source| read(source, help));
        for (key, value) in counted.chain(inherited.clone()) {
            if matches!(value, Value::Gauge(_)) {
                continue;
            }
            match totals.get_mut(&key) {
                Some(total) => total.merge(&value, GaugeAggregation::Sum),
                None => {
                    totals.insert(key, value);
                }
            }
        }
        totals
            .into_iter()
            .map(|(key, value)| MetricTotal { key, value })
            .collect()
    }

    /// Takes `totals`, handed over by the master this one upgrades, as counted already; a
    /// later handover replaces an earlier one.
    pub(crate) fn inherit(&self, totals: Vec<MetricTotal>) {
        let inherited = totals
            .into_iter()
            .filter(|total| !matches!(total.value, Value::Gauge(_)))
            .map(|total| (total.key, total.value))
            .collect();
        lock(&self.state).inherited = inherited;
    }

    /// How the gauge `name` is combined across processes (default: summed).
    pub(crate) fn set_aggregation(&self, name: String, aggregation: GaugeAggregation) {
        lock(&self.state).aggregations.insert(name, aggregation);
    }

    /// Adds every process's series, live and retired, to `families`.
    pub(crate) fn fill(&self, families: &mut Families) {
        let mut state = lock(&self.state);
        let State {
            live,
            retired,
            inherited,
            help,
            aggregations,
        } = &mut *state;
        for source in live.values_mut() {
            let worker = source.worker.clone();
            for (mut key, value) in read(source, help) {
                let aggregation = aggregations.get(&key.name).copied().unwrap_or_default();
                if aggregation == GaugeAggregation::PerWorker && matches!(value, Value::Gauge(_)) {
                    key.labels.retain(|(label, _)| label != "worker");
                    key.labels.push(("worker".into(), worker.clone()));
                    key.labels.sort();
                }
                families.add(key, value, aggregation);
            }
        }
        for (key, value) in retired.iter().chain(inherited.iter()) {
            families.add(key.clone(), value.clone(), GaugeAggregation::Sum);
        }
        for (name, text) in help.iter() {
            families.describe(name, text);
        }
        families.describe(
            DROPPED,
            "Series a process could not record: its metrics region was full.",
        );
    }
}

/// Every series of `source` with its value now; descriptions go to `help`.
fn read(source: &mut Source, help: &mut BTreeMap<String, String>) -> Vec<(SeriesKey, Value)> {
    let words = source.region.words();
    let mut high_value = |word: usize| {
        let now = words[word].load(Ordering::Relaxed);
        let high = source.high.entry(word).or_insert(0);
        *high = (*high).max(now);
        *high
    };
    let mut series = Vec::new();
    for entry in layout::entries(words) {
        let Some(key) = key::decode(&entry.key) else {
            continue;
        };
        let first = entry.values.start;
        let value = match entry.kind {
            Kind::Help => {
                if let Some((_, text)) = key.labels.into_iter().next() {
                    help.insert(key.name, text);
                }
                continue;
            }
            Kind::Counter => Value::Counter(high_value(first)),
            Kind::Gauge => Value::Gauge(f64::from_bits(words[first].load(Ordering::Relaxed))),
            Kind::Histogram => {
                let mut buckets = [0; BUCKETS.len() + 1];
                for (offset, bucket) in buckets.iter_mut().enumerate() {
                    *bucket = high_value(first + offset);
                }
                let sum = words[first + BUCKETS.len() + 1].load(Ordering::Relaxed);
                Value::Histogram {
                    buckets,
                    sum: f64::from_bits(sum),
                }
            }
        };
        series.push((key, value));
    }
    let dropped = SeriesKey {
        name: DROPPED.into(),
        labels: Vec::new(),
    };
    series.push((dropped, Value::Counter(layout::dropped(words))));
    series
}

#[cfg(test)]
mod tests {
    use metrics::with_local_recorder;

    use super::*;
    use crate::shared_metrics::recorder::RegionRecorder;

    /// A process's region as the master sees it, and its recorder.
    fn process() -> (Arc<Region>, RegionRecorder) {
        let (view, fd) = Region::create().unwrap();
        let region = Arc::new(Region::open(&fd).unwrap());
        (Arc::new(view), RegionRecorder::new(region))
    }

    fn scrape(book: &MetricsBook) -> String {
        let mut families = Families::default();
        book.fill(&mut families);
        families.render()
    }

    #[test]
    fn counters_of_live_and_dead_processes_add_up_and_never_go_down() {
        let book = MetricsBook::default();
        let (one, one_recorder) = process();
        let (two, two_recorder) = process();
        book.add(1, "1".into(), one);
        book.add(2, "2".into(), two);
        with_local_recorder(&one_recorder, || {
            metrics::counter!("visits_total").increment(5)
        });
        with_local_recorder(&two_recorder, || {
            metrics::counter!("visits_total").increment(7)
        });
        assert!(scrape(&book).contains("\nvisits_total 12\n"));
        // A lower absolute value is not taken.
        with_local_recorder(&one_recorder, || {
            metrics::counter!("visits_total").absolute(1)
        });
        assert!(scrape(&book).contains("\nvisits_total 12\n"));
        // Process 1 dies (its recorder is gone with it); its count stays.
        drop(one_recorder);
        book.retire(1);
        assert!(scrape(&book).contains("\nvisits_total 12\n"));
        with_local_recorder(&two_recorder, || {
            metrics::counter!("visits_total").increment(1)
        });
        assert!(scrape(&book).contains("\nvisits_total 13\n"));
        book.retire(2);
        book.retire(2);
        assert!(scrape(&book).contains("\nvisits_total 13\n"));
    }

    #[test]
    fn gauges_of_dead_processes_vanish_and_per_worker_ones_are_labelled() {
        let book = MetricsBook::default();
        book.set_aggregation("queue".into(), GaugeAggregation::PerWorker);
        let (one, one_recorder) = process();
        let (two, two_recorder) = process();
        book.add(1, "1".into(), one);
        book.add(2, "2".into(), two);
        for recorder in [&one_recorder, &two_recorder] {
            with_local_recorder(recorder, || {
                metrics::gauge!("open").set(2.0);
                metrics::gauge!("queue").set(3.0);
                metrics::describe_gauge!("open", "Open things");
            });
        }
        let text = scrape(&book);
        assert!(
            text.contains("# HELP open Open things\n# TYPE open gauge\nopen 4\n"),
            "{text}"
        );
        assert!(
            text.contains("queue{worker=\"1\"} 3\nqueue{worker=\"2\"} 3\n"),
            "{text}"
        );
        book.retire(2);
        let text = scrape(&book);
        assert!(text.contains("\nopen 2\n"), "{text}");
        assert!(!text.contains("worker=\"2\""), "{text}");
    }

    #[test]
    fn histograms_add_bucket_by_bucket() {
        let book = MetricsBook::default();
        let (one, one_recorder) = process();
        let (two, two_recorder) = process();
        book.add(1, "1".into(), one);
        book.add(2, "2".into(), two);
        with_local_recorder(&one_recorder, || metrics::histogram!("took").record(0.004));
        with_local_recorder(&two_recorder, || metrics::histogram!("took").record(3.0));
        book.retire(1);
        let text = scrape(&book);
        assert!(text.contains("took_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("took_bucket{le=\"5\"} 2\n"), "{text}");
        assert!(text.contains("took_sum 3.004\ntook_count 2\n"), "{text}");
    }
}
