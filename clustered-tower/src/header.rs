//! The response header that names the serving worker.

use http::HeaderName;

/// The response header naming the worker that served the request (`x-worker-id: <slot>`).
pub static WORKER_ID_HEADER: HeaderName = HeaderName::from_static("x-worker-id");
