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

use crate::drain::Drain;
use crate::header::WORKER_ID_HEADER;
use crate::http_metrics::RequestTimer;

/// What a serve loop adds to each of its requests and responses.
#[derive(Debug)]
pub(crate) struct WorkerMarks {
    /// Cloned into each request: `Drain`, and `WorkerInfo` in a worker.
    extensions: Extensions,
    /// This worker's `x-worker-id` value (none outside a worker).
    worker_id: Option<HeaderValue>,
}

impl WorkerMarks {
    /// The marks of a serve loop whose requests carry `drain`.
    pub(crate) fn new(drain: Drain) -> Self {
        let worker = this_worker();
        let mut extensions = with_room();
        extensions.insert(drain);
        if let Some((info, _)) = &worker {
            extensions.insert(*info);
        }
        Self {
            extensions,
            worker_id: worker.map(|(_, header)| header),
        }
    }

    /// A new request's extensions: the template's, with what hyper put there already.
    pub(crate) fn extensions(&self, from_hyper: Extensions) -> Extensions {
        let mut extensions = self.extensions.clone();
        extensions.extend(from_hyper);
        extensions
    }

    /// Starts marking a request with `method` (`None` outside a worker: nothing is marked or
    /// counted there).
    pub(crate) fn begin(&self, method: &Method) -> Option<Marking> {
        let worker_id = self.worker_id.as_ref()?;
        Some(Marking::begin(method, worker_id.clone()))
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

/// One request being marked: timed for the metrics, and its response to carry `x-worker-id`.
#[derive(Debug)]
pub(crate) struct Marking {
    timer: RequestTimer,
    worker_id: HeaderValue,
}

impl Marking {
    /// Starts marking a request with `method`, whose response will carry `worker_id`.
    pub(crate) fn begin(method: &Method, worker_id: HeaderValue) -> Self {
        Self {
            timer: RequestTimer::start(method),
            worker_id,
        }
    }

    /// The request is answered with `response` (`None`: the service failed, counted as `5xx`).
    pub(crate) fn finish<B>(self, response: Option<&mut Response<B>>) {
        self.timer
            .finish(response.as_ref().map(|response| response.status()));
        if let Some(response) = response {
            response
                .headers_mut()
                .insert(WORKER_ID_HEADER.clone(), self.worker_id);
        }
    }
}
