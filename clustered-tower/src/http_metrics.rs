//! The HTTP metrics [`crate::ClusterLayer`] records in a worker, with the `metrics` crate (so
//! the master sums them over the cluster): `cluster_http_requests_total` and
//! `cluster_http_request_duration_seconds` (from the request to its response's head), both
//! labelled with the method (the nine standard ones, else `OTHER`) and the status class
//! (`1xx`…`5xx`; an inner service's error counts as `5xx`). Each series' handles are made on
//! first use and kept, so a request costs two clock reads, a counter increment and a
//! histogram record, and no lookup.

use std::sync::OnceLock;
use std::time::Instant;

use http::{Method, StatusCode};
use metrics::{Counter, Histogram};

const REQUESTS: &str = "cluster_http_requests_total";
const DURATION: &str = "cluster_http_request_duration_seconds";

const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER",
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One series' handles.
type Series = (Counter, Histogram);

/// The handles of every (method, status class), made on first use.
static SERIES: [[OnceLock<Series>; CLASSES.len()]; METHODS.len()] =
    [const { [const { OnceLock::new() }; CLASSES.len()] }; METHODS.len()];

/// One request being timed.
#[derive(Debug)]
pub(crate) struct RequestTimer {
    started: Instant,
    method: usize,
}

impl RequestTimer {
    /// Starts timing a request with `method`.
    pub(crate) fn start(method: &Method) -> Self {
        let method = match *method {
            Method::GET => 0,
            Method::HEAD => 1,
            Method::POST => 2,
            Method::PUT => 3,
            Method::DELETE => 4,
            Method::CONNECT => 5,
            Method::OPTIONS => 6,
            Method::TRACE => 7,
            Method::PATCH => 8,
            _ => 9,
        };
        Self {
            started: Instant::now(),
            method,
        }
    }

    /// Records the request as answered with `status` (`None`: the service failed).
    pub(crate) fn finish(self, status: Option<StatusCode>) {
        let class = status.map_or(CLASSES.len() - 1, |status| {
            usize::from(status.as_u16() / 100).clamp(1, CLASSES.len()) - 1
        });
        let (requests, duration) = SERIES[self.method][class].get_or_init(|| {
            let labels = [("method", METHODS[self.method]), ("status", CLASSES[class])];
            metrics::describe_counter!(
                REQUESTS,
                "HTTP requests answered, by method and status class."
            );
            metrics::describe_histogram!(
                DURATION,
                metrics::Unit::Seconds,
                "Time from an HTTP request to its response's head, by method and status class."
            );
            (
                metrics::counter!(REQUESTS, &labels),
                metrics::histogram!(DURATION, &labels),
            )
        });
        requests.increment(1);
        duration.record(self.started.elapsed().as_secs_f64());
    }
}
