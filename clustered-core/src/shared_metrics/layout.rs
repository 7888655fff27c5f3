//! The words of a metrics region: where the header, the entry table, the values and the key
//! strings are, how a worker publishes an entry ([`Writer`]) and how the master reads the
//! published ones back ([`entries`]), checking every index it reads (the region is written by
//! another process). The format is described in the module's parent; the region's last
//! [`ACK_WORDS`] words are not metrics, but the worker's handoff acknowledgements.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Words (`u64`) in a region: 1 MiB. Pages nobody writes cost no memory.
pub(crate) const REGION_WORDS: usize = 1 << 17;
/// Bytes in a region.
pub(crate) const REGION_BYTES: usize = REGION_WORDS * 8;
/// The first word of a region a writer has set up.
const MAGIC: u64 = u64::from_le_bytes(*b"CLMETRC1");
const MAGIC_WORD: usize = 0;
/// How many entries are published (written with release ordering once an entry is complete).
const PUBLISHED_WORD: usize = 1;
/// How many registrations found no room.
const DROPPED_WORD: usize = 2;
/// Not a metric: the heartbeats the worker said in memory (the `handoff_acks` module).
pub(crate) const BEAT_WORD: usize = 3;
/// Not metrics: the load the worker's last heartbeat in memory said, [`LOAD_WORDS`] words
/// from here (the `handoff_acks` module).
pub(crate) const LOAD_BASE: usize = 4;
/// Words of a load report: open connections, requests in flight, requests served, resident
/// bytes.
pub(crate) const LOAD_WORDS: usize = 4;
const ENTRY_BASE: usize = LOAD_BASE + LOAD_WORDS;
/// The most metrics (series, and descriptions) one process can have.
pub(crate) const MAX_ENTRIES: usize = 4096;
const ENTRY_WORDS: usize = 2;
const VALUE_BASE: usize = ENTRY_BASE + MAX_ENTRIES * ENTRY_WORDS;
const VALUE_WORDS: usize = 1 << 16;
const STRING_BASE: usize = VALUE_BASE + VALUE_WORDS;
const STRING_WORDS: usize = ACK_BASE - STRING_BASE;
/// Words at the end of a region that hold no metrics: the worker's handoff acknowledgements
/// (the `handoff_acks` module).
pub(crate) const ACK_WORDS: usize = 64;
/// The first of them.
pub(crate) const ACK_BASE: usize = REGION_WORDS - ACK_WORDS;

/// The upper bounds of every histogram's buckets, in seconds for durations (Prometheus's
/// default buckets); one more bucket, `+Inf`, takes the rest.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One word, a count.
    Counter,
    /// One word, an `f64`'s bits.
    Gauge,
    /// One count per bucket (`BUCKETS` and `+Inf`), then the sum's `f64` bits.
    Histogram,
    /// No value: the key's single label is the metric's description.
    Help,
}

impl Kind {
    fn code(self) -> u64 {
        match self {
            Kind::Counter => 1,
            Kind::Gauge => 2,
            Kind::Histogram => 3,
            Kind::Help => 4,
        }
    }

    fn from_code(code: u64) -> Option<Kind> {
        match code {
            1 => Some(Kind::Counter),
            2 => Some(Kind::Gauge),
            3 => Some(Kind::Histogram),
            4 => Some(Kind::Help),
            _ => None,
        }
    }

    /// How many value words an entry of this kind has.
    pub(crate) fn value_words(self) -> usize {
        match self {
            Kind::Counter | Kind::Gauge => 1,
            Kind::Histogram => BUCKETS.len() + 2,
            Kind::Help => 0,
        }
    }
}

/// The writing side of a region: where the next entry, value and string go. One per region,
/// in the process that records (behind its recorder's lock).
#[derive(Debug)]
pub(crate) struct Writer {
    entries: usize,
    values: usize,
    string_words: usize,
}

impl Writer {
    /// Sets up a fresh (zeroed) region for writing.
    pub(crate) fn start(words: &[AtomicU64]) -> Writer {
        words[MAGIC_WORD].store(MAGIC, Ordering::Release);
        Writer {
            entries: 0,
            values: 0,
            string_words: 0,
        }
    }

    /// Publishes an entry of `kind` named by `key`; the index of its first value word, or
    /// `None` (counted in the header) when the region is full.
    pub(crate) fn publish(&mut self, words: &[AtomicU64], kind: Kind, key: &[u8]) -> Option<usize> {
        let key_words = key.len().div_ceil(8);
        let fits = self.entries < MAX_ENTRIES
            && self.values + kind.value_words() <= VALUE_WORDS
            && self.string_words + key_words <= STRING_WORDS
            && u32::try_from(key.len()).is_ok();
        if !fits {
            words[DROPPED_WORD].fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let key_start = STRING_BASE + self.string_words;
        for (word, chunk) in words[key_start..].iter().zip(key.chunks(8)) {
            let mut bytes = [0; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        let entry = ENTRY_BASE + self.entries * ENTRY_WORDS;
        words[entry].store(kind.code() | (self.values as u64) << 32, Ordering::Relaxed);
        words[entry + 1].store(
            self.string_words as u64 | (key.len() as u64) << 32,
            Ordering::Relaxed,
        );
        let first_value = VALUE_BASE + self.values;
        self.entries += 1;
        self.values += kind.value_words();
        self.string_words += key_words;
        words[PUBLISHED_WORD].store(self.entries as u64, Ordering::Release);
        Some(first_value)
    }
}

/// One published entry as the master reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) kind: Kind,
    /// The encoded key (see `key.rs`).
    pub(crate) key: Vec<u8>,
    /// Its value words, as indices into the region.
    pub(crate) values: Range<usize>,
}

/// The published entries of `words`, skipping any that point outside their areas (a region
/// of the wrong size, or never set up, has none).
pub(crate) fn entries(words: &[AtomicU64]) -> Vec<RawEntry> {
    if words.len() != REGION_WORDS || words[MAGIC_WORD].load(Ordering::Acquire) != MAGIC {
        return Vec::new();
    }
    let published = words[PUBLISHED_WORD].load(Ordering::Acquire);
    let published = usize::try_from(published).map_or(MAX_ENTRIES, |n| n.min(MAX_ENTRIES));
    (0..published)
        .filter_map(|index| {
            let entry = ENTRY_BASE + index * ENTRY_WORDS;
            read_entry(
                words,
                words[entry].load(Ordering::Relaxed),
                words[entry + 1].load(Ordering::Relaxed),
            )
        })
        .collect()
}

fn read_entry(words: &[AtomicU64], kind_word: u64, key_word: u64) -> Option<RawEntry> {
    let kind = Kind::from_code(kind_word & 0xff)?;
    let first_value = usize::try_from(kind_word >> 32).ok()?;
    let last_value = first_value.checked_add(kind.value_words())?;
    if last_value > VALUE_WORDS {
        return None;
    }
    let key_start = usize::try_from(key_word & 0xffff_ffff).ok()?;
    let key_len = usize::try_from(key_word >> 32).ok()?;
    let key_end = key_start.checked_add(key_len.div_ceil(8))?;
    if key_end > STRING_WORDS {
        return None;
    }
    let mut key: Vec<u8> = words[STRING_BASE + key_start..STRING_BASE + key_end]
        .iter()
        .flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes())
        .collect();
    key.truncate(key_len);
    Some(RawEntry {
        kind,
        key,
        values: VALUE_BASE + first_value..VALUE_BASE + last_value,
    })
}

/// How many registrations found the region full.
pub(crate) fn dropped(words: &[AtomicU64]) -> u64 {
    words
        .get(DROPPED_WORD)
        .map_or(0, |word| word.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region() -> Vec<AtomicU64> {
        (0..REGION_WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn published_entries_read_back_with_their_values() {
        let words = region();
        let mut writer = Writer::start(&words);
        let counter = writer.publish(&words, Kind::Counter, b"requests").unwrap();
        let histogram = writer
            .publish(&words, Kind::Histogram, b"a key longer than eight bytes")
            .unwrap();
        words[counter].fetch_add(7, Ordering::Relaxed);
        let read = entries(&words);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].kind, Kind::Counter);
        assert_eq!(read[0].key, b"requests");
        assert_eq!(read[0].values, counter..counter + 1);
        assert_eq!(words[read[0].values.start].load(Ordering::Relaxed), 7);
        assert_eq!(read[1].key, b"a key longer than eight bytes");
        assert_eq!(read[1].values, histogram..histogram + BUCKETS.len() + 2);
    }

    #[test]
    fn the_words_that_are_not_metrics_change_no_entry() {
        let words = region();
        let mut writer = Writer::start(&words);
        writer.publish(&words, Kind::Counter, b"requests").unwrap();
        let before = entries(&words);
        for word in words[BEAT_WORD..LOAD_BASE + LOAD_WORDS]
            .iter()
            .chain(&words[ACK_BASE..])
        {
            word.store(u64::MAX, Ordering::Relaxed);
        }
        assert_eq!(entries(&words), before);
        assert_eq!(dropped(&words), 0);
    }

    #[test]
    fn a_full_region_refuses_and_counts() {
        let words = region();
        let mut writer = Writer::start(&words);
        for n in 0..MAX_ENTRIES {
            assert!(
                writer
                    .publish(&words, Kind::Counter, format!("c{n}").as_bytes())
                    .is_some()
            );
        }
        assert_eq!(writer.publish(&words, Kind::Counter, b"one more"), None);
        assert_eq!(dropped(&words), 1);
        assert_eq!(entries(&words).len(), MAX_ENTRIES);
    }

    #[test]
    fn an_unset_or_wrongly_sized_region_has_no_entries() {
        assert!(entries(&region()).is_empty());
        let short: Vec<AtomicU64> = (0..16).map(|_| AtomicU64::new(0)).collect();
        assert!(entries(&short).is_empty());
        assert_eq!(dropped(&[]), 0);
    }

    #[test]
    fn garbage_written_by_a_hostile_peer_is_skipped_not_followed() {
        let words = region();
        Writer::start(&words);
        words[PUBLISHED_WORD].store(u64::MAX, Ordering::Release);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for word in &words[ENTRY_BASE..VALUE_BASE] {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            word.store(seed, Ordering::Relaxed);
        }
        for entry in entries(&words) {
            assert!(entry.values.end <= REGION_WORDS);
        }
        // Entries pointing just past their areas.
        words[ENTRY_BASE].store(1 | ((VALUE_WORDS as u64) << 32), Ordering::Relaxed);
        words[ENTRY_BASE + 1].store(0, Ordering::Relaxed);
        words[ENTRY_BASE + 2].store(1, Ordering::Relaxed);
        words[ENTRY_BASE + 3].store(STRING_WORDS as u64 | 9 << 32, Ordering::Relaxed);
        words[PUBLISHED_WORD].store(2, Ordering::Release);
        assert!(entries(&words).is_empty());
    }
}
