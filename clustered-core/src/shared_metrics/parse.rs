//! [`parse_exposition`]: reads Prometheus text exposition (format 0.0.4) strictly, as a
//! scraper would, into [`Sample`]s: what `clusterctl metrics --json` prints, and how the
//! tests check what the master serves.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (with `_bucket`, `_sum` or `_count` for a histogram's).
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// Why a text is not valid exposition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ExpositionError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses `text`, checking names, labels, values, `TYPE` lines (before their samples, once),
/// that each family's samples are together, and that every histogram's buckets are cumulative
/// and end with `+Inf` equal to its `_count`.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, ExpositionError> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fail = |reason: String| ExpositionError {
            line: index + 1,
            reason,
        };
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            if words.next() == Some("TYPE") {
                let name = words.next().unwrap_or_default();
                let kind = words.next().unwrap_or_default();
                if !valid_name(name, true) {
                    return Err(fail(format!("invalid metric name {name:?}")));
                }
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(fail(format!("unknown type {kind:?}")));
                }
                if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                    return Err(fail(format!("a second TYPE line for {name}")));
                }
                if finished.contains(name) || current.as_deref() == Some(name) {
                    return Err(fail(format!("TYPE of {name} after its samples")));
                }
            }
            continue;
        }
        let sample = parse_sample(line).map_err(fail)?;
        let family = family_of(&sample.name, &types);
        if current.as_deref() != Some(family.as_str()) {
            if finished.contains(&family) {
                return Err(fail(format!("samples of {family} are not together")));
            }
            if let Some(done) = current.replace(family.clone()) {
                finished.insert(done);
            }
        }
        samples.push(sample);
    }
    check_histograms(&samples, &types)?;
    Ok(samples)
}

/// The family a sample belongs to: its name, or a histogram's without the suffix.
fn family_of(name: &str, types: &HashMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|kind| kind == "histogram")
        {
            return base.to_owned();
        }
    }
    name.to_owned()
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_name(name, true) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = rest
                .split_once("=\"")
                .ok_or_else(|| format!("a label of {name} without =\"value\""))?;
            if !valid_name(label, false) {
                return Err(format!("invalid label name {label:?}"));
            }
            let (value, after) = unescape_until_quote(after)?;
            labels.push((label.to_owned(), value));
            rest = after;
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("{name} has no value"))?;
    let value = parse_value(value).ok_or_else(|| format!("invalid value {value:?}"))?;
    if let Some(timestamp) = fields.next()
        && timestamp.parse::<i64>().is_err()
    {
        return Err(format!("invalid timestamp {timestamp:?}"));
    }
    if fields.next().is_some() {
        return Err(format!("text after the sample of {name}"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// A label value up to its closing quote, unescaped; and what follows the quote.
fn unescape_until_quote(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[at + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("invalid escape {other:?} in a label value")),
            },
            '\n' => return Err("a raw line break in a label value".into()),
            c => value.push(c),
        }
    }
    Err("a label value without its closing quote".into())
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok().filter(|value: &f64| value.is_finite()),
    }
}

fn valid_name(name: &str, metric: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (metric && c == ':'));
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':'))
}

/// Every histogram's buckets are cumulative, end with `+Inf`, and `+Inf` equals `_count`.
fn check_histograms(
    samples: &[Sample],
    types: &HashMap<String, String>,
) -> Result<(), ExpositionError> {
    let fail = |reason: String| ExpositionError { line: 0, reason };
    type Series = (String, Vec<(String, String)>);
    let mut buckets: BTreeMap<Series, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<Series, f64> = BTreeMap::new();
    for sample in samples {
        let family = family_of(&sample.name, types);
        if types.get(&family).is_none_or(|kind| kind != "histogram") {
            continue;
        }
        let mut labels = sample.labels.clone();
        if sample.name.ends_with("_bucket") {
            let position = labels.iter().position(|(label, _)| label == "le");
            let le = position.map(|at| labels.remove(at).1);
            let bound = le
                .as_deref()
                .and_then(parse_value)
                .ok_or_else(|| fail(format!("a bucket of {family} without a valid le")))?;
            labels.sort();
            let series = buckets.entry((family, labels)).or_default();
            series.push((bound, sample.value));
        } else if sample.name.ends_with("_count") {
            labels.sort();
            counts.insert((family, labels), sample.value);
        }
    }
    for ((family, labels), series) in &buckets {
        let ordered = series
            .windows(2)
            .all(|pair| pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1);
        if !ordered {
            return Err(fail(format!(
                "buckets of {family}{labels:?} are not cumulative"
            )));
        }
        let last = series.last().copied().unwrap_or((0.0, 0.0));
        let count = counts.get(&(family.clone(), labels.clone()));
        if last.0 != f64::INFINITY || count != Some(&last.1) {
            return Err(fail(format!(
                "{family}{labels:?}: no +Inf bucket equal to _count"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_exposition_parses() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\\n\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
                    h_sum 4.5\nh_count 2\nplain -Inf 1700000000\n";
        let samples = parse_exposition(text).unwrap();
        assert_eq!(samples.len(), 6);
        assert_eq!(
            samples[0].labels,
            vec![("x".to_owned(), "1\"\n".to_owned())]
        );
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[5].value, f64::NEG_INFINITY);
    }

    #[test]
    fn invalid_exposition_is_refused_with_its_line() {
        let cases = [
            ("9bad 1\n", 1),
            ("a{x=1} 1\n", 1),
            ("a one\n", 1),
            ("a 1\nb 1\na 2\n", 3),
            ("a 1\n# TYPE a counter\n", 2),
            ("# TYPE a counter\n# TYPE a gauge\n", 2),
            ("# TYPE a kind\n", 1),
            ("a{x=\"\\q\"} 1\n", 1),
            ("a 1 2 3\n", 1),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
                0,
            ),
            ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_count 2\n", 0),
        ];
        for (text, line) in cases {
            let error = parse_exposition(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}: {error}");
        }
    }
}
