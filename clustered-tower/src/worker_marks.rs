//! [`WorkerMarks`]: what being in a cluster adds to every request a worker serves, made once
//! per serve loop so that a request pays for as little as it can: the request's extensions
//! start as a clone of a template that already holds the worker's [`Drain`] and
//! [`WorkerInfo`] and has room for the rest (the client's `ConnectInfo`, the router's own),
//! so no request grows the map; the `x-worker-id` value is made once per process. [`Marking`]
//! is one request's timer and `x-worker-id`, for the serve loop and for
//! [`crate::ClusterService`] alike.

use std::sync::OnceLock;

use clustered_core::WorkerInfo;
use http::{Extensions, HeaderValue, Method, Response};

use crate::config::HttpConfig;
use crate::drain::Drain;
use crate::header::WORKER_ID_HEADER;
use crate::http_metrics::RequestTimer;

/// What a serve loop adds to each of its requests and responses.
#[derive(Debug)]
pub(crate) struct WorkerMarks {
    /// Cloned into each request: `Drain`, and `WorkerInfo` in a worker.
    extensions: Extensions,
    /// This worker's `x-worker-id` value (none outside a worker, or with the header off).
    worker_id: Option<HeaderValue>,
    /// Requests are counted and timed (in a worker, with the request metrics on).
    timed: bool,
}

impl WorkerMarks {
    /// The marks of a serve loop whose requests carry `drain`, and whose responses name their
    /// worker and are counted as `config` says.
    pub(crate) fn new(drain: Drain, config: &HttpConfig) -> Self {
        let worker = this_worker();
        let mut extensions = with_room();
        extensions.insert(drain);
        if let Some((info, _)) = &worker {
            extensions.insert(*info);
        }
        Self {
            extensions,
            timed: worker.is_some() && config.request_metrics_setting(),
            worker_id: worker
                .map(|(_, header)| header)
                .filter(|_| config.worker_id_header_setting()),
        }
    }

    /// A new request's extensions: the template's, with what hyper put there already.
    pub(crate) fn extensions(&self, from_hyper: Extensions) -> Extensions {
        let mut extensions = self.extensions.clone();
        extensions.extend(from_hyper);
        extensions
    }

    /// Starts marking a request with `method` (`None` where there is nothing to mark: outside
    /// a worker, or with both the header and the metrics off).
    pub(crate) fn begin(&self, method: &Method) -> Option<Marking> {
        if !self.timed && self.worker_id.is_none() {
            return None;
        }
        Some(Marking {
            timer: self.timed.then(|| RequestTimer::start(method)),
            worker_id: self.worker_id.clone(),
        })
    }
}

/// Empty extensions with room for six without growing (a clone keeps the capacity): ours
/// (`Drain`, `WorkerInfo`, `ConnectInfo`) and the router's (its URL parameters, a matched path)
/// or hyper's (an upgrade). A map made by inserting into an empty one grows at its fourth.
fn with_room() -> Extensions {
    let mut extensions = Extensions::new();
    extensions.insert(Filler::<0>);
    extensions.insert(Filler::<1>);
    extensions.insert(Filler::<2>);
    extensions.insert(Filler::<3>);
    extensions.insert(Filler::<4>);
    extensions.insert(Filler::<5>);
    extensions.clear();
    extensions
}

/// What grows the template: six distinct types (an insert replaces one of its own type).
#[derive(Debug, Clone, Copy)]
struct Filler<const N: usize>;

/// This worker's identity and its `x-worker-id` value, made once per process; the value from a
/// leaked string, so that cloning it for every response copies a pointer instead of counting a
/// shared buffer.
pub(crate) fn this_worker() -> Option<(WorkerInfo, HeaderValue)> {
    static WORKER: OnceLock<Option<(WorkerInfo, HeaderValue)>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            WorkerInfo::current().map(|info| {
                (
                    info,
                    HeaderValue::from_static(String::leak(info.id.to_string())),
                )
            })
        })
        .clone()
}

/// One request being marked: timed for the metrics, and its response to carry `x-worker-id`
/// (each unless switched off).
#[derive(Debug)]
pub(crate) struct Marking {
    timer: Option<RequestTimer>,
    worker_id: Option<HeaderValue>,
}

impl Marking {
    /// Starts marking a request with `method` both ways, its response to carry `worker_id`.
    pub(crate) fn begin(method: &Method, worker_id: HeaderValue) -> Self {
        Self {
            timer: Some(RequestTimer::start(method)),
            worker_id: Some(worker_id),
        }
    }

    /// The request is answered with `response` (`None`: the service failed, counted as `5xx`).
    pub(crate) fn finish<B>(self, response: Option<&mut Response<B>>) {
        if let Some(timer) = self.timer {
            timer.finish(response.as_ref().map(|response| response.status()));
        }
        if let (Some(response), Some(worker_id)) = (response, self.worker_id) {
            response
                .headers_mut()
                .insert(WORKER_ID_HEADER.clone(), worker_id);
        }
    }
}
