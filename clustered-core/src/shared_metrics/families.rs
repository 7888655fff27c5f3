//! [`Families`]: the cluster's metrics being summed up for one scrape — series from every
//! process merged by name and labels (counters and histogram buckets added, gauges combined by
//! their [`GaugeAggregation`]) — and their Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::key::SeriesKey;
use super::layout::{BUCKETS, Kind};

/// How the master combines a gauge that several processes report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GaugeAggregation {
    /// The sum over processes (the default: connections, queue lengths, bytes).
    #[default]
    Sum,
    /// The highest value any process reports.
    Max,
    /// The lowest value any process reports.
    Min,
    /// One series per process, with a `worker` label (the slot, or `master`).
    PerWorker,
}

/// One series' value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Value {
    Counter(u64),
    /// A counter of a measure that is not a whole number (seconds of CPU).
    FloatCounter(f64),
    Gauge(f64),
    /// Counts per bucket (not cumulative; the last is `+Inf`), and the sum.
    Histogram {
        buckets: [u64; BUCKETS.len() + 1],
        sum: f64,
    },
}

impl Value {
    fn kind(&self) -> Kind {
        match self {
            Value::Counter(_) | Value::FloatCounter(_) => Kind::Counter,
            Value::Gauge(_) => Kind::Gauge,
            Value::Histogram { .. } => Kind::Histogram,
        }
    }

    /// Merges `other` (of the same kind) into this value.
    pub(crate) fn merge(&mut self, other: &Value, aggregation: GaugeAggregation) {
        match (self, other) {
            (Value::Counter(total), Value::Counter(more)) => *total = total.saturating_add(*more),
            (Value::FloatCounter(total), Value::FloatCounter(more)) => *total += more,
            (Value::Gauge(value), Value::Gauge(other)) => {
                *value = match aggregation {
                    GaugeAggregation::Sum | GaugeAggregation::PerWorker => *value + other,
                    GaugeAggregation::Max => value.max(*other),
                    GaugeAggregation::Min => value.min(*other),
                }
            }
            (
                Value::Histogram { buckets, sum },
                Value::Histogram {
                    buckets: more,
                    sum: more_sum,
                },
            ) => {
                for (bucket, more) in buckets.iter_mut().zip(more) {
                    *bucket = bucket.saturating_add(*more);
                }
                *sum += more_sum;
            }
            _ => {}
        }
    }
}

/// Metric families by name.
#[derive(Debug, Default)]
pub(crate) struct Families {
    families: BTreeMap<String, Family>,
}

#[derive(Debug)]
struct Family {
    kind: Kind,
    help: Option<String>,
    series: BTreeMap<Vec<(String, String)>, Value>,
}

impl Families {
    /// Adds a series' value, merged with the same series from other processes. A name already
    /// used by another kind keeps its first kind (the series is left out).
    pub(crate) fn add(&mut self, key: SeriesKey, value: Value, aggregation: GaugeAggregation) {
        let name = sanitize(&key.name, true);
        let labels = key
            .labels
            .into_iter()
            .map(|(label, value)| (sanitize(&label, false), value))
            .collect();
        let family = self.families.entry(name).or_insert_with(|| Family {
            kind: value.kind(),
            help: None,
            series: BTreeMap::new(),
        });
        if family.kind != value.kind() {
            tracing::debug!(name = %key.name, "a metric recorded as two kinds; one is left out");
            return;
        }
        match family.series.entry(labels) {
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(value);
            }
            std::collections::btree_map::Entry::Occupied(mut occupied) => {
                occupied.get_mut().merge(&value, aggregation);
            }
        }
    }

    /// Sets the description of the family `name`, if it has series.
    pub(crate) fn describe(&mut self, name: &str, help: &str) {
        if let Some(family) = self.families.get_mut(&sanitize(name, true)) {
            family.help = Some(help.to_owned());
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every family.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        for (name, family) in &self.families {
            if let Some(help) = &family.help {
                let help = help.replace('\\', r"\\").replace('\n', r"\n");
                let _ = writeln!(text, "# HELP {name} {help}");
            }
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram | Kind::Help => "histogram",
            };
            let _ = writeln!(text, "# TYPE {name} {kind}");
            for (labels, value) in &family.series {
                render_series(&mut text, name, labels, value);
            }
        }
        text
    }
}

fn render_series(text: &mut String, name: &str, labels: &[(String, String)], value: &Value) {
    match value {
        Value::Counter(count) => {
            let _ = writeln!(text, "{name}{} {count}", label_set(labels, None));
        }
        Value::Gauge(value) | Value::FloatCounter(value) => {
            let _ = writeln!(text, "{name}{} {}", label_set(labels, None), number(*value));
        }
        Value::Histogram { buckets, sum } => {
            let mut cumulative: u64 = 0;
            let bounds = BUCKETS.iter().map(|bound| number(*bound));
            for (count, bound) in buckets.iter().zip(bounds.chain(["+Inf".to_owned()])) {
                cumulative = cumulative.saturating_add(*count);
                let labels = label_set(labels, Some(&bound));
                let _ = writeln!(text, "{name}_bucket{labels} {cumulative}");
            }
            let plain = label_set(labels, None);
            let _ = writeln!(text, "{name}_sum{plain} {}", number(*sum));
            let _ = writeln!(text, "{name}_count{plain} {cumulative}");
        }
    }
}

/// `{a="1",b="2"}` with `le` last when given; empty without labels.
fn label_set(labels: &[(String, String)], le: Option<&str>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(label, value)| (label.as_str(), value.as_str()))
        .chain(le.map(|le| ("le", le)))
        .map(|(label, value)| {
            let value = value
                .replace('\\', r"\\")
                .replace('"', "\\\"")
                .replace('\n', r"\n");
            format!("{label}=\"{value}\"")
        })
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// A sample value as Prometheus writes it.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

/// A valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or label name (no `:`): every other
/// character becomes `_`, as the `metrics` crate's Prometheus exporter does.
fn sanitize(name: &str, metric: bool) -> String {
    let mut clean: String = name
        .chars()
        .enumerate()
        .map(|(index, c)| {
            let valid = c.is_ascii_alphabetic()
                || c == '_'
                || (metric && c == ':')
                || (index > 0 && c.is_ascii_digit());
            if valid { c } else { '_' }
        })
        .collect();
    if clean.is_empty() {
        clean.push('_');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(l, v)| ((*l).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn series_merge_by_kind_and_aggregation() {
        let mut families = Families::default();
        families.add(key("hits", &[]), Value::Counter(3), GaugeAggregation::Sum);
        families.add(key("hits", &[]), Value::Counter(4), GaugeAggregation::Sum);
        families.add(key("peak", &[]), Value::Gauge(2.0), GaugeAggregation::Max);
        families.add(key("peak", &[]), Value::Gauge(5.0), GaugeAggregation::Max);
        families.add(key("low", &[]), Value::Gauge(2.0), GaugeAggregation::Min);
        families.add(key("low", &[]), Value::Gauge(5.0), GaugeAggregation::Min);
        families.add(key("hits", &[]), Value::Gauge(1.0), GaugeAggregation::Sum);
        families.describe("hits", "Hits.\nAll of them");
        let text = families.render();
        assert!(
            text.contains("# HELP hits Hits.\\nAll of them\n# TYPE hits counter\nhits 7\n"),
            "{text}"
        );
        assert!(text.contains("peak 5\n"), "{text}");
        assert!(text.contains("low 2\n"), "{text}");
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let mut families = Families::default();
        let mut buckets = [0; BUCKETS.len() + 1];
        buckets[0] = 2;
        buckets[BUCKETS.len()] = 1;
        let value = Value::Histogram { buckets, sum: 20.5 };
        families.add(
            key("latency", &[("path", "/")]),
            value.clone(),
            GaugeAggregation::Sum,
        );
        families.add(
            key("latency", &[("path", "/")]),
            value,
            GaugeAggregation::Sum,
        );
        let text = families.render();
        assert!(
            text.contains("latency_bucket{path=\"/\",le=\"0.005\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_bucket{path=\"/\",le=\"10\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_bucket{path=\"/\",le=\"+Inf\"} 6\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_sum{path=\"/\"} 41\nlatency_count{path=\"/\"} 6\n"),
            "{text}"
        );
    }

    #[test]
    fn names_and_values_are_made_valid() {
        let mut families = Families::default();
        let labels = [("bad-label", "a \"quoted\"\\ value\n")];
        families.add(
            key("9http.requests", &labels),
            Value::Gauge(f64::NAN),
            GaugeAggregation::Sum,
        );
        families.add(
            key("", &[]),
            Value::Gauge(f64::NEG_INFINITY),
            GaugeAggregation::Sum,
        );
        let text = families.render();
        assert!(
            text.contains(r#"_http_requests{bad_label="a \"quoted\"\\ value\n"} NaN"#),
            "{text}"
        );
        assert!(text.contains("\n_ -Inf\n"), "{text}");
    }
}
