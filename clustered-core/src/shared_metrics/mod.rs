//! Metrics recorded in every process of the cluster and summed by the master.
//!
//! Each process records with the [`metrics`] crate's facade (`metrics::counter!`, `gauge!`,
//! `histogram!`); the cluster installs its recorder in every worker (and in the master). The
//! recorder writes into a **region**: 1 MiB of memory the master created for that worker (a
//! sealed `memfd`, descriptor 4 in the worker, `CLUSTER_METRICS_FD`) and maps too. The master
//! reads the regions when it is scraped, so a counter a worker incremented just before it was
//! SIGKILLed still counts: when a worker exits, the master reads its region a last time and
//! keeps its counters and histograms for good. Scrapes cost the workers nothing, and nothing
//! is sent over their channels.
//!
//! The recorder is installed when the worker joins the master (in [`crate::Cluster::run`],
//! before the worker's main function runs): a handle made before that, or in a process with
//! another recorder installed first, records nothing the master sees (the log says so).
//!
//! # The region
//!
//! An array of 131,072 little-endian 64-bit words, each only ever accessed atomically:
//!
//! ```text
//! word 0                     magic "CLMETRC1"
//! word 1                     published entries (release store once an entry is complete)
//! word 2                     registrations refused because the region was full
//! word 3                     not a metric: heartbeats the worker said here instead of in a
//!                              frame (the `handoff_acks` module)
//! words 4..8                 not metrics: the load the last of them said (open connections,
//!                              requests in flight, requests served, resident bytes)
//! words 8..8200              4,096 entries of 2 words:
//!                              kind (1 counter, 2 gauge, 3 histogram, 4 description)
//!                                | first value word << 32
//!                              key's first string word | key length in bytes << 32
//! words 8200..73736          values: a counter's count, a gauge's f64 bits, a histogram's
//!                              counts for each of BUCKETS and +Inf then its sum's f64 bits
//! words 73736..131008        key strings, 8 bytes a word (see key.rs)
//! words 131008..131072       not metrics: the worker's handoff acknowledgements, one word per
//!                              handoff in flight (the `handoff_acks` module)
//! ```
//!
//! A worker only appends; the master checks every index and length it reads and skips what is
//! out of place, so a worker writing garbage costs it that worker's series, nothing more.
//! Counters are read as the highest value seen, so a sum never goes down.
//!
//! # Summing up
//!
//! Series with the same name and labels are merged: counters and histogram buckets are added
//! (histograms share the fixed [`BUCKETS`]); gauges of live processes are summed, or combined
//! as the builder says ([`GaugeAggregation`]); a dead process's gauges are gone.

mod book;
mod families;
mod key;
mod layout;
mod parse;
mod recorder;
mod region;

pub use families::GaugeAggregation;
pub use layout::BUCKETS;
pub use parse::{ExpositionError, Sample, parse_exposition};

pub(crate) use book::{MetricTotal, MetricsBook};
pub(crate) use families::{Families, Value};
pub(crate) use key::SeriesKey;
pub(crate) use layout::{ACK_BASE, ACK_WORDS, BEAT_WORD, LOAD_BASE, LOAD_WORDS};
pub(crate) use recorder::RegionRecorder;
pub(crate) use region::Region;
