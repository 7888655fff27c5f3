//! A metric's key in a region: its name and labels as a sequence of strings, each a
//! little-endian `u16` length and that many bytes of UTF-8: the name, then each label's name
//! and value. The master decodes it without trusting it: lengths past the end are an error,
//! invalid UTF-8 is replaced.

/// A series: a metric's name and its labels, sorted by label name so that the same series
/// from different workers is one.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub(crate) struct SeriesKey {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
}

/// Encodes `name` and `labels` (each string cut at 65,535 bytes).
pub(crate) fn encode<'a>(
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(name.len() + 2);
    push(&mut bytes, name);
    for (label, value) in labels {
        push(&mut bytes, label);
        push(&mut bytes, value);
    }
    bytes
}

fn push(bytes: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(usize::from(u16::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    bytes.extend_from_slice(&(end as u16).to_le_bytes());
    bytes.extend_from_slice(&text.as_bytes()[..end]);
}

/// Decodes a key; `None` if it is cut short or has a label without a value.
pub(crate) fn decode(mut bytes: &[u8]) -> Option<SeriesKey> {
    let name = take(&mut bytes)?;
    let mut labels = Vec::new();
    while !bytes.is_empty() {
        let label = take(&mut bytes)?;
        let value = take(&mut bytes)?;
        labels.push((label, value));
    }
    labels.sort();
    Some(SeriesKey { name, labels })
}

fn take(bytes: &mut &[u8]) -> Option<String> {
    let (length, rest) = bytes.split_first_chunk::<2>()?;
    let length = usize::from(u16::from_le_bytes(*length));
    let text = rest.get(..length)?;
    *bytes = &rest[length..];
    Some(String::from_utf8_lossy(text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_with_labels_sorted() {
        let key = encode("http_requests", [("status", "2xx"), ("method", "GET")]);
        let decoded = decode(&key).unwrap();
        assert_eq!(decoded.name, "http_requests");
        assert_eq!(
            decoded.labels,
            vec![
                ("method".to_owned(), "GET".to_owned()),
                ("status".to_owned(), "2xx".to_owned())
            ]
        );
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        let long = "é".repeat(40_000);
        let decoded = decode(&encode(&long, [])).unwrap();
        assert!(decoded.name.len() <= usize::from(u16::MAX));
        assert!(decoded.name.chars().all(|c| c == 'é'));
    }

    #[test]
    fn truncated_or_odd_keys_are_refused() {
        let key = encode("name", [("label", "value")]);
        for cut in 0..key.len() {
            if cut != 6 {
                assert_eq!(decode(&key[..cut]), None, "cut at {cut}");
            }
        }
        assert_eq!(decode(&encode("name", [])).unwrap().labels, vec![]);
        assert_eq!(decode(&[0xff, 0xff, b'x']), None);
        assert_eq!(decode(&[1, 0, 0xff]).unwrap().name, "\u{fffd}");
    }
}
